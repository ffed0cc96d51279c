// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The fault path. A fault on private anonymous memory goes to private.c, and so does one on a page
 * of a private mapping of an object that is the process's own copy, or a write that makes one. A
 * fault on an object
 * page that is ready in the cache is resolved at once with UFFDIO_CONTINUE; one on a page that is
 * not starts (or joins) a fill and is resolved when the fill is over. Nothing here blocks the loop.
 *
 * Sequential readers are detected per mapping: a fault on the page right after the pages the last
 * fault mapped. For them the daemon reads ahead (a window that doubles up to the configured
 * maximum, kept two windows ahead of the reader, all reads in flight at once) and maps every ready
 * page up to the window in one UFFDIO_CONTINUE, so that most of their touches never fault. A
 * random fault reads and maps its own page only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "context.h"
#include "fault.h"
#include "fill.h"
#include "grow.h"
#include "log.h"
#include "object.h"
#include "private.h"
#include "reserve.h"
#include "resolve.h"
#include "space.h"
#include "uffdio.h"
#include "view-copy.h"
#include "view.h"
#include "worker.h"
#include "zero-ahead.h"

/*
 * Map the ready page at addr and, for a sequential reader, the ready pages after it up to its
 * window; then wake the faulting thread. Returns how many pages were mapped.
 *
 * A page of a file that a shared mapping may write goes in writable for a write fault only;
 * otherwise write-protected, so that its first write reaches the daemon, which then marks it for
 * write-back and sets the file's times, as Linux does at the first write to a clean page.
 */
static uint64_t map_ready(struct space *s, struct region *r, uint64_t addr, bool write)
{
	struct object *o = r->obj;
	uint64_t p = (r->offset + (addr - r->start)) >> UPAGER_PAGE_SHIFT;
	uint64_t room = (region_end(r) - addr) >> UPAGER_PAGE_SHIFT;
	uint64_t want = p == r->ra_next && r->ra_window ? MIN((uint64_t)r->ra_window, room) : 1;
	uint64_t n = MAX(fill_ready_run(o, p, want), 1);
	bool wp;

	if (region_keeps_copies(s, r))
		n = private_object_run(s, addr, n);
	wp = resolve_linear(s, r, p, write ? RESOLVE_FOR_WRITE : RESOLVE_FOR_READ, &n);
	int ret;

	ret = uffdio_resolve_continue(s->uffd, addr, n << UPAGER_PAGE_SHIFT, wp);
	if (ret == -EFAULT && n > 1) {
		/* A page after the first left the memfd (MADV_REMOVE): the first alone, which
		 * the run may have mapped already (-EEXIST, and the helper wakes). */
		n = 1;
		ret = uffdio_resolve_continue(s->uffd, addr, UPAGER_PAGE_SIZE, wp);
	}
	if (ret == -EFAULT)
		return 0;
	/* The write goes on into the kernel's copy of the page, and the writer's into those of
	 * the pages after it: private pages from now on. */
	for (uint64_t k = 0; write && !wp && k < n && region_keeps_copies(s, r); k++)
		private_copied(s, addr + (k << UPAGER_PAGE_SHIFT));
	object_used(o, p, n);
	r->ra_next = p + n;
	return n;
}

static void fault_object(struct space *s, struct region *r, uint64_t addr, uint64_t flags,
			 uint64_t t0);
static bool file_job(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0,
		     bool touch, bool reserve);

/* A fault past the object's end whose file's size was read again: SIGBUS if it is still past. */
#define FAULT_RESTATTED (1ULL << 63)

/* The object page that @addr of region @r shows (a linear mapping's). */
static uint64_t region_page(const struct region *r, uint64_t addr)
{
	return (r->offset + (addr - r->start)) >> UPAGER_PAGE_SHIFT;
}

/*
 * A fault in the region its client is replacing by a view (upager_remap_file_pages(), from REMAP
 * phase 1 until the view is adopted) waits for the view: served now, it would map the object's
 * page into whatever the client has mapped there by then. fault_unpark() serves it. Return:
 * whether the fault at @addr of region @r waits so.
 */
