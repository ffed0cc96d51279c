/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checksums of a store's slots (page-sums.c): a CRC32C per slot and a bit per slot written
 * whole, kept by the daemon so that a page a store gives back different from what was written is
 * an error, never data. Every store of pages outside memory (swap.c, nbd-store.c) keeps them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct slots;

struct page_sums {
	uint32_t *crc; /* per slot, valid where written */
	uint64_t *written; /* bit per slot: written whole and not freed since */
};

uint64_t page_sums_bytes(uint64_t pages);
void page_sums_place(struct page_sums *ps, void *mem, uint64_t pages);
int page_sums_new(struct page_sums *ps, uint64_t pages);
void page_sums_free(struct page_sums *ps, uint64_t pages);
void page_sums_forget(struct page_sums *ps, uint64_t slot, uint64_t pages);
void page_sums_release(struct page_sums *ps, const struct slots *s, uint64_t slot);
bool page_sums_written(const struct page_sums *ps, uint64_t slot, uint64_t pages);
void page_sums_commit(struct page_sums *ps, uint64_t slot, const void *buf, uint64_t pages);
int page_sums_verify(const struct page_sums *ps, const char *store, uint64_t slot, const void *buf,
		     uint64_t pages);
int page_sums_check(const struct page_sums *ps, const struct slots *s, bool write, uint64_t slot,
		    const void *buf, uint64_t pages);
