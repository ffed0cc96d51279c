/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private anonymous pages of a space (private.c): which are in memory, which the swap store holds,
 * their page-out and their page-in.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "ptable.h"

struct daemon;

struct private_wait {
	uint64_t addr, flags;
};
struct space;

struct private_pages {
	struct ptable table; /* which pages are in memory the daemon knows of (faulted,
			      * populated), which in the swap store */
	uint64_t hand; /* the address the clock looks at next */
	uint64_t spare, spare_len; /* the client's spare area, or 0 */
	unsigned spare_busy; /* a bit per part of it that holds moved pages */
	unsigned n_outs; /* page-outs under way */
	struct list_head outs; /* struct page_out.link */
	struct private_wait *waits; /* first touches waiting for room in the budget */
	size_t n_waits;
};

void private_free(struct space *s);
int private_set_spare(struct space *s, uint64_t addr, uint64_t len);
bool private_fault(struct space *s, uint64_t addr, uint64_t flags);
void private_filled(struct space *s, uint64_t addr, uint64_t len);
void private_forget(struct space *s, uint64_t start, uint64_t end);
void private_move(struct space *s, uint64_t from, uint64_t to, uint64_t len);
void private_fork(struct space *parent, struct space *child);
void private_balance(struct daemon *d);
