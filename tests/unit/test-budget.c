// SPDX-License-Identifier: LGPL-2.1-or-later
/* The default budget (budget.c), from cgroup trees of v1 and v2 made in a temporary directory. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "daemon/budget.h"

static char dir[] = "/tmp/upager-budget-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(budget, .init = setup, .fini = teardown);

static void put(const char *rel, const char *text)
{
	char path[256], cmd[300];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "mkdir -p $(dirname %s/%s)", dir, rel);
	cr_assert_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static uint64_t limit(void)
{
	char proc[256];

	snprintf(proc, sizeof(proc), "%s/proc-cgroup", dir);
	return budget_cgroup_limit(proc, dir);
}

Test(budget, v1_takes_the_lowest_limit_from_the_cgroup_up)
{
	put("proc-cgroup",
	    "12:pids:/x\n4:memory:/system.slice/upagerd.service\n1:name=systemd:/y\n");
	put("memory/memory.limit_in_bytes", "9223372036854771712\n");
	put("memory/system.slice/memory.limit_in_bytes", "2147483648\n");
	put("memory/system.slice/upagerd.service/memory.limit_in_bytes", "9223372036854771712\n");
	cr_assert_eq(limit(), 2147483648ULL, "the parent's limit binds the service");
}

Test(budget, v2_reads_memory_max_and_max_is_no_limit)
{
	put("proc-cgroup", "0::/a/b\n");
	put("a/b/memory.max", "max\n");
	put("a/memory.max", "1073741824\n");
	cr_assert_eq(limit(), 1073741824ULL);
	put("a/memory.max", "max\n");
	cr_assert_eq(limit(), UINT64_MAX);
}

Test(budget, no_cgroup_file_is_no_limit)
{
	cr_assert_eq(limit(), UINT64_MAX);
}

Test(budget, the_default_is_half_of_memory_or_of_the_limit)
{
	cr_assert_eq(budget_default(8ULL << 30, UINT64_MAX), 4ULL << 30);
	cr_assert_eq(budget_default(8ULL << 30, 1ULL << 30), 512ULL << 20);
	cr_assert_eq(budget_default(8ULL << 30, (1ULL << 30) + 4095), 512ULL << 20, "page aligned");
}

/* A budget that reaches the cgroup's limit would have the daemon killed before it pages out: it
 * is cut to half the limit; one below it, or without a limit, or none (0), is kept. */
Test(budget, a_budget_that_reaches_the_cgroup_limit_is_cut_to_half_of_it)
{
	cr_assert_eq(budget_fit(512ULL << 20, 96ULL << 20), 48ULL << 20);
	cr_assert_eq(budget_fit(96ULL << 20, 96ULL << 20), 48ULL << 20);
	cr_assert_eq(budget_fit(64ULL << 20, 96ULL << 20), 64ULL << 20);
	cr_assert_eq(budget_fit(512ULL << 20, UINT64_MAX), 512ULL << 20);
	cr_assert_eq(budget_fit(0, 96ULL << 20), 0);
}

/* A user's tables and the page tables of its shared mappings are charged to the daemon's cgroup:
 * the per-user defaults follow its limit, and without one stay as on a machine of that memory. */
Test(budget, the_per_user_defaults_scale_with_the_cgroup_limit)
{
	uint64_t gib = 1ULL << 30, mib = 1ULL << 20;

	cr_assert_eq(budget_mapped_default(24 * gib, UINT64_MAX), 96 * gib);
	cr_assert_eq(budget_mapped_default(24 * gib, 9223372036854771712ULL), 96 * gib,
		     "cgroup v1's no limit");
	cr_assert_eq(budget_mapped_default(24 * gib, 160 * mib), 10 * gib);
	cr_assert_eq(budget_mapped_default(24 * gib, 2 * gib), 96 * gib, "above 1.5 GiB");
	cr_assert_eq(budget_mappings_default(65530, UINT64_MAX), 65530);
	cr_assert_eq(budget_mappings_default(65530, 160 * mib), 40960);
	cr_assert_eq(budget_mappings_default(65530, 1 * mib), 1024, "a floor");
	cr_assert_eq(budget_mappings_default(65530, 1 * gib), 65530);
}

/* The cap of a client's cgroup, from @text as its /proc/PID/cgroup; *id its name. */
static uint64_t cap(const char *text, uint64_t own_limit, uint64_t *id)
{
	char proc[256];

	put("proc-cgroup", text);
	snprintf(proc, sizeof(proc), "%s/proc-cgroup", dir);
	return budget_client_cap(proc, dir, own_limit, id);
}

/* A client limited below the daemon keeps its cgroup's private pages within half that limit; the
 * processes of one cgroup share a name, those of another have another; a client limited as the
 * daemon is, or not at all, has no cap. */
Test(budget, a_client_limited_below_the_daemon_has_half_its_limit_for_its_cgroup)
{
	uint64_t a, b, c;

	put("memory/memory.limit_in_bytes", "9223372036854771712\n");
	put("memory/jobs/memory.limit_in_bytes", "9223372036854771712\n");
	put("memory/jobs/a/memory.limit_in_bytes", "50331648\n");
	put("memory/jobs/b/memory.limit_in_bytes", "100663296\n");
	cr_assert_eq(cap("5:memory:/jobs/a\n0::/x\n", 9223372036854771712ULL, &a), 24ULL << 20);
	cr_assert_neq(a, 0);
	cr_assert_eq(cap("3:cpu:/z\n5:memory:/jobs/a\n", 9223372036854771712ULL, &c), 24ULL << 20);
	cr_assert_eq(c, a, "the same memory cgroup, another of some other controller");
	cr_assert_eq(cap("5:memory:/jobs/b\n", 9223372036854771712ULL, &b), 48ULL << 20);
	cr_assert_neq(b, a);
	cr_assert_eq(cap("5:memory:/jobs/a\n", 50331648ULL, &a), UINT64_MAX,
		     "limited as the daemon");
	cr_assert_eq(a, 0);
	cr_assert_eq(cap("5:memory:/jobs\n", 9223372036854771712ULL, &a), UINT64_MAX, "no limit");
	cr_assert_eq(a, 0);
	put("v2/memory.max", "max\n");
	put("v2/c/memory.max", "33554432\n");
	cr_assert_eq(cap("0::/v2/c\n", UINT64_MAX, &a), 16ULL << 20, "cgroup v2");
	cr_assert_neq(a, 0);
}