static bool park(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct space_msg *m;

	if (!s->converting || r->start != s->converting || r->view)
		return false;
	m = realloc(s->parked, (s->n_parked + 1) * sizeof(*m));
	if (!m)
		return false;
	s->parked = m;
	m[s->n_parked++] = (struct space_msg){
		.msg = { .event = UFFD_EVENT_PAGEFAULT, .arg.pagefault = { flags, addr } },
		.t0 = t0,
	};
	return true;
}

/* A fault that waited for a fill (space_wait_fill()): serve it again. */
static void fault_wait_done(struct space_wait *w, struct region *r)
{
	struct space *s = w->space;
	bool write = w->flags & UFFD_PAGEFAULT_FLAG_WRITE;

	if (r && park(s, r, w->addr, w->flags, w->t0))
		return;
	if (!r) {
		uffdio_wake(s->uffd, w->addr, UPAGER_PAGE_SIZE);
	} else if (r->view) {
		/* The mapping was made nonlinear while the fault waited: its page is the one the
		 * view's table names now. */
		view_fault(s, r, w->addr, write ? UFFD_PAGEFAULT_FLAG_WRITE : 0, w->t0);
	} else if (fill_ready_run(r->obj, region_page(r, w->addr), 1)) {
		/* The page left the memfd before it was mapped (MADV_REMOVE by a client): the
		 * fault starts over, which reads it again. */
		if (!map_ready(s, r, w->addr, write)) {
			fault_object(s, r, w->addr, w->flags, w->t0);
			return;
		}
	} else if (r->obj->pages[region_page(r, w->addr)] & PAGE_AWAY) {
		/* A nonlinear mapping's copy took the page as the fill ended (view-copy.c's
		 * make_copy()): the fault starts over, which brings it home. */
		fault_object(s, r, w->addr, 0, w->t0);
		return;
	} else {
		uffdio_sigbus(s->uffd, w->addr, space_mm(s));
	}
	space_account_fault(s, r, w->t0);
}

/*
 * The window of a sequential run that has reached object page p, expected at next: 0 for a random
 * access (p is not next); else *window doubled, from the read-ahead minimum up to its maximum.
 */
static uint32_t next_window(const struct daemon_config *cfg, uint32_t *window, uint64_t p,
			    uint64_t next)
{
	if (p != next || cfg->readahead_max_pages == 0)
		return *window = 0;
	return *window = *window ? MIN(*window * 2, cfg->readahead_max_pages)
				 : MAX(cfg->readahead_min_pages, 1);
}

/* Keep a sequential reader's read-ahead two windows ahead of page p; a random fault resets it. */
static void read_ahead(struct region *r, uint64_t p)
{
	uint64_t end = MIN((r->offset + r->length) >> UPAGER_PAGE_SHIFT, object_pages(r->obj));
	uint64_t ahead, started = 0;

	if (!next_window(&cache_daemon(r->obj->c)->config, &r->ra_window, p, r->ra_next))
		return;
	ahead = MIN(p + 1 + 2 * (uint64_t)r->ra_window, end);
	if (ahead > p + 1)
		fill_range(r->obj, p + 1, ahead - p - 1, &started);
	region_count_reads(r, started);
}

/*
 * How many pages from object page p on a write-protect fault of region r makes writable: 1 for a
 * mapping without PROT_WRITE (its pages stay protected until it gets that) or a random writer; for
 * a sequential one the window that read-ahead would have, within the region and the object.
 */
static uint64_t write_window(struct region *r, uint64_t p)
{
	uint64_t end = MIN((r->offset + r->length) >> UPAGER_PAGE_SHIFT, object_pages(r->obj));
	uint64_t n;

	if (r->wp) {
		r->wr_window = 0;
		return 1;
	}
	n = next_window(&cache_daemon(r->obj->c)->config, &r->wr_window, p, r->wr_next);
	return MAX(MIN(n, end - p), 1);
}

