/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A space: one client address space, its userfaultfd and its regions. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/list.h"
#include "common/uffd.h"
#include "locked.h"
#include "mm.h"
#include "private-pages.h"
#include "region.h"
#include "view.h"

struct daemon;
struct channel;
struct object;
struct wb_wait;

/* A message read from a space's userfaultfd, and when (events.c). */
struct space_msg {
	struct uffd_msg msg;
	uint64_t t0;
};

struct space {
	struct daemon *d;
	uint64_t id; /* the name of its userfaultfd in the fd store */
	unsigned refs;
	int uffd;
	uv_poll_t poll;
	bool polling;
	bool dead;
	pid_t pid; /* 0 until known (a forked child before its first fault) */
	uid_t uid;
	bool attached; /* a session acts for it */
	bool soft; /* its client bounds its wait for a daemon: no keeper keeps its descriptors */
	uint64_t converting; /* start of a region the client is remapping onto its view, or 0 */
	uint64_t token_addr;
	uint64_t mark_seed[2]; /* of the mark in its token page (mm.c); 0, 0: none */
	uint64_t features;
	struct channel *chan; /* to the client's control thread, or NULL (channel.c) */
	struct space_msg *queue; /* messages read from uffd and not yet dispatched, in order */
	size_t queue_head, queue_len, queue_cap;
	struct region_table regions;
	struct locked_ranges locked; /* what the client has locked in memory (locked.c) */
	struct private_pages priv; /* its private anonymous pages (private.c) */
	/* Pages answered with SIGBUS for lying past the end of their file: the poison stays in the
	 * client's page table, so they are served again once the file covers them (daemon.c). */
	uint64_t *past_end;
	size_t n_past_end;
	/* Faults in the region being converted, served once its view is in place (fault.c). */
	struct space_msg *parked;
	size_t n_parked;
	struct list_head link; /* daemon.spaces */
	struct state_handle saved; /* its record in the saved tables (space_mark()) */
};

int space_new(struct daemon *d, int uffd, pid_t pid, uid_t uid, uint64_t token_addr,
	      struct space **out);
struct space *space_ref(struct space *s);
void space_set_soft(struct space *s);
struct space *space_unref(struct space *s);
void space_kill(struct space *s);
bool space_check_alive(struct space *s);
bool region_may_protect(const struct space *s, const struct region *r);
bool region_tracks_writes(const struct space *s, const struct region *r);
bool region_keeps_copies(const struct space *s, const struct region *r);
bool space_protect_object(struct object *o, uint64_t first, uint64_t count);
bool space_protect_tracked(struct object *o, uint64_t first, uint64_t count);
bool space_pinned(struct object *o, uint64_t first, uint64_t count);
void space_wake(struct space *s);
void space_hold(struct space *s);
void space_release(struct space *s);
int space_add_region(struct space *s, const struct region *r);
int space_drop_range(struct space *s, uint64_t start, uint64_t end, struct wb_wait *w);
bool space_removal_queued(const struct space *s, uint64_t start, uint64_t end);
void space_removed(struct space *s, uint64_t start, uint64_t end);
int space_msync(struct space *s, uint64_t start, uint64_t end, bool sync, struct wb_wait *w);
int space_refresh(struct space *s, uint64_t start, uint64_t end);
void space_invalidate(struct space *s, uint64_t start, uint64_t end);
struct space *space_find_by_pid(struct daemon *d, pid_t pid);

/* The mark of @s's memory (mm.c), for checks of its pid. */
static inline struct mm_mark space_mm(const struct space *s)
{
	return (struct mm_mark){
		s->pid, s->token_addr, { s->mark_seed[0], s->mark_seed[1] }, s->uid
	};
}
int space_mm_put(struct space *s, bool wake);
void space_locked_refresh(struct space *s);
bool space_bind_pid(struct space *s, pid_t pid);
struct region *space_follow_growth(struct space *s, uint64_t addr);
bool space_vma_at(const struct space *s, uint64_t addr, uint64_t *start, uint64_t *end);
void space_account_fault(struct space *s, struct region *r, uint64_t t0);
void region_count_reads(struct region *r, uint64_t pages);
void space_note_past_end(struct space *s, uint64_t addr);

/* A fault of a space that waits for the fill of an object page (space_wait_fill()). */
struct space_wait {
	struct space *space; /* a reference */
	uint64_t addr; /* the faulting page */
	uint64_t region_start; /* of the region it faulted in */
	uint64_t object_id; /* of the object that region, or its view, shows */
	uint64_t t0; /* when the daemon read the fault */
	uint64_t page; /* the object page waited for */
	uint64_t flags; /* of the fault */
	/* Called once the fill is over, with the region that starts at region_start, holds addr
	 * and shows the object now (NULL: none, or the space died): serve the fault again, or
	 * wake it. */
	void (*then)(struct space_wait *w, struct region *r);
};

int space_wait_fill(struct space *s, struct region *r, struct object *o, uint64_t addr, uint64_t p,
		    uint64_t flags, uint64_t t0,
		    void (*then)(struct space_wait *w, struct region *r));
unsigned space_count_regions(struct daemon *d);

struct fdstore_passed;
struct state;
struct state_io;
struct space *space_find(struct daemon *d, uint64_t id);
struct view_host space_host(const struct space *s);
bool space_view_host(struct daemon *d, uint64_t id, struct view_host *h);
void space_mark(struct space *s);
void space_mark_region(struct space *s, struct region *r);
void space_mark_regions(struct space *s);
struct space *space_load(struct daemon *d, struct state_io *io, struct fdstore_passed *p);
void space_load_region(struct daemon *d, struct state_io *io);
