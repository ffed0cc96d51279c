// SPDX-License-Identifier: LGPL-2.1-or-later
/* Where the pages of a page-out are now (page-trail.h). */
#include "page-trail.h"

#include <string.h>

#include "common/macro.h"

/** page_trail_init() - each page of @ps is where @ps says, ranked as @ps ranks them */
void page_trail_init(struct page_trail *tr, const struct page_set *ps)
{
	uint32_t k = 0, rank = 0;
	uint64_t a;

	tr->strayed = false;
	while (page_set_next(ps, &k, &a))
		tr->at[rank++] = a;
	tr->n = rank;
}

/**
 * page_trail_move() - mremap() moved [from, from+len) to [to, to+len): the pages there go along;
 * those that were at [to, to+len) and not moved are gone (the move replaced their mapping)
 *
 * Return: whether a page of @tr was in either range.
 */
bool page_trail_move(struct page_trail *tr, uint64_t from, uint64_t to, uint64_t len)
{
	bool met = false;

	for (uint32_t k = 0; k < tr->n; k++) {
		uint64_t a = tr->at[k];

		if (a == PAGE_TRAIL_GONE)
			continue;
		if (a - from < len)
			tr->at[k] = a - from + to;
		else if (a - to < len)
			tr->at[k] = PAGE_TRAIL_GONE;
		else
			continue;
		met = true;
	}
	tr->strayed |= met;
	return met;
}

/** page_trail_forget() - [start, end) left the process. Return: whether a page of @tr was there. */
bool page_trail_forget(struct page_trail *tr, uint64_t start, uint64_t end)
{
	bool met = false;

	for (uint32_t k = 0; k < tr->n; k++) {
		if (tr->at[k] == PAGE_TRAIL_GONE || tr->at[k] < start || tr->at[k] >= end)
			continue;
		tr->at[k] = PAGE_TRAIL_GONE;
		met = true;
	}
	tr->strayed |= met;
	return met;
}

/** page_trail_has() - whether a page of @tr is at @addr now */
bool page_trail_has(const struct page_trail *tr, uint64_t addr)
{
	uint32_t lo = 0, hi = tr->n;

	if (tr->strayed) {
		for (uint32_t k = 0; k < tr->n; k++)
			if (tr->at[k] == addr)
				return true;
		return false;
	}
	/* In rank order, the set's address order. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (tr->at[mid] == addr)
			return true;
		if (tr->at[mid] < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/**
 * page_trail_in_place() - the pages of @ps that are still where @ps says, into @sent (within the
 * same window): what a DROP may name. Return: their number.
 */
uint32_t page_trail_in_place(const struct page_trail *tr, const struct page_set *ps,
			     struct page_set *sent)
{
	uint32_t k = 0, rank = 0;
	uint64_t a;

	*sent = (struct page_set){ .base = ps->base };
	while (page_set_next(ps, &k, &a))
		if (tr->at[rank++] == a) {
			uint64_t i = (a - ps->base) >> UPAGER_PAGE_SHIFT;

			sent->map[i / 64] |= 1ULL << (i % 64);
			sent->n++;
		}
	return sent->n;
}