/*
 * A page of a shared anonymous object that no one has made yet: zeroed through the faulting
 * client's mapping (fill_anon_into()), so that the client's memory cgroup pays for it. That page,
 * and for a write at the end of a long run written in order the window of zero-ahead.h over the
 * pages not made yet, within the mapping and the room the budget has: as with the kernel, a
 * program that touches a few pages has those in the object and no others (mincore(2)). The run
 * is r->ra_next (the object page after it) and r->zero_run. Return: whether the fault is served.
 */
static bool anon_zero(struct space *s, struct region *r, uint64_t addr, uint64_t p, bool write)
{
	struct object *o = r->obj;
	uint64_t end = MIN((r->offset + r->length) >> UPAGER_PAGE_SHIFT, object_pages(o));
	uint64_t n = 1, k;
	int made;

	if (o->kind != OBJECT_ANON || !r->shared || !list_empty(&o->views) ||
	    !object_page_blank(o, p) || !cache_room(o->c, 1))
		return false;
	if (!write || p != r->ra_next)
		r->zero_run = 0; /* a new run, of this page */
	else
		n = MIN(MIN(zero_ahead_window(&s->d->config, r->zero_run), end - p),
			cache_room_pages(o->c));
	for (k = 1; k < n && object_page_blank(o, p + k); k++)
		;
	made = fill_anon_into(o, s->uffd, addr, p, k, r->may_write);
	if (made < 0 && made != -ESRCH)
		return false; /* made meanwhile by another client: as any other page */
	zero_ahead_step(&r->ra_next, &r->zero_run, p, made > 0 ? (uint64_t)made : 1, 1);
	return true;
}

static void fault_object(struct space *s, struct region *r, uint64_t addr, uint64_t flags,
			 uint64_t t0)
{
	struct object *o = r->obj;
	uint64_t p = (r->offset + (addr - r->start)) >> UPAGER_PAGE_SHIFT;
	bool write = flags & UFFD_PAGEFAULT_FLAG_WRITE;
	int ret;

	if (p >= object_pages(o)) {
		/* Past the end the daemon knows of: the file may have grown since. */
		if (o->kind == OBJECT_FILE && !(flags & FAULT_RESTATTED) &&
		    file_job(s, r, addr, flags, t0, false, false))
			return;
		uffdio_sigbus(s->uffd, addr, space_mm(s));
		if (o->kind == OBJECT_FILE)
			space_note_past_end(s, addr);
		return;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write to a page mapped write-protected: from now on it may be dirty, and any copy
		 * of it in a nonlinear mapping is stale. A sequential writer of a writable mapping
		 * gets the ready pages after it writable too, in a window that grows as read-ahead
		 * does, so that it takes one such fault per window rather than per page. */
		uint64_t n, k;

		if ((o->pages[p] & (PAGE_STATE_MASK | PAGE_AWAY)) != PAGE_READY) {
			/* The page the write faulted on left the cache before the daemon read the
			 * fault (a copy took it away, a refresh dropped it): its copies may hold the
			 * only data now and stay. The write comes again as the fault of a missing
			 * page, which brings the page home first. */
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
			space_account_fault(s, r, t0);
			return;
		}
		n = write_window(r, p);
		view_invalidate_copies(o, p, NULL, 0);
		/* The page written goes writable; the pages after it as they would for a write. A
		 * shared anonymous page's kept slot is stale once written. */
		object_page_writable(o, p, true);
		if (o->kind == OBJECT_ANON && object_slot(o, p) >= 0)
			object_slot_set(o, p, -1);
		for (k = 1; k < n; k++) {
			uint64_t one = 1;

			if ((o->pages[p + k] & PAGE_STATE_MASK) != PAGE_READY ||
			    reserve_due(o, p + k) ||
			    resolve_linear(s, r, p + k, RESOLVE_FOR_WINDOW, &one))
				break;
		}
		r->wr_next = p + k;
		object_used(o, p, k);
		uffdio_resolve_unprotect(s->uffd, addr, k << UPAGER_PAGE_SHIFT);
		space_account_fault(s, r, t0);
		return;
	}

	if (anon_zero(s, r, addr, p, write)) {
		space_account_fault(s, r, t0);
		return;
	}
	read_ahead(r, p);
	if (fill_ready_run(o, p, 1)) {
		if (map_ready(s, r, addr, write)) {
			space_account_fault(s, r, t0);
			return;
		}
		/* The page left the memfd (MADV_REMOVE by a client): read it again; a shared
		 * anonymous page reads zeroes, not what a slot it kept holds. */
		object_page_set(o, p, o->pages[p] & (uint8_t)~PAGE_STATE_MASK);
		if (o->kind == OBJECT_ANON && object_slot(o, p) >= 0)
			object_slot_set(o, p, -1);
	}
	ret = space_wait_fill(s, r, o, addr, p, write ? UFFD_PAGEFAULT_FLAG_WRITE : 0, t0,
			      fault_wait_done);
	if (ret == FILL_WAITING)
		return;
	if (ret == 0 && fill_ready_run(o, p, 1)) {
		/* Filled at once (shared anonymous memory); punched out again before it was
		 * mapped, the fault is woken and comes again. */
		if (!map_ready(s, r, addr, write))
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		space_account_fault(s, r, t0);
		return;
	}
	if (ret == -EAGAIN) {
		/* Its data is in a nonlinear mapping's writable copy, for now: fault again. */
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		space_account_fault(s, r, t0);
	} else {
		log_limited(LOG_WARNING, "cannot fill %s page %" PRIu64 ": %s", o->path, p,
			    strerror(ret < 0 ? -ret : EIO));
		uffdio_sigbus(s->uffd, addr, space_mm(s));
	}
}

