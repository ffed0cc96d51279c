// SPDX-License-Identifier: LGPL-2.1-or-later
/* The window of zero pages ahead of a writer in order. */
#include <criterion/criterion.h>

#include "daemon/zero-ahead.h"

static const struct daemon_config cfg = { .readahead_min_pages = 16, .readahead_max_pages = 1024 };

Test(zero_ahead, a_short_run_maps_its_own_page_only)
{
	for (uint32_t run = 0; run < ZERO_AHEAD_AFTER_PAGES; run++)
		cr_assert_eq(zero_ahead_window(&cfg, run), 1, "run %u", run);
}

Test(zero_ahead, a_long_run_gets_a_window_from_the_minimum_up_to_the_most)
{
	uint32_t run = ZERO_AHEAD_AFTER_PAGES;
	uint64_t last = 0, faults = 0;

	cr_assert_eq(zero_ahead_window(&cfg, run), 16);
	/* The window grows with the run, never shrinks, and stops at the most. */
	while (run < ZERO_AHEAD_AFTER_PAGES + ZERO_AHEAD_MAX_PAGES) {
		uint64_t n = zero_ahead_window(&cfg, run);

		cr_assert_geq(n, last);
		cr_assert_leq(n, ZERO_AHEAD_MAX_PAGES);
		last = n;
		run = zero_ahead_run(run, n);
		faults++;
	}
	cr_assert_eq(zero_ahead_window(&cfg, run), ZERO_AHEAD_MAX_PAGES);
	cr_assert_eq(zero_ahead_run(run, 1), run, "the run stops counting at the window's end");
	cr_assert_lt(faults, 16, "%llu faults to reach the largest window",
		     (unsigned long long)faults);
}

Test(zero_ahead, the_settings_bound_it_and_zero_turns_it_off)
{
	struct daemon_config small = { .readahead_min_pages = 0, .readahead_max_pages = 4 };
	struct daemon_config off = { .readahead_min_pages = 16, .readahead_max_pages = 0 };

	cr_assert_eq(zero_ahead_window(&small, ZERO_AHEAD_AFTER_PAGES), 1);
	cr_assert_eq(zero_ahead_window(&small, ZERO_AHEAD_AFTER_PAGES + 100), 4);
	cr_assert_eq(zero_ahead_window(&off, ZERO_AHEAD_AFTER_PAGES + 100), 1);
}

Test(zero_ahead, a_touch_at_the_end_of_the_run_goes_on_with_it_any_other_starts_one)
{
	uint64_t next = 0x10000;
	uint32_t run = 300;

	zero_ahead_step(&next, &run, 0x10000, 2, 4096);
	cr_assert_eq(next, 0x12000);
	cr_assert_eq(run, 302);
	zero_ahead_step(&next, &run, 0x40000, 1, 4096);
	cr_assert_eq(next, 0x41000);
	cr_assert_eq(run, 1, "a new run, of the page touched");
	next = 7; /* object pages */
	zero_ahead_step(&next, &run, 7, 16, 1);
	cr_assert_eq(next, 23);
	cr_assert_eq(run, 17);
}
