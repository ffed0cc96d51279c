// SPDX-License-Identifier: LGPL-2.1-or-later
/* The fault latency histogram: its percentiles are within 12.5% above the truth, never below. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "daemon/latency.h"

Test(latency, nothing_recorded_is_zero)
{
	struct latency l = { 0 };

	cr_assert_eq(latency_percentile(&l, 50), 0);
	cr_assert_eq(latency_percentile(&l, 99), 0);
}

Test(latency, each_value_alone_is_bounded_by_its_bucket)
{
	for (uint64_t ns = 1; ns < (1ULL << 40); ns = ns * 3 / 2 + 1) {
		struct latency l = { 0 };
		uint64_t p;

		latency_record(&l, ns);
		latency_record(&l, 2 * ns + 100); /* a larger maximum, so the bucket's top shows */
		p = latency_percentile(&l, 50);
		cr_assert_geq(p, ns, "p50 %lu below the value %lu", (unsigned long)p,
			      (unsigned long)ns);
		cr_assert_leq(p, ns + ns / 8 + 1, "p50 %lu more than 12.5%% above %lu",
			      (unsigned long)p, (unsigned long)ns);
	}
}

Test(latency, percentiles_split_the_faults)
{
	struct latency l = { 0 };

	for (int i = 0; i < 90; i++)
		latency_record(&l, 10000);
	for (int i = 0; i < 10; i++)
		latency_record(&l, 1000000);
	cr_assert_leq(latency_percentile(&l, 50), 10000 + 1250);
	cr_assert_geq(latency_percentile(&l, 50), 10000);
	cr_assert_eq(latency_percentile(&l, 99), 1000000,
		     "the top bucket is capped by the maximum");
	cr_assert_eq(l.max_ns, 1000000);
}

Test(latency, the_clock_goes_forward)
{
	uint64_t a = now_ns(), b = now_ns();

	cr_assert_geq(b, a);
	cr_assert_gt(a, 0);
}