/**
 * fault_handle() - serve one page fault of a space
 * @s: the space the fault came from
 * @addr: faulting address
 * @flags: UFFD_PAGEFAULT_FLAG_*
 * @t0: when the daemon read the fault (now_ns()), for the latency figures
 */
static void fault_dispatch(struct space *s, struct region *r, uint64_t addr, uint64_t flags,
			   uint64_t t0);

/*
 * A fault that waits for calls on its file in a worker: a write fault that first sets the file's
 * times and reserves the page's blocks (refused if the file system has no room for the page), or
 * a fault past the object's end that reads the file's size again (restat). The fault goes on
 * after.
 */
struct file_job {
	struct worker_job job;
	struct space *space; /* a reference */
	struct object *obj; /* a reference */
	uint64_t addr, flags, t0;
	bool touch, reserve; /* neither: restat */
	bool stated; /* before and st hold the file's status around a touch or a reservation */
	int ret;
	struct stat before, st;
	struct reserve rv;
};

static void file_job_run(struct worker_job *job)
{
	struct file_job *fj = container_of(job, struct file_job, job);
	int fd = fj->obj->fd_write;

	if (!fj->touch && !fj->reserve) {
		fj->ret = fstat(fj->obj->fd_read, &fj->st) < 0 ? neg_errno() : 0;
		return;
	}
	/* The daemon's own change of the file's times, told apart from others' (object.c). */
	fj->stated = fstat(fd, &fj->before) == 0;
	if (fj->reserve)
		reserve_run(&fj->rv);
	if (fj->touch)
		fj->ret = object_touch_file(fd, &fj->st);
	else if (fj->stated)
		fj->stated = fstat(fd, &fj->st) == 0;
	fj->stated = fj->stated && fj->ret == 0;
}

/*
 * The file system has no block for the page written (ENOSPC, EDQUOT): the writer gets SIGBUS at
 * that write, as the kernel's page_mkwrite gives it. A page mapped write-protected is punched out
 * of the cache first, which unmaps it (UFFDIO_POISON needs an empty entry); it is clean: the
 * file's hole reads as zeroes again.
 */
