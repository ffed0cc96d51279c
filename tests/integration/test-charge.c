// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Who pays for the pages of shared anonymous memory: the client that makes them, in its own
 * memory cgroup, not upagerd, which serves every user. Real cgroups (v1's memory controller, or
 * v2's), the daemon in one, the client in another.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "harness.h"
#include "upager.h"

TestSuite(charge, .init = harness_start, .fini = harness_stop, .timeout = 60);

#define SIZE (64UL << 20)

static void touch_shared_anon(void *arg)
{
	bool populate = arg != NULL;
	char *p = upager_mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);

	if (p == MAP_FAILED)
		_exit(1);
	for (size_t off = 0; off < SIZE; off += PAGE)
		p[off] = 1;
	/* Hold the pages while the parent reads the figures. */
	pause();
	_exit(0);
}

static void charged_to_the_client(bool populate)
{
	struct cgroup daemon_cg, client_cg;
	uint64_t daemon_before, client_after, daemon_after;
	pid_t child;

	cgroup_new(&daemon_cg, "daemon");
	cgroup_new(&client_cg, "client");
	cgroup_enter(&daemon_cg, harness_daemon_pid());
	daemon_before = cgroup_usage(&daemon_cg);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		alarm(30);
		cgroup_enter(&client_cg, getpid());
		touch_shared_anon(populate ? (void *)1 : NULL);
	}
	for (int i = 0; i < 300 && cgroup_usage(&client_cg) < SIZE; i++)
		usleep(10 * 1000);
	client_after = cgroup_usage(&client_cg);
	daemon_after = cgroup_usage(&daemon_cg);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cgroup_remove(&daemon_cg, harness_daemon_pid());
	cgroup_remove(&client_cg, 0);
	cr_assert_geq(client_after, SIZE, "the client's cgroup holds %llu bytes",
		      (unsigned long long)client_after);
	cr_assert_lt(daemon_after - daemon_before, SIZE / 4,
		     "the daemon's cgroup grew by %llu bytes for a client's %lu",
		     (unsigned long long)(daemon_after - daemon_before), SIZE);
}

Test(charge, pages_a_client_touches_are_charged_to_it)
{
	charged_to_the_client(false);
}

Test(charge, pages_a_client_populates_are_charged_to_it)
{
	charged_to_the_client(true);
}
