// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The set of pages a DROP carries: its window and its limit, and that the daemon's walk (runs,
 * pages) and the client's see the same pages in the same order, ranked alike.
 */
#include <criterion/criterion.h>

#include "common/macro.h"
#include "common/page-set.h"

#define BASE 0x7f0000100000ull
#define PG(k) (BASE + ((uint64_t)(k) << UPAGER_PAGE_SHIFT))

Test(page_set, its_first_page_opens_a_window_that_takes_no_page_before_or_past_it)
{
	struct page_set ps = { 0 };

	cr_assert(page_set_add(&ps, PG(0)));
	cr_assert_eq(ps.base, PG(0));
	cr_assert(page_set_add(&ps, PG(UPAGER_DROP_WINDOW_PAGES - 1)));
	cr_assert_not(page_set_add(&ps, PG(UPAGER_DROP_WINDOW_PAGES)));
	cr_assert_not(page_set_add(&ps, PG(0) - UPAGER_PAGE_SIZE));
	cr_assert_eq(ps.n, 2);
	cr_assert(page_set_has(&ps, PG(UPAGER_DROP_WINDOW_PAGES - 1)));
	cr_assert_not(page_set_has(&ps, PG(1)));
	cr_assert_not(page_set_has(&ps, PG(UPAGER_DROP_WINDOW_PAGES)));
}

Test(page_set, it_holds_at_most_a_drops_pages_and_counts_a_page_once)
{
	struct page_set ps = { 0 };

	for (unsigned k = 0; k < UPAGER_DROP_MAX_PAGES; k++)
		cr_assert(page_set_add(&ps, PG(2 * k)), "page %u", k);
	cr_assert(page_set_add(&ps, PG(0)), "a page it has");
	cr_assert_eq(ps.n, UPAGER_DROP_MAX_PAGES);
	cr_assert_not(page_set_add(&ps, PG(1)));
	cr_assert_eq(ps.n, UPAGER_DROP_MAX_PAGES);
}

Test(page_set, an_empty_set_starts_again_where_its_next_page_is)
{
	struct page_set ps = { 0 };

	cr_assert(page_set_add(&ps, PG(5)));
	page_set_remove(&ps, PG(5), 1);
	cr_assert_eq(ps.n, 0);
	cr_assert(page_set_add(&ps, PG(3 * UPAGER_DROP_WINDOW_PAGES)));
	cr_assert_eq(ps.base, PG(3 * UPAGER_DROP_WINDOW_PAGES));
	cr_assert_not(page_set_has(&ps, PG(5)));
}

Test(page_set, runs_and_pages_come_in_address_order_with_the_same_ranks)
{
	static const unsigned pages[] = { 0, 1, 2, 7, 63, 64, 65, 200, 1022, 1023 };
	static const struct {
		unsigned first, pages, rank;
	} runs[] = { { 0, 3, 0 }, { 7, 1, 3 }, { 63, 3, 4 }, { 200, 1, 7 }, { 1022, 2, 8 } };
	struct page_set ps = { 0 };
	struct page_set_run r = { 0 };
	uint32_t bit = 0;
	uint64_t a;
	size_t k;

	/* Added out of order: the order is the addresses'. */
	for (k = ARRAY_SIZE(pages); k-- > 1;)
		cr_assert(page_set_add(&ps, k == ARRAY_SIZE(pages) - 1 ? PG(0) : PG(pages[k])));
	cr_assert(page_set_add(&ps, PG(1023)));
	cr_assert_eq(ps.n, ARRAY_SIZE(pages));
	for (k = 0; page_set_next_run(&ps, &r); k++) {
		cr_assert_lt(k, ARRAY_SIZE(runs));
		cr_assert_eq(r.addr, PG(runs[k].first), "run %zu", k);
		cr_assert_eq(r.pages, runs[k].pages, "run %zu", k);
		cr_assert_eq(r.rank, runs[k].rank, "run %zu", k);
	}
	cr_assert_eq(k, ARRAY_SIZE(runs));
	cr_assert_not(page_set_next_run(&ps, &r), "it stays at the end");
	for (k = 0; page_set_next(&ps, &bit, &a); k++) {
		cr_assert_lt(k, ARRAY_SIZE(pages));
		cr_assert_eq(a, PG(pages[k]), "page of rank %zu", k);
	}
	cr_assert_eq(k, ARRAY_SIZE(pages));
}

