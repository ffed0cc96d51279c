/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where the pages of a page-out are now (page-trail.c). A page-out names its pages by the
 * addresses they had when it took them (struct page_set), and its DROP names them so; while it is
 * under way the client may move them (mremap(2)), possibly back, or let them go (munmap(2),
 * MADV_DONTNEED). The trail follows each page by its rank in the set, as the daemon reads the
 * client's events, so that the page-out gives each page's slot to the page, wherever it is.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/page-set.h"

#define PAGE_TRAIL_GONE UINT64_MAX /* the page left its process */

struct page_trail {
	uint64_t at[UPAGER_DROP_MAX_PAGES]; /* by rank: where the page is, or PAGE_TRAIL_GONE */
	uint32_t n;
	bool strayed; /* some page is not where the set says any more */
};

void page_trail_init(struct page_trail *tr, const struct page_set *ps);
bool page_trail_move(struct page_trail *tr, uint64_t from, uint64_t to, uint64_t len);
bool page_trail_forget(struct page_trail *tr, uint64_t start, uint64_t end);
bool page_trail_has(const struct page_trail *tr, uint64_t addr);
uint32_t page_trail_in_place(const struct page_trail *tr, const struct page_set *ps,
			     struct page_set *sent);
