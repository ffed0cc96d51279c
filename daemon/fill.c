// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fills of object pages. Reads go straight into the daemon's mapping of the memfd, so the data
 * lands in the cache page once, with no copy; clients see a page only once the daemon maps it for
 * them (they register minor faults), so a page being written is never seen half-filled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/macro.h"
#include "cache.h"
#include "fill.h"
#include "latency.h"
#include "log.h"
#include "object.h"
#include "ring.h"
#include "store.h"
#include "uffdio.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

#define BOUNCE_MIN_PAGES 16 /* 64 KiB: smaller fills read straight into the mapping */
/* Beyond this much in flight, fills read straight too; with a budget, an eighth of it at most:
 * a page in a bounce buffer is held twice, and counted once. */
#define BOUNCE_BUDGET (64ULL << 20)

static uint64_t bounce_in_use;

struct fill {
	struct object *obj; /* a reference */
	uint64_t first, count; /* pages */
	uint64_t done; /* bytes read so far */
	/*
	 * Large fills read into this buffer and then write(2) it into the memfd: shmem's write path
	 * neither faults in nor zeroes the pages it fills whole, which the direct read into the
	 * daemon's mapping of the memfd does (and which is most of the cost of a fill).
	 */
	uint8_t *bounce;
	uint64_t written; /* bytes of bounce written into the memfd */
	struct list_head waiters;
	struct list_head link; /* obj->fills */
	struct list_head deferred; /* cache.deferred while it waits for room in the budget */
	uint64_t deferred_ns; /* since when (now_ns()) */
	bool submitted; /* counted in cache.inflight */
	int64_t slot; /* a shared anonymous object's pages from the swap store: the first slot */
};

static void set_state(struct object *o, uint64_t p, uint8_t state)
{
	bool was_free = o->pages[p] == PAGE_ABSENT;

	object_page_set(o, p, (uint8_t)((o->pages[p] & ~(PAGE_STATE_MASK | PAGE_STALE)) | state));
	/* A page no one held gets a home page: a library may be copying it in alone. */
	if (was_free && state != PAGE_ABSENT && o->view_ops)
		o->view_ops->claims_settle(o, p);
}

static uint8_t get_state(const struct object *o, uint64_t p)
{
	return o->pages[p] & PAGE_STATE_MASK;
}

/* Something waiting for any number of fills: its function runs once, when the last is over. */
struct fill_job {
	unsigned pending; /* waiters hung and not woken yet */
	bool armed; /* fill_wait() is done hanging: the last waiter woken finishes the job */
	fill_done_fn done;
	void *userdata;
};

/* A job's waiter on one fill. */
struct fill_waiter {
	struct list_head link; /* fill.waiters */
	struct fill_job *job;
};

static void waiter_done(struct fill_waiter *w)
{
	struct fill_job *job = w->job;

	free(w);
	if (--job->pending == 0 && job->armed) {
		fill_done_fn done = job->done;
		void *userdata = job->userdata;

		free(job);
		done(userdata);
	}
}

static int fill_submit(struct fill *f);

/*
 * Whether the file changed under the fill's read (PAGE_STALE, object.c's drop_clean()): then its
 * read starts again, and what waits for it waits on. Return: whether it did.
 */
static bool fill_again(struct fill *f)
{
	struct object *o = f->obj;
	bool stale = false;

	for (uint64_t i = 0; i < f->count; i++)
		if (o->pages[f->first + i] & PAGE_STALE) {
			object_page_set(o, f->first + i, o->pages[f->first + i] & ~PAGE_STALE);
			stale = true;
		}
	if (!stale)
		return false;
	f->done = 0;
	f->written = 0;
	return fill_submit(f) == 0;
}

