/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cache as the floors above give it to object.c and fill.c: its objects, the ring and worker
 * threads it reads and writes back with, its tunables and figures, and the hooks through which it
 * reaches the daemon (the fd store, the saved tables, client mappings to write-protect). The cache
 * knows nothing more of the daemon; the daemon embeds one (struct daemon.cache).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bufpool.h"
#include "common/list.h"

struct cache;
struct object;
struct ring;
struct state;
struct swap;
struct worker_pool;

struct cache_hooks {
	/* The fd store keeps @fd as @kind of @id (fdstore_add()), or lets it go. */
	int (*store_fd)(struct cache *c, int fd, const char *kind, uint64_t id);
	void (*unstore_fd)(struct cache *c, const char *kind, uint64_t id);
	/* An object id was taken: the daemon's saved counters changed. */
	void (*id_taken)(struct cache *c);
	/*
	 * Write-protect object pages [first, first+count) in every client mapping that may write
	 * them, before they are written back, so that a later write faults and makes them dirty
	 * again. False if a mapping that may write them cannot be protected (they stay dirty).
	 */
	bool (*protect)(struct object *o, uint64_t first, uint64_t count);
	/* Whether any of object pages [first, first+count) is locked in memory in a client
	 * (MAP_LOCKED, mlock(2)): such pages never leave memory. NULL: none is. */
	bool (*pinned)(struct object *o, uint64_t first, uint64_t count);
	/* The object of a file goes: stop following the file (watch.c). NULL: nothing to do. */
	void (*forget)(struct object *o);
	/* A page of the object of a file whose reads by others fanotify ignores (watch.c) may become
	 * dirty: they must wait for its write-back again. NULL: nothing to do. */
	void (*may_dirty)(struct object *o);
};

struct cache_stats {
	uint64_t pages_read;
	uint64_t bytes_read;
	uint64_t bytes_from_page_cache; /* copied from the kernel's page cache without waiting */
	uint64_t bytes_written;
	/* Paging out (evict.c). */
	uint64_t pages_out; /* pages that left memory: dropped clean, or to the swap store */
	uint64_t pages_written_out; /* of those, dirty file pages written back first */
	uint64_t pages_in; /* pages read back from the swap store */
	uint64_t refaults; /* fills of pages that had been paged out (file or swap) */
	uint64_t over_budget; /* times fills went on above the budget: nothing could go */
	uint64_t wb_errors; /* write-backs that failed (object.c) */
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
	struct state *state; /* where objects are saved (state.c), or NULL */

	/* The budget (evict.c): pages of every object's memfd that are valid (cached, kept by
	 * object_page_set()) plus those being read (inflight) stay within budget_pages (0: none). */
	uint64_t budget_pages;
	uint64_t cached;
	uint64_t inflight;
	struct list_head deferred; /* struct fill.link: fills waiting for room (fill.c) */
	struct list_head wb_done; /* struct wb_wait.link: write-backs over, waiters not yet told */
	uint64_t deferred_pages;
	uint64_t hand_object; /* the clock's hand: the object it looks at next (object.hand) */
	uint64_t uid_share_pages; /* a user's share of the budget: its pages go first above it */
	/* Where shared anonymous pages go when they leave memory (store.h), or NULL: its size and
	 * slots in use, in pages. The daemon opens the swap store behind it (swap). */
	struct store *store;
	struct swap *swap;
	uint64_t swap_pages, swap_used;
	/* Private anonymous pages of clients (private.c): in memory, and of those on their way
	 * out. They count in the budget while they can leave it (private_out: a swap store);
	 * else they are the client's own. Of those leaving, private_stalled are pages of clients
	 * that leave their DROP unanswered (private_watch_answers()): they count as in memory. */
	uint64_t private_pages, private_leaving, private_stalled;
	bool private_out;
	/* Copies in the views of nonlinear mappings (view.c; view-out.c sends them out). */
	uint64_t copies;
	/* Files that shrank behind the cache (object_follow_size()), and of those, how many the
	 * private mappings' copies have followed (private_follow_cuts(): regions cutting, and
	 * when it looks at them next). */
	uint64_t shrinks, shrinks_followed;
	/* Buffers of private pages going to the swap store and coming back (private.c). */
	struct bufpool bufpool;
	uint64_t cutting, cuts_next_ns;
};