static void refuse_write(struct space *s, struct region *r, uint64_t addr, int err)
{
	struct object *o = r->obj;
	uint64_t p = region_page(r, addr);

	log_limited(LOG_WARNING, "write to %s page %" PRIu64 " by pid %d refused: %s", o->path, p,
		    (int)s->pid, strerror(-err));
	if (o->pages[p] == PAGE_READY)
		object_page_punch(o, p, PAGE_ABSENT);
	uffdio_sigbus(s->uffd, addr, space_mm(s));
}

static void file_job_done(struct worker_job *job, int status)
{
	struct file_job *fj = container_of(job, struct file_job, job);
	bool restat = !fj->touch && !fj->reserve;
	struct space *s = fj->space;
	struct region *r;

	if (status == 0 && fj->stated)
		object_own_change(fj->obj, &fj->before, &fj->st);
	if (status == 0 && fj->reserve)
		reserve_done(fj->obj, &fj->rv);
	if (status == 0 && restat && fj->ret == 0 && (uint64_t)fj->st.st_size > fj->obj->file_size)
		object_follow_size(fj->obj, &fj->st);
	if (s->dead)
		return;
	/* The mapping may have changed while the worker ran: look it up again. */
	r = region_find(&s->regions, fj->addr);
	if (r && r->obj == fj->obj && !r->view && fj->reserve && status == 0 &&
	    (fj->rv.ret == -ENOSPC || fj->rv.ret == -EDQUOT)) {
		refuse_write(s, r, fj->addr, fj->rv.ret);
		space_account_fault(s, r, fj->t0);
	} else if (r && (r->obj == fj->obj || (r->view && r->view->obj == fj->obj))) {
		fault_dispatch(s, r, fj->addr, fj->flags | (restat ? FAULT_RESTATTED : 0), fj->t0);
	} else {
		uffdio_wake(s->uffd, fj->addr, UPAGER_PAGE_SIZE);
	}
}

static void file_job_free(struct worker_job *job)
{
	struct file_job *fj = container_of(job, struct file_job, job);

	if (fj->touch || fj->reserve)
		fj->obj->own_changes--;
	space_unref(fj->space);
	object_unref(fj->obj);
	free(fj);
}

/* Start a file job for the fault at @addr of @r. Return: whether the fault waits for it. */
static bool file_job(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0,
		     bool touch, bool reserve)
{
	struct object *o = r->view ? r->view->obj : r->obj;
	struct file_job *fj = calloc(1, sizeof(*fj));

	if (!fj)
		return false;
	fj->job = (struct worker_job){ .run = file_job_run,
				       .done = file_job_done,
				       .free = file_job_free,
				       .owner = s->uid,
				       .timeout_ms = s->d->config.file_timeout_ms };
	fj->space = space_ref(s);
	fj->obj = object_ref(o);
	fj->addr = addr;
	fj->flags = flags;
	fj->t0 = t0;
	fj->touch = touch;
	fj->reserve = reserve;
	if (touch || reserve)
		o->own_changes++;
	if (reserve)
		reserve_plan(o, region_page(r, addr), &fj->rv);
	if (worker_submit(s->d->cache.workers, &fj->job) == 0)
		return true;
	/* Too many of this user's calls wait on their files: the times are left as they are, the
	 * blocks to write-back, and a touch past the end is SIGBUS. */
	file_job_free(&fj->job);
	return false;
}

/*
 * A write to a shared mapping of a file the client may write first sets the file's times (see
 * object_touch_due()) and, for a page in a hole of the file, reserves its blocks (reserve.c).
 * Those calls may block for as long as the file system takes, so they run in a worker and the
 * fault is served when they are over. Return: whether the fault waits for that.
 */
static bool first_write(struct space *s, struct region *r, uint64_t addr, uint64_t flags,
			uint64_t t0)
{
	struct object *o = r->view ? r->view->obj : r->obj;
	bool touch, reserve;

	if (!(flags & UFFD_PAGEFAULT_FLAG_WRITE) || !o || !r->may_write)
		return false;
	touch = object_touch_due(o);
	reserve = !r->view && reserve_due(o, region_page(r, addr));
	if (!touch && !reserve)
		return false;
	return file_job(s, r, addr, flags, t0, touch, reserve);
}

