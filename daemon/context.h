/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's context, which every floor may reach, as libuv's modules reach their loop: its
 * tables (sessions, spaces, objects), its tunables, its figures, and the hooks through which the
 * floors below call the ones above. daemon.c, on the top floor, sets it up and tears it down.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cache.h"
#include "common/list.h"
#include "keeper.h"
#include "latency.h"
#include "state-handle.h"

struct object;
struct ring;
struct state;
struct worker_pool;

struct daemon_stats {
	uint64_t faults;
	uint64_t pages_populated;
	struct latency latency;
};

/* Per-user limits (limits.c). 0: no limit. The daemon's own user (root) has none. */
struct user_limits {
	unsigned connections;
	unsigned processes; /* served at once, forked children of clients too: a userfaultfd each */
	unsigned objects; /* caches the user made: each costs the daemon 2 to 4 descriptors */
	unsigned mappings;
	uint64_t mapped; /* bytes of all the user's mappings together */
	uint64_t
		swap; /* bytes of the swap store its pages hold (LIMIT_SWAP_HALF: half the store) */
};

#define LIMIT_SWAP_HALF UINT64_MAX

/* Tunables, from the command line (see upagerd(8)). */
struct daemon_config {
	uint32_t readahead_min_pages; /* first read-ahead window of a sequential reader */
	uint32_t readahead_max_pages; /* the window doubles up to this */
	uint32_t fill_max_pages; /* largest single read */
	uint64_t guard_gap; /* bytes a MAP_GROWSDOWN mapping keeps free below it, >= a page */
	uint64_t file_timeout_ms; /* how long a call on a client's file may block a request */
	uint64_t memory_max; /* the budget of pages in memory, bytes (budget.c) */
	uint64_t uid_memory_max; /* a user's share of it, bytes (0: none) */
	bool memory_max_default; /* not given: it follows the cgroup's limit (daemon.c) */
	bool uid_memory_max_default; /* not given: half the budget */
	const char *swap_path; /* the swap store of shared anonymous pages, or NULL for none */
	uint64_t swap_max; /* the most bytes it may hold */
	uint64_t swap_timeout_ms; /* how long requests wait for an NBD server that went away */
	uint32_t swap_connections; /* to an NBD server that offers multi-conn */
	struct user_limits limits; /* of each user but root */
};

struct session;
struct space;
struct upager_msg;

/* What the floors above spaces do with one: read its userfaultfd, and let go of it as it ends. */
struct space_hooks {
	uv_poll_cb readable;
	void (*killed)(struct space *s);
};

struct daemon {
	uv_loop_t *loop;
	uv_poll_t listen_poll;
	uv_timer_t accept_pause; /* accept(2) ran out of descriptors: listen again later */
	int listen_fd;
	char *socket_path;
	uv_signal_t sigterm, sigint;
	uv_timer_t liveness;
	unsigned liveness_ticks; /* the cgroup limit is read every few (daemon.c) */
	uint64_t cgroup_limit; /* the daemon's own (budget_cgroup_limit()), read as often */
	uv_check_t flush; /* saves the tables once per loop iteration if they changed */
	uv_idle_t queued; /* while spaces hold messages read ahead of time (space_drain()) */
	uv_idle_t next_turn; /* a turn at once: faults wait for copies spared in this one */
	struct cache cache; /* objects, the ring and workers, and their figures */
	struct watch *watch; /* follows the files of objects (watch.c), or NULL */

	uint64_t uffd_features; /* what the kernel offers */
	uint64_t next_id; /* of sessions, spaces and views: their names in the fd store */
	uint64_t start_ms;

	struct list_head sessions;
	struct list_head spaces;
	unsigned n_sessions, n_spaces;

	struct daemon_config config;
	struct daemon_stats stats;
	bool stopping;
	bool activated; /* the listening socket came from systemd */
	bool fdstore; /* descriptors go to the service manager's fd store (see fdstore.c) */
	struct keeper keeper; /* or the daemon's own (keeper.c); fd -1: none */
	bool restoring; /* taking over the tables of a previous daemon: nothing is stored anew */
	uint64_t turn; /* loop iterations, counted by the check handle: what was read in one */
	struct state *state; /* where the tables are saved, or NULL (also cache.state) */
	struct state_handle saved; /* of the daemon's own record: its counters of ids */
	void (*save)(struct daemon *d); /* saves what changed there: state_flush(), by state.c */
	struct space_hooks space_hooks;
	/* Does a session's request: request_handle(), see session.h for what it returns. */
	int (*handle_request)(struct session *s, const struct upager_msg *req, int *fds,
			      size_t n_fds);
};

/* The daemon that embeds cache @c: for the floors above the cache. */
static inline struct daemon *cache_daemon(struct cache *c)
{
	return (struct daemon *)((char *)c - offsetof(struct daemon, cache));
}

/* Save what changed in the tables now: before a reply that tells a client about a change. */
static inline void daemon_save(struct daemon *d)
{
	if (d->save)
		d->save(d);
}
