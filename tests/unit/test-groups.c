// SPDX-License-Identifier: LGPL-2.1-or-later
/* Which clients' memory cgroups are over their cap (groups.c): pages by space summed by cgroup. */
#include <criterion/criterion.h>

#include "daemon/groups.h"

TestSuite(groups);

/*
 * Cgroup 7 (cap 1000 pages, a slack of 64) holds 600 + 500 pages: over its cap, by 164 of its low
 * mark; with a page-out under way, its touches wait. Cgroup 9 (cap 2000) holds 1,200: under.
 */
Test(groups, a_cgroup_over_its_cap_gives_what_it_holds_above_its_low_mark)
{
	struct group_use u[] = { { 7, 1000, 600, false },
				 { 9, 2000, 1200, true },
				 { 7, 1000, 500, true } };
	struct groups_over o;

	groups_sum(u, 3, &o);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.g[0].id, 7);
	cr_assert_eq(o.g[0].pages, 1100 - (1000 - 64));
	cr_assert_eq(o.n_wait, 1);
	cr_assert_eq(o.wait[0], 7);
}

/* Above the mark to page out, under the cap: pages go, touches do not wait; nor do they with
 * nothing on its way out; under the mark nothing goes. */
Test(groups, touches_wait_only_at_the_cap_with_pages_on_their_way_out)
{
	struct group_use near[] = { { 7, 1000, 980, true } };
	struct group_use idle[] = { { 7, 1000, 1500, false } };
	struct group_use under[] = { { 7, 1000, 960, true } };
	struct groups_over o;

	groups_sum(near, 1, &o);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.g[0].pages, 980 - 936);
	cr_assert_eq(o.n_wait, 0);
	groups_sum(idle, 1, &o);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.n_wait, 0);
	groups_sum(under, 1, &o);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(o.n_wait, 0);
}

/* More cgroups than the table holds: the first GROUPS_OVER_MAX are counted, the others left. */
Test(groups, the_table_holds_the_first_cgroups_met)
{
	struct group_use u[GROUPS_OVER_MAX + 4];
	struct groups_over o;

	for (size_t i = 0; i < GROUPS_OVER_MAX + 4; i++)
		u[i] = (struct group_use){ i + 1, 100, 200, true };
	groups_sum(u, GROUPS_OVER_MAX + 4, &o);
	cr_assert_eq(o.n, GROUPS_OVER_MAX);
	cr_assert_eq(o.g[GROUPS_OVER_MAX - 1].id, GROUPS_OVER_MAX);
	cr_assert_eq(o.n_wait, GROUPS_OVER_MAX);
}
