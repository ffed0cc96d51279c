// SPDX-License-Identifier: LGPL-2.1-or-later
/* Real memory cgroups for tests, see cgroup.h. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

/* A new memory cgroup, or a skip if this machine has none we may make. */
void cgroup_new(struct cgroup *cg, const char *name)
{
	if (access("/sys/fs/cgroup/memory/cgroup.procs", W_OK) == 0) {
		snprintf(cg->dir, sizeof(cg->dir), "/sys/fs/cgroup/memory/upager-%s-%d", name,
			 (int)getpid());
		cg->usage = "memory.usage_in_bytes";
		cg->v1 = true;
	} else if (access("/sys/fs/cgroup/cgroup.controllers", R_OK) == 0) {
		snprintf(cg->dir, sizeof(cg->dir), "/sys/fs/cgroup/upager-%s-%d", name,
			 (int)getpid());
		cg->usage = "memory.current";
		cg->v1 = false;
	} else {
		cr_skip_test("no memory cgroup here");
	}
	if (mkdir(cg->dir, 0755) < 0 && errno != EEXIST)
		cr_skip_test("cannot make a cgroup in %s: %m", cg->dir);
	/* v2: the memory controller must be on for the root's children (systemd turns it on). */
	if (!cg->v1) {
		char max[700];

		snprintf(max, sizeof(max), "%s/memory.max", cg->dir);
		if (access(max, F_OK) < 0) {
			FILE *f = fopen("/sys/fs/cgroup/cgroup.subtree_control", "w");

			if (f) {
				fputs("+memory\n", f);
				fclose(f);
			}
		}
		if (access(max, F_OK) < 0)
			cr_skip_test("no memory controller in %s", cg->dir);
	}
}

/* Write @value into the cgroup's file @name: 0, or -1 with errno (@must: a failed assertion). */
static int cgroup_write(struct cgroup *cg, const char *name, const char *value, bool must)
{
	char path[700];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", cg->dir, name);
	f = fopen(path, "w");
	cr_assert(f || !must, "%s: %m", path);
	if (!f)
		return -1;
	fprintf(f, "%s\n", value);
	ret = fclose(f);
	cr_assert(ret == 0 || !must, "writing %s into %s: %m", value, path);
	return ret;
}

void cgroup_enter(struct cgroup *cg, pid_t pid)
{
	char v[16];

	snprintf(v, sizeof(v), "%d", (int)pid);
	cgroup_write(cg, "cgroup.procs", v, true);
}

uint64_t cgroup_usage(struct cgroup *cg)
{
	char path[700];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg->dir, cg->usage);
	f = fopen(path, "r");
	cr_assert(f, "%s: %m", path);
	cr_assert_eq(fscanf(f, "%llu", &v), 1);
	fclose(f);
	return v;
}

/* Leave the cgroups (to the one the test process is in) and remove them. */
/* The memory cgroup the test process is in now, into @home; false if none is found. */
bool cgroup_home(struct cgroup *home)
{
	char line[512];
	FILE *f = fopen("/proc/self/cgroup", "r");
	bool found = false;

	while (f && fgets(line, sizeof(line), f)) {
		char *m = strstr(line, ":memory:"), *v2 = strncmp(line, "0::", 3) ? NULL : line + 3;
		char *rel = m ? m + 8 : v2;

		if (!rel || (v2 && found))
			continue;
		rel[strcspn(rel, "\n")] = 0;
		snprintf(home->dir, sizeof(home->dir), "%s%s",
			 m ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup", rel);
		found = true;
		if (m)
			break;
	}
	if (f)
		fclose(f);
	return found;
}

void cgroup_remove(struct cgroup *cg, pid_t pid)
{
	struct cgroup home;

	if (pid > 0 && cgroup_home(&home) && strcmp(home.dir, cg->dir))
		cgroup_enter(&home, pid);
	rmdir(cg->dir);
}

/* The hard limit of its memory: what goes past it is reclaimed, or the cgroup's OOM killer acts. */
void cgroup_limit(struct cgroup *cg, uint64_t bytes)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)bytes);
	cgroup_write(cg, cg->v1 ? "memory.limit_in_bytes" : "memory.max", v, true);
	/* No kernel swap either, where swap is accounted: what does not fit is upagerd's to page out. */
	cgroup_write(cg, cg->v1 ? "memory.memsw.limit_in_bytes" : "memory.swap.max",
		     cg->v1 ? v : "0", false);
}

/* The value of @key in the "key value" lines of the cgroup's file @name, or @none. */
static uint64_t cgroup_key(struct cgroup *cg, const char *name, const char *key, uint64_t none)
{
	char path[700], k[128];
	unsigned long long v;
	uint64_t found = none;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg->dir, name);
	f = fopen(path, "r");
	if (!f)
		return none;
	while (fscanf(f, "%127s %llu", k, &v) == 2)
		if (strcmp(k, key) == 0)
			found = v;
	fclose(f);
	return found;
}

/* A figure of its memory.stat (v1: the cgroup's own, e.g. "shmem"; v2: same names). */
uint64_t cgroup_stat(struct cgroup *cg, const char *key)
{
	return cgroup_key(cg, "memory.stat", key, 0);
}

/* Whether its OOM killer has killed anything. */
bool cgroup_oom_killed(struct cgroup *cg)
{
	return cgroup_key(cg, cg->v1 ? "memory.oom_control" : "memory.events", "oom_kill", 0) > 0;
}
