/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a space keeps of its private anonymous pages (struct space.priv): the data only, so that the
 * space can hold it; private.c does everything with it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "ptable.h"

/* A fault that waits: for room in the budget, or for the answer to a DROP (private.c). */
struct private_wait {
	uint64_t addr, flags;
	uint64_t t0; /* when the fault was read: its latency is counted once served */
};

/* A client's memory cgroup over its cap (groups.c): its name, and the pages it is to give. */
struct group_over {
	uint64_t id, pages;
};

#define GROUPS_OVER_MAX 32

struct groups_over {
	struct group_over g[GROUPS_OVER_MAX];
	size_t n;
	uint64_t wait[GROUPS_OVER_MAX]; /* those whose touches wait (groups_sum()) */
	size_t n_wait;
};

/* What a space's private pages hold of its cgroup's cap (groups_sum()). */
struct group_use {
	uint64_t id, cap, use;
	bool leaving;
};

/* Pages the control thread dropped in place, whose UFFD_EVENT_REMOVE is still to come. */
struct private_range {
	uint64_t start, end;
};

struct private_pages {
	struct ptable table; /* which pages are in memory the daemon knows of (faulted,
			      * populated), which in the swap store */
	uint64_t hand; /* the address the clock looks at next */
	uint64_t spare; /* the client's spare area, or 0 */
	unsigned spare_busy; /* a bit per part of it that holds moved pages */
	unsigned n_outs; /* page-outs under way */
	bool stalled; /* its control thread leaves a request unanswered: no page-out starts */
	bool forked; /* it forked, or is a fork: its pages may be shared with another process */
	struct list_head outs; /* struct page_out.link */
	struct list_head forks; /* struct fork_table.link: forks read, not followed yet */
	struct private_wait *waits; /* first touches waiting for room in the budget */
	size_t n_waits;
	struct private_range *expect; /* see private_remove() */
	size_t n_expect;
	int pagemap_fd; /* the client's /proc/PID/pagemap, if pagemap_open */
	bool pagemap_open;
	/* The cap of its memory cgroup (budget_client_cap(), private_follow_group()): */
	bool group_read; /* they were read */
	uint64_t group; /* the cgroup's name; 0: none applies */
	uint64_t group_cap; /* pages the processes of the cgroup may hold in memory together */
	bool group_wait; /* the cgroup is over its cap, with pages on their way out: touches wait */
};
