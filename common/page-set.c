// SPDX-License-Identifier: LGPL-2.1-or-later
/* A set of pages within a window, as a DROP carries it (page-set.h). */
#include "page-set.h"

#include "common/macro.h"

#define WINDOW_BYTES ((uint64_t)UPAGER_DROP_WINDOW_PAGES << UPAGER_PAGE_SHIFT)

static bool bit(const struct page_set *ps, uint32_t k)
{
	return ps->map[k / 64] >> (k % 64) & 1;
}

/**
 * page_set_add() - add the page at @addr (page aligned) to @ps; the first page of an empty set is
 * its window's first
 *
 * Return: whether it is in the set now; false if the set is full or @addr outside its window.
 */
bool page_set_add(struct page_set *ps, uint64_t addr)
{
	uint64_t k;

	if (!ps->n)
		*ps = (struct page_set){ .base = addr };
	if (addr < ps->base || addr - ps->base >= WINDOW_BYTES)
		return false;
	k = (addr - ps->base) >> UPAGER_PAGE_SHIFT;
	if (bit(ps, (uint32_t)k))
		return true;
	if (ps->n == UPAGER_DROP_MAX_PAGES)
		return false;
	ps->map[k / 64] |= 1ULL << (k % 64);
	ps->n++;
	return true;
}

/** page_set_has() - whether the page at @addr is in @ps */
bool page_set_has(const struct page_set *ps, uint64_t addr)
{
	return ps->n && addr >= ps->base && addr - ps->base < WINDOW_BYTES &&
	       bit(ps, (uint32_t)((addr - ps->base) >> UPAGER_PAGE_SHIFT));
}

/**
 * page_set_next_run() - the next run of pages of @ps that follow each other, in address order
 * @r: zeroed before the first call; its addr, pages and rank are the run's on return
 *
 * Return: false once there is none left.
 */
bool page_set_next_run(const struct page_set *ps, struct page_set_run *r)
{
	uint32_t k = r->next;

	if (k == 0)
		r->rank = 0;
	else
		r->rank += (uint32_t)r->pages;
	while (k < UPAGER_DROP_WINDOW_PAGES && !bit(ps, k))
		k++;
	if (k == UPAGER_DROP_WINDOW_PAGES) {
		r->next = k;
		return false;
	}
	r->addr = ps->base + ((uint64_t)k << UPAGER_PAGE_SHIFT);
	for (r->pages = 0; k < UPAGER_DROP_WINDOW_PAGES && bit(ps, k); k++)
		r->pages++;
	r->next = k;
	return true;
}

/** page_set_remove() - the pages [addr, addr + @pages pages) leave @ps */
void page_set_remove(struct page_set *ps, uint64_t addr, uint64_t pages)
{
	for (uint64_t p = 0; p < pages; p++) {
		uint64_t a = addr + (p << UPAGER_PAGE_SHIFT), k;

		if (!page_set_has(ps, a))
			continue;
		k = (a - ps->base) >> UPAGER_PAGE_SHIFT;
		ps->map[k / 64] &= ~(1ULL << (k % 64));
		ps->n--;
	}
}

/** page_set_keep_first() - the first @n pages of @ps, in address order, stay; the others leave */
void page_set_keep_first(struct page_set *ps, uint32_t n)
{
	uint32_t kept = 0;

	for (uint32_t w = 0; w < UPAGER_DROP_WINDOW_PAGES / 64; w++) {
		uint64_t bits = ps->map[w];

		while (bits) {
			uint64_t low = bits & -bits;

			bits &= bits - 1;
			if (kept < n)
				kept++;
			else
				ps->map[w] &= ~low;
		}
	}
	ps->n = MIN(ps->n, n);
}

/**
 * page_set_next() - the next page of @ps, in address order, from bit *@k on (0 to start)
 *
 * Return: false once there is none left; else *@addr is the page's and *@k the bit after it.
 */
bool page_set_next(const struct page_set *ps, uint32_t *k, uint64_t *addr)
{
	for (uint32_t w = *k / 64; w < UPAGER_DROP_WINDOW_PAGES / 64; w++) {
		uint64_t bits = ps->map[w] & (w == *k / 64 ? ~0ULL << (*k % 64) : ~0ULL);

		if (bits) {
			uint32_t b = w * 64 + (uint32_t)__builtin_ctzll(bits);

			*addr = ps->base + ((uint64_t)b << UPAGER_PAGE_SHIFT);
			*k = b + 1;
			return true;
		}
	}
	*k = UPAGER_DROP_WINDOW_PAGES;
	return false;
}

/**
 * page_set_unrank() - @sub_bits, a bit by rank in @sub (a subset of @ps), as
 * @bits, a bit by rank in @ps (UPAGER_DROP_MAX_PAGES bits); pages not in @sub get none
 */
void page_set_unrank(const struct page_set *ps, const struct page_set *sub,
		     const uint64_t *sub_bits, uint64_t *bits)
{
	uint32_t k = 0, rank = 0, sub_rank = 0;
	uint64_t a;

	for (size_t w = 0; w < UPAGER_DROP_MAX_PAGES / 64; w++)
		bits[w] = 0;
	for (; page_set_next(ps, &k, &a); rank++) {
		if (!page_set_has(sub, a))
			continue;
		if (sub_bits[sub_rank / 64] >> (sub_rank % 64) & 1)
			bits[rank / 64] |= 1ULL << (rank % 64);
		sub_rank++;
	}
}
