// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Spaces: one per client address space, with its userfaultfd and its region table. What is read
 * from the userfaultfd goes through events.c (the daemon's space_hooks); a space lives as long as
 * its mm, see space_check_alive().
 */
#include <errno.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "closer.h"
#include "common/uffd.h"
#include "context.h"
#include "fdstore.h"
#include "fill.h"
#include "log.h"
#include "object.h"
#include "space.h"
#include "state.h"
#include "uffdio.h"
#include "view.h"

/* A copy of a region (a split, a fork) holds what the region holds. */
static void region_hold(struct region *r)
{
	if (r->obj)
		object_ref(r->obj);
	if (r->view)
		view_ref(r->view);
}

static void region_release(struct region *r)
{
	if (r->view)
		view_unref(r->view);
	if (r->obj)
		object_unref(r->obj);
}

static void region_save(struct state_handle *h, struct state *st)
{
	struct region *r = container_of(h, struct region, saved);
	struct space *s = h->owner;
	uint64_t space_id = s->id, obj_id = r->obj ? r->obj->id : 0;
	uint64_t view_id = r->view ? r->view->id : 0;
	struct state_io io;

	state_begin(&io, st, STATE_REC_REGION);
	region_fields(&io, r, &space_id, &obj_id, &view_id);
	state_end(&io);
}

/* The table changed a region, or made one: its record is saved again. */
static void region_changed(struct region_table *t, struct region *r)
{
	struct space *s = container_of(t, struct space, regions);

	state_mark(s->d->state, &r->saved, region_save, s);
}

static void region_gone(struct region_table *t, struct region *r)
{
	struct space *s = container_of(t, struct space, regions);

	state_forget(s->d->state, &r->saved);
}

static const struct region_ops region_refs = {
	.hold = region_hold,
	.release = region_release,
	.changed = region_changed,
	.gone = region_gone,
};

/** space_mark_region() - a field of region @r of space @s changed: its record is saved again */
void space_mark_region(struct space *s, struct region *r)
{
	region_changed(&s->regions, r);
}

/**
 * space_new() - a space for a userfaultfd of a client's mm
 * @d: the daemon
 * @uffd: the descriptor; the space owns it from now on, also on failure
 * @pid: the client's pid, 0 if not known yet
 * @uid: the client's uid
 * @token_addr: the client's token page, 0 for none
 * @out: the new space, holding one reference for the caller
 *
 * Return: 0 or a negative errno.
 */
int space_new(struct daemon *d, int uffd, pid_t pid, uid_t uid, uint64_t token_addr,
	      struct space **out)
{
	struct space *s;
	int fl;

	fl = fcntl(uffd, F_GETFL);
	if (fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int ret = neg_errno();

		closer_close(uffd);
		return ret;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		closer_close(uffd);
		return -ENOMEM;
	}
	s->d = d;
	s->refs = 2; /* the caller's, and the poll handle's until it is closed */
	s->uffd = uffd;
	s->pid = pid;
	s->uid = uid;
	s->token_addr = token_addr;
	region_table_init(&s->regions, &region_refs);
	uv_poll_init(d->loop, &s->poll, uffd);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE, d->space_hooks.readable);
	s->polling = true;
	list_add_tail(&s->link, &d->spaces);
	d->n_spaces++;
	s->id = ++d->next_id;
	fdstore_add(d, uffd, "uf", s->id);
	state_mark_daemon(d);
	space_mark(s);
	*out = s;
	return 0;
}

/**
 * space_set_soft() - the client of @s bounds its wait for a daemon (UPAGER_HELLO_SOFT): the
 * daemon's own keeper keeps neither its userfaultfd nor its control channel, so that a daemon that
 * dies leaves it to resume by itself (a service manager's store keeps them: it starts a daemon
 * again at once)
 */
void space_set_soft(struct space *s)
{
	s->soft = true;
	if (s->d->keeper.fd < 0)
		return;
	fdstore_remove(s->d, "uf", s->id);
	if (s->chan)
		fdstore_remove(s->d, "gr", s->id);
}

/** space_ref() - take a reference; returns @s */
struct space *space_ref(struct space *s)
{
	s->refs++;
	return s;
}

/**
 * space_unref() - drop a reference; the last one closes the userfaultfd and frees the space
 * Return: NULL.
 */
