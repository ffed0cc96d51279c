// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A short soak (soak.h) against a daemon of its own: 4 processes of 4 threads on one 16 MiB file
 * for 15 s, with nonlinear remaps. scripts/soak runs the same for 10 minutes.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../integration/harness.h"
#include "soak.h"

TestSuite(soak, .init = harness_start, .fini = harness_stop, .timeout = 120);

Test(soak, four_processes_of_four_threads_lose_no_write_and_see_no_stale_page)
{
	struct soak_config c = {
		.dir = harness_tmpdir(),
		.socket = harness_socket(),
		.ctl = getenv("UPAGERCTL"),
		.daemon_pid = harness_daemon_pid(),
		.seconds = 15,
		.procs = 4,
		.threads = 4,
		.file_size = 16 << 20,
		.remaps = true,
		.seed = 11,
	};
	struct soak_result r;

	cr_assert(c.ctl, "UPAGERCTL is not set; run the tests through meson test");
	cr_assert_eq(soak_run(&c, &r), 0);
	soak_report(stderr, &c, &r);
	cr_expect_eq(r.stale_own, 0, "reads of owned pages found older versions");
	cr_expect_eq(r.stale_any, 0, "reads of other pages found older versions");
	cr_expect_eq(r.stale_file, 0, "pages of the file hold older versions");
	cr_expect_eq(r.procs_died, 0, "processes died");
	cr_expect_eq(r.errors + r.remaps_failed, 0, "calls failed");
	cr_expect_gt(r.writes, 0);
	/* A page is written back once per write at most (1.07 times the writes in bytes measured),
	 * where every msync used to write every page ever written; a write-protection that waits
	 * for a client's mm to settle reads its pending events and tries again (docs/design.md,
	 * "Ioctls and pending events"), so the page is taken for clean all the same. */
	cr_expect_leq(r.bytes_written, 2 * (r.writes + c.file_size / PAGE) * PAGE,
		      "%lu bytes written back for %lu page writes", (unsigned long)r.bytes_written,
		      (unsigned long)r.writes);
	cr_expect_eq(r.fds_end, r.fds_start, "the daemon's descriptors");
}
