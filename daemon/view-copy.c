// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Copies of a nonlinear mapping's pages: what a fault of the view, a populating remap, or the
 * client's library alone puts into the view, under the coherence rules of view.c.
 *
 * A fault copies the object page the table names from the home page, filling it first if needed,
 * or, for a page no one has, straight from the kernel's page cache (copy_from_page_cache()). The
 * library copies pages no one holds in alone too, under a claim in the shared table that the
 * daemon settles before it changes the page (view.c; docs/design.md, "Nonlinear mappings").
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "context.h"
#include "fill.h"
#include "object.h"
#include "region.h"
#include "resolve.h"
#include "space.h"
#include "uffdio.h"
#include "view-copy.h"
#include "view-internal.h"
#include "view.h"

/* view_fault() again after the fill it waited on, not a fault of the kernel's */
#define VIEW_RETRY (1ULL << 63)

/*
 * Map the copy in page i of view v at addr of space s (resolve_view() says how) and wake the
 * faulting thread; whatever went wrong (the mapping changing or gone), the thread goes on, to
 * fault again or to fail as its access must.
 */
static void map_copy(struct space *s, uint64_t addr, const struct view *v, uint64_t i)
{
	if (uffdio_resolve_continue(s->uffd, addr, UPAGER_PAGE_SIZE, resolve_view(v, i)) == -EFAULT)
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
}

/*
 * Copy home page p into view page i and map it, write-protected, at addr of space s.
 * Return: 0, -EAGAIN if the library remapped view page i since p was read or a linear mapping
 * that may be writing the home page could not be write-protected now, or -ENOMEM.
 */
static int make_copy(struct space *s, uint64_t addr, struct view *v, uint64_t i, uint64_t p)
{
	struct object *o = v->obj;
	bool first = !view_has_copies(o, p);
	int ret;

	if (!view_hold(v, i, p))
		return -EAGAIN;
	/* A linear mapping may hold the home page writable and write it right now: a write
	 * between the copy and the punch below would be lost with the home page. Protected first,
	 * such a write faults and waits, then finds the page away and brings it home from the copy
	 * (fault_object()). */
	if (first && o->linear_writers > 0 && (o->pages[p] & PAGE_WRITABLE) &&
	    !space_protect_tracked(o, p, 1)) {
		view_release(v, i);
		return -EAGAIN;
	}
	memcpy(v->map + (i << UPAGER_PAGE_SHIFT), o->map + (p << UPAGER_PAGE_SHIFT),
	       UPAGER_PAGE_SIZE);
	ret = view_copies_add(o, p, v, i);
	if (ret < 0) {
		view_release(v, i);
		return ret;
	}
	v->copy[i] = COPY_RO;
	if (first && o->linear_writers > 0) {
		/* Linear mappings may hold the home page writable: take it from them; they get it
		 * back write-protected at their next touch. */
		uint8_t dirty = o->pages[p] & PAGE_WRITABLE;

		view_punch(o->memfd, p, 1);
		object_page_set(o, p, PAGE_ABSENT | PAGE_AWAY | dirty);
	}
	map_copy(s, addr, v, i);
	return 0;
}

/* A fault of a view waiting for a fill (fill_wait()). */
/* A view fault that waited for a fill (space_wait_fill()): serve it again, or wake it. */
static void view_wait_done(struct space_wait *w, struct region *r)
{
	if (r && r->view) {
		uint64_t i = r->view_index + ((w->addr - r->start) >> UPAGER_PAGE_SHIFT);

		/* Remapped meanwhile: a new fault, which may have to wait for a fill of its own. */
		view_fault(w->space, r, w->addr,
			   w->flags | (view_page(r->view, i) == w->page ? VIEW_RETRY : 0), w->t0);
	} else {
		uffdio_wake(w->space->uffd, w->addr, UPAGER_PAGE_SIZE);
	}
}

/*
 * Serve the fault at addr of view region r (flags: of the fault) again once the fill of object
 * page p is over. Return: fill_wait()'s; unless FILL_WAITING, nothing waits.
 */
static int view_wait(struct space *s, struct region *r, uint64_t addr, uint64_t p, uint64_t flags,
		     uint64_t t0)
{
	return space_wait_fill(s, r, r->view->obj, addr, p, flags, t0, view_wait_done);
}

static int copy_from_page_cache(struct space *s, uint64_t addr, struct view *v, uint64_t i,
				uint64_t p);

/* A fault that waits for room in the budget before it makes a copy (view_serve_waits()). */
struct room_wait {
	struct space *space; /* a reference */
	uint64_t addr, flags, t0;
};

