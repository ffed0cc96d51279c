// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Where the pages of a page-out are now: moves (mremap, possibly back where they were, or over
 * them), ranges let go of, what a DROP may still name, and the lookup by address either way.
 */
#include <criterion/criterion.h>

#include "common/macro.h"
#include "daemon/page-trail.h"

#define A 0x7f0000000000ull
#define B 0x7f1000000000ull
#define MIB (1024 * 1024ull)
#define PG(base, k) ((base) + ((uint64_t)(k) << UPAGER_PAGE_SHIFT))

/* A page-out of pages 0, 2, 4, ..., 2 * (n - 1) of the range at A. */
static void trail_of(struct page_set *ps, struct page_trail *tr, unsigned n)
{
	*ps = (struct page_set){ 0 };
	for (unsigned k = 0; k < n; k++)
		cr_assert(page_set_add(ps, PG(A, 2 * k)));
	page_trail_init(tr, ps);
	cr_assert_eq(tr->n, n);
}

Test(page_trail, pages_start_where_the_set_says_ranked_as_it_ranks_them)
{
	struct page_set ps, sent;
	struct page_trail tr;

	trail_of(&ps, &tr, 100);
	for (unsigned k = 0; k < 100; k++) {
		cr_assert_eq(tr.at[k], PG(A, 2 * k));
		cr_assert(page_trail_has(&tr, PG(A, 2 * k)));
		cr_assert_not(page_trail_has(&tr, PG(A, 2 * k + 1)));
	}
	cr_assert_not(tr.strayed);
	cr_assert_eq(page_trail_in_place(&tr, &ps, &sent), 100);
	cr_assert_arr_eq(sent.map, ps.map, sizeof(ps.map));
	cr_assert_eq(sent.base, ps.base);
}

Test(page_trail, a_move_takes_the_pages_in_its_range_along_and_a_move_back_puts_them_back)
{
	struct page_set ps, sent;
	struct page_trail tr;

	trail_of(&ps, &tr, 100);
	/* The range's first 20 pages (pages 0..18 of the set: ranks 0..9) move to B. */
	cr_assert(page_trail_move(&tr, A, B, 20 * UPAGER_PAGE_SIZE));
	cr_assert(tr.strayed);
	for (unsigned k = 0; k < 100; k++)
		cr_assert_eq(tr.at[k], k < 10 ? PG(B, 2 * k) : PG(A, 2 * k), "rank %u", k);
	cr_assert(page_trail_has(&tr, PG(B, 4)));
	cr_assert_not(page_trail_has(&tr, PG(A, 4)));
	cr_assert(page_trail_has(&tr, PG(A, 40)));
	/* The DROP names the 90 still in place only. */
	cr_assert_eq(page_trail_in_place(&tr, &ps, &sent), 90);
	cr_assert_not(page_set_has(&sent, PG(A, 4)));
	cr_assert(page_set_has(&sent, PG(A, 20)));
	/* A move elsewhere meets none of them. */
	cr_assert_not(page_trail_move(&tr, A + 64 * MIB, B + 64 * MIB, MIB));
	/* Back where they were: all in place again. */
	cr_assert(page_trail_move(&tr, B, A, 20 * UPAGER_PAGE_SIZE));
	cr_assert_eq(page_trail_in_place(&tr, &ps, &sent), 100);
	for (unsigned k = 0; k < 100; k++)
		cr_assert(page_trail_has(&tr, PG(A, 2 * k)));
}

Test(page_trail, a_move_over_pages_and_a_range_let_go_of_leave_them_gone)
{
	struct page_set ps, sent;
	struct page_trail tr;

	trail_of(&ps, &tr, 100);
	/* Another mapping moved onto pages 100..109 of the range replaces ranks 50..54. */
	cr_assert(page_trail_move(&tr, B, PG(A, 100), 10 * UPAGER_PAGE_SIZE));
	/* munmap of pages 0..3: ranks 0, 1. */
	cr_assert(page_trail_forget(&tr, A, PG(A, 4)));
	for (unsigned k = 0; k < 100; k++) {
		bool gone = k < 2 || (k >= 50 && k < 55);

		cr_assert_eq(tr.at[k], gone ? PAGE_TRAIL_GONE : PG(A, 2 * k), "rank %u", k);
	}
	cr_assert_not(page_trail_has(&tr, PG(A, 100)));
	cr_assert_not(page_trail_has(&tr, PAGE_TRAIL_GONE - UPAGER_PAGE_SIZE + 1));
	cr_assert_eq(page_trail_in_place(&tr, &ps, &sent), 93);
	/* Gone pages go nowhere, whatever moves. */
	cr_assert_not(page_trail_forget(&tr, A, PG(A, 4)));
	page_trail_move(&tr, 0, B, UINT64_MAX - B);
	cr_assert_eq(tr.at[0], PAGE_TRAIL_GONE);
}
