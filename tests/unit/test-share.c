// SPDX-License-Identifier: LGPL-2.1-or-later
/* Who is over its share of the budget (share.c): pages by user summed, the share taken off. */
#include <criterion/criterion.h>

#include "daemon/share.h"

TestSuite(share);

Test(share, a_user_over_its_share_is_over_by_the_sum_of_its_pages_less_the_share)
{
	struct user_over pages[] = { { 7, 300 }, { 3, 100 }, { 7, 250 }, { 5, 500 }, { 3, 50 } };
	struct users_over o;

	cr_assert_eq(users_over_sum(pages, 5, 400, &o), 0);
	/* 3: 150 (under); 5: 500 (over by 100); 7: 550 (over by 150); in order of uid. */
	cr_assert_eq(o.n, 2);
	cr_assert_eq(o.u[0].uid, 5);
	cr_assert_eq(o.u[0].pages, 100);
	cr_assert_eq(o.u[1].uid, 7);
	cr_assert_eq(o.u[1].pages, 150);
	cr_assert_not(o.waiting);
}

Test(share, what_the_objects_of_users_over_their_share_give_is_at_most_what_they_are_over)
{
	/* 5: 500 of which 450 of objects, over by 100; 7: 550 of which 30 of objects, over by
	 * 150; 3: 150 (under). */
	struct user_over pages[] = { { 7, 300, 0 }, { 3, 100, 100 }, { 7, 250, 30 },
				     { 5, 50, 0 },  { 3, 50, 50 },   { 5, 450, 450 } };
	struct users_over o;

	cr_assert_eq(users_over_sum(pages, 6, 400, &o), 0);
	cr_assert_eq(o.n, 2);
	cr_assert_eq(o.u[0].objects, 450);
	cr_assert_eq(o.u[1].objects, 30);
	cr_assert_eq(users_over_objects(&o), 100 + 30);
	/* As the balance takes off what they gave. */
	o.u[0].pages = 20;
	o.u[1].pages = 0;
	cr_assert_eq(users_over_objects(&o), 20);
	cr_assert_eq(users_over_objects(NULL), 0);
}

Test(share, a_user_at_its_share_is_not_over)
{
	struct user_over pages[] = { { 1, 200 }, { 1, 200 }, { 2, 399 } };
	struct users_over o;

	cr_assert_eq(users_over_sum(pages, 3, 400, &o), 0);
	cr_assert_eq(o.n, 0);
}

Test(share, no_one_is_over_when_no_one_is_under)
{
	struct user_over pages[] = { { 1, 500 }, { 2, 401 }, { 3, 0 } };
	struct users_over o;

	cr_assert_eq(users_over_sum(pages, 3, 400, &o), 0);
	cr_assert_eq(o.n, 0, "all over their share: the pages go as if there were no shares");
}

Test(share, no_pages_no_one_over)
{
	struct users_over o = { .n = 9 };

	cr_assert_eq(users_over_sum(NULL, 0, 0, &o), 0);
	cr_assert_eq(o.n, 0);
}

Test(share, the_users_but_root_whose_slots_reach_the_most_are_swap_full)
{
	struct user_over held[] = { { 7, 60 }, { 0, 500 }, { 3, 99 }, { 7, 40 }, { 5, 100 } };
	struct users_over o = { 0 };

	cr_assert_eq(users_swap_full(held, 5, 100, &o), 0);
	/* 0: root, never; 3: 99 (under); 5: 100 (at it); 7: 100 (at it, summed); in order. */
	cr_assert_eq(o.n_swap_full, 2);
	cr_assert_eq(o.swap_full[0], 5);
	cr_assert_eq(o.swap_full[1], 7);
	cr_assert(users_over_swap_full(&o, 7));
	cr_assert_not(users_over_swap_full(&o, 3));
	cr_assert_not(users_over_swap_full(&o, 0));
	cr_assert_not(users_over_swap_full(NULL, 5), "no table: no one is full");
	users_over_free(&o);
	cr_assert_eq(users_swap_full(held, 0, 100, &o), 0);
	cr_assert_eq(o.n_swap_full, 0);
	cr_assert_null(o.swap_full);
}
