// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which address ranges of a client are locked in memory (mlock(2), mlock2(2), mlockall(2),
 * MAP_LOCKED): the daemon must never page those out, and punching a page out of a memfd drops it
 * even from a locked mapping. The kernel tells no one else of a lock, so the daemon reads it:
 * /proc/PID/status says how much a process has locked (VmLck, cheap), and only when that is not
 * zero does /proc/PID/smaps say which mappings ("lo" in VmFlags, vma-flags.c). A space reads them
 * at most once per loop iteration, when the clock is about to take its pages.
 *
 * smaps walks the page tables of every mapping of the process: for a large process that locks
 * and unlocks all the time it would take the daemon's whole time. So smaps is read again at most
 * every LOCKED_GAP_TIMES its last read took (within [LOCKED_GAP_MIN_NS, LOCKED_GAP_MAX_NS]); in
 * between, the ranges read last stand while VmLck is what it was then, and while it is not the
 * whole process is taken for locked (nothing of it leaves until smaps is read again).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "latency.h"
#include "locked.h"
#include "vma-flags.h"

#define LOCKED_GAP_TIMES 8
#define LOCKED_GAP_MIN_NS (1000 * 1000ULL)
#define LOCKED_GAP_MAX_NS (500 * 1000 * 1000ULL)

/* VmLck of /proc/PID/status in KiB, or a negative errno (-ESRCH: the pid showed not @m's memory
 * after the read: the status was another process's). */
static int64_t vm_locked_kib(const struct mm_mark *m)
{
	char path[64], line[256];
	int64_t kib = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)m->pid);
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
	return mm_mark_seen(m, m->pid) ? kib : -ESRCH;
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

struct parse {
	struct locked_ranges *l;
	int ret;
};

static void add_locked(void *arg, uint64_t start, uint64_t end, unsigned flags)
{
	struct parse *p = arg;
	int ret = ranges_add(p->l, start, end);

	(void)flags;
	if (ret < 0 && p->ret == 0)
		p->ret = ret;
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
	struct parse p = { .l = l, .ret = 0 };
	int ret;

	l->n = 0;
	ret = vma_flags_scan(smaps, VMA_LOCKED, add_locked, &p);
	return p.ret < 0 ? p.ret : ret;
}

/* Everything of the process is taken for locked, for @error (0: for now, not an error). */
static int all_locked(struct locked_ranges *l, int error)
{
	l->n = 0;
	l->error = error;
	return ranges_add(l, 0, UINT64_MAX) < 0 ? -ENOMEM : error;
}

/**
 * locked_refresh() - read again which ranges process @pid has locked, unless read at @now already
 * @l: the ranges
 * @m: the process (its pid, checked against its mark: mm.c)
 * @now: a count that changes once per loop iteration (daemon.turn)
 *
 * Return: 0, or a negative errno (the ranges are then taken for all of the address space, so that
 * nothing of the process is paged out on a guess). A process that is gone, or a forked child whose
 * pid is not known yet (0), has nothing locked: locks are not inherited across fork(2). Between
 * two reads of smaps (see the top of this file) a process whose VmLck changed is taken for locked
 * whole, with no error.
 */
int locked_refresh(struct locked_ranges *l, const struct mm_mark *m, uint64_t now)
{
	uint64_t t0, gap;
	int64_t kib;
	FILE *f;
	int ret, fd;

	if (l->read && l->when == now)
		return l->error;
	l->read = true;
	l->when = now;
	l->error = 0;
	/* A forked child not known yet inherited no lock (fork(2)); a process gone holds none. */
	kib = m->pid > 0 ? vm_locked_kib(m) : 0;
	if (kib == -ENOENT || kib == -ESRCH)
		kib = 0;
	if (kib == 0) {
		l->n = 0;
		l->smaps_kib = 0;
		return 0;
	}
	if (kib < 0)
		return all_locked(l, (int)kib);
	t0 = now_ns();
	gap = MIN(MAX(LOCKED_GAP_TIMES * l->smaps_cost_ns, LOCKED_GAP_MIN_NS), LOCKED_GAP_MAX_NS);
	if (l->smaps_kib && t0 - l->smaps_ns < gap)
		return (uint64_t)kib == l->smaps_kib ? 0 : all_locked(l, 0);
	fd = mm_open(m, "smaps");
	if (fd < 0)
		return all_locked(l, fd);
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return all_locked(l, -ENOMEM);
	}
	ret = locked_parse(f, l);
	fclose(f);
	if (ret < 0)
		return all_locked(l, ret);
	l->smaps_kib = (uint64_t)kib;
	l->smaps_ns = now_ns();
	l->smaps_cost_ns = l->smaps_ns - t0;
	return 0;
}

/** locked_moved() - the process's mappings moved (mremap(2)): read smaps at the next refresh */
void locked_moved(struct locked_ranges *l)
{
	l->smaps_kib = 0;
	l->read = false;
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
