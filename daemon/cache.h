/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cache as the floors above give it to object.c and fill.c: its objects, the ring and worker
 * threads it reads and writes back with, its tunables and figures, and the hooks through which it
 * reaches the daemon (the fd store, the saved tables, client mappings to write-protect). The cache
 * knows nothing more of the daemon; the daemon embeds one (struct daemon.cache).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"

struct cache;
struct object;
struct ring;
struct worker_pool;

struct cache_hooks {
	/* The fd store keeps @fd as @kind of @id (fdstore_add()), or lets it go. */
	int (*store_fd)(struct cache *c, int fd, const char *kind, uint64_t id);
	void (*unstore_fd)(struct cache *c, const char *kind, uint64_t id);
	/* An object came, went or changed: the saved tables are out of date. */
	void (*touch)(struct cache *c);
	/*
	 * Write-protect object pages [first, first+count) in every client mapping that may write
	 * them, before they are written back, so that a later write faults and makes them dirty
	 * again. False if a mapping that may write them cannot be protected (they stay dirty).
	 */
	bool (*protect)(struct object *o, uint64_t first, uint64_t count);
};

struct cache_stats {
	uint64_t pages_read;
	uint64_t bytes_read;
	uint64_t bytes_from_page_cache; /* copied from the kernel's page cache without waiting */
	uint64_t bytes_written;
};

struct cache {
	struct list_head objects;
	unsigned n_objects;
	uint64_t next_object_id;
	struct ring *ring;
	struct worker_pool *workers; /* blocking calls on clients' files */
	uint32_t fill_max_pages; /* largest single read */
	bool fdstore; /* page states go to memfds, for the fd store */
	bool stopping; /* write-backs are done now, not queued */
	struct cache_stats stats;
	const struct cache_hooks *hooks;
};

static inline int cache_store_fd(struct cache *c, int fd, const char *kind, uint64_t id)
{
	return c->hooks ? c->hooks->store_fd(c, fd, kind, id) : 0;
}

static inline void cache_unstore_fd(struct cache *c, const char *kind, uint64_t id)
{
	if (c->hooks)
		c->hooks->unstore_fd(c, kind, id);
}

static inline void cache_touch(struct cache *c)
{
	if (c->hooks)
		c->hooks->touch(c);
}