static void fill_finish(struct fill *f, int error)
{
	struct object *o = f->obj;
	struct cache *c = o->c;
	uint64_t ready = error ? 0 : ALIGN_UP(f->done, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT;
	struct fill_waiter *w, *tmp;
	bool keep;

	if (!error && f->slot < 0 && fill_again(f))
		return;
	if (error && error != -ENOSPC) /* fill_start_deferred() said why */
		log_limited(LOG_WARNING, "reading %s at page %" PRIu64 ": %s", o->path, f->first,
			    strerror(-error));
	ready = MIN(ready, f->count);
	/* A page read back keeps its slot while the store is under half full and the object has
	 * no nonlinear mapping: it goes into every client write-protected (resolve_linear()), and
	 * unwritten it leaves again without a write (evict.c); its first write frees the slot. */
	keep = f->slot >= 0 && list_empty(&o->views) && cache_swap_keeps(c);
	for (uint64_t i = 0; i < f->count; i++) {
		/* A page whose data went to a nonlinear mapping's copy while it was read keeps
		 * it there: what the read brought is older. (A write to a copy waits for the read
		 * of its home page, view_fault(), so that the copy never goes home under it.) */
		bool away = o->pages[f->first + i] & PAGE_AWAY;

		set_state(o, f->first + i, i < ready && !away ? PAGE_READY : PAGE_ABSENT);
		/* Back from the swap store, not kept: the data is in memory only from now on,
		 * and any client may write it. A page that could not be read keeps its slot, and
		 * its faults end in SIGBUS, never in zeroes. */
		if (f->slot >= 0 && i < ready && !keep) {
			object_slot_set(o, f->first + i, -1);
			object_page_set(o, f->first + i, o->pages[f->first + i] | PAGE_WRITABLE);
		}
	}
	if (f->slot >= 0)
		c->stats.pages_in += ready;
	if (o->kind == OBJECT_FILE) {
		c->stats.pages_read += ready;
		o->pages_read += ready;
	}
	if (f->submitted)
		c->inflight -= f->count;
	if (!list_empty(&f->deferred)) {
		list_del_init(&f->deferred);
		c->deferred_pages -= f->count;
	}
	list_del_init(&f->link);
	list_for_each_entry_safe (w, tmp, &f->waiters, link) {
		list_del_init(&w->link);
		waiter_done(w);
	}
	if (f->bounce) {
		bounce_in_use -= f->count << UPAGER_PAGE_SHIFT;
		free(f->bounce);
	}
	object_unref(o);
	free(f);
}

static void fill_write_done(void *userdata, int res);

/* Write what is left of the bounce buffer into the memfd. */
static void fill_write_rest(struct fill *f)
{
	int ret;

	ret = ring_write(f->obj->c->ring, f->obj->memfd, f->bounce + f->written,
			 (uint32_t)(f->done - f->written),
			 (f->first << UPAGER_PAGE_SHIFT) + f->written, fill_write_done, f);
	if (ret < 0)
		fill_finish(f, ret);
}

static void fill_write_done(void *userdata, int res)
{
	struct fill *f = userdata;

	if (res == -EINTR || res == -EAGAIN) {
		fill_write_rest(f);
		return;
	}
	if (res <= 0) {
		fill_finish(f, res < 0 ? res : -EIO);
		return;
	}
	f->written += (uint64_t)res;
	if (f->written < f->done)
		fill_write_rest(f);
	else
		fill_finish(f, 0);
}

/* All read: a bounced fill writes into the memfd before its pages are ready. */
static void fill_read_complete(struct fill *f)
{
	if (!f->bounce || f->done == 0)
		fill_finish(f, 0);
	else
		fill_write_rest(f);
}

/* The store's read is over: @res bytes (short at end of file) or a negative errno. */
static void fill_read_done(void *userdata, int res)
{
	struct fill *f = userdata;

	if (res < 0) {
		fill_finish(f, res);
		return;
	}
	if (f->slot < 0) {
		f->obj->c->stats.bytes_read += (uint64_t)res;
		f->obj->bytes_read += (uint64_t)res;
	}
	f->done = (uint64_t)res;
	fill_read_complete(f);
}

static int fill_submit(struct fill *f)
{
	struct cache *c = f->obj->c;
	uint64_t off = (f->first << UPAGER_PAGE_SHIFT) + f->done;
	uint64_t len = (f->count << UPAGER_PAGE_SHIFT) - f->done;
	int ret;

	if (f->obj->kind == OBJECT_ANON && f->slot < 0) {
		/* Zeroes that waited for room: made now, and the fill is over. */
		if (fallocate(f->obj->memfd, 0, (off_t)off, (off_t)len) < 0)
			return neg_errno();
		f->done = f->count << UPAGER_PAGE_SHIFT;
		fill_finish(f, 0);
		return 0;
	}
	/* From the swap store (a page of shared anonymous memory that left), else the file. */
	if (f->slot >= 0)
		ret = c->store ? store_read(c->store, (uint64_t)f->slot, f->obj->map + off,
					    f->count, fill_read_done, f)
			       : -EIO;
	else
		ret = object_file_store(f->obj)
			      ? store_read(f->obj->store, f->first,
					   f->bounce ? f->bounce : f->obj->map + off, f->count,
					   fill_read_done, f)
			      : -EBADF;
	if (ret == 0 && !f->submitted) {
		f->submitted = true;
		c->inflight += f->count;
	}
	return ret;
}

/* The most bytes of bounce buffers in flight under @c's budget. */
static uint64_t bounce_most(const struct cache *c)
{
	uint64_t budget = c->budget_pages << UPAGER_PAGE_SHIFT;

	return budget ? MIN(BOUNCE_BUDGET, budget / 8) : BOUNCE_BUDGET;
}

/* Submit the fill's read, into a bounce buffer if it is large (see struct fill). */
static int fill_go(struct fill *f)
{
	uint64_t bytes = f->count << UPAGER_PAGE_SHIFT;

	if (f->slot < 0 && f->count >= BOUNCE_MIN_PAGES && !f->bounce &&
	    bounce_in_use + bytes <= bounce_most(f->obj->c)) {
		f->bounce = malloc(bytes);
		if (f->bounce)
			bounce_in_use += bytes;
	}
	return fill_submit(f);
}

/*
 * Whether @f makes new pages of shared anonymous memory (zeroes, not a page read back) that the
 * swap store has no room for, or whose owner's pages hold all of it they may (@over): above the
 * budget they could never leave it again.
 */
static bool fill_strands(const struct fill *f, const struct users_over *over)
{
	const struct cache *c = f->obj->c;

	return c->budget_pages && f->obj->kind == OBJECT_ANON && f->slot < 0 &&
	       (!cache_swap_room(c, f->count) || users_over_swap_full(over, f->obj->owner));
}

/**
 * fill_start_deferred() - start the fills that waited for room in the budget, in order, as long
 * as they fit
 * @c: the cache
 * @force: start them all, room or not (nothing can leave memory for them); but those that would
 *	make pages of shared anonymous memory the swap store cannot take fail with -ENOSPC (their
 *	faults end in SIGBUS, as on a full tmpfs): those pages are the daemon's memory, and could
 *	never leave it
 * @over: the users at their most of the swap store (share.c), or NULL
 */
void fill_start_deferred(struct cache *c, bool force, const struct users_over *over)
{
	while (!list_empty(&c->deferred)) {
		struct fill *f = list_first_entry(&c->deferred, struct fill, deferred);
		int ret;

		if (!force && !cache_room(c, f->count))
			break;
		list_del_init(&f->deferred);
		c->deferred_pages -= f->count;
		if (force && fill_strands(f, over)) {
			log_limited(
				LOG_WARNING,
				"no room for %" PRIu64 " new pages of shared anonymous memory: "
				"the budget is full and the swap store can take none of user %u's",
				f->count, (unsigned)f->obj->owner);
			fill_finish(f, -ENOSPC);
			continue;
		}
		ret = fill_go(f);
		if (ret < 0)
			fill_finish(f, ret);
	}
}

/** fill_deferred_head() - the pages of the first fill waiting for room, or 0 */
uint64_t fill_deferred_head(const struct cache *c)
{
	return list_empty(&c->deferred)
		       ? 0
		       : list_first_entry(&c->deferred, struct fill, deferred)->count;
}

/** fill_deferred_since() - since when (now_ns()) the fill that waits longest for room waits, or 0 */
uint64_t fill_deferred_since(const struct cache *c)
{
	const struct fill *f;
	uint64_t since = 0;

	list_for_each_entry (f, &c->deferred, deferred)
		since = since && since < f->deferred_ns ? since : f->deferred_ns;
	return since;
}

/** fill_cancel_deferred() - the daemon stops: the fills that wait for room end, their pages absent */
void fill_cancel_deferred(struct cache *c)
{
	while (!list_empty(&c->deferred))
		fill_finish(list_first_entry(&c->deferred, struct fill, deferred), -ECANCELED);
}

/* Pages [first, first+count) are filled anew: those paged out before are refaults. */
static void count_refaults(struct object *o, uint64_t first, uint64_t count)
{
	uint64_t *out = object_out_bits(o);

	for (uint64_t p = first; p < first + count; p++) {
		if (!object_bit(out, p))
			continue;
		object_bit_set(out, p, false);
		o->refaults++;
		o->c->stats.refaults++;
	}
}

/*
 * Start one fill of [first, first+count), all absent. *out: the fill, NULL if done already. A
 * fill that does not fit in the budget waits on cache.deferred, its pages filling, until
 * fill_start_deferred() finds room for it.
 */
static int fill_start(struct object *o, uint64_t first, uint64_t count, struct fill **out)
{
	struct cache *c = o->c;
	struct fill *f;
	int ret;

	*out = NULL;
	count_refaults(o, first, count);
	if (o->kind == OBJECT_ANON && object_slot(o, first) < 0 && cache_room(c, count) &&
	    list_empty(&c->deferred)) {
		if (fallocate(o->memfd, 0, (off_t)(first << UPAGER_PAGE_SHIFT),
			      (off_t)(count << UPAGER_PAGE_SHIFT)) < 0)
			return neg_errno();
		for (uint64_t i = 0; i < count; i++)
			set_state(o, first + i, PAGE_READY);
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->obj = object_ref(o);
	f->first = first;
	f->count = count;
	f->slot = object_slot(o, first);
	list_init(&f->waiters);
	list_init(&f->deferred);
	list_add_tail(&f->link, &o->fills);
	if (!cache_room(c, count) || !list_empty(&c->deferred)) {
		/* A fault's few pages go before the long runs of a populate. */
		if (count <= FILL_NOW_MAX_PAGES)
			list_add(&f->deferred, &c->deferred);
		else
			list_add_tail(&f->deferred, &c->deferred);
		c->deferred_pages += count;
		f->deferred_ns = now_ns();
		ret = 0;
	} else {
		ret = fill_go(f);
	}
	if (ret < 0) {
		list_del_init(&f->link);
		if (f->bounce) {
			bounce_in_use -= count << UPAGER_PAGE_SHIFT;
			free(f->bounce);
		}
		object_unref(o);
		free(f);
		return ret;
	}
	for (uint64_t i = 0; i < count; i++)
		set_state(o, first + i, PAGE_FILLING);
	*out = f;
	return 0;
}

static struct fill *fill_find(struct object *o, uint64_t p)
{
	struct fill *f;

	list_for_each_entry (f, &o->fills, link)
		if (p >= f->first && p < f->first + f->count)
			return f;
	return NULL;
}

/* Hang a waiter of @job, if any, on @f: 0, or -ENOMEM. */
static int wait_on(struct fill *f, struct fill_job *job)
{
	struct fill_waiter *w;

	if (!job)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->job = job;
	job->pending++;
	list_add_tail(&w->link, &f->waiters);
	return 0;
}

/*
 * Whether absent page @q continues one fill with page @p: both from the file, both zeroes, or
 * from slots next to each other in the swap store.
 */
static bool run_continues(const struct object *o, uint64_t p, uint64_t q)
{
	int64_t a = object_slot(o, p), b = object_slot(o, q);

	return o->pages[q] == PAGE_ABSENT && (a < 0 ? b < 0 : b == a + (int64_t)(q - p));
}

/*
 * Make sure pages [first, first+count) of @o are ready or on their way, hanging a waiter of @job
 * (if not NULL) on each fill they wait for. Runs of absent pages are read in fills of at most the
 * configured fill size, all in flight at once; pages being filled already are waited on where
 * they are. Return: 0, or a negative errno; fills started before an error go on, and so do the
 * waiters hung on them. -EAGAIN: a page's data is in a nonlinear mapping's writable copy that
 * cannot be taken back now (view_restore_home()); such a page is never read from the file, and
 * its fault must be tried again.
 */
static int start_range(struct object *o, uint64_t first, uint64_t count, struct fill_job *job,
		       uint64_t *started)
{
	uint64_t max_fill = o->c->fill_max_pages;
	uint64_t end = MIN(first + count, object_pages(o));
	struct fill *last = NULL;
	bool away = false;
	int ret;

	for (uint64_t p = first; p < end;) {
		uint8_t st;
		struct fill *f = NULL;
		uint64_t run = 1;

		/* The data lives in a nonlinear mapping's copy: bring it home, never read the file. */
		if (object_restore_home(o, p) == -EAGAIN) {
			away = true;
			p++;
			continue;
		}
		st = get_state(o, p);

		if (st == PAGE_READY) {
			p++;
			continue;
		}
		if (st == PAGE_FILLING) {
			f = fill_find(o, p);
			if (!f)
				return -EIO;
			run = f->first + f->count - p;
		} else {
			while (p + run < end && run < max_fill && run_continues(o, p, p + run))
				run++;
			/* Read-ahead is only for room to spare. */
			if (!job) {
				run = MIN(run, cache_room_pages(o->c));
				if (run == 0)
					return 0;
			}
			ret = fill_start(o, p, run, &f);
			if (ret < 0)
				return ret;
			if (f && started)
				*started += run;
		}
		if (f && f != last) {
			ret = wait_on(f, job);
			if (ret < 0)
				return ret;
			last = f;
		}
		p += run;
	}
	return away && (!job || job->pending == 0) ? -EAGAIN : 0;
}

/**
 * fill_range() - start the fills that pages [first, first+count) of an object need, without
 * waiting for them (read-ahead)
 * @o: the object
 * @first: first page
 * @count: pages; clipped to the object
 * @started: if not NULL, increased by the pages whose reads this call started
 *
 * Return: 0, or a negative errno; fills started before an error go on.
 */
int fill_range(struct object *o, uint64_t first, uint64_t count, uint64_t *started)
{
	return start_range(o, first, count, NULL, started);
}

/**
 * fill_wait() - make sure pages [first, first+count) of an object are ready or on their way, and
 * call @done(@userdata) once the fills they wait for are over
 * @o: the object
 * @first: first page
 * @count: pages; clipped to the object
 * @done: called on the loop when the last fill waited for is over, its pages ready or absent
 * @userdata: for @done
 * @started: if not NULL, increased by the pages whose reads this call started
 *
 * This is the one way to wait for pages (a fault, a populate): the fills own the waiters and
 * wake them as they end. Runs of absent pages are read in fills of at most the configured fill
 * size, all in flight at once; pages being filled already are waited on where they are.
 *
 * Return: FILL_WAITING if @done will be called; it is then, even if a later fill of the range
 * failed to start (its pages stay absent). Otherwise @done is not called, and: 0 if no page is
 * waited for (each is ready, or could not be had), -EAGAIN if a page's data is in a nonlinear
 * mapping's writable copy that cannot be taken back now (view_restore_home(); such a page is
 * never read from the file, and its fault must be tried again), or another negative errno.
 */
int fill_wait(struct object *o, uint64_t first, uint64_t count, fill_done_fn done, void *userdata,
	      uint64_t *started)
{
	struct fill_job *job = calloc(1, sizeof(*job));
	int ret;

	if (!job)
		return -ENOMEM;
	job->done = done;
	job->userdata = userdata;
	ret = start_range(o, first, count, job, started);
	if (job->pending == 0) {
		free(job);
		return ret;
	}
	if (ret < 0)
		log_limited(LOG_WARNING, "reading %s from page %" PRIu64 ": %s", o->path, first,
			    strerror(-ret));
	job->armed = true;
	return FILL_WAITING;
}

/**
 * fill_ready_run() - how many pages from @first on are ready, at most @max
 */
uint64_t fill_ready_run(const struct object *o, uint64_t first, uint64_t max)
{
	uint64_t n = 0, end = MIN(first + max, object_pages(o));

	while (first + n < end && get_state(o, first + n) == PAGE_READY)
		n++;
	return n;
}

/*
 * Read pages [p, p+run) from the kernel's page cache into the cache with RWF_NOWAIT, which never
 * waits for the disk; return how many became ready.
 */
static uint64_t read_nowait(struct object *o, uint64_t p, uint64_t run)
{
	uint64_t off = p << UPAGER_PAGE_SHIFT, bytes, ready;
	ssize_t got;

	if (!cache_room(o->c, run))
		return 0;
	got = preadv2(o->fd_read, &(struct iovec){ o->map + off, run << UPAGER_PAGE_SHIFT }, 1,
		      (off_t)off, RWF_NOWAIT);
	if (got <= 0)
		return 0;
	/* A partial last page is whole only at end of file. */
	bytes = off + (uint64_t)got >= o->file_size ? ALIGN_UP((uint64_t)got, UPAGER_PAGE_SIZE)
						    : ALIGN_DOWN((uint64_t)got, UPAGER_PAGE_SIZE);
	ready = MIN(run, bytes >> UPAGER_PAGE_SHIFT);
	count_refaults(o, p, ready);
	for (uint64_t i = 0; i < ready; i++)
		set_state(o, p + i, PAGE_READY);
	o->c->stats.bytes_from_page_cache += (uint64_t)got;
	return ready;
}

/**
 * fill_small_now() - fill the absent pages of a small range at once if the kernel's page cache
 * holds them
 * @o: the object
 * @first: first page
 * @count: pages; at most FILL_NOW_MAX_PAGES are tried
 *
 * For a caller that would otherwise wait for fill_wait(): a read from the page cache costs less
 * than a trip through io_uring's workers and back. It never waits for the disk, but unlike
 * fill_from_page_cache() it may start the kernel's read-ahead, so it is not for MAP_NONBLOCK.
 */
void fill_small_now(struct object *o, uint64_t first, uint64_t count)
{
	uint64_t end = MIN(first + MIN(count, FILL_NOW_MAX_PAGES), object_pages(o));
	uint64_t file_pages = ALIGN_UP(o->file_size, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT;

	if (o->kind != OBJECT_FILE)
		return;
	end = MIN(end, file_pages);
	for (uint64_t p = first; p < end;) {
		uint64_t run = 0;

		while (p + run < end && o->pages[p + run] == PAGE_ABSENT)
			run++;
		if (run == 0) {
			p++;
			continue;
		}
		if (read_nowait(o, p, run) < run)
			return; /* the rest is likely not cached either */
		p += run;
	}
}

/**
 * fill_from_page_cache() - fill the absent pages of a range that the kernel has in its page cache
 * @o: a file object
 * @first: first page
 * @count: pages
 *
 * Never waits for the disk and starts no read-ahead: mincore(2) on a mapping of the file tells
 * which pages are cached, and only those are copied, with RWF_NOWAIT.
 *
 * Return: pages made ready, or a negative errno.
 */
int fill_from_page_cache(struct object *o, uint64_t first, uint64_t count)
{
	uint64_t end = MIN(first + count, object_pages(o)), n = 0;
	uint64_t file_pages = ALIGN_UP(o->file_size, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT;
	unsigned char *vec;
	void *fmap;
	size_t len;

	if (o->kind != OBJECT_FILE)
		return 0;
	end = MIN(end, file_pages);
	if (first >= end)
		return 0;
	len = (end - first) << UPAGER_PAGE_SHIFT;
	fmap = mmap(NULL, len, PROT_READ, MAP_SHARED, o->fd_read,
		    (off_t)(first << UPAGER_PAGE_SHIFT));
	if (fmap == MAP_FAILED)
		return neg_errno();
	vec = malloc(end - first);
	if (!vec || mincore(fmap, len, vec) < 0) {
		int ret = vec ? neg_errno() : -ENOMEM;

		free(vec);
		munmap(fmap, len);
		return ret;
	}
	munmap(fmap, len);

	/* A page whose data is in a nonlinear mapping's copy comes home from there, as in
	 * fill_range(); one whose copy cannot be taken back now stays away: the file holds an older
	 * page, never to be read into it. */
	for (uint64_t p = first; p < end; p++)
		if (object_restore_home(o, p) == -EAGAIN)
			vec[p - first] = 0;
	for (uint64_t p = first; p < end;) {
		uint64_t run = 0;

		while (p + run < end && (vec[p + run - first] & 1) &&
		       get_state(o, p + run) == PAGE_ABSENT)
			run++;
		if (run == 0) {
			p++;
			continue;
		}
		n += read_nowait(o, p, run);
		p += run;
	}
	free(vec);
	return (int)MIN(n, (uint64_t)INT32_MAX);
}

/**
 * fill_anon_into() - make absent pages of a shared anonymous object by zeroing them through a
 * client's mapping, so that the memory is charged to that client's memory cgroup, not the daemon's
 * @o: a shared anonymous object without nonlinear mappings
 * @uffd: the client's userfaultfd
 * @addr: where object page @first is in the client's mapping (registered, shared)
 * @first: first object page
 * @count: pages, all absent
 * @writable: the client may write them (they are write-back candidates, see object.h)
 *
 * UFFDIO_ZEROPAGE on a shared shmem mapping allocates each page in the memfd, charged to the
 * mapping's mm, and maps it. It stops at a page someone else made meanwhile (-EEXIST): the caller
 * then fills that one as any other page of the object.
 *
 * Return: the pages made from @first on (ready and mapped in the client), or a negative errno if
 * none.
 */
int fill_anon_into(struct object *o, int uffd, uint64_t addr, uint64_t first, uint64_t count,
		   bool writable)
{
	uint64_t done, made;
	int ret = uffdio_zeropage_run(uffd, addr, count << UPAGER_PAGE_SHIFT, &done);

	made = done >> UPAGER_PAGE_SHIFT;
	if (made == 0)
		return ret < 0 ? ret : -EIO;
	for (uint64_t i = 0; i < made; i++)
		object_page_set(o, first + i, PAGE_READY | (writable ? PAGE_WRITABLE : 0));
	object_used(o, first, made);
	return (int)made;
}
