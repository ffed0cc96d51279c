/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The header in page 0 of a store of pages outside memory (swap.c, nbd-store.c): it says that the
 * store is one of upager's, and slot N is page N + 1. A store is taken only if it holds that
 * header already or nothing: its first MiB (where partition tables, file systems and volume labels
 * keep their signatures) is zeroes. Anything else is someone's data, never overwritten.
 */
#pragma once

#include <errno.h>
#include <string.h>

#include "common/macro.h"

#define STORE_MAGIC "upager swap store, format 1\n"
#define STORE_BLANK_BYTES (1U << 20) /* what must be zeroes in a store never used */

/* The offset of slot @slot in the store. */
static inline uint64_t store_slot_offset(uint64_t slot)
{
	return (slot + 1) * UPAGER_PAGE_SIZE;
}

/* @head, the store's first STORE_BLANK_BYTES: 0 if the store may be taken, else -EEXIST. */
static inline int store_header_check(const char *head)
{
	if (memcmp(head, STORE_MAGIC, sizeof(STORE_MAGIC)) == 0)
		return 0;
	if (head[0] != 0 || memcmp(head, head + 1, STORE_BLANK_BYTES - 1) != 0)
		return -EEXIST;
	return 0;
}

/* The header, in the page @page. */
static inline void store_header_make(char *page)
{
	memset(page, 0, UPAGER_PAGE_SIZE);
	memcpy(page, STORE_MAGIC, sizeof(STORE_MAGIC));
}
