/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Real memory cgroups for tests (v1's memory controller, or v2's): make, enter, limit, read. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroup {
	char dir[600];
	const char *usage; /* the file with its memory use in bytes */
	bool v1;
};

/* A new memory cgroup, or a skip if this machine has none we may make. */
void cgroup_new(struct cgroup *cg, const char *name);
void cgroup_enter(struct cgroup *cg, pid_t pid);
uint64_t cgroup_usage(struct cgroup *cg);
void cgroup_limit(struct cgroup *cg, uint64_t bytes);
uint64_t cgroup_stat(struct cgroup *cg, const char *key);
bool cgroup_oom_killed(struct cgroup *cg);
/* The memory cgroup the calling process is in now (to go back to after cgroup_enter()). */
bool cgroup_home(struct cgroup *home);
/* Move @pid (if > 0) back to the test's own cgroup and remove @cg. */
void cgroup_remove(struct cgroup *cg, pid_t pid);