static struct room_wait *room_waits;
static size_t n_room_waits, room_waits_cap;
/* view_serve_waits() serves the waits above the budget: their copies are made, not queued again. */
static bool room_forced;

/*
 * Above the budget, with copies that may leave, a new copy waits for the next balance (daemon.c)
 * to make room, as a fill waits (fill.c). Return: whether the fault at addr of s waits.
 */
static bool wait_room(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct cache *c = s->d->cache.budget_pages ? &s->d->cache : NULL;

	if (!c || room_forced || cache_room(c, 1) || !c->copies)
		return false;
	if (n_room_waits == room_waits_cap) {
		size_t cap = room_waits_cap ? 2 * room_waits_cap : 16;
		struct room_wait *w = realloc(room_waits, cap * sizeof(*w));

		if (!w)
			return false;
		room_waits = w;
		room_waits_cap = cap;
	}
	/* Not a retry once served: the page its fill brought may have left meanwhile. */
	room_waits[n_room_waits++] =
		(struct room_wait){ space_ref(s), addr, flags & ~(uint64_t)VIEW_RETRY, t0 };
	return true;
}

/**
 * view_serve_waits() - serve the faults that waited for room, while there is room
 * @d: the daemon; after the balance, where no fault is half done
 * @force: nothing is leaving memory that would make room: serve them all the same (above the
 *         budget) rather than let them wait for ever
 *
 * Return: whether faults still wait.
 */
bool view_serve_waits(struct daemon *d, bool force)
{
	struct room_wait *w = room_waits;
	size_t n = n_room_waits, k = 0;

	if (!n)
		return false;
	room_waits = NULL;
	n_room_waits = room_waits_cap = 0;
	room_forced = force;
	if (force)
		d->cache.stats.over_budget++;
	for (; k < n && (force || cache_room(&d->cache, 1)); k++) {
		struct space *s = w[k].space;
		struct region *r = s->dead ? NULL : region_find(&s->regions, w[k].addr);

		if (r && r->view)
			view_fault(s, r, w[k].addr, w[k].flags, w[k].t0);
		else if (!s->dead)
			uffdio_wake(s->uffd, w[k].addr, UPAGER_PAGE_SIZE);
		space_unref(s);
	}
	room_forced = false;
	/* What still waits goes back, in its order. */
	for (; k < n; k++) {
		struct space *s = w[k].space;

		if (s->dead || !wait_room(s, w[k].addr, w[k].flags, w[k].t0)) {
			struct region *r = s->dead ? NULL : region_find(&s->regions, w[k].addr);

			/* As above: served now, or woken to fault on what is there now. */
			if (r && r->view)
				view_fault(s, r, w[k].addr, w[k].flags, w[k].t0);
			else if (!s->dead)
				uffdio_wake(s->uffd, w[k].addr, UPAGER_PAGE_SIZE);
		}
		space_unref(s);
	}
	free(w);
	return n_room_waits > 0;
}

/* Serve the write fault at addr again once the read of its home page p under way is over. */
static void view_wait_write(struct space *s, struct region *r, uint64_t addr, uint64_t p,
			    uint64_t flags, uint64_t t0)
{
	if (view_wait(s, r, addr, p, flags, t0) != FILL_WAITING)
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE); /* it comes again */
}

/* The fault at addr of view page i gets a copy of its home page p, in memory: SIGBUS if none can
 * be made; remapped meanwhile, it is woken to fault again. */
static void copy_home(struct space *s, uint64_t addr, struct view *v, uint64_t i, uint64_t p)
{
	int ret = make_copy(s, addr, v, i, p);

	if (ret == -EAGAIN)
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	else if (ret < 0)
		uffdio_sigbus(s->uffd, addr, space_mm(s));
}

/**
 * view_fault() - serve a fault in a nonlinear mapping
 * @s: the space
 * @r: the region, a view's
 * @addr: the faulting page
 * @flags: UFFD_PAGEFAULT_FLAG_*; UFFD_PAGEFAULT_FLAG_MINOR when a fill it waited on is over
 * @t0: when the fault was read
 */
