// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The fault path. A fault on private anonymous memory gets the zero page. A fault on an object
 * page that is ready in the cache is resolved at once with UFFDIO_CONTINUE; one on an absent page
 * starts a fill of the cluster around it (an io_uring read straight into the daemon's mapping of the
 * cache, or zero pages for a shared anonymous object) and waits on it; one on a page being filled
 * joins that fill's waiters. Nothing here blocks the loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "daemon.h"
#include "fault.h"
#include "log.h"
#include "object.h"
#include "ring.h"
#include "space.h"
#include "uffdio.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define FILL_CLUSTER_PAGES 16 /* 64 KiB */

struct waiter {
	struct space *space; /* a reference */
	uint64_t addr;
	uint64_t pgoff;
	bool wp;
	struct list_head link;
};

struct fill {
	struct object *obj; /* a reference */
	uint64_t first, count; /* pages */
	uint64_t done;         /* bytes read so far */
	struct list_head waiters;
	struct list_head link; /* obj->fills */
};

static void set_state(struct object *o, uint64_t p, uint8_t state)
{
	o->pages[p] = (uint8_t)((o->pages[p] & ~PAGE_STATE_MASK) | state);
}

static uint8_t get_state(const struct object *o, uint64_t p)
{
	return o->pages[p] & PAGE_STATE_MASK;
}

/* Map a ready cache page into the faulting client; wake it in every case. */
static void resolve_ready(struct space *s, uint64_t addr, bool wp)
{
	int ret = uffdio_continue(s->uffd, addr, UPAGER_PAGE_SIZE, wp);

	if (ret == 0 || ret == -ESRCH)
		return;
	if (ret != -EEXIST)
		log_debug("UFFDIO_CONTINUE at %#" PRIx64 " of pid %d: %s", addr, (int)s->pid,
			  strerror(-ret));
	uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
}

/* The page cannot be had (I/O error, beyond end of file): SIGBUS in the client. */
static void resolve_sigbus(struct space *s, uint64_t addr)
{
	int ret = uffdio_poison(s->uffd, addr, UPAGER_PAGE_SIZE);

	if (ret < 0 && ret != -ESRCH && ret != -EEXIST) {
		log_warning("UFFDIO_POISON at %#" PRIx64 " of pid %d: %s", addr, (int)s->pid,
			    strerror(-ret));
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	}
}

static void fill_free(struct fill *f)
{
	list_del_init(&f->link);
	object_unref(f->obj);
	free(f);
}

static void fill_wake_waiters(struct fill *f)
{
	struct waiter *w, *tmp;

	list_for_each_entry_safe(w, tmp, &f->waiters, link) {
		if (!w->space->dead) {
			if (get_state(f->obj, w->pgoff) == PAGE_READY)
				resolve_ready(w->space, w->addr, w->wp);
			else
				resolve_sigbus(w->space, w->addr);
		}
		list_del_init(&w->link);
		space_unref(w->space);
		free(w);
	}
}

static void fill_finish(struct fill *f, int error)
{
	struct object *o = f->obj;
	uint64_t ready = error ? 0 : ALIGN_UP(f->done, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT;

	if (error)
		log_warning("reading %s at page %" PRIu64 ": %s", o->path, f->first, strerror(-error));
	for (uint64_t i = 0; i < f->count; i++)
		set_state(o, f->first + i, i < ready ? PAGE_READY : PAGE_ABSENT);
	o->d->stats.pages_read += MIN(ready, f->count);
	fill_wake_waiters(f);
	fill_free(f);
}

static int fill_submit(struct fill *f);

static void fill_read_done(void *userdata, int res)
{
	struct fill *f = userdata;
	uint64_t want = f->count << UPAGER_PAGE_SHIFT;

	if (res == -EINTR || res == -EAGAIN) {
		if (fill_submit(f) < 0)
			fill_finish(f, -EIO);
		return;
	}
	if (res < 0) {
		fill_finish(f, res);
		return;
	}
	f->obj->d->stats.bytes_read += (uint64_t)res;
	f->done += (uint64_t)res;
	if (res > 0 && f->done < want) {
		/* A short read that is not at end of file: read the rest. */
		int ret = fill_submit(f);

		if (ret < 0)
			fill_finish(f, ret);
		return;
	}
	fill_finish(f, 0);
}

static int fill_submit(struct fill *f)
{
	uint64_t off = (f->first << UPAGER_PAGE_SHIFT) + f->done;
	uint64_t len = (f->count << UPAGER_PAGE_SHIFT) - f->done;

	return ring_read(f->obj->d->ring, f->obj->fd_read, f->obj->map + off, (uint32_t)len, off,
			 fill_read_done, f);
}

static struct fill *fill_find(struct object *o, uint64_t p)
{
	struct fill *f;

	list_for_each_entry(f, &o->fills, link)
		if (p >= f->first && p < f->first + f->count)
			return f;
	return NULL;
}

/* The run of absent pages around p, within p's aligned cluster. */
static void cluster_run(const struct object *o, uint64_t p, uint64_t *first, uint64_t *count)
{
	uint64_t lo = ALIGN_DOWN(p, (uint64_t)FILL_CLUSTER_PAGES);
	uint64_t hi = MIN(lo + FILL_CLUSTER_PAGES, object_pages(o));
	uint64_t a = p, b = p + 1;

	while (a > lo && get_state(o, a - 1) == PAGE_ABSENT)
		a--;
	while (b < hi && get_state(o, b) == PAGE_ABSENT)
		b++;
	*first = a;
	*count = b - a;
}

/* Start filling the cluster around page p of o. Return the fill to wait on, or NULL when the
 * pages are ready already (shared anonymous objects fill at once). */
static int fill_start(struct object *o, uint64_t p, struct fill **out)
{
	uint64_t first, count;
	struct fill *f;
	int ret;

	cluster_run(o, p, &first, &count);
	if (o->kind == OBJECT_ANON) {
		if (madvise(o->map + (first << UPAGER_PAGE_SHIFT), count << UPAGER_PAGE_SHIFT,
			    MADV_POPULATE_WRITE) < 0)
			return neg_errno();
		for (uint64_t i = 0; i < count; i++)
			set_state(o, first + i, PAGE_READY);
		*out = NULL;
		return 0;
	}

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->obj = object_ref(o);
	f->first = first;
	f->count = count;
	list_init(&f->waiters);
	list_add_tail(&f->link, &o->fills);
	ret = fill_submit(f);
	if (ret < 0) {
		fill_free(f);
		return ret;
	}
	for (uint64_t i = 0; i < count; i++)
		set_state(o, first + i, PAGE_FILLING);
	*out = f;
	return 0;
}

static int fill_wait(struct fill *f, struct space *s, uint64_t addr, uint64_t p, bool wp)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->space = space_ref(s);
	w->addr = addr;
	w->pgoff = p;
	w->wp = wp;
	list_add_tail(&w->link, &f->waiters);
	return 0;
}

