/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Worker threads for the system calls on clients' files that may block (open through /proc, which
 * breaks leases; stat, write-back, fsync on a slow or stalled file system), so that the event loop
 * never waits on a client's file.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/list.h"

struct worker_pool;
struct worker_job;

/* In a worker thread: does the blocking work, touching only the job. */
typedef void (*worker_run_fn)(struct worker_job *job);
/* On the loop, once: @status 0 once run is over, or -ETIMEDOUT at the deadline (run goes on). */
typedef void (*worker_done_fn)(struct worker_job *job, int status);
/* On the loop, once run is over: frees the job (and what run made that done did not take). */
typedef void (*worker_free_fn)(struct worker_job *job);

struct worker_job {
	worker_run_fn run;
	worker_done_fn done;
	worker_free_fn free;
	uint32_t owner; /* jobs in flight are counted per owner (a uid) */
	uint64_t timeout_ms; /* 0: none */

	/* The pool's. */
	uint64_t deadline_ms;
	bool answered;
	bool held; /* waits for one of its owner's jobs to be over */
	bool ran; /* its run is over (set under the pool's lock) */
	struct list_head link; /* in the queue, or over */
	struct list_head link_all; /* the loop's list of the pool's jobs */
};

int worker_pool_new(uv_loop_t *loop, unsigned max_threads, unsigned max_per_owner,
		    struct worker_pool **out);
void worker_pool_free(struct worker_pool *p);
int worker_submit(struct worker_pool *p, struct worker_job *job);
unsigned worker_pool_threads(struct worker_pool *p);