struct space *space_unref(struct space *s)
{
	if (!s || --s->refs > 0)
		return NULL;
	free(s->queue);
	free(s->past_end);
	free(s->parked);
	locked_free(&s->locked);
	state_forget(s->d->state, &s->saved);
	closer_close_owned(s->uffd, s->uid); /* its release takes the client's mmap lock */
	fdstore_remove(s->d, "uf", s->id);
	free(s);
	return NULL;
}

/*
 * A piece of a region leaves: write back what it may have dirtied (@userdata: a struct wb_wait
 * that waits for it, or NULL), release its object.
 */
static void drop_piece(struct region *piece, void *userdata)
{
	struct wb_wait *w = userdata;

	if (!piece->obj)
		return;
	if (piece->view) {
		/* The copies go home first; they may be anywhere in the object. What is left of
		 * the view is remapped by the daemon alone from now on. */
		view_publish(piece->view, false);
		view_drop_range(piece->view, piece->view_index, piece->length >> UPAGER_PAGE_SHIFT);
		if (piece->may_write)
			object_writeback(piece->obj, 0, object_pages(piece->obj), false, w);
		view_unref(piece->view);
		object_unref(piece->obj);
		return;
	}
	if (piece->may_write)
		object_writeback(piece->obj, piece->offset >> UPAGER_PAGE_SHIFT,
				 piece->length >> UPAGER_PAGE_SHIFT, false, w);
	object_unref(piece->obj);
}

static void on_poll_closed(uv_handle_t *h)
{
	space_unref(h->data);
}

/**
 * space_kill() - the mm is gone, or the daemon stops: write back, drop every region, stop reading
 * @s: the space; references held elsewhere keep the struct alive, marked dead
 */
void space_kill(struct space *s)
{
	struct daemon *d = s->d;
	struct region *r;

	if (s->dead)
		return;
	s->dead = true;
	log_debug("space of pid %d ends", (int)s->pid);
	/* Messages read and not dispatched: only a fork's new descriptor needs anything. */
	for (; s->queue_head < s->queue_len; s->queue_head++)
		if (s->queue[s->queue_head].msg.event == UFFD_EVENT_FORK)
			closer_close_owned((int)s->queue[s->queue_head].msg.arg.fork.ufd, s->uid);
	if (d->space_hooks.killed)
		d->space_hooks.killed(s);
	/* Its views may outlive it (a session holds one it is converting to): not mapped here. */
	region_for_each(r, &s->regions)
	{
		if (r->view && r->view->host.id == s->id)
			view_attach(r->view, NULL, r->view->start);
	}
	region_table_deinit(&s->regions, drop_piece, NULL);
	list_del_init(&s->link);
	d->n_spaces--;
	state_forget(d->state, &s->saved);
	if (s->polling) {
		uv_poll_stop(&s->poll);
		uv_close((uv_handle_t *)&s->poll, on_poll_closed);
		s->polling = false;
	}
}

/*
 * The lowest page that no range registered on the space's userfaultfd holds (a region with its
 * guard and sentinel pages, the token page): the probe of space_check_alive(), which would
 * otherwise put a zero page into a mapping of the client that starts at the lowest address.
 */
static uint64_t unregistered_page(const struct space *s)
{
	uint64_t a = uffdio_lowest_addr();
	bool moved;

	do {
		moved = false;
		if (a == s->token_addr) {
			a += UPAGER_PAGE_SIZE;
			moved = true;
		}
		const struct region *r;

		region_for_each(r, &s->regions)
		{
			uint64_t low = r->sentinel ? r->sentinel : r->guard ? r->guard : r->start;

			if (a >= low && a < region_end(r)) {
				a = region_end(r);
				moved = true;
			}
		}
	} while (moved);
	return a;
}

/**
 * region_tracks_writes() - whether the pages of region @r of space @s go in write-protected until
 * their first write: a shared mapping of a file the client may write, registered in write-protect
 * mode (see resolve_linear() in resolve.c)
 */
bool region_tracks_writes(const struct space *s, const struct region *r)
{
	return region_may_protect(s, r) && r->obj->kind == OBJECT_FILE;
}

/**
 * region_keeps_copies() - whether region @r of space @s is a private mapping of an object whose
 * written pages, the process's own copies, the daemon counts and pages out as private pages
 * (private.c): registered in write-protect mode (request.c), its object pages go in protected
 * until a write, whose fault the daemon sees before the kernel makes the copy
 */