/* Serve a fault of region @r, unless it waits for a view or a file job. */
static void serve(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0)
{
	if (park(s, r, addr, flags, t0) || first_write(s, r, addr, flags, t0))
		return;
	fault_dispatch(s, r, addr, flags, t0);
}

void fault_handle(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct region *r;

	addr = ALIGN_DOWN(addr, UPAGER_PAGE_SIZE);
	if (addr == s->token_addr) {
		/* A child shows its pid (events.c), or a client lost its mark: a new one. */
		if (space_mm_put(s, true) < 0)
			uffdio_resolve_zero(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	s->d->stats.faults++;
	r = region_find(&s->regions, addr);
	if (!r && grow_fault(s, addr, t0))
		return;
	if (!r)
		r = space_follow_growth(s, addr);
	if (!r) {
		log_limited(LOG_WARNING, "fault at %#" PRIx64 " of pid %d outside every region",
			    addr, (int)s->pid);
		uffdio_sigbus(s->uffd, addr, space_mm(s));
		return;
	}
	r->faults++;
	serve(s, r, addr, flags, t0);
}

/**
 * fault_unpark() - serve the faults that waited for the conversion of a region of @s to a view,
 * now that it is over (s->converting is 0): as views' faults, or as the region's again if the
 * conversion was abandoned
 */
void fault_unpark(struct space *s)
{
	struct space_msg *m = s->parked;
	size_t n = s->n_parked;

	s->parked = NULL;
	s->n_parked = 0;
	for (size_t i = 0; i < n && !s->dead; i++) {
		struct region *r = region_find(&s->regions, m[i].msg.arg.pagefault.address);

		if (r)
			serve(s, r, m[i].msg.arg.pagefault.address, m[i].msg.arg.pagefault.flags,
			      m[i].t0);
		else
			uffdio_wake(s->uffd, m[i].msg.arg.pagefault.address, UPAGER_PAGE_SIZE);
	}
	free(m);
}

/* Serve a fault of region @r. */
static void fault_dispatch(struct space *s, struct region *r, uint64_t addr, uint64_t flags,
			   uint64_t t0)
{
	if (r->view) {
		view_fault(s, r, addr, flags, t0);
		space_account_fault(s, r, t0);
		return;
	}
	if (r->obj) {
		if (!region_keeps_copies(s, r) || !private_copy_fault(s, addr, flags, t0))
			fault_object(s, r, addr, flags, t0);
		return;
	}
	private_fault(s, addr, flags, t0);
}

/**
 * fault_past_end_grown() - serve the pages of @s that got SIGBUS for lying past the end of their
 * file, now that the file covers them: a fault of the daemon's own maps each over the poison its
 * SIGBUS left (UFFDIO_CONTINUE and UFFDIO_COPY replace it), so that the client's next touch reads
 * the file as with the kernel, where a page past the end is a fault at every touch
 * @s: the space; called where no fault is half done
 */
void fault_past_end_grown(struct space *s)
{
	uint64_t *serve;
	size_t n = 0, kept = 0;

	if (!s->n_past_end || s->dead)
		return;
	serve = malloc(s->n_past_end * sizeof(*serve));
	if (!serve)
		return;
	for (size_t i = 0; i < s->n_past_end; i++) {
		uint64_t a = s->past_end[i];
		struct region *r = region_find(&s->regions, a);

		if (!r || !r->obj || r->view || r->obj->kind != OBJECT_FILE)
			continue; /* unmapped or mapped again since: its poison went with it */
		if (region_page(r, a) < object_pages(r->obj))
			serve[n++] = a;
		else
			s->past_end[kept++] = a;
	}
	s->n_past_end = kept;
	for (size_t i = 0; i < n; i++)
		fault_handle(s, serve[i], 0, now_ns());
	free(serve);
}