static void fault_object(struct space *s, struct region *r, uint64_t addr, uint64_t flags)
{
	struct object *o = r->obj;
	uint64_t p = (r->offset + (addr - r->start)) >> UPAGER_PAGE_SHIFT;
	struct fill *f;
	int ret;

	if (p >= object_pages(o)) {
		resolve_sigbus(s, addr);
		return;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write to a page mapped write-protected: from now on it may be dirty. */
		o->pages[p] |= PAGE_WRITABLE;
		ret = uffdio_unprotect(s->uffd, addr, UPAGER_PAGE_SIZE);
		if (ret < 0 && ret != -ESRCH)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	if (r->may_write && !r->wp)
		o->pages[p] |= PAGE_WRITABLE;

	switch (get_state(o, p)) {
	case PAGE_READY:
		ret = uffdio_continue(s->uffd, addr, UPAGER_PAGE_SIZE, r->wp);
		if (ret != -EFAULT) {
			if (ret == -EEXIST || (ret < 0 && ret != -ESRCH))
				uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
			return;
		}
		/* The page left the memfd (MADV_REMOVE by a client): read it again. */
		set_state(o, p, PAGE_ABSENT);
		break;
	case PAGE_FILLING:
		f = fill_find(o, p);
		if (f && fill_wait(f, s, addr, p, r->wp) == 0)
			return;
		log_error("no fill for a page being filled");
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	default:
		break;
	}

	ret = fill_start(o, p, &f);
	if (ret == 0 && !f) {
		resolve_ready(s, addr, r->wp);
		return;
	}
	if (ret == 0)
		ret = fill_wait(f, s, addr, p, r->wp);
	if (ret < 0) {
		log_warning("cannot fill %s page %" PRIu64 ": %s", o->path, p, strerror(-ret));
		resolve_sigbus(s, addr);
	}
}

/**
 * fault_handle() - serve one page fault of a space
 * @s: the space the fault came from
 * @addr: faulting address
 * @flags: UFFD_PAGEFAULT_FLAG_*
 * @tid: faulting thread, 0 if not reported
 */
void fault_handle(struct space *s, uint64_t addr, uint64_t flags, uint32_t tid)
{
	struct region *r;
	int ret;

	(void)tid;
	addr = ALIGN_DOWN(addr, UPAGER_PAGE_SIZE);
	if (addr == s->token_addr) {
		ret = uffdio_zeropage(s->uffd, addr, UPAGER_PAGE_SIZE);
		if (ret == -EEXIST)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	s->d->stats.faults++;
	r = region_find(&s->regions, addr);
	if (!r) {
		log_warning("fault at %#" PRIx64 " of pid %d outside every region", addr,
			    (int)s->pid);
		resolve_sigbus(s, addr);
		return;
	}
	r->faults++;
	if (r->obj) {
		fault_object(s, r, addr, flags);
		return;
	}
	ret = uffdio_zeropage(s->uffd, addr, UPAGER_PAGE_SIZE);
	if (ret < 0 && ret != -ESRCH)
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
}