void view_fault(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct view *v = r->view;
	struct object *o = v->obj;
	uint64_t i = r->view_index + ((addr - r->start) >> UPAGER_PAGE_SHIFT);
	uint64_t p;
	int ret;

	view_settle(v, UINT64_MAX, i, false);
	view_touch(v, i);
	p = view_page(v, i);
	if (p >= object_pages(o)) {
		uffdio_sigbus(s->uffd, addr, space_mm(s));
		return;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write to a read-only copy: it becomes the one writable copy. */
		if (v->copy[i] != COPY_NONE && (o->pages[p] & PAGE_STATE_MASK) == PAGE_FILLING) {
			/* Its home page is being read from the file (a refresh, or clean copies):
			 * the read lands in the home page when it completes, over whatever is there
			 * then, which would be this write if the page were taken home meanwhile
			 * (view_restore_home()). The write waits for the read. */
			view_wait_write(s, r, addr, p, flags, t0);
			return;
		}
		if (v->copy[i] != COPY_NONE) {
			if (o->pages[p] == PAGE_ABSENT) {
				/* Clean copies only (view_restore_home()): a library may be copying
				 * the page in as well. */
				object_page_set(o, p, PAGE_ABSENT | PAGE_AWAY);
				view_claims_settle(o, p);
			}
			view_invalidate_copies(o, p, v, i);
			if (!(o->pages[p] & PAGE_AWAY)) {
				uint8_t dirty = o->pages[p] & PAGE_WRITABLE;

				view_punch(o->memfd, p, 1);
				object_page_set(o, p, PAGE_ABSENT | PAGE_AWAY | dirty);
			}
			/* From now on only the copy has the data. */
			object_page_set(o, p, o->pages[p] & (uint8_t)~PAGE_CLEAN);
			v->copy[i] = COPY_RW;
		}
		uffdio_resolve_unprotect(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	if (v->copy[i] != COPY_NONE) {
		/* The copy exists but this client lost its page table entry (MADV_DONTNEED). */
		map_copy(s, addr, v, i);
		return;
	}
	/* A home page in memory gives its copy at once, above the budget or not: waiting for room,
	 * the home page could leave first (a shared anonymous one to the swap store), and the
	 * fault go round between reading it back and sending it out. */
	if ((o->pages[p] & (PAGE_STATE_MASK | PAGE_AWAY)) == PAGE_READY) {
		copy_home(s, addr, v, i, p);
		return;
	}
	if (wait_room(s, addr, flags, t0))
		return;
	/* A page no one has: straight from the kernel's page cache, if it is there. */
	if (copy_from_page_cache(s, addr, v, i, p) == 0)
		return;
	if ((o->pages[p] & PAGE_AWAY) && view_restore_home(o, p) == -EAGAIN) {
		/* Its writable copy cannot be taken back now: the fault comes again. */
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY) {
		copy_home(s, addr, v, i, p);
		return;
	}
	if (flags & VIEW_RETRY) {
		/* A fill this fault waited on is over and the page is still not there. */
		uffdio_sigbus(s->uffd, addr, space_mm(s));
		return;
	}
	ret = view_wait(s, r, addr, p, 0, t0);
	if (ret == FILL_WAITING)
		return;
	if (ret == 0 && (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY) {
		if (make_copy(s, addr, v, i, p) < 0)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	} else if (ret == -EAGAIN) {
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	} else {
		uffdio_sigbus(s->uffd, addr, space_mm(s));
	}
}

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

static uint8_t page_buf[UPAGER_PAGE_SIZE] __attribute__((aligned(UPAGER_PAGE_SIZE)));

/* Write one page at page @index of @fd: 0, or a negative errno (-ENOMEM when shmem is full). */
static int write_page(int fd, uint64_t index, const uint8_t *src)
{
	size_t done = 0;

	while (done < UPAGER_PAGE_SIZE) {
		ssize_t k = pwrite(fd, src + done, UPAGER_PAGE_SIZE - done,
				   (off_t)((index << UPAGER_PAGE_SHIFT) + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 && errno != ENOSPC ? neg_errno() : -ENOMEM;
		done += (size_t)k;
	}
	return 0;
}

/*
 * Copy file page p straight from the kernel's page cache into view page i and map it,
 * write-protected, at addr of space s, without filling the home page: one fresh page instead of
 * two (about 4 us). Only for a page no one has: the home page PAGE_ABSENT and no copy anywhere,
 * so the file has the only data. The home page becomes PAGE_AWAY | PAGE_CLEAN: the data is in
 * read-only copies and in the file, and view_restore_home() reads it from the file again instead
 * of copying it home. Never waits for the disk.
 * Return: 0, or a negative errno (-EAGAIN: not in the page cache, or remapped meanwhile).
 */
static int copy_from_page_cache(struct space *s, uint64_t addr, struct view *v, uint64_t i,
				uint64_t p)
{
	struct object *o = v->obj;
	uint64_t off = p << UPAGER_PAGE_SHIFT;
	ssize_t got;
	int ret;

	if (o->kind != OBJECT_FILE || o->pages[p] != PAGE_ABSENT || view_has_copies(o, p) ||
	    off >= o->file_size)
		return -EAGAIN;
	if (!view_hold(v, i, p))
		return -EAGAIN;
	/* Through a buffer and write(2), which neither faults the view page in nor zeroes it. */
	got = preadv2(o->fd_read, &(struct iovec){ page_buf, UPAGER_PAGE_SIZE }, 1, (off_t)off,
		      RWF_NOWAIT);
	/* A partial page is whole only at end of file. */
	if (got < (ssize_t)UPAGER_PAGE_SIZE && (got <= 0 || off + (uint64_t)got < o->file_size)) {
		ret = got < 0 ? neg_errno() : -EAGAIN;
		goto fail;
	}
	memset(page_buf + got, 0, UPAGER_PAGE_SIZE - (size_t)got);
	/* A view mapped shared: UFFDIO_COPY puts the page into its memfd and maps it, one call
	 * instead of a write(2) and UFFDIO_CONTINUE. A private one (a file the client may not
	 * write) would get an anonymous page from it, which the view's memfd would not hold. */
	ret = v->may_write ? uffdio_copy(s->uffd, addr, page_buf, UPAGER_PAGE_SIZE, true)
			   : write_page(v->memfd, i, page_buf);
	if (ret < 0)
		goto fail;
	ret = view_copies_add(o, p, v, i);
	if (ret < 0)
		goto fail;
	v->copy[i] = COPY_RO;
	object_page_set(o, p, PAGE_ABSENT | PAGE_AWAY | PAGE_CLEAN);
	view_claims_settle(o, p); /* a library's copy of the page is one more clean copy */
	o->c->stats.bytes_from_page_cache += (uint64_t)got;
	if (!v->may_write) {
		map_copy(s, addr, v, i);
	}
	return 0;
fail:
	/* The read may have written part of the page: a copy that is not there goes. */
	view_punch(v->memfd, i, 1);
	view_release(v, i);
	return ret;
}

/* Copy in and map every page of the range whose data is in memory. */
static void view_install(struct space *s, uint64_t addr, uint64_t count)
{
	for (uint64_t k = 0; k < count; k++) {
		uint64_t a = addr + (k << UPAGER_PAGE_SHIFT);
		struct region *r = region_find(&s->regions, a);
		struct view *v;
		uint64_t i, p;

		if (!r || !r->view)
			continue;
		v = r->view;
		i = r->view_index + ((a - r->start) >> UPAGER_PAGE_SHIFT);
		p = view_page(v, i);
		if (v->copy[i] != COPY_NONE || p >= object_pages(v->obj) ||
		    !cache_room(v->obj->c, 1))
			continue;
		if (v->obj->pages[p] & PAGE_AWAY)
			view_restore_home(v->obj, p);
		if ((v->obj->pages[p] & PAGE_STATE_MASK) == PAGE_READY &&
		    make_copy(s, a, v, i, p) == 0)
			r->pages_populated++;
	}
}

/**
 * view_populate() - copy in and map the remapped pages [addr, addr + count pages)
 * @s: the space
 * @addr: first page, in one nonlinear region
 * @count: pages
 * @done: called when done, unless this returns 1 or fails
 * @userdata: for @done
 *
 * Return: 1 when done at once, 0 when @done will be called after the reads, or a negative errno.
 */
int view_populate(struct space *s, uint64_t addr, uint64_t count, populate_done_fn done,
		  void *userdata)
{
	struct region *r = region_find(&s->regions, addr);
	uint64_t first, direct = 0;
	struct view *v;

	if (!r || !r->view)
		return -EINVAL;
	v = r->view;
	first = r->view_index + ((addr - r->start) >> UPAGER_PAGE_SHIFT);
	/* Pages no one has go straight from the page cache into the view, as long as the page
	 * cache has them. */
	while (direct < count && direct < FILL_NOW_MAX_PAGES && cache_room(v->obj->c, 1) &&
	       copy_from_page_cache(s, addr + (direct << UPAGER_PAGE_SHIFT), v, first + direct,
				    v->table[first + direct]) == 0)
		direct++;
	r->pages_populated += direct;
	if (direct == count)
		return 1;
	/* view_remap() just made the range show consecutive object pages (the daemon's table
	 * says which). */
	fill_small_now(v->obj, v->table[first] + direct, count - direct);
	return populate_read(s, r, v->obj, v->table[first] + direct, count - direct, view_install,
			     addr, count, done, userdata);
}