bool region_keeps_copies(const struct space *s, const struct region *r)
{
	return r->obj && !r->shared && !r->view && (s->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
}

/**
 * region_may_protect() - whether region @r of space @s is registered in write-protect mode: a
 * shared mapping of an object the client may write (request.c), whose pages the daemon can
 * write-protect before it writes them out, so that a later write faults
 */
bool region_may_protect(const struct space *s, const struct region *r)
{
	return r->may_write && r->obj && (s->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
}

/*
 * Call fn on the part of each linear mapping of object @o, in every live space, that shows object
 * pages [first, first+count) (and may write them, if @writers); stop at the first false.
 */
static bool for_each_mapping(struct object *o, uint64_t first, uint64_t count, bool writers,
			     bool (*fn)(struct space *s, struct region *r, uint64_t addr,
					uint64_t len))
{
	struct space *s;

	list_for_each_entry (s, &cache_daemon(o->c)->spaces, link) {
		struct region *r;

		region_for_each(r, &s->regions)
		{
			uint64_t a = MAX(first << UPAGER_PAGE_SHIFT, r->offset);
			uint64_t b =
				MIN((first + count) << UPAGER_PAGE_SHIFT, r->offset + r->length);

			if (r->obj != o || r->view || (writers && !r->may_write) || a >= b)
				continue;
			if (!fn(s, r, r->start + (a - r->offset), b - a))
				return false;
		}
	}
	return true;
}

static bool tracked(struct space *s, struct region *r, uint64_t addr, uint64_t len)
{
	(void)addr;
	(void)len;
	return region_may_protect(s, r);
}

static bool protect(struct space *s, struct region *r, uint64_t addr, uint64_t len)
{
	int ret = uffdio_writeprotect(s->uffd, addr, len, true);

	(void)r;
	/* Gone from the client already (an unmap whose event is still to come): nothing to do. */
	return ret == 0 || ret == -ENOENT || ret == -ESRCH;
}

static bool protect_tracked(struct space *s, struct region *r, uint64_t addr, uint64_t len)
{
	return !region_tracks_writes(s, r) || protect(s, r, addr, len);
}

/**
 * space_protect_object() - write-protect object pages [first, first+count) in every linear
 * mapping of every client that may write them (a write then faults: fault_object())
 * @o: the object
 * @first: first page
 * @count: pages
 *
 * The copies of nonlinear mappings are not touched: view_restore_home() protects the writable one.
 *
 * Return: true if every such mapping is protected now; false if one cannot be (a client without
 * write-protect faults), and then the pages may be written without the daemon's knowledge.
 */
bool space_protect_object(struct object *o, uint64_t first, uint64_t count)
{
	return for_each_mapping(o, first, count, true, tracked) &&
	       for_each_mapping(o, first, count, true, protect);
}

/**
 * space_protect_tracked() - write-protect object pages [first, first+count) in every linear
 * mapping that may write them and tracks its writes (region_tracks_writes()), before their data
 * is copied elsewhere: a write from then on faults and waits for the daemon, so none lands
 * unseen between the copy and what the daemon does next. Mappings that track no write cannot be
 * protected and are left as they are.
 * @o: the object
 * @first: first page
 * @count: pages
 *
 * Return: true if each of them is protected now; false if one could not be (its client's mm kept
 * changing, see uffdio_writeprotect()).
 */
bool space_protect_tracked(struct object *o, uint64_t first, uint64_t count)
{
	return for_each_mapping(o, first, count, true, protect_tracked);
}

/** space_locked_refresh() - locked_refresh() of @s's ranges, once per turn of the loop */
void space_locked_refresh(struct space *s)
{
	struct mm_mark m = space_mm(s);

	locked_refresh(&s->locked, &m, s->d->turn);
}

/* False if the part of @r at [addr, addr+len) is locked in memory. */
static bool not_pinned(struct space *s, struct region *r, uint64_t addr, uint64_t len)
{
	if (r->flags & MAP_LOCKED)
		return false;
	space_locked_refresh(s);
	return !locked_overlaps(&s->locked, addr, addr + len);
}

/**
 * space_pinned() - whether any of object pages [first, first+count) is locked in memory in a
 * client (MAP_LOCKED, mlock(2), mlockall(2)): such pages never leave memory
 * @o: the object
 * @first: first page
 * @count: pages
 */
bool space_pinned(struct object *o, uint64_t first, uint64_t count)
{
	return !for_each_mapping(o, first, count, false, not_pinned);
}

/* The most pages past the end of their file a space keeps (space_note_past_end()). */
#define PAST_END_MAX 1024

/**
 * space_note_past_end() - the page at @addr of @s got SIGBUS for lying past the end of its file
 * (UFFDIO_POISON, which stays in the page table): kept, to be served once the file covers it, up
 * to PAST_END_MAX pages (past that, such a page raises SIGBUS until the client unmaps it)
 * @s: the space
 * @addr: the page
 */
void space_note_past_end(struct space *s, uint64_t addr)
{
	uint64_t *v;

	for (size_t i = 0; i < s->n_past_end; i++)
		if (s->past_end[i] == addr)
			return;
	if (s->n_past_end == PAST_END_MAX)
		return;
	v = realloc(s->past_end, (s->n_past_end + 1) * sizeof(*v));
	if (!v)
		return;
	s->past_end = v;
	s->past_end[s->n_past_end++] = addr;
}

/** region_count_reads() - @pages read from the backing store for the faults or populate of @r */
void region_count_reads(struct region *r, uint64_t pages)
{
	r->pages_read += pages;
	r->bytes_read += pages << UPAGER_PAGE_SHIFT;
}

static void wait_done(void *userdata)
{
	struct space_wait *w = userdata;
	struct space *s = w->space;
	struct region *r = s->dead ? NULL : region_find(&s->regions, w->addr);
	const struct object *o = !r ? NULL : r->view ? r->view->obj : r->obj;

	/* A mapping made at the same address meanwhile (munmap, then mmap) is another one. */
	if (!s->dead)
		w->then(w, o && r->start == w->region_start && o->id == w->object_id ? r : NULL);
	space_unref(s);
	free(w);
}

/**
 * space_wait_fill() - the fault at @addr of region @r waits for the fill of page @p of @o
 * @s: the space
 * @r: the region
 * @o: the object (the region's, or its view's)
 * @addr: the faulting page
 * @p: the object page
 * @flags: of the fault, kept for @then
 * @t0: when the daemon read the fault
 * @then: called on the loop once the fill is over (unless the space died meanwhile)
 *
 * The reads this starts are counted in the region's figures.
 *
 * Return: fill_wait()'s; unless FILL_WAITING, @then is not called and nothing waits.
 */
int space_wait_fill(struct space *s, struct region *r, struct object *o, uint64_t addr, uint64_t p,
		    uint64_t flags, uint64_t t0,
		    void (*then)(struct space_wait *w, struct region *r))
{
	struct space_wait *w = calloc(1, sizeof(*w));
	uint64_t started = 0;
	int ret;

	if (!w)
		return -ENOMEM;
	*w = (struct space_wait){ .space = space_ref(s),
				  .addr = addr,
				  .region_start = r->start,
				  .object_id = o->id,
				  .t0 = t0,
				  .page = p,
				  .flags = flags,
				  .then = then };
	ret = fill_wait(o, p, 1, wait_done, w, &started);
	region_count_reads(r, started);
	if (ret != FILL_WAITING) {
		space_unref(s);
		free(w);
	}
	return ret;
}

/**
 * space_check_alive() - kill the space if its mm has gone
 * Return: true while it lives.
 */
bool space_check_alive(struct space *s)
{
	if (s->dead)
		return false;
	if (uffdio_alive(s->uffd, unregistered_page(s)))
		return true;
	space_kill(s);
	return false;
}

/**
 * space_add_region() - enter a registered region into the table
 * @s: the space
 * @r: the region; the table takes its object reference, also on failure (released then)
 *
 * Whatever the table still held in that range was replaced in the client (MAP_FIXED) and goes.
 *
 * Return: 0 or a negative errno.
 */
int space_add_region(struct space *s, const struct region *r)
{
	int ret;

	region_remove_range(&s->regions, r->start, region_end(r), drop_piece, NULL);
	ret = region_insert(&s->regions, r);
	if (ret < 0 && r->obj)
		object_unref(r->obj);
	return ret;
}

/**
 * space_drop_range() - forget [start, end), writing back what it may have dirtied
 * @s: the space
 * @start: first byte
 * @end: one past the last
 * @w: waits for the write-backs (object_writeback()), or NULL
 *
 * Return: the number of pieces dropped, or a negative errno.
 */
int space_drop_range(struct space *s, uint64_t start, uint64_t end, struct wb_wait *w)
{
	return region_remove_range(&s->regions, start, end, drop_piece, w);
}

/* A page @p of shared anonymous @o that is in memory lets go of the slot it kept. */
static void forget_kept(struct object *o, uint64_t p)
{
	if (p < object_pages(o) && (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY &&
	    object_slot(o, p) >= 0)
		object_slot_set(o, p, -1);
}

/**
 * space_removal_queued() - whether a message of @s read and not dispatched yet takes part of
 * [start, end) from the client's mm (an unmap, MADV_DONTNEED or MADV_REMOVE, or a move away by
 * mremap()): the kernel did so already, and nothing may be mapped there before it is dispatched
 */
bool space_removal_queued(const struct space *s, uint64_t start, uint64_t end)
{
	for (size_t k = s->queue_head; k < s->queue_len; k++) {
		const struct uffd_msg *m = &s->queue[k].msg;
		uint64_t a, b;

		if (m->event == UFFD_EVENT_UNMAP || m->event == UFFD_EVENT_REMOVE) {
			a = m->arg.remove.start;
			b = m->arg.remove.end;
		} else if (m->event == UFFD_EVENT_REMAP) {
			a = m->arg.remap.from;
			b = a + m->arg.remap.len;
		} else {
			continue;
		}
		if (a < end && start < b)
			return true;
	}
	return false;
}

/**
 * space_removed() - a client's MADV_DONTNEED or MADV_REMOVE of [start, end)
 * @s: the space
 * @start: first byte
 * @end: one past the last
 *
 * MADV_REMOVE punches the pages out of a shared mapping's memfd, and its event is the one
 * MADV_DONTNEED sends. A shared anonymous page in memory that kept its swap slot (read back,
 * not written since) would leave again by a punch alone and read back the slot's old data, not
 * the zeroes MADV_REMOVE leaves: such pages let their slots go, and are written out again when
 * they leave (zeroes, if they were removed). Pages already in the swap store stay there
 * (upager_mmap(3), BUGS).
 */
void space_removed(struct space *s, uint64_t start, uint64_t end)
{
	struct region *r;

	region_for_each_in(r, &s->regions, start, end)
	{
		uint64_t a = MAX(start, r->start), b = MIN(end, region_end(r));
		uint64_t n = (b - a + UPAGER_PAGE_SIZE - 1) >> UPAGER_PAGE_SHIFT;
		uint64_t i = (a - r->start) >> UPAGER_PAGE_SHIFT;

		if (a >= b || !r->obj || !r->shared || r->obj->kind != OBJECT_ANON || !r->obj->slot)
			continue;
		for (uint64_t k = 0; k < n; k++)
			forget_kept(r->obj, r->view ? view_page(r->view, r->view_index + i + k)
						    : (r->offset >> UPAGER_PAGE_SHIFT) + i + k);
	}
}

/**
 * space_msync() - write back the shared file pages of [start, end)
 * @s: the space
 * @start: first byte
 * @end: one past the last
 * @sync: wait for the disk
 * @w: waits for the write-backs (object_writeback()), whose errors it gets
 *
 * Return: 0 or a negative errno if a write-back could not be asked for.
 */
int space_msync(struct space *s, uint64_t start, uint64_t end, bool sync, struct wb_wait *w)
{
	struct region *r;
	int ret = 0;

	region_for_each_in(r, &s->regions, start, end)
	{
		uint64_t a = MAX(start, r->start), b = MIN(end, region_end(r));
		uint64_t first, last;
		int k;

		if (a >= b || !r->obj || !r->may_write)
			continue;
		if (r->view) {
			/* The pages a nonlinear range shows are where its table says; and, as
			 * Linux synced a nonlinear mapping's whole linear range, those a linear
			 * mapping would show: a page written before a remap took it away is
			 * written too. */
			uint64_t vi = r->view_index + ((a - r->start) >> UPAGER_PAGE_SHIFT);
			uint64_t n = (b - a + UPAGER_PAGE_SIZE - 1) >> UPAGER_PAGE_SHIFT;

			for (uint64_t k2 = 0; k2 < n; k2++) {
				k = object_writeback(r->obj, view_page(r->view, vi + k2), 1, false,
						     w);
				if (k < 0 && ret == 0)
					ret = k;
			}
			k = object_writeback(r->obj, r->view->base + vi, n, sync, w);
			if (k < 0 && ret == 0)
				ret = k;
			continue;
		}
		first = (r->offset + (a - r->start)) >> UPAGER_PAGE_SHIFT;
		last = (r->offset + (b - r->start) + UPAGER_PAGE_SIZE - 1) >> UPAGER_PAGE_SHIFT;
		k = object_writeback(r->obj, first, last - first, sync, w);
		if (k < 0 && ret == 0)
			ret = k;
	}
	return ret;
}

/**
 * space_invalidate() - an msync of [start, end) of @s with MS_INVALIDATE: the file pages the
 * linear ranges show that no writable mapping ever held are read again at their next touch
 * (object_invalidate(); a size it cannot follow yet, a shrink while a write-back is under way,
 * the watch follows later)
 * @s: the space
 * @start: first byte
 * @end: one past the last
 */
void space_invalidate(struct space *s, uint64_t start, uint64_t end)
{
	struct region *r;

	region_for_each_in(r, &s->regions, start, end)
	{
		uint64_t a = MAX(start, r->start), b = MIN(end, region_end(r)), first, last;

		if (a >= b || !r->obj || r->obj->kind != OBJECT_FILE || r->view)
			continue;
		first = (r->offset + (a - r->start)) >> UPAGER_PAGE_SHIFT;
		last = (r->offset + (b - r->start) + UPAGER_PAGE_SIZE - 1) >> UPAGER_PAGE_SHIFT;
		(void)object_invalidate(r->obj, first, last - first);
	}
}

/**
 * space_refresh() - the client wrote the file bytes that [start, end) of @s shows with write(2) or
 * the like (start == end: changed the size of the file mapped at start): each file the range maps
 * follows (object_refresh())
 * @s: the space
 * @start: first byte
 * @end: one past the last
 *
 * A nonlinear range follows its file's size only.
 * Return: 0 or a negative errno (-EBUSY: a write-back is under way; ask again).
 */
int space_refresh(struct space *s, uint64_t start, uint64_t end)
{
	struct region *r;
	int ret = 0;

	region_for_each_in(r, &s->regions, start, MAX(end, start + 1))
	{
		uint64_t a = MAX(start, r->start), b = MIN(end, region_end(r)), first = 0, last = 0;
		int k;

		if (!r->obj || r->obj->kind != OBJECT_FILE)
			continue;
		if (a < b && !r->view) {
			first = (r->offset + (a - r->start)) >> UPAGER_PAGE_SHIFT;
			last = (r->offset + (b - r->start) + UPAGER_PAGE_SIZE - 1) >>
			       UPAGER_PAGE_SHIFT;
		}
		k = object_refresh(r->obj, first, last - first);
		if (k < 0 && ret == 0)
			ret = k;
	}
	return ret;
}

/*
 * The end of the user address space of x86-64 with 4-level page tables (TASK_SIZE_MAX): the
 * kernel refuses (EINVAL) a UFFDIO_WAKE whose range goes past it.
 */
#define USER_END ((1ULL << 47) - UPAGER_PAGE_SIZE)

/**
 * space_wake() - wake every thread of the space that waits on a fault
 * @s: the space
 *
 * A daemon that takes over after another died calls this: faults the dead daemon had read but not
 * resolved are in no queue any more, and their threads fault again once woken. Not only in the
 * regions: below a MAP_GROWSDOWN mapping, a touch of its sentinel or of the pages the kernel grew
 * the sentinel by, or of a page the dead daemon grew the mapping by and did not save, waits too.
 */
void space_wake(struct space *s)
{
	uint64_t low = uffdio_lowest_addr();
	const struct region *r;

	uffdio_wake(s->uffd, low, USER_END - low);
	/* Past it: a mapping placed there with a hint, under 5-level page tables. */
	region_for_each(r, &s->regions)
	{
		if (region_end(r) > USER_END)
			uffdio_wake(s->uffd, r->start, r->length);
	}
}

/**
 * space_hold() - stop reading the space's userfaultfd while a client declares its mappings again
 * @s: the space
 *
 * Faults and events wait in the kernel meanwhile: one read now would find no region yet.
 */
void space_hold(struct space *s)
{
	if (s->polling)
		uv_poll_stop(&s->poll);
}

/**
 * space_release() - read the space's userfaultfd again, and wake every thread waiting on a fault
 * @s: the space, held by space_hold()
 *
 * A fault the dead daemon had read is in no queue any more: its thread faults again once woken,
 * anywhere in the address space, also in a range the client did not declare again (which then
 * gets SIGBUS as a fault outside every region).
 */
void space_release(struct space *s)
{
	if (s->polling)
		uv_poll_start(&s->poll, UV_READABLE, s->d->space_hooks.readable);
	space_wake(s);
}

/** space_find_by_pid() - a live space of @pid that no session acts for yet, or NULL */
struct space *space_find_by_pid(struct daemon *d, pid_t pid)
{
	struct space *s;

	list_for_each_entry (s, &d->spaces, link)
		if (s->pid == pid && !s->attached && !s->dead)
			return s;
	return NULL;
}

/**
 * space_mm_put() - put a new mark into the token page of @s's memory (mm.c)
 * @s: the space
 * @wake: wake a thread that waits on the token page
 *
 * Return: 0, or a negative errno (-EEXIST: the token page is mapped already).
 */
int space_mm_put(struct space *s, bool wake)
{
	struct mm_mark m = space_mm(s);
	int ret = mm_mark_put(&m, s->uffd, wake);

	if (ret == 0) {
		s->mark_seed[0] = m.seed[0];
		s->mark_seed[1] = m.seed[1];
		space_mark(s);
	}
	return ret;
}

/**
 * space_bind_pid() - take @pid for the process whose memory @s serves, if its memory shows the
 * space's mark: else the pid stays unknown (0), and nothing is read through it
 *
 * Return: whether it did.
 */
bool space_bind_pid(struct space *s, pid_t pid)
{
	struct mm_mark m = space_mm(s);

	if (!mm_mark_seen(&m, pid))
		return false;
	s->pid = pid;
	space_mark(s);
	return true;
}

/**
 * space_vma_at() - the client's mapping (VMA) that holds @addr, from its /proc/PID/maps (a pid
 * not known yet: none)
 * Return: whether one does; its range in *@start, *@end.
 */
bool space_vma_at(const struct space *s, uint64_t addr, uint64_t *start, uint64_t *end)
{
	struct mm_mark m = space_mm(s);
	int fd = mm_open(&m, "maps");
	unsigned long long lo, hi;
	bool found = false, line_start = true;
	char line[512];
	FILE *f;

	if (fd < 0)
		return false;
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return false;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		found = line_start && sscanf(line, "%llx-%llx", &lo, &hi) == 2 && lo <= addr &&
			addr < hi;
		line_start = strchr(line, '\n') != NULL; /* a long path goes on in the next read */
	}
	fclose(f);
	if (found) {
		*start = lo;
		*end = hi;
	}
	return found;
}

/* How many mappings a growth the daemon did not see may have been split into. */
#define GROWTH_SPLITS_MAX 64

/**
 * space_follow_growth() - a fault outside every region: did the client grow a region in place?
 * @s: the space
 * @addr: the faulting address
 *
 * mremap() that grows a mapping where it stands sends no event; the registered VMA just gets
 * longer (if it moves too, the event names the old length). If a region starts where the VMA
 * holding @addr starts, or ends where the VMAs before it begin without a gap (the growth split off
 * by mprotect() before its first touch), the region grows to the VMA's end (never over the next
 * region).
 *
 * Return: the region that now holds @addr, or NULL.
 */
struct region *space_follow_growth(struct space *s, uint64_t addr)
{
	struct region *r;
	uint64_t start, end;
	unsigned steps = 0;

	if (!space_vma_at(s, addr, &start, &end))
		return NULL;
	r = region_find(&s->regions, start);
	/* A growth split into mappings of its own (an mprotect() of part of it before its first
	 * touch): the region whose end the mappings before @start reach without a gap. */
	for (uint64_t at = start, lo, hi; !r && at > 0 && steps++ < GROWTH_SPLITS_MAX; at = lo) {
		const struct region *below = region_find(&s->regions, at - 1);

		if (below) {
			if (region_end(below) == at)
				r = region_find(&s->regions, below->start);
			break;
		}
		if (!space_vma_at(s, at - 1, &lo, &hi) || hi != at)
			break;
	}
	if (r && region_end(r) <= addr) {
		const struct region *next = region_next(&s->regions, r);

		if (next)
			end = MIN(end, next->start);
		if (addr < end)
			region_resize(&s->regions, r, r->start, end);
	}
	return region_find(&s->regions, addr);
}

/**
 * space_account_fault() - count a served fault in the daemon's and the mapping's latency figures
 * @s: the space
 * @r: the mapping, or NULL if it went meanwhile
 * @t0: when the fault was read
 */
void space_account_fault(struct space *s, struct region *r, uint64_t t0)
{
	uint64_t ns = now_ns() - t0;

	latency_record(&s->d->stats.latency, ns);
	if (r) {
		r->latency_sum_ns += ns;
		r->latency_max_ns = MAX(r->latency_max_ns, ns);
	}
}

/** space_count_regions() - regions in every space of the daemon */
unsigned space_count_regions(struct daemon *d)
{
	struct space *s;
	unsigned n = 0;

	list_for_each_entry (s, &d->spaces, link)
		n += (unsigned)s->regions.n;
	return n;
}

/* The fields of a space's record. */
static void space_fields(struct state_io *io, struct space *s)
{
	STATE_NUM(io, 1, s->id);
	STATE_NUM(io, 2, s->pid);
	STATE_NUM(io, 3, s->uid);
	STATE_NUM(io, 4, s->token_addr);
	STATE_NUM(io, 5, s->features);
	STATE_NUM(io, 6, s->converting);
	STATE_NUM(io, 7, s->priv.spare);
	STATE_NUM(io, 8, s->mark_seed[0]);
	STATE_NUM(io, 9, s->mark_seed[1]);
}

static void space_save(struct state_handle *h, struct state *st)
{
	struct state_io io;

	state_begin(&io, st, STATE_REC_SPACE);
	space_fields(&io, container_of(h, struct space, saved));
	state_end(&io);
}

/** space_mark() - the saved record of space @s changed, or is new */
void space_mark(struct space *s)
{
	if (!s->dead)
		state_mark(s->d->state, &s->saved, space_save, NULL);
}

/** space_mark_regions() - every region of space @s is saved again (state_ops.mark_all) */
void space_mark_regions(struct space *s)
{
	struct region *r;

	region_for_each(r, &s->regions)
	{
		region_changed(&s->regions, r);
	}
}

/** space_host() - what a view mapped in space @s needs of it (view_attach()) */
struct view_host space_host(const struct space *s)
{
	return (struct view_host){ .id = s->id, .uffd = s->uffd, .pid = s->pid };
}

/** space_view_host() - space_host() of the live space @id, for view_load(); false if none */
bool space_view_host(struct daemon *d, uint64_t id, struct view_host *h)
{
	struct space *s = space_find(d, id);

	if (s)
		*h = space_host(s);
	return s != NULL;
}

/** space_find() - the live space whose fd-store name is @id, or NULL */
struct space *space_find(struct daemon *d, uint64_t id)
{
	struct space *s;

	list_for_each_entry (s, &d->spaces, link)
		if (id && s->id == id)
			return s;
	return NULL;
}

/**
 * space_load() - take a space back from its record and its userfaultfd in the fd store
 * Return: the space, held by the loop, or NULL.
 */
struct space *space_load(struct daemon *d, struct state_io *io, struct fdstore_passed *p)
{
	struct space saved = { 0 }, *s;
	int uffd;

	space_fields(io, &saved);
	uffd = fdstore_passed_take(p, "uf", saved.id);
	if (uffd < 0 || space_new(d, uffd, saved.pid, saved.uid, saved.token_addr, &s) < 0) {
		log_warning("the userfaultfd of pid %d was not passed back", (int)saved.pid);
		return NULL;
	}
	s->id = saved.id;
	s->features = saved.features;
	s->converting = saved.converting;
	s->priv.spare = saved.priv.spare;
	s->mark_seed[0] = saved.mark_seed[0];
	s->mark_seed[1] = saved.mark_seed[1];
	space_unref(s); /* the loop's reference keeps it */
	return s;
}

/** space_load_region() - put a region back into its space from its record */
void space_load_region(struct daemon *d, struct state_io *io)
{
	uint64_t space_id = 0, obj_id = 0, view_id = 0;
	struct region r = { 0 };
	struct space *s;

	region_fields(io, &r, &space_id, &obj_id, &view_id);
	s = space_find(d, space_id);
	r.obj = object_find(&d->cache, obj_id);
	r.view = view_find(d, view_id);
	if (!s || (obj_id && !r.obj) || (view_id && !r.view)) {
		log_warning("a mapping at %#" PRIx64 " lost what it maps", r.start);
		return;
	}
	if (r.obj)
		object_ref(r.obj);
	if (r.view)
		view_ref(r.view);
	if (region_insert(&s->regions, &r) < 0) {
		view_unref(r.view);
		object_unref(r.obj);
	}
}
