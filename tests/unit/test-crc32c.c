// SPDX-License-Identifier: LGPL-2.1-or-later
/* CRC32C: the known values, and the CPU's instruction agrees with the tables. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/crc32c.h"

Test(crc32c, known_values)
{
	static const uint8_t zeroes[32], ones[32] = { [0 ... 31] = 0xff };

	/* The check value of CRC-32C, and those of RFC 3720, B.4. */
	cr_assert_eq(crc32c(0, "123456789", 9), 0xe3069283);
	cr_assert_eq(crc32c_portable(0, "123456789", 9), 0xe3069283);
	cr_assert_eq(crc32c(0, zeroes, 32), 0x8a9136aa);
	cr_assert_eq(crc32c_portable(0, zeroes, 32), 0x8a9136aa);
	cr_assert_eq(crc32c(0, ones, 32), 0x62a8ab43);
	cr_assert_eq(crc32c_portable(0, ones, 32), 0x62a8ab43);
	cr_assert_eq(crc32c(0, "", 0), 0);
}

Test(crc32c, both_ways_agree_on_any_length_and_in_pieces)
{
	uint8_t buf[4096 + 13];

	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (size_t len = 0; len < sizeof(buf); len += 1 + len / 3) {
		uint32_t whole = crc32c(0, buf, len);

		cr_assert_eq(whole, crc32c_portable(0, buf, len), "length %zu", len);
		cr_assert_eq(crc32c(crc32c(0, buf, len / 3), buf + len / 3, len - len / 3), whole);
	}
}

/* Lengths of a page and more, which the instruction takes as three streams at once. */
Test(crc32c, three_streams_agree_with_the_tables)
{
	static uint8_t buf[3 * 4096 + 13];

	srand(11);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (size_t len = 4070; len < 4110; len++)
		cr_assert_eq(crc32c(0, buf, len), crc32c_portable(0, buf, len), "length %zu", len);
	for (size_t len = 8150; len < sizeof(buf); len += 997)
		cr_assert_eq(crc32c(0x1234, buf + 1, len - 1),
			     crc32c_portable(0x1234, buf + 1, len - 1), "length %zu", len);
}

Test(crc32c, one_bit_changes_it)
{
	uint8_t page[4096] = { 0 };
	uint32_t before = crc32c(0, page, sizeof(page));

	page[2049] ^= 0x10;
	cr_assert_neq(crc32c(0, page, sizeof(page)), before);
}
