/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fills: bringing object pages into the cache. A fill reads a run of absent pages of a file object
 * into the daemon's mapping of its memfd (io_uring), or makes zero pages of a shared anonymous
 * object at once. Anything that must wait for pages (a fault, a populate) hangs a waiter on the
 * fill, and the waiter's callback runs when the fill is over, its pages ready or absent again.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"

struct object;
struct fill;

struct fill_waiter {
	struct list_head link;
	void (*done)(struct fill_waiter *w);
};

/* Called for each fill a range needs, to make the waiter to hang on it; NULL: do not wait. */
typedef struct fill_waiter *(*fill_waiter_fn)(void *userdata);

/* A job waits for any number of fills, then calls its function once. */
struct fill_job;
typedef void (*fill_job_fn)(void *userdata);

struct fill_job *fill_job_new(fill_job_fn finish, void *userdata);
struct fill_waiter *fill_job_waiter(void *job);
int fill_job_arm(struct fill_job *job);

int fill_range(struct object *o, uint64_t first, uint64_t count, fill_waiter_fn waiter,
	       void *userdata, uint64_t *started);
uint64_t fill_ready_run(const struct object *o, uint64_t first, uint64_t max);
int fill_from_page_cache(struct object *o, uint64_t first, uint64_t count);
#define FILL_NOW_MAX_PAGES 16
void fill_small_now(struct object *o, uint64_t first, uint64_t count);
int fill_anon_into(struct object *o, int uffd, uint64_t addr, uint64_t first, uint64_t count,
		   bool writable);
