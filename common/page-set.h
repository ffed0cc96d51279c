/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A set of pages as a DROP carries it: up to UPAGER_DROP_MAX_PAGES pages within a window of
 * UPAGER_DROP_WINDOW_PAGES from its first page, a bit each. The daemon gathers the pages a
 * page-out takes; the client's control thread walks the same set. Both number the pages in
 * address order (the rank): the daemon's k-th slot of a page-out, the client's k-th page of its
 * spare part and the k-th bit of the DROP's reply are all the same page.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto/upager-proto.h"

struct page_set {
	uint64_t base; /* the window's first page */
	uint64_t map[UPAGER_DROP_WINDOW_PAGES / 64]; /* bit k: the page at base + k pages */
	uint32_t n; /* bits set */
};

/* A run of pages of a set that follow each other: the rank of its first, and where to go on. */
struct page_set_run {
	uint64_t addr, pages;
	uint32_t rank;
	uint32_t next; /* the bit page_set_next_run() looks at next; 0 to start */
};

bool page_set_add(struct page_set *ps, uint64_t addr);
bool page_set_has(const struct page_set *ps, uint64_t addr);
bool page_set_next_run(const struct page_set *ps, struct page_set_run *r);
bool page_set_next(const struct page_set *ps, uint32_t *k, uint64_t *addr);
void page_set_remove(struct page_set *ps, uint64_t addr, uint64_t pages);
void page_set_keep_first(struct page_set *ps, uint32_t n);
void page_set_unrank(const struct page_set *ps, const struct page_set *sub,
		     const uint64_t *sub_bits, uint64_t *bits);
