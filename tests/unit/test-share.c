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