/*
 * The users whose pages in memory are above their share of the budget (uid_share_pages), each with
 * how many pages it is over: share.c makes the table for a turn of the loop, and whatever sends
 * pages out takes theirs first, counting what it took off (private_balance(), cache_balance()).
 */
struct user_over {
	uid_t uid;
	uint64_t pages;
	uint64_t objects; /* of the user's pages, those of its objects */
};

struct users_over {
	struct user_over *u;
	size_t n;
	/* Users over their share have pages on their way out and more to give: the others give
	 * nothing this turn (what is leaving makes room soon). */
	bool waiting;
	/* The users whose pages hold all the swap store they may (upagerd --max-swap), in order:
	 * their anonymous pages stay in memory, and no new page of their shared anonymous memory is
	 * made above the budget. */
	uid_t *swap_full;
	size_t n_swap_full;
};

/*
 * What the objects of the users over their share may still give of what those users are over:
 * the cache's balance takes it from them first, so no one else need give it.
 */
static inline uint64_t users_over_objects(const struct users_over *o)
{
	uint64_t sum = 0;

	for (size_t i = 0; o && i < o->n; i++)
		sum += o->u[i].pages < o->u[i].objects ? o->u[i].pages : o->u[i].objects;
	return sum;
}

/* Whether user @uid's pages hold all of the swap store they may (@o may be NULL). */
static inline bool users_over_swap_full(const struct users_over *o, uid_t uid)
{
	for (size_t i = 0; o && i < o->n_swap_full; i++)
		if (o->swap_full[i] == uid)
			return true;
	return false;
}

/* The private anonymous pages on their way out that will be gone soon: their DROPs are answered. */
static inline uint64_t cache_private_leaving(const struct cache *c)
{
	return c->private_leaving > c->private_stalled ? c->private_leaving - c->private_stalled
						       : 0;
}

/* The private anonymous pages the budget counts. */
static inline uint64_t cache_private_use(const struct cache *c)
{
	return c->private_out ? c->private_pages - cache_private_leaving(c) : 0;
}

/* The pages the budget counts: the objects' caches, fills under way, private pages, copies. */
static inline uint64_t cache_use(const struct cache *c)
{
	return c->cached + c->inflight + cache_private_use(c) + c->copies;
}

/* How many more pages fit in the budget (UINT64_MAX: no budget). */
static inline uint64_t cache_room_pages(const struct cache *c)
{
	uint64_t use = cache_use(c);

	if (c->budget_pages == 0)
		return UINT64_MAX;
	return use < c->budget_pages ? c->budget_pages - use : 0;
}

/* Whether @pages more pages fit in the budget. */
static inline bool cache_room(const struct cache *c, uint64_t pages)
{
	return cache_room_pages(c) >= pages;
}

/*
 * Whether the swap store can take @pages more pages: without it, or full, a new page of shared
 * anonymous memory could never leave the budget again.
 */
static inline bool cache_swap_room(const struct cache *c, uint64_t pages)
{
	return c->store && c->swap_used + pages <= c->swap_pages;
}

/* Whether a page read back from the swap store keeps its slot: while the store is under half full. */
static inline bool cache_swap_keeps(const struct cache *c)
{
	return c->swap_used * 2 < c->swap_pages;
}

static inline int cache_store_fd(struct cache *c, int fd, const char *kind, uint64_t id)
{
	return c->hooks ? c->hooks->store_fd(c, fd, kind, id) : 0;
}

static inline void cache_unstore_fd(struct cache *c, const char *kind, uint64_t id)
{
	if (c->hooks)
		c->hooks->unstore_fd(c, kind, id);
}

static inline void cache_id_taken(struct cache *c)
{
	if (c->hooks)
		c->hooks->id_taken(c);
}
