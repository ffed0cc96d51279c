/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the files of the codec's unit test. */
#pragma once

#include <criterion/criterion.h>
#include <stdint.h>
#include <sys/mman.h>

#include "common/macro.h"
#include "proto/upager-proto.h"

#define HDR 16u /* header */
#define RPL 8u /* reply status block */
#define ENTRY_FIXED 184u /* fixed part of a LIST entry */
#define REPLY(op) ((uint16_t)((op) | UPAGER_OP_REPLY))

/* Byte writers of our own, so the tests do not trust the codec's idea of little-endian. */
static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* And a reader of our own, to see where the codec put a field and in which byte order. */
static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A page followed by an inaccessible one: bytes placed at its end cannot be read past. */
static inline uint8_t *guarded_page(void)
{
	uint8_t *p = mmap(NULL, 2 * UPAGER_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "mmap: %m");
	cr_assert_eq(mprotect(p + UPAGER_PAGE_SIZE, UPAGER_PAGE_SIZE, PROT_NONE), 0,
		     "mprotect: %m");
	return p;
}
