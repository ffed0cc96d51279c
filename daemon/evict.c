// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The budget: which pages leave memory, and when. The pages in memory are the valid pages of
 * every object's memfd (cache.cached) and those being read (cache.inflight); a fill that would
 * take them past the budget waits (fill.c), and read-ahead is not started. Once per loop
 * iteration, at a point where no fault or populate is half done (cache_balance(), from the
 * daemon's check handle), the clock's hand sweeps the objects' pages and sends pages out until
 * the total is a slack below the budget again, then starts the fills that waited.
 *
 * The clock: a page mapped into a client since the hand last passed it (object.used, set as a
 * fault or a populate maps it) is spared once, its bit cleared; any other page goes. So pages
 * read ahead and never touched go at the first pass, and a page that keeps faulting stays. A page
 * that clients keep touching without faulting looks unused to the daemon (the accessed bit of
 * another process's page table is not visible to it, see docs/design.md): it goes at the second
 * pass and comes back at its next touch, a refault.
 *
 * Which pages may go, and how: a clean page of a file is punched out of the memfd, which unmaps
 * it from every client; a dirty one is written back first (write-protected in every client, then
 * written: object_writeback()), and punched by a later sweep if no write came meanwhile. Nothing
 * of an object is touched while any write-back of it is asked for or under way, since pages being
 * written back are taken for clean before they are in the file. Not sent out: pages that
 * nonlinear mappings hold copies of (the copies go first, view-out.c), shared anonymous pages
 * while there is no swap store or while the object has nonlinear mappings, and pages being
 * filled; a page that some client may write without write-protect faults never becomes clean
 * (object.c), so it stays too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "cache.h"
#include "bufpool.h"
#include "evict.h"
#include "fill.h"
#include "latency.h"
#include "log.h"
#include "object.h"
#include "store.h"

/* How long a fill waits for room while pages are on their way out before it reads on above the
 * budget (cache_balance()). */
#define FILL_PATIENCE_NS (1000ULL * 1000 * 1000)

/**
 * cache_slack() - how far below the budget a sweep brings the pages in memory: 1/16 of the
 * budget, at least 64 pages and at most 16384 (64 MiB), and never more than a quarter of it
 */
uint64_t cache_slack(const struct cache *c)
{
	return slack_pages(c->budget_pages);
}

/** slack_pages() - the slack of a budget of @budget_pages (see cache_slack()) */
uint64_t slack_pages(uint64_t budget_pages)
{
	return MIN(MIN(MAX(budget_pages / 16, 64), 16384), budget_pages / 4);
}

/** cache_low_mark() - where a sweep brings the pages in memory down to: the budget less the slack */
uint64_t cache_low_mark(const struct cache *c)
{
	uint64_t slack = cache_slack(c);

	return c->budget_pages > slack ? c->budget_pages - slack : 0;
}

/**
 * cache_must_page_out() - whether pages must leave memory now: those the budget counts are above
 * it less half the slack (each kind that can leave gives its share then)
 */
bool cache_must_page_out(const struct cache *c)
{
	return c->budget_pages && cache_use(c) > c->budget_pages - cache_slack(c) / 2;
}

static bool evictable(const struct object *o)
{
	return (o->kind == OBJECT_FILE || o->c->store) && o->cached > 0 && object_wb_idle(o);
}

/* A home page that nonlinear mappings hold copies of stays (view.c: the copies need it valid). */
static bool has_copies(const struct object *o, uint64_t p)
{
	return o->view_ops && o->view_ops->has_copies(o, p);
}

struct sweep {
	uint64_t want; /* pages still to send out */
	uint64_t scan; /* ready pages the hand may still look at */
	uint64_t written; /* dirty pages whose write-back it asked for */
	uint64_t dropped;
	const struct users_over *over; /* whose anonymous pages stay: swap_full (or NULL) */
};

/* Whether any of pages [first, first+n) of @o is locked in memory in a client. */
static bool pinned(struct object *o, uint64_t first, uint64_t n)
{
	const struct cache_hooks *h = o->c->hooks;

	return h && h->pinned && h->pinned(o, first, n);
}

/*
 * Punch the pages of [first, first+n) of @o that no client has locked in memory (a punched page
 * leaves even a locked mapping); *kept: the others. Return: pages dropped.
 */
static uint64_t drop_unpinned(struct object *o, uint64_t first, uint64_t n, uint64_t *kept)
{
	int ret;

	*kept = 0;
	if (n == 0)
		return 0;
	if (pinned(o, first, n)) {
		uint64_t dropped = 0, k;

		if (n == 1) {
			*kept = 1;
			return 0;
		}
		dropped += drop_unpinned(o, first, n / 2, &k);
		*kept += k;
		dropped += drop_unpinned(o, first + n / 2, n - n / 2, &k);
		*kept += k;
		return dropped;
	}
	ret = object_drop(o, first, n);
	if (ret < 0) {
		log_limited(LOG_WARNING, "paging out %s: %s", o->path, strerror(-ret));
		*kept = n;
		return 0;
	}
	return n;
}

/* Send out a run of clean pages [first, first+n). */
static void drop_run(struct object *o, uint64_t first, uint64_t n, struct sweep *sw)
{
	uint64_t kept, dropped = drop_unpinned(o, first, n, &kept);

	sw->dropped += dropped;
	sw->want -= MIN(dropped, sw->want);
}

/* The most pages one write to the swap store takes, and page-outs under way in all. */
#define SWAP_OUT_MAX_PAGES 256 /* a buffer of the pool */
_Static_assert(SWAP_OUT_MAX_PAGES << UPAGER_PAGE_SHIFT <= BUFPOOL_BYTES,
	       "a page-out fits a buffer");
#define SWAP_OUTS_MAX 64

/* A run of a shared anonymous object's pages on their way to the swap store. */
struct swap_out {
	struct list_head link; /* object.swap_outs */
	struct object *o; /* a reference */
	uint64_t first, count, slot;
	void *copy; /* the pages as they were written out, from the buffer pool */
};

static unsigned swap_outs_running;
static uint64_t swap_out_pages; /* pages of those: leaving, still in memory until written */

static bool swapping_out(const struct object *o, uint64_t p)
{
	const struct swap_out *so;

	list_for_each_entry (so, &o->swap_outs, link)
		if (p >= so->first && p < so->first + so->count)
			return true;
	return false;
}

/*
 * The write of a run is over: each page still clean (no write since it was write-protected)
 * leaves memory and keeps its slot; a page written meanwhile stays, and its slot is freed.
 */
/* A slot written for nothing: free it, unless the store is gone (the daemon stops). */
static void slot_free(struct object *o, uint64_t slot)
{
	if (o->c->store)
		store_free(o->c->store, slot, 1);
}

static void swap_out_done(void *userdata, int res)
{
	struct swap_out *so = userdata;
	struct object *o = so->o;
	uint64_t run = 0;

	list_del_init(&so->link);
	bufpool_put(&o->c->bufpool, so->copy);
	swap_outs_running--;
	swap_out_pages -= so->count;
	if (res < 0)
		log_limited(LOG_WARNING, "paging out to the swap store: %s", strerror(-res));
	res = res < 0 ? res : 0;
	for (uint64_t i = 0; i <= so->count; i++) {
		uint64_t p = so->first + i;
		bool out = i < so->count && res == 0 &&
			   (o->pages[p] & (PAGE_STATE_MASK | PAGE_AWAY | PAGE_WRITABLE)) ==
				   PAGE_READY &&
			   !has_copies(o, p);

		if (i < so->count && !out) {
			slot_free(o, so->slot + i);
			if (res < 0 && (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY)
				object_page_set(o, p, o->pages[p] | PAGE_WRITABLE);
		}
		if (out) {
			run++;
			continue;
		}
		if (run) {
			uint64_t kept;

			/* The slots first: a daemon killed before the punch is over finds the
			 * pages in them (object_slots_adopt()). A page locked meanwhile, or not
			 * punched, stays, and so does its data; its slot is freed. */
			for (uint64_t q = p - run; q < p; q++)
				object_slot_set(o, q, (int64_t)(so->slot + (q - so->first)));
			drop_unpinned(o, p - run, run, &kept);
			for (uint64_t q = p - run; q < p; q++)
				if ((o->pages[q] & PAGE_STATE_MASK) != PAGE_ABSENT)
					object_slot_set(o, q, -1);
		}
		run = 0;
	}
	object_unref(o);
	free(so);
}

/*
 * Copy pages [first, first+n) of @o out of its memfd into @buf. A read, not the daemon's mapping:
 * that would keep a page table over the pages once they are gone.
 */
static int read_pages(struct object *o, uint64_t first, uint64_t n, uint8_t *buf)
{
	uint64_t len = n << UPAGER_PAGE_SHIFT, done = 0;

	while (done < len) {
		ssize_t got = pread(o->memfd, buf + done, len - done,
				    (off_t)((first << UPAGER_PAGE_SHIFT) + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? neg_errno() : -EIO;
		done += (uint64_t)got;
	}
	return 0;
}

/*
 * Send pages [first, first+n) of a shared anonymous object to the swap store, or as many of the
 * first of them as the store has slots next to each other for: write-protected in every client,
 * taken for clean, written; swap_out_done() drops what stayed clean. Return: the pages sent, or a
 * negative errno (the pages stay, dirty).
 */
static int64_t swap_out(struct object *o, uint64_t first, uint64_t n)
{
	struct cache *c = o->c;
	struct swap_out *so;
	uint64_t slot;
	int64_t got;
	int ret;

	if (swap_outs_running >= SWAP_OUTS_MAX || pinned(o, first, n))
		return -EBUSY;
	ret = object_slots_map(o);
	if (ret < 0)
		return ret;
	got = store_alloc_run(c->store, n, &slot);
	if (got < 0)
		return got;
	n = (uint64_t)got;
	if (!c->hooks || !c->hooks->protect(o, first, n)) {
		store_free(c->store, slot, n);
		return -EBUSY;
	}
	so = calloc(1, sizeof(*so));
	if (so)
		so->copy = bufpool_get(&c->bufpool);
	if (!so || !so->copy) {
		free(so);
		store_free(c->store, slot, n);
		return -ENOMEM;
	}
	/*
	 * The store writes a copy, as write-back does: the memfd's pages may change while the write
	 * is under way, write-protected in every client as they are: a nonlinear mapping's copy
	 * written takes its page away (a hole) and brings it home again (view.c). A write straight
	 * from the memfd then wrote the hole, zeroes, and the checksum was taken at its end of what
	 * had come home: the page came back corrupt.
	 */
	ret = read_pages(o, first, n, so->copy);
	so->o = object_ref(o);
	so->first = first;
	so->count = n;
	so->slot = slot;
	for (uint64_t p = first; p < first + n; p++)
		object_page_set(o, p, o->pages[p] & (uint8_t)~PAGE_WRITABLE);
	if (ret == 0)
		ret = store_write(c->store, slot, so->copy, n, swap_out_done, so);
	if (ret < 0) {
		for (uint64_t p = first; p < first + n; p++)
			object_page_set(o, p, o->pages[p] | PAGE_WRITABLE);
		store_free(c->store, slot, n);
		object_unref(o);
		bufpool_put(&c->bufpool, so->copy);
		free(so);
		return ret;
	}
	list_add_tail(&so->link, &o->swap_outs);
	swap_outs_running++;
	swap_out_pages += n;
	return (int64_t)n;
}

/*
 * Sweep @o from page @p on until the sweep has what it wants, has looked at enough, or has asked
 * for one write of dirty pages: a write-back of a file (the object is then left alone until it is
 * over) or a page-out of a shared anonymous run to the swap store (*more: the sweep may go on).
 * Return: the page the hand stops at, object_pages(o) if it went through the whole object.
 */
static uint64_t sweep_run(struct object *o, uint64_t p, struct sweep *sw, bool *more)
{
	uint64_t end = object_pages(o), clean = 0, dirty = 0, spared = 0;
	bool anon = o->kind == OBJECT_ANON;

	*more = false;
	for (; p < end && sw->want > clean + dirty && sw->scan > 0; p++) {
		uint8_t st = o->pages[p];

		/* Runs of absent pages (most of a sparse object) are skipped eight at a time. */
		if (st == PAGE_ABSENT && (p & 7) == 0 && p + 8 <= end &&
		    *(const uint64_t *)(o->pages + p) == 0 && clean == 0 && dirty == 0) {
			p += 7;
			continue;
		}
		if ((st & (PAGE_STATE_MASK | PAGE_AWAY)) != PAGE_READY || has_copies(o, p) ||
		    (anon && (dirty == SWAP_OUT_MAX_PAGES || swapping_out(o, p)))) {
			if (dirty)
				break;
			drop_run(o, p - clean, clean, sw);
			clean = 0;
			continue;
		}
		sw->scan--;
		if (object_bit(o->used, p)) {
			object_bit_set(o->used, p, false);
			/* The run ends here, and the hand goes on past this page, whose chance it
			 * was: the next run starting on it would take it and end at the next used
			 * page, a page a run through pages all used. */
			spared = dirty ? 1 : 0;
			if (dirty)
				break;
			drop_run(o, p - clean, clean, sw);
			clean = 0;
			continue;
		}
		/* A shared anonymous page that kept its slot since it came back, unwritten, is
		 * clean: its data is in the slot. */
		if ((anon && !(object_slot(o, p) >= 0 && list_empty(&o->views))) ||
		    (st & PAGE_WRITABLE)) {
			drop_run(o, p - clean, clean, sw);
			clean = 0;
			dirty++;
			continue;
		}
		if (dirty)
			break;
		clean++;
	}
	drop_run(o, p - clean, clean, sw);
	if (dirty && anon && users_over_swap_full(sw->over, o->owner)) {
		/* Its owner's pages hold all the store they may: these stay. */
		*more = true;
	} else if (dirty && anon) {
		int64_t ret = swap_out(o, p - dirty, dirty);

		if (ret > 0) {
			sw->written += (uint64_t)ret;
			sw->want -= MIN((uint64_t)ret, sw->want);
			*more = true;
			/* The pages the store had no room for wait for the hand's next turn. */
			if ((uint64_t)ret < dirty)
				return p - dirty + (uint64_t)ret;
		} else if (ret != -EBUSY) {
			log_limited(LOG_WARNING, "paging out to the swap store: %s",
				    strerror((int)-ret));
		}
	} else if (dirty) {
		int ret = object_writeback(o, p - dirty, dirty, false, NULL);

		if (ret == 0) {
			sw->written += dirty;
			sw->want -= MIN(dirty, sw->want);
			o->c->stats.pages_written_out += dirty;
		}
	}
	return p + spared;
}

/* Sweep @o from page @p on: the runs of one object, see sweep_run(). */
static uint64_t sweep_object(struct object *o, uint64_t p, struct sweep *sw)
{
	bool more = true;

	while (more && p < object_pages(o) && sw->want > 0 && sw->scan > 0)
		p = sweep_run(o, p, sw, &more);
	return p;
}

static struct object *object_at_or_after(struct cache *c, uint64_t id)
{
	struct object *o;

	list_for_each_entry (o, &c->objects, link)
		if (o->id >= id)
			return o;
	return list_empty(&c->objects) ? NULL : list_first_entry(&c->objects, struct object, link);
}

static struct object *object_next(struct cache *c, struct object *o)
{
	return o->link.next == &c->objects ? list_first_entry(&c->objects, struct object, link)
					   : list_entry(o->link.next, struct object, link);
}

/*
 * Move the hand through the objects (of user @owner only, unless it is NULL) until the sweep has
 * what it wants or has gone round twice. Each object keeps where its hand stopped.
 */
static void sweep(struct cache *c, struct sweep *sw, const uid_t *owner)
{
	struct object *o = object_at_or_after(c, c->hand_object);
	uint64_t visits = 2 * (uint64_t)c->n_objects + 1;

	for (; o && visits > 0 && sw->want > 0 && sw->scan > 0; visits--) {
		if (evictable(o) && (!owner || o->owner == *owner)) {
			o->hand = sweep_object(o, o->hand, sw);
			if (o->hand < object_pages(o))
				break;
			o->hand = 0;
		}
		o = object_next(c, o);
	}
	if (o && !owner)
		c->hand_object = o->id;
}

/* The users over their share give pages of their objects first, each what it is still over. */
static void sweep_users_over_share(struct cache *c, struct sweep *sw, struct users_over *over)
{
	for (size_t i = 0; over && i < over->n && sw->want > 0; i++) {
		struct user_over *u = &over->u[i];
		struct sweep mine = { .want = MIN(u->pages, sw->want),
				      .scan = sw->scan,
				      .over = sw->over };
		uint64_t gone;

		if (!mine.want)
			continue;
		sweep(c, &mine, &u->uid);
		gone = mine.dropped + mine.written;
		u->pages -= MIN(u->pages, gone);
		sw->want -= MIN(sw->want, gone);
		sw->dropped += mine.dropped;
		sw->written += mine.written;
	}
}

static bool writeback_pending(struct cache *c)
{
	struct object *o;

	if (swap_outs_running)
		return true;
	list_for_each_entry (o, &c->objects, link)
		if (!object_wb_idle(o))
			return true;
	return false;
}

/**
 * cache_balance() - keep the pages in memory within the budget: send pages out while they are
 * above it less half the slack, down to it less the slack, then start the fills that waited for
 * room; if nothing can go and nothing is under way to make room, or the first waited over a
 * second (FILL_PATIENCE_NS), start them anyway (counted in over_budget) rather than wait for ever
 * @c: the cache; called where no fault or populate is half done
 * @over: the users over their share (share.c), whose objects give pages first; or NULL
 *
 * Return: whether pages left memory or are on their way out, so that there will be room for
 * what waits for it (view-copy.c) without reading on above the budget.
 */
bool cache_balance(struct cache *c, struct users_over *over)
{
	uint64_t slack = cache_slack(c), use, low;
	struct sweep sw = { .over = over };

	if (c->store)
		c->store->ops->figures(c->store, &c->swap_pages, &c->swap_used);
	if (c->budget_pages == 0) {
		fill_start_deferred(c, true, over);
		return false;
	}
	/* Pages on their way to the store are gone already, as far as the sweep is concerned:
	 * sweeping for them again would send out more than the budget needs. */
	use = cache_use(c) + MIN(c->deferred_pages, slack);
	use -= MIN(use, swap_out_pages);
	low = cache_low_mark(c);
	if (use > c->budget_pages - slack / 2 || c->deferred_pages) {
		/* Down to the budget less the slack, and room for the first fill that waits. */
		uint64_t head = cache_use(c) + fill_deferred_head(c) - swap_out_pages;

		sw.want = MAX(use > low ? use - low : 0,
			      head > c->budget_pages ? head - c->budget_pages : 0);
		sw.scan = 2 * c->cached + 64;
		sweep_users_over_share(c, &sw, over);
		if (sw.want && !(over && over->waiting))
			sweep(c, &sw, NULL);
	}
	fill_start_deferred(c, false, over);
	if (!list_empty(&c->deferred) && c->inflight == 0 && sw.dropped == 0 && sw.written == 0 &&
	    !writeback_pending(c)) {
		c->stats.over_budget++;
		log_limited(LOG_WARNING,
			    "%" PRIu64 " pages in memory, budget %" PRIu64
			    ": none can be paged out; reading on above the budget",
			    cache_use(c), c->budget_pages);
		fill_start_deferred(c, true, over);
	} else if (!list_empty(&c->deferred) &&
		   now_ns() - fill_deferred_since(c) > FILL_PATIENCE_NS) {
		/* A write-out that does not end: a client's write(2) from its own mapping of the
		 * file holds the file's lock, which the write-back waits for, while its fault waits
		 * for the room that write-back would make. */
		c->stats.over_budget++;
		log_limited(LOG_WARNING,
			    "a fill waited over a second for room, the pages on their way out do "
			    "not leave: reading on above the budget");
		fill_start_deferred(c, true, over);
	}
	return sw.dropped > 0 || sw.written > 0 || writeback_pending(c);
}
