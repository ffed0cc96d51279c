// SPDX-License-Identifier: LGPL-2.1-or-later
/* The log's rate limit: a burst per interval per call site, then a count of what was left out. */
#include <criterion/criterion.h>

#include "daemon/log.h"

Test(log, a_call_site_writes_a_burst_per_interval)
{
	struct log_ratelimit rl = { 0 };
	unsigned passed = 0;

	for (int i = 0; i < 100; i++)
		passed += log_ratelimit_pass(&rl, 1000 + (uint64_t)i);
	cr_assert_eq(passed, LOG_BURST);
	cr_assert_eq(rl.suppressed, 100 - LOG_BURST);
	/* A new interval: the count of what was left out goes, and lines pass again. */
	cr_assert(log_ratelimit_pass(&rl, 1000 + LOG_INTERVAL_MS));
	cr_assert_eq(rl.suppressed, 0);
	cr_assert_eq(rl.printed, 1);
}
