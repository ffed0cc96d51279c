/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fills: bringing object pages into the cache. A fill reads a run of absent pages of a file object
 * into the daemon's mapping of its memfd (io_uring), or makes zero pages of a shared anonymous
 * object at once. Anything that must wait for pages (a fault, a populate) waits with fill_wait(): the
 * fills hang its waiters, and its function runs when the last is over, its pages ready or absent.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct cache;
struct object;

/* Called when the fills waited for are over (fill_wait()). */
typedef void (*fill_done_fn)(void *userdata);

/* fill_wait(): the function will be called once the fills are over. */
#define FILL_WAITING 1

int fill_range(struct object *o, uint64_t first, uint64_t count, uint64_t *started);
int fill_wait(struct object *o, uint64_t first, uint64_t count, fill_done_fn done, void *userdata,
	      uint64_t *started);
uint64_t fill_ready_run(const struct object *o, uint64_t first, uint64_t max);
int fill_from_page_cache(struct object *o, uint64_t first, uint64_t count);
#define FILL_NOW_MAX_PAGES 16
void fill_small_now(struct object *o, uint64_t first, uint64_t count);
void fill_start_deferred(struct cache *c, bool force, const struct users_over *over);
void fill_cancel_deferred(struct cache *c);
uint64_t fill_deferred_head(const struct cache *c);
uint64_t fill_deferred_since(const struct cache *c);
int fill_anon_into(struct object *o, int uffd, uint64_t addr, uint64_t first, uint64_t count,
		   bool writable);
