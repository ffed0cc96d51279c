// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Memory cgroups for the benchmarks: a fresh cgroup next to the root's others (v1:
 * /sys/fs/cgroup/memory, v2: /sys/fs/cgroup), limited, with no kernel swap unless allowed, that this process
 * enters and leaves by writing "0" into cgroup.procs (the writer's own process, all its threads).
 * Memory stays charged where it was allocated, so what a benchmark allocates before it enters a
 * cgroup does not count against that cgroup's limit. memcg_leave() and memcg_remove() only open,
 * write and rmdir, so a signal handler may call them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memcg.h"

static char home_procs[600]; /* this program's own cgroup.procs, learned by memcg_new() */

/* Write @value into @path: 0 or a negative errno. */
static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;
	size_t n = strlen(value);

	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != (ssize_t)n)
		ret = -errno;
	close(fd);
	return ret;
}

static int write_key(const struct memcg *cg, const char *name, const char *value)
{
	char path[320];

	snprintf(path, sizeof(path), "%s/%s", cg->dir, name);
	return write_file(path, value);
}

/* The value of @key in the "key value" lines of the cgroup's file @name (NULL: the file's one
 * number), or 0. */
static uint64_t read_key(const struct memcg *cg, const char *name, const char *key)
{
	char path[320], k[128];
	unsigned long long v, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg->dir, name);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!key)
		found = fscanf(f, "%llu", &v) == 1 ? v : 0;
	else
		while (fscanf(f, "%127s %llu", k, &v) == 2)
			if (strcmp(k, key) == 0)
				found = v;
	fclose(f);
	return found;
}

/* Where this process's memory cgroup is, for memcg_leave(). */
static int learn_home(bool v1)
{
	char line[512];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (ret < 0 && fgets(line, sizeof(line), f)) {
		char *m = strstr(line, ":memory:");
		char *rel = v1 ? (m ? m + 8 : NULL) : (strncmp(line, "0::", 3) ? NULL : line + 3);

		if (!rel)
			continue;
		rel[strcspn(rel, "\n")] = '\0';
		snprintf(home_procs, sizeof(home_procs), "%s%s/cgroup.procs",
			 v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup",
			 strcmp(rel, "/") ? rel : "");
		ret = 0;
	}
	fclose(f);
	return ret;
}

/**
 * memcg_new() - make the memory cgroup upager-@name-PID, limited to @limit bytes, without swap
 *
 * Return: 0, -ENOTSUP if this machine has no memory cgroup we may make, or another negative errno
 * (the cgroup is then removed again).
 */
int memcg_new(struct memcg *cg, const char *name, uint64_t limit)
{
	char v[32];
	int ret;

	if (access("/sys/fs/cgroup/memory/cgroup.procs", W_OK) == 0)
		cg->v1 = true;
	else if (access("/sys/fs/cgroup/cgroup.controllers", R_OK) == 0)
		cg->v1 = false;
	else
		return -ENOTSUP;
	ret = learn_home(cg->v1);
	if (ret < 0)
		return ret;
	snprintf(cg->dir, sizeof(cg->dir), "%s/upager-%s-%d",
		 cg->v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup", name, (int)getpid());
	if (mkdir(cg->dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		cg->dir[0] = '\0';
		return ret;
	}
	snprintf(v, sizeof(v), "%llu", (unsigned long long)limit);
	ret = write_key(cg, cg->v1 ? "memory.limit_in_bytes" : "memory.max", v);
	if (ret < 0) {
		memcg_remove(cg);
		return ret == -ENOENT ? -ENOTSUP : ret;
	}
	/* Not the kernel's swap either, where swap is accounted: what does not fit is dropped. */
	write_key(cg, cg->v1 ? "memory.memsw.limit_in_bytes" : "memory.swap.max", cg->v1 ? v : "0");
	return 0;
}

/**
 * memcg_allow_swap() - let @cg use the kernel's swap without limit (the reference of the anonymous
 * memory benchmark): v1 memory.memsw.limit_in_bytes, v2 memory.swap.max
 *
 * Return: 0, or a negative errno (-ENOENT: swap is not accounted, v1 without swapaccount).
 */
int memcg_allow_swap(const struct memcg *cg)
{
	return write_key(cg, cg->v1 ? "memory.memsw.limit_in_bytes" : "memory.swap.max",
			 cg->v1 ? "-1" : "max");
}

/** memcg_enter() - move this process, every thread of it, into @cg */
int memcg_enter(const struct memcg *cg)
{
	return write_key(cg, "cgroup.procs", "0");
}

/** memcg_leave() - move this process back into the cgroup it was started in */
int memcg_leave(void)
{
	return home_procs[0] ? write_file(home_procs, "0") : 0;
}

/**
 * memcg_remove() - remove @cg if it was made; nothing may be left in it (memcg_leave() first, and
 * other processes reaped)
 */
void memcg_remove(struct memcg *cg)
{
	if (cg->dir[0])
		rmdir(cg->dir);
	cg->dir[0] = '\0';
}

/** memcg_peak() - the most memory @cg has held since it was made, in bytes (0 if unknown) */
uint64_t memcg_peak(const struct memcg *cg)
{
	return read_key(cg, cg->v1 ? "memory.max_usage_in_bytes" : "memory.peak", NULL);
}

/** memcg_stat() - the figure @key of @cg's memory.stat (e.g. "shmem"), in bytes; 0 if unknown */
uint64_t memcg_stat(const struct memcg *cg, const char *key)
{
	return read_key(cg, "memory.stat", key);
}

/** memcg_oom_killed() - whether the OOM killer of @cg has killed anything */
bool memcg_oom_killed(const struct memcg *cg)
{
	return read_key(cg, cg->v1 ? "memory.oom_control" : "memory.events", "oom_kill") > 0;
}
