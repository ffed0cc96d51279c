// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which address ranges of a client are locked in memory (mlock(2), mlock2(2), mlockall(2),
 * MAP_LOCKED): the daemon must never page those out, and punching a page out of a memfd drops it
 * even from a locked mapping. The kernel tells no one else of a lock, so the daemon reads it:
 * /proc/PID/status says how much a process has locked (VmLck, cheap), and only when that is not
 * zero does /proc/PID/smaps say which mappings ("lo" in VmFlags). A space reads them at most once
 * per loop iteration, when the clock is about to take its pages.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "locked.h"

/* VmLck of /proc/@pid/status in KiB, or a negative errno. */
static int64_t vm_locked_kib(pid_t pid)
{
	char path[64], line[256];
	int64_t kib = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return neg_errno();
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "VmLck: %llu kB", &v) == 1) {
			kib = (int64_t)v;
			break;
		}
	}
	fclose(f);
	return kib;
}

static int ranges_add(struct locked_ranges *l, uint64_t start, uint64_t end)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct locked_range *v = realloc(l->r, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->r = v;
		l->cap = cap;
	}
	l->r[l->n++] = (struct locked_range){ start, end };
	return 0;
}

/**
 * locked_parse() - the locked mappings listed in @smaps (the text of /proc/PID/smaps)
 * @smaps: an open stream of it
 * @l: its ranges are replaced, in address order
 *
 * Return: 0, or a negative errno.
 */
int locked_parse(FILE *smaps, struct locked_ranges *l)
{
	uint64_t start = 0, end = 0;
	char line[512];

	l->n = 0;
	while (fgets(line, sizeof(line), smaps)) {
		unsigned long long a, b;
		int ret;

		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			start = a;
			end = b;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) != 0 || !strstr(line + 8, " lo"))
			continue;
		ret = ranges_add(l, start, end);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/**
 * locked_refresh() - read again which ranges process @pid has locked, unless read at @now already
 * @l: the ranges
 * @pid: the process
 * @now: a count that changes once per loop iteration (daemon.turn)
 *
 * Return: 0, or a negative errno (the ranges are then taken for all of the address space, so that
 * nothing of the process is paged out on a guess). A process that is gone, or a forked child whose
 * pid is not known yet (0), has nothing locked: locks are not inherited across fork(2).
 */
int locked_refresh(struct locked_ranges *l, pid_t pid, uint64_t now)
{
	char path[64];
	int64_t kib;
	FILE *f;
	int ret;

	if (l->read && l->when == now)
		return l->error;
	l->read = true;
	l->when = now;
	l->error = 0;
	/* A forked child not known yet inherited no lock (fork(2)); a process gone holds none. */
	kib = pid > 0 ? vm_locked_kib(pid) : 0;
	if (kib == -ENOENT || kib == -ESRCH)
		kib = 0;
	if (kib == 0) {
		l->n = 0;
		return 0;
	}
	if (kib > 0) {
		snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
		f = fopen(path, "re");
		if (f) {
			ret = locked_parse(f, l);
			fclose(f);
			if (ret == 0)
				return 0;
			kib = ret;
		} else {
			kib = neg_errno();
		}
	}
	l->n = 0;
	l->error = (int)kib;
	return ranges_add(l, 0, UINT64_MAX) < 0 ? -ENOMEM : l->error;
}

/** locked_overlaps() - whether any of [start, end) is locked */
bool locked_overlaps(const struct locked_ranges *l, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->r[i].start < end && start < l->r[i].end)
			return true;
	return false;
}

void locked_free(struct locked_ranges *l)
{
	free(l->r);
	*l = (struct locked_ranges){ 0 };
}
