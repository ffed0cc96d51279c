// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The default memory budget: half of physical memory, or half of the daemon's memory cgroup limit
 * (the lowest limit on the way from its cgroup up to the root, cgroup v1 or v2) if that is lower,
 * so that by default the pages of upager mappings cannot get the daemon killed by its own limit;
 * and, by the same rule, the cap on the private pages of clients whose own cgroup is limited lower.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "common/macro.h"

/* The number in the file at @path ("max" and absent files: no limit, UINT64_MAX). */
static uint64_t read_limit(const char *path)
{
	char buf[64];
	unsigned long long v;
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return UINT64_MAX;
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%llu", &v) == 1;
	fclose(f);
	return ok ? (uint64_t)v : UINT64_MAX;
}

/**
 * budget_cgroup_limit() - the memory limit of the cgroup a process is in, and of its ancestors
 * @proc_cgroup: its /proc/PID/cgroup
 * @root: where the cgroup file systems are mounted ("/sys/fs/cgroup")
 *
 * Return: the lowest limit, in bytes; UINT64_MAX for none.
 */
uint64_t budget_cgroup_limit(const char *proc_cgroup, const char *root)
{
	uint64_t lowest = UINT64_MAX;
	char line[4096];
	FILE *f = fopen(proc_cgroup, "re");

	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path, *nl;
		bool v1;

		if (!ctl || !(path = strchr(ctl + 1, ':')))
			continue;
		*path++ = '\0';
		ctl++;
		if ((nl = strchr(path, '\n')))
			*nl = '\0';
		/* v1: "N:memory:/path" (or with other controllers, comma separated); v2: "0::/path" */
		v1 = strstr(ctl, "memory") != NULL;
		if (!v1 && *ctl)
			continue;
		for (;;) {
			char file[4352];
			char *slash;

			snprintf(file, sizeof(file), "%s%s%s/%s", root, v1 ? "/memory" : "", path,
				 v1 ? "memory.limit_in_bytes" : "memory.max");
			lowest = MIN(lowest, read_limit(file));
			slash = strrchr(path, '/');
			if (!slash || slash[1] == '\0')
				break;
			slash[slash == path ? 1 : 0] = '\0';
		}
	}
	fclose(f);
	return lowest;
}

/*
 * The name of the memory cgroup a process is in (a hash of its path, v1's memory controller or
 * v2's; never 0), from its /proc/PID/cgroup @proc_cgroup; 0 if none is read.
 */
static uint64_t cgroup_id(const char *proc_cgroup)
{
	uint64_t id = 0;
	char line[4096];
	FILE *f = fopen(proc_cgroup, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path;

		if (!ctl || !(path = strchr(ctl + 1, ':')))
			continue;
		*path = '\0';
		/* v1's memory line names it; v2's ("0::/path") where v1's has none. */
		if (!strstr(ctl + 1, "memory") && (ctl[1] || id))
			continue;
		id = 14695981039346656037ULL; /* FNV-1a */
		for (const char *c = path + 1; *c && *c != '\n'; c++)
			id = (id ^ (uint8_t)*c) * 1099511628211ULL;
		id |= 1;
		if (ctl[1])
			break;
	}
	fclose(f);
	return id;
}

/**
 * budget_client_cap() - what the private pages of the processes of a client's memory cgroup may
 * hold in memory together
 * @proc_cgroup: the client's /proc/PID/cgroup
 * @root: where the cgroup file systems are mounted ("/sys/fs/cgroup")
 * @own_limit: the daemon's own limit, budget_cgroup_limit() of its /proc/self/cgroup
 * @id: set to the name of the client's memory cgroup, the same for every process in it; 0 where
 *	no cap applies
 *
 * The kernel charges the pages of a client's private mappings to the client's memory cgroup, and
 * has no swap for them: a client limited below the daemon would be killed by its own limit long
 * before the budget sent any page of it out. Its cgroup's processes keep their private pages
 * within half of its limit, as the default budget keeps the daemon's. A client limited as the
 * daemon is (the same cgroup, or the same limit up the tree) is held by the budget already.
 *
 * Return: the cap in bytes (page aligned), UINT64_MAX for none.
 */
uint64_t budget_client_cap(const char *proc_cgroup, const char *root, uint64_t own_limit,
			   uint64_t *id)
{
	uint64_t limit = budget_cgroup_limit(proc_cgroup, root);

	*id = limit < own_limit ? cgroup_id(proc_cgroup) : 0;
	return *id ? budget_default(limit, limit) : UINT64_MAX;
}

/**
 * budget_default() - the budget for a machine of @phys bytes, the daemon's cgroup limit @limit
 */
uint64_t budget_default(uint64_t phys, uint64_t limit)
{
	return ALIGN_DOWN(MIN(phys, limit) / 2, UPAGER_PAGE_SIZE);
}

/**
 * budget_fit() - a budget @asked for the daemon in a cgroup limited to @limit: as asked, unless it
 * reaches the limit, where the daemon's memory would have the kernel kill it before any page left
 * (and every client hang): then what the default would be there, half the limit
 */
uint64_t budget_fit(uint64_t asked, uint64_t limit)
{
	if (!asked || limit == UINT64_MAX || asked < limit)
		return asked;
	return budget_default(asked, limit);
}

/*
 * What one user's mappings cost the daemon beyond the budget grows with them: its tables of their
 * pages, and the page tables its answers to faults make in clients' shared mappings, which the
 * kernel charges to the daemon's cgroup (4 KiB per 2 MiB). Under a cgroup limit the defaults of
 * the per-user limits (upagerd --max-mapped, --max-mappings) scale with it, so that no single
 * user's tables can take more than about a quarter of it.
 */
#define MAPPED_PER_LIMIT 64 /* bytes a user may map per byte of the cgroup limit */
#define LIMIT_PER_MAPPING 4096 /* bytes of the cgroup limit per mapping a user may have */
#define MAPPINGS_MIN 1024

/**
 * budget_mapped_default() - the default of the bytes each user may map (--max-mapped): four
 * times the physical memory @phys, or 64 times the daemon's cgroup limit @limit if less
 */
uint64_t budget_mapped_default(uint64_t phys, uint64_t limit)
{
	uint64_t by_phys = 4 * phys;

	if (limit == UINT64_MAX || limit >= by_phys / MAPPED_PER_LIMIT)
		return by_phys;
	return limit * MAPPED_PER_LIMIT;
}

/**
 * budget_mappings_default() - the default of the mappings each user may have (--max-mappings):
 * @most (vm.max_map_count's default), or one per 4 KiB of the daemon's cgroup limit @limit if
 * fewer, 1024 at least
 */
uint64_t budget_mappings_default(uint64_t most, uint64_t limit)
{
	if (limit == UINT64_MAX || limit / LIMIT_PER_MAPPING >= most)
		return most;
	return MAX(limit / LIMIT_PER_MAPPING, (uint64_t)MAPPINGS_MIN);
}
