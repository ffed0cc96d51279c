// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * CRC32C: the SSE4.2 instruction where the CPU has it, otherwise tables eight bytes at a time. Both
 * give the same value, that of iSCSI, ext4 and btrfs. The instruction takes three cycles and can
 * start one each cycle, so a page goes as three streams of SHORT bytes at once, whose CRCs are then
 * joined: the CRC of A then B is that of A shifted over |B| zero bytes, xor that of B alone (the
 * register's update is linear); shifting over SHORT zeroes is four table lookups.
 */
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82f63b78U /* reflected */
#define SHORT 1360 /* bytes a stream: three of them and 16 more make a page */

static uint32_t crc32c_table[8][256];
static uint32_t crc32c_short[4][256]; /* the register shifted over SHORT zero bytes, a byte each */
static bool crc32c_hw;

/* The register @c after @len zero bytes (a multiple of 8), by the tables. */
static uint32_t zeroes(uint32_t c, size_t len)
{
	for (; len >= 8; len -= 8)
		c = crc32c_table[7][c & 0xff] ^ crc32c_table[6][(c >> 8) & 0xff] ^
		    crc32c_table[5][(c >> 16) & 0xff] ^ crc32c_table[4][c >> 24];
	return c;
}

static uint32_t shift_short(uint32_t c)
{
	return crc32c_short[0][c & 0xff] ^ crc32c_short[1][(c >> 8) & 0xff] ^
	       crc32c_short[2][(c >> 16) & 0xff] ^ crc32c_short[3][c >> 24];
}

static __attribute__((constructor)) void crc32c_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
					     crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
	for (unsigned k = 0; k < 4; k++)
		for (uint32_t i = 0; i < 256; i++)
			crc32c_short[k][i] = zeroes(i << (8 * k), SHORT);
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc32c_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/**
 * crc32c_portable() - crc32c() without the CPU's instruction, by tables
 * @crc: the CRC of what came before, 0 to start
 * @buf: the data
 * @len: its length in bytes
 *
 * Return: the CRC of everything so far.
 */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	while (len >= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= c;
		c = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
		    crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
		    crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
		    crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ crc32c_table[0][(c ^ *p++) & 0xff];
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
							       size_t len)
{
	uint64_t c = ~crc;

	for (; len >= 3 * SHORT; len -= 3 * SHORT, p += 3 * SHORT) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < SHORT; i += 8) {
			uint64_t v0, v1, v2;

			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + SHORT + i, 8);
			memcpy(&v2, p + 2 * SHORT + i, 8);
			c = _mm_crc32_u64(c, v0);
			c1 = _mm_crc32_u64(c1, v1);
			c2 = _mm_crc32_u64(c2, v2);
		}
		c = shift_short((uint32_t)c) ^ (uint32_t)c1;
		c = shift_short((uint32_t)c) ^ (uint32_t)c2;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

/**
 * crc32c() - the CRC32C of @buf, continuing @crc
 * @crc: the CRC of what came before, 0 to start
 * @buf: the data
 * @len: its length in bytes
 *
 * Return: the CRC of everything so far; crc32c(0, "123456789", 9) is 0xe3069283.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (crc32c_hw)
		return crc32c_sse42(crc, buf, len);
#endif
	return crc32c_portable(crc, buf, len);
}
