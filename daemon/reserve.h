/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Blocks of a file reserved before a client's first write to a page of it, as the kernel reserves
 * them before it lets a write to a shared mapping proceed (page_mkwrite): a write that cannot get
 * a block is refused at the write (SIGBUS), not lost at write-back.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "object.h"

/* Pages reserved at once around a page written in a hole: an aligned run of 64 KiB. */
#define RESERVE_RUN_PAGES 16

/* One reservation, made by a worker thread: reserve_plan() on the loop, reserve_run() in the
 * worker, reserve_done() on the loop again. */
struct reserve {
	int fd; /* the object's writer */
	bool may_seek; /* the daemon's own description: lseek(2) moves no client's offset */
	uint64_t page; /* the page written */
	uint64_t first, count; /* the run to reserve, within the file */
	int ret; /* 0 or a negative errno (-ENOSPC, -EDQUOT: the write is refused) */
	uint64_t backed_first, backed_end; /* pages found with blocks, or given them */
};

/**
 * reserve_due() - whether a write to page @p of @o must have the page's blocks reserved first:
 * the file may have holes and the page is not known to have its blocks
 */
static inline bool reserve_due(const struct object *o, uint64_t p)
{
	return o->kind == OBJECT_FILE && o->holes && o->fd_write >= 0 && p < object_pages(o) &&
	       !object_bit(object_backed_bits(o), p);
}

/**
 * reserve_backed() - how many of the @n pages from @p of @o may go writable without a reservation
 * (at least 1: the page written, reserved by the caller)
 */
static inline uint64_t reserve_backed(const struct object *o, uint64_t p, uint64_t n)
{
	uint64_t k = 1;

	while (k < n && !reserve_due(o, p + k))
		k++;
	return k;
}

void reserve_plan(const struct object *o, uint64_t p, struct reserve *rv);
void reserve_run(struct reserve *rv);
void reserve_done(struct object *o, const struct reserve *rv);