Test(page_set, a_run_taken_out_leaves_the_others_and_their_order)
{
	struct page_set ps = { 0 };
	struct page_set_run r = { 0 };

	for (unsigned k = 0; k < 10; k++)
		cr_assert(page_set_add(&ps, PG(k < 5 ? k : k + 10)));
	page_set_remove(&ps, PG(1), 3);
	page_set_remove(&ps, PG(100), 1); /* not there */
	cr_assert_eq(ps.n, 7);
	cr_assert(page_set_next_run(&ps, &r));
	cr_assert(r.addr == PG(0) && r.pages == 1 && r.rank == 0);
	cr_assert(page_set_next_run(&ps, &r));
	cr_assert(r.addr == PG(4) && r.pages == 1 && r.rank == 1);
	cr_assert(page_set_next_run(&ps, &r));
	cr_assert(r.addr == PG(15) && r.pages == 5 && r.rank == 2);
	cr_assert_not(page_set_next_run(&ps, &r));
}

/* A DROP's answer for a subset of a page-out's pages, read back by the page-out's own ranks. */
Test(page_set, an_answer_for_a_subset_is_ranked_as_the_whole_set)
{
	struct page_set ps = { 0 }, sub = { 0 };
	uint64_t sub_bits[UPAGER_DROP_MAX_PAGES / 64] = { 0 }, bits[UPAGER_DROP_MAX_PAGES / 64];

	for (unsigned k = 0; k < 200; k++)
		cr_assert(page_set_add(&ps, PG(3 * k)));
	/* The subset: every page but the first 70 and page 150 (ranks 70.., less one). */
	for (unsigned k = 70; k < 200; k++)
		if (k != 150)
			cr_assert(page_set_add(&sub, PG(3 * k)));
	/* The answer moved the subset's ranks 0 (page 70), 79 (page 149), 80 (page 151), 128. */
	sub_bits[0] = 1;
	sub_bits[1] = 1ULL << 15 | 1ULL << 16;
	sub_bits[2] = 1;
	page_set_unrank(&ps, &sub, sub_bits, bits);
	cr_assert_eq(bits[0], 0);
	cr_assert_eq(bits[1], 1ULL << (70 - 64));
	cr_assert_eq(bits[2], 1ULL << (149 - 128) | 1ULL << (151 - 128));
	cr_assert_eq(bits[3], 1ULL << (199 - 192), "rank 128 of the subset is page 199: %#llx",
		     (unsigned long long)bits[3]);
}

Test(page_set, keeping_the_first_pages_takes_the_others_out_in_address_order)
{
	struct page_set ps = { 0 };
	struct page_set_run r = { 0 };
	const uint64_t base = 0x7f0000000000;

	/* Pages 3, 70, 71, 72 and 200 of the window. */
	cr_assert(page_set_add(&ps, base + 3 * 4096));
	cr_assert(page_set_add(&ps, base + 200 * 4096));
	for (uint64_t p = 70; p < 73; p++)
		cr_assert(page_set_add(&ps, base + p * 4096));
	page_set_keep_first(&ps, 3);
	cr_assert_eq(ps.n, 3);
	cr_assert(page_set_next_run(&ps, &r));
	cr_assert_eq(r.pages, 1);
	cr_assert(page_set_next_run(&ps, &r));
	cr_assert_eq(r.addr, base + 70 * 4096);
	cr_assert_eq(r.pages, 2, "page 72 and 200 left");
	cr_assert_not(page_set_next_run(&ps, &r));
	page_set_keep_first(&ps, 5);
	cr_assert_eq(ps.n, 3, "keeping more than it has keeps all");
	page_set_keep_first(&ps, 0);
	cr_assert_eq(ps.n, 0);
	cr_assert_not(page_set_has(&ps, base + 3 * 4096));
}
