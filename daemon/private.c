// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Private anonymous pages. They live in the client's mm, not in a memfd of the daemon: the daemon
 * maps them (the zero page at a first touch, UFFDIO_COPY at a page-in) and counts them in the
 * budget, but only the client can let them go (UFFDIO_MOVE works within the mm of its caller, and
 * process_madvise() has no MADV_DONTNEED for another process). So a page-out, of the pages the
 * clock picks within a window (a page set, common/page-set.h), goes:
 *
 *   write-protect each run of them (UFFDIO_WRITEPROTECT) -> read them all (one process_vm_readv)
 *   -> write them to contiguous slots of the swap store -> one DROP to the client's control
 *   thread, which moves the pages still write-protected into its spare area (UFFDIO_MOVE),
 *   empties that (MADV_DONTNEED), and says which moved.
 *
 * A write after the write-protect faults here: before the DROP the page stays (dirty again) and
 * its slot is freed; once the DROP is sent, any fault on the set's pages waits for its answer. The
 * control thread moves only pages that still carry the write-protection (pagemap bit 57), so an
 * address that holds another mapping by the time it acts loses nothing. A touch after the move is
 * a missing fault: the page comes back from the store (UFFDIO_COPY), charged to the client's
 * memory cgroup as any of its pages. A run of zeroes goes without a write.
 *
 * After fork() both processes map the same pages, and each counts them (a write is a copy the
 * kernel makes without a fault). A page-out of one reads it with process_vm_readv(), whose pin
 * gives that process a copy of its own (the kernel unshares a shared anonymous page it pins), which
 * then moves; a page still shared at the DROP is refused by UFFDIO_MOVE (-EBUSY) and stays. The
 * slots of pages out at the fork are shared: the child's table gets them with a reference each,
 * and whichever process faults its page back reads its own copy.
 *
 * Pages of MAP_DROPPABLE mappings go before any other, used or not, and are neither read nor
 * written: once moved out, a touch maps zeroes, as Linux's dropped pages read.
 *
 * A private mapping of an object (region_keeps_copies()) has private pages too: the copies the
 * kernel makes of the pages the process writes. The object's pages go in write-protected, so the
 * first write to each comes here first: the page is counted from then on, and the kernel makes the
 * copy as the write goes on. Such a copy goes out as an anonymous page does, but UFFDIO_MOVE
 * refuses pages of a mapping of shmem: the control thread drops it in place (MADV_DONTNEED), which
 * comes back as an UFFD_EVENT_REMOVE that private_remove() tells from the process's own. A touch
 * of a copy that is out is a fault on the object's page (a minor or missing fault): one whose page
 * has a slot here reads it back (UFFDIO_COPY makes an anonymous page there again); others are the
 * object's. A copy that is all zeroes is written all the same: zeroes are not what its object
 * page holds.
 *
 * Which pages are in memory, leaving, being read back or out is the space's table (ptable.c); the
 * cache's totals of private pages follow its counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "channel.h"
#include "common/macro.h"
#include "common/mman.h"
#include "common/page-set.h"
#include "context.h"
#include "evict.h"
#include "latency.h"
#include "log.h"
#include "object.h"
#include "page-trail.h"
#include "private.h"
#include "proto/codec.h"
#include "remote-read.h"
#include "space.h"
#include "state.h"
#include "store.h"
#include "uffdio.h"
#include "vma-flags.h"
#include "zero-ahead.h"

#define SPARE_PARTS 4
#define OUT_MAX_PAGES UPAGER_DROP_MAX_PAGES /* a page-out, and a part of the spare area */
#define CUT_EVERY_NS (10 * 1000 * 1000) /* copies past the end of a file: 10 ms between looks */
#define IN_AHEAD_MAX_PAGES 64 /* a page-in of a run read in order: 256 KiB at most at once */
_Static_assert((OUT_MAX_PAGES << UPAGER_PAGE_SHIFT) <= BUFPOOL_BYTES &&
		       (IN_AHEAD_MAX_PAGES << UPAGER_PAGE_SHIFT) <= BUFPOOL_BYTES,
	       "a page-out or a page-in fits a buffer of the pool");
#define DROP_PATIENCE_NS (2ULL * 1000 * 1000 * 1000) /* a client slower to answer is stalled */

/* Private pages on their way out, one DROP's. */
struct page_out {
	struct list_head link; /* private_pages.outs */
	struct chan_req req; /* its DROP */
	struct space *s; /* a reference */
	struct page_set set; /* its pages, each the rank of its slot and spare page */
	int64_t slot; /* the first of set.n slots, or -1: all zeroes, nothing written */
	unsigned part;
	bool dropping; /* the DROP is sent: faults on its pages wait for the answer */
	bool slots_given; /* its slots are in the table (or let go of) now, not its own */
	bool clean; /* pages that kept their slots since they came back: nothing to write */
	/* Its DROP goes in place (UPAGER_DROP_IN_PLACE): copies of object pages, or private
	 * anonymous pages of a mapping made read-only (region.drop_in_place), which UFFDIO_MOVE
	 * refuses: the control thread drops them where they are, each run an UFFD_EVENT_REMOVE. */
	bool in_place;
	struct private_wait *held;
	size_t n_held;
	/* By rank: copies an MADV_DONTNEED took while the DROP was under way, the control
	 * thread's or the client's; and those two took: the client's too */
	uint64_t removed[UPAGER_DROP_MAX_PAGES / 64], removed_twice[UPAGER_DROP_MAX_PAGES / 64];
	void *buf; /* the run read from the client, until it is written */
	struct page_trail trail; /* where its pages are now */
	struct page_set sent; /* those its DROP names: the pages still where they were read */
};

/*
 * The table of a fork: its parent's as it was when the daemon read the fork's event, which is when
 * the kernel let the parent go on (private_fork_read()); the child's space takes it when the
 * daemon follows the fork (private_fork()). What the daemon does to the parent in between (a page
 * read back and mapped, its slot let go of) comes after the fork and is not the child's; the
 * events of the parent's mm queued before the fork's (unmap, MADV_DONTNEED, mremap) came before
 * it, and change this table too.
 */
struct fork_table {
	struct list_head link; /* private_pages.forks */
	int ufd; /* the child's userfaultfd, as the event names it */
	struct ptable table;
};

static void set_present(struct cache *c, struct ptable *t, struct ptable_chunk *ch, unsigned i,
			bool on)
{
	if (ptable_set_present(t, ch, i, on))
		c->private_pages += on ? 1 : (uint64_t)-1;
}

static void set_leaving(struct cache *c, struct ptable *t, struct ptable_chunk *ch, unsigned i,
			bool on)
{
	if (ptable_set_leaving(t, ch, i, on))
		c->private_leaving += on ? 1 : (uint64_t)-1;
}

/* After a change to many pages of @t, whose counts were @present and @leaving before. */
static void account(struct cache *c, const struct ptable *t, uint64_t present, uint64_t leaving)
{
	c->private_pages += t->present - present;
	c->private_leaving += t->leaving - leaving;
}

/*
 * Under an fd store each chunk that holds a slot is a saved record: which of its pages are in the
 * swap store, and where. What is in memory is not saved: a daemon that takes over reads it from
 * the client's pagemap (private_adopt()).
 */
static void chunk_save(struct state_handle *h, struct state *st)
{
	struct ptable_chunk *ch = container_of(h, struct ptable_chunk, saved);
	struct space *s = h->owner;
	uint32_t slots[PTABLE_CHUNK_PAGES] = { 0 };
	uint16_t len = sizeof(slots);
	struct state_io io;

	if (ch->slot)
		memcpy(slots, ch->slot, sizeof(slots));
	state_begin(&io, st, STATE_REC_PRIVATE);
	STATE_NUM(&io, 1, s->id);
	STATE_NUM(&io, 2, ch->base);
	state_bytes(&io, 3, (uint8_t *)slots, &len, sizeof(slots));
	STATE_NUM(&io, 4, ch->dropped);
	state_end(&io);
}

static void chunk_changed(struct ptable *t, struct ptable_chunk *ch)
{
	struct space *s = container_of(t, struct space, priv.table);

	if (!s->dead)
		state_mark(s->d->state, &ch->saved, chunk_save, s);
}

static void chunk_gone(struct ptable *t, struct ptable_chunk *ch)
{
	struct space *s = container_of(t, struct space, priv.table);

	state_forget(s->d->state, &ch->saved);
}

/* A space's private_pages start zeroed, and are made ready at their first use here. */
static struct private_pages *ready(struct space *s)
{
	struct private_pages *pp = &s->priv;

	if (!pp->outs.next) {
		list_init(&pp->outs);
		list_init(&pp->forks);
		pp->table.changed = chunk_changed;
		pp->table.gone = chunk_gone;
	}
	return pp;
}

/** private_mark_all() - every chunk of @s that holds a slot is saved again (state_ops.mark_all) */
void private_mark_all(struct space *s)
{
	struct ptable *t = &ready(s)->table;

	for (struct ptable_chunk *ch = ptable_from(t, 0); ch; ch = ptable_next(t, ch))
		if (ch->slot)
			chunk_changed(t, ch);
}

/** private_load() - take back the saved record of a chunk of private pages (STATE_REC_PRIVATE) */
void private_load(struct daemon *d, struct state_io *io)
{
	uint32_t slots[PTABLE_CHUNK_PAGES] = { 0 };
	uint16_t len = 0;
	uint64_t id = 0, base = 0, dropped = 0;
	struct ptable_chunk *ch;
	struct space *s;

	STATE_NUM(io, 1, id);
	STATE_NUM(io, 2, base);
	state_bytes(io, 3, (uint8_t *)slots, &len, sizeof(slots));
	STATE_NUM(io, 4, dropped);
	s = space_find(d, id);
	if (!s || len != sizeof(slots) || base % PTABLE_CHUNK_BYTES ||
	    ptable_load_slots(&ready(s)->table, base, slots) < 0)
		log_limited(LOG_ERR, "a saved chunk of private pages at %#" PRIx64 " is lost",
			    base);
	else if ((ch = ptable_find(&s->priv.table, base)))
		ch->dropped = dropped;
}

/*
 * The pages of @s in memory, after a take-over: those of its private anonymous regions that its
 * pagemap shows present (the daemon mapped each of them), and the copies its private mappings of
 * objects made; those written since they came back from the store (not write-protected) let go of
 * the slots they kept.
 */
static void adopt_present(struct space *s)
{
	struct mm_mark m = space_mm(s);
	int fd = mm_open(&m, "pagemap");
	struct region *r;

	if (fd < 0)
		return;
	region_for_each(r, &s->regions)
	{
		uint64_t entries[512];

		if ((r->obj && !region_keeps_copies(s, r)) || r->view)
			continue;
		for (uint64_t a = r->start; a < region_end(r);) {
			uint64_t n = MIN((region_end(r) - a) >> UPAGER_PAGE_SHIFT, 512);
			ssize_t got =
				pread(fd, entries, n * 8, (off_t)(a >> UPAGER_PAGE_SHIFT) * 8);

			if (got <= 0)
				break;
			for (uint64_t k = 0, run = 0; k <= (uint64_t)got / 8; k++) {
				uint64_t page = a + (k << UPAGER_PAGE_SHIFT);
				bool object_page = k < (uint64_t)got / 8 && r->obj &&
						   (entries[k] >> 63 & 1) && (entries[k] >> 61 & 1);
				struct ptable_chunk *ch;

				/* Of a private mapping of an object, only copies. The
				 * object's pages (bit 61) are protected again, a run at a
				 * time: one the daemon before unprotected ahead of a writer
				 * (copy_window()) would be copied unseen. */
				run = object_page ? run + 1 : run;
				if (run && (!object_page || k + 1 == (uint64_t)got / 8)) {
					uint64_t end = page + (object_page ? UPAGER_PAGE_SIZE : 0);

					uffdio_writeprotect(s->uffd,
							    end - (run << UPAGER_PAGE_SHIFT),
							    run << UPAGER_PAGE_SHIFT, true);
					run = 0;
				}
				if (k == (uint64_t)got / 8 || !(entries[k] >> 63 & 1) ||
				    object_page || !(ch = ptable_get(&s->priv.table, page)))
					continue;
				set_present(&s->d->cache, &s->priv.table, ch,
					    ptable_index(ch, page), true);
				/* A page that kept its slot when it came back is write-protected
				 * until its first write, which lets go of the slot. One not
				 * protected any more may have been written after the last save,
				 * which still names the slot: a page-out would take it for clean.
				 * (One protected again by a page-out was saved before.) */
				if (!(entries[k] >> 57 & 1))
					ptable_clear_slot(&s->priv.table, s->d->cache.store, ch,
							  ptable_index(ch, page));
			}
			a += (uint64_t)got / 8 << UPAGER_PAGE_SHIFT;
		}
	}
	close(fd);
}

/**
 * private_adopt() - after a take-over: the slots of every space's private pages allocated again
 * in the store taken over, and the pages in memory counted
 */
void private_adopt(struct daemon *d)
{
	struct space *s;

	list_for_each_entry (s, &d->spaces, link) {
		struct ptable *t = &ready(s)->table;

		if (d->cache.store && ptable_adopt_slots(t, d->cache.store) < 0)
			log_error("pid %d: slots of private pages taken over are not free in the "
				  "swap store; reading them back fails",
				  (int)s->pid);
		adopt_present(s);
	}
}

/**
 * private_set_spare() - the client's spare area, into which pages that leave memory are moved
 * (CONTROL); registered here on the space's userfaultfd, as UFFDIO_MOVE wants its target
 *
 * Return: 0 or a negative errno.
 */
int private_set_spare(struct space *s, uint64_t addr, uint64_t len)
{
	struct private_pages *pp = ready(s);
	struct region *r;
	int ret;

	if (!addr && !len)
		return 0;
	r = region_lower(&s->regions, addr);
	if (!addr || !IS_ALIGNED(addr, UPAGER_PAGE_SIZE) ||
	    len != SPARE_PARTS * (OUT_MAX_PAGES << UPAGER_PAGE_SHIFT) || addr + len < addr ||
	    (r && r->start < addr + len))
		return -EINVAL;
	ret = uffdio_register(s->uffd, addr, len, UFFDIO_REGISTER_MODE_MISSING);
	if (ret < 0)
		return ret;
	pp->spare = addr;
	pp->spare_busy = 0;
	space_mark(s);
	return 0;
}

/*
 * How many pages from the empty page at @addr a first write maps zeroes over: zero_ahead_window()
 * for a write at the end of the run of @r, within the mapping, the room the budget has and the
 * empty pages (ptable_page_empty()); 1 for anything else. The run is r->ra_next (the page after
 * it) and r->ra_window (its pages).
 */
static uint64_t zero_window(struct space *s, struct region *r, uint64_t addr, uint64_t flags)
{
	uint64_t n, k;

	if (!r)
		return 1;
	if (!(flags & UFFD_PAGEFAULT_FLAG_WRITE) || addr != r->ra_next) {
		r->ra_window = 0; /* a new run, of this page */
		return 1;
	}
	n = zero_ahead_window(&s->d->config, r->ra_window);
	n = MIN(n, (region_end(r) - addr) >> UPAGER_PAGE_SHIFT);
	n = MIN(n, cache_room_pages(&s->d->cache));
	for (k = 1; k < n && ptable_page_empty(&s->priv.table, addr + (k << UPAGER_PAGE_SHIFT));
	     k++)
		;
	return k;
}

/*
 * A touch of the empty page at @addr (@flags: the fault's), a first one or of a page that went
 * out all zeroes: for a read the zero page there; for a write a zeroed page of the process's own
 * (the zero page would fault again at once), and for a long run written in order over the window
 * after it too. The pages are in memory and used from now on.
 */
static void zero_in(struct space *s, uint64_t addr, uint64_t flags)
{
	struct region *r = region_find(&s->regions, addr);
	uint64_t n = zero_window(s, r, addr, flags), done = 0;
	struct ptable *t = &s->priv.table;

	/* The window may cross a VMA of the client (mprotect() split it): then the pages up to
	 * there (done), or the one page faulted on. */
	if (flags & UFFD_PAGEFAULT_FLAG_WRITE)
		(void)uffdio_copy_zeroes(s->uffd, addr, n << UPAGER_PAGE_SHIFT, &done);
	else if (n > 1)
		(void)uffdio_zeropage_run(s->uffd, addr, n << UPAGER_PAGE_SHIFT, &done);
	if (done == 0) {
		int ret = uffdio_resolve_zero(s->uffd, addr, UPAGER_PAGE_SIZE);

		/* -EEXIST: the page was in the client already, in memory all the same. */
		if (ret == 0 || ret == -EEXIST)
			done = UPAGER_PAGE_SIZE;
	}
	for (uint64_t a = addr; a < addr + done; a += UPAGER_PAGE_SIZE) {
		struct ptable_chunk *ch = ptable_get(t, a);

		if (!ch)
			break;
		set_present(&s->d->cache, t, ch, ptable_index(ch, a), true);
		ch->used |= 1ULL << ptable_index(ch, a);
	}
	if (r && done)
		zero_ahead_step(&r->ra_next, &r->ra_window, addr, done >> UPAGER_PAGE_SHIFT,
				UPAGER_PAGE_SIZE);
}

/* The fault at @addr, read at @t0, is served (or will be woken by what serves another). */
static bool served(struct space *s, uint64_t addr, uint64_t t0)
{
	space_account_fault(s, region_find(&s->regions, addr), t0);
	return true;
}

/* A page-in: the page faulted on, and the pages read ahead after it from the slots that follow. */
struct page_in {
	struct space *s; /* a reference */
	uint64_t addr, pages, slot, flags;
	void *buf; /* of the pool if pooled(pages), else of malloc */
	bool keep; /* the first keeps its slot, write-protected: a read fault, the store under half full */
	bool keep_ahead; /* the others do: the store under half full, for a read fault */
	uint64_t t0; /* when the fault was read */
};

/* Whether a page-in of @pages takes a buffer of the pool: a few pages take one of the heap. */
static bool pooled(uint64_t pages)
{
	return pages << UPAGER_PAGE_SHIFT >= BUFPOOL_MIN_BYTES;
}

/* The buffer of a page-in of @pages is free. */
static void page_in_buf_put(struct cache *c, void *buf, uint64_t pages)
{
	if (pooled(pages))
		bufpool_put(&c->bufpool, buf);
	else
		free(buf);
}

/* Page @k of @pi is read (@res: the read's result): mapped in the client, unless it left the
 * table meanwhile (unmapped, moved, forgotten): then the faults that wait on it (the page-in's, and
 * those that came while it was read) are woken, and fault again on what is there now. Return:
 * whether it was still being read. */
static bool page_in_one(struct page_in *pi, uint64_t k, int res)
{
	struct space *s = pi->s;
	struct cache *c = &s->d->cache;
	struct ptable *t = &s->priv.table;
	uint64_t addr = pi->addr + (k << UPAGER_PAGE_SHIFT);
	struct ptable_chunk *ch = ptable_find(t, addr);
	unsigned i = ch ? ptable_index(ch, addr) : 0;
	bool keep = k ? pi->keep_ahead : pi->keep, removed;
	struct region *r;
	int ret;

	if (!ch || !ptable_bit(ch->reading, i)) {
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return false;
	}
	ch->reading &= ~(1ULL << i);
	if (res < 0) {
		log_limited(LOG_WARNING, "pid %d: reading a page back from the swap store: %s",
			    (int)s->pid, strerror(-res));
		/* A page read ahead stays out: a touch that waited for it faults again. */
		if (k == 0)
			uffdio_sigbus(s->uffd, addr, space_mm(s));
		else
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		ptable_drop_if_empty(t, ch);
		return true;
	}
	/* A page read keeps its slot and comes back write-protected: unwritten, it can go out
	 * again without a write. Not where a removal read and not dispatched yet took it from
	 * (MADV_DONTNEED, an unmap, a move): the kernel's zeroes, or the object's page, show there,
	 * and the fault woken comes again behind the removal, which forgets the slot. */
	removed = space_removal_queued(s, addr, addr + UPAGER_PAGE_SIZE);
	ret = removed ? -EAGAIN
		      : uffdio_copy(s->uffd, addr, (char *)pi->buf + (k << UPAGER_PAGE_SHIFT),
				    UPAGER_PAGE_SIZE, keep);
	if (ret == -EAGAIN && !removed)
		removed = space_removal_queued(s, addr, addr + UPAGER_PAGE_SIZE);
	if (ret == 0 || ret == -EEXIST) {
		/* -EEXIST: a page is there already, and the copy woke no one. */
		if (ret == -EEXIST)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		if (!keep || ret == -EEXIST)
			ptable_clear_slot(t, c->store, ch, i);
		set_present(c, t, ch, i, true);
		/* A page read ahead and never touched goes first. */
		if (k == 0)
			ch->used |= 1ULL << i;
		c->stats.pages_in++;
		c->stats.refaults += k == 0;
		if ((r = region_find(&s->regions, addr)))
			r->private_in++;
	} else if (ret != -ESRCH) {
		if (!removed)
			log_limited(LOG_WARNING, "pid %d: mapping a page read back: %s",
				    (int)s->pid, strerror(-ret));
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	}
	ptable_drop_if_empty(t, ch);
	return true;
}

static void page_in(struct space *s, struct ptable_chunk *ch, unsigned i, uint64_t slot,
		    uint64_t flags, uint64_t t0, bool ahead);

static void page_in_done(void *userdata, int res)
{
	struct page_in *pi = userdata;
	struct space *s = pi->s;
	struct ptable_chunk *ch = s->dead ? NULL : ptable_find(&s->priv.table, pi->addr);
	unsigned i = ch ? ptable_index(ch, pi->addr) : 0;

	/* A read of several pages that failed (one page bad is enough): the page faulted on is read
	 * again alone, so that only a bad page of its own gets SIGBUS. */
	if (res < 0 && pi->pages > 1 && ch && ptable_bit(ch->reading, i)) {
		ch->reading &= ~(1ULL << i);
		page_in(s, ch, i, pi->slot, pi->flags, pi->t0, false);
	} else if (!s->dead && page_in_one(pi, 0, res))
		served(s, pi->addr, pi->t0);
	for (uint64_t k = 1; !s->dead && k < pi->pages; k++)
		page_in_one(pi, k, res);
	page_in_buf_put(&s->d->cache, pi->buf, pi->pages);
	space_unref(s);
	free(pi);
}

/*
 * How many pages from @addr (out, in @slot) a page-in reads: 1, or for a run read back in order
 * (the page after the last page-in or zero-in run of @r) twice the run so far, from the read-ahead
 * minimum up to IN_AHEAD_MAX_PAGES, within the mapping and the room the budget has, over the pages
 * that follow in the next slots (as a page-out of pages in order left them). The run is
 * r->ra_next and r->ra_window, as for zero windows.
 */
static uint64_t in_window(struct space *s, struct region *r, uint64_t addr, uint64_t slot)
{
	const struct daemon_config *cfg = &s->d->config;
	struct ptable *t = &s->priv.table;
	uint64_t n, k;

	if (!r || addr != r->ra_next || !r->ra_window || !cfg->readahead_max_pages)
		return 1;
	n = MAX(2 * (uint64_t)r->ra_window, (uint64_t)cfg->readahead_min_pages);
	n = MIN(MIN(n, (uint64_t)IN_AHEAD_MAX_PAGES), (uint64_t)cfg->readahead_max_pages);
	n = MIN(n, (region_end(r) - addr) >> UPAGER_PAGE_SHIFT);
	n = MIN(n, cache_room_pages(&s->d->cache));
	for (k = 1; k < n; k++) {
		uint64_t a = addr + (k << UPAGER_PAGE_SHIFT);
		struct ptable_chunk *ch = ptable_find(t, a);
		unsigned i = ch ? ptable_index(ch, a) : 0;

		if (!ch || ptable_bit(ch->present, i) || ptable_bit(ch->leaving, i) ||
		    ptable_bit(ch->reading, i) || ptable_slot(ch, i) != (int64_t)(slot + k))
			break;
	}
	return k;
}

/* The page at @a, in the table (in_window() found it), is being read back, or no longer. */
static void set_reading(struct ptable *t, uint64_t a, bool on)
{
	struct ptable_chunk *ch = ptable_find(t, a);
	uint64_t bit = 1ULL << ptable_index(ch, a);

	ch->reading = on ? ch->reading | bit : ch->reading & ~bit;
}

/* Read page @i of @ch back from the store for a fault (its @flags, read at @t0), which waits, and
 * if @ahead the pages after it that in_window() finds. */
static void page_in(struct space *s, struct ptable_chunk *ch, unsigned i, uint64_t slot,
		    uint64_t flags, uint64_t t0, bool ahead)
{
	struct cache *c = &s->d->cache;
	uint64_t addr = ch->base + ((uint64_t)i << UPAGER_PAGE_SHIFT);
	struct region *r = region_find(&s->regions, addr);
	uint64_t n = ahead ? in_window(s, r, addr, slot) : 1;
	struct page_in *pi = calloc(1, sizeof(*pi));
	int ret = -ENOMEM;

	if (pi)
		pi->buf = pooled(n) ? bufpool_get(&c->bufpool)
				    : aligned_alloc(UPAGER_PAGE_SIZE, n << UPAGER_PAGE_SHIFT);
	if (pi && pi->buf) {
		pi->s = space_ref(s);
		pi->addr = addr;
		pi->pages = n;
		pi->slot = slot;
		pi->flags = flags;
		pi->t0 = t0;
		/* Read for a write, the pages ahead come back writable too: a writer in order
		 * writes them next, and protected each would be a write-protect fault. */
		pi->keep = !(flags & UFFD_PAGEFAULT_FLAG_WRITE) && cache_swap_keeps(c);
		pi->keep_ahead = pi->keep;
		for (uint64_t k = 0; k < n; k++)
			set_reading(&s->priv.table, addr + (k << UPAGER_PAGE_SHIFT), true);
		ret = store_read(c->store, slot, pi->buf, n, page_in_done, pi);
		if (ret == 0) {
			if (r)
				zero_ahead_step(&r->ra_next, &r->ra_window, addr, n,
						UPAGER_PAGE_SIZE);
			return;
		}
		for (uint64_t k = 0; k < n; k++)
			set_reading(&s->priv.table, addr + (k << UPAGER_PAGE_SHIFT), false);
		space_unref(s);
	}
	if (pi)
		page_in_buf_put(c, pi->buf, n);
	free(pi);
	log_limited(LOG_WARNING, "pid %d: cannot read a page back from the swap store: %s",
		    (int)s->pid, strerror(-ret));
	uffdio_sigbus(s->uffd, addr, space_mm(s));
	served(s, addr, t0);
}

/* The client's /proc/PID/pagemap, opened once: its descriptor, or a negative errno. */
static int pagemap_open(struct space *s)
{
	struct mm_mark m = space_mm(s);

	if (!s->priv.pagemap_open) {
		/* It holds the mm it was opened on: the client's for good (mm.c). */
		s->priv.pagemap_fd = mm_open(&m, "pagemap");
		if (s->priv.pagemap_fd < 0)
			return s->priv.pagemap_fd;
		s->priv.pagemap_open = true;
	}
	return s->priv.pagemap_fd;
}

/*
 * Whether the client's page table holds anything at @addr: a page (pagemap bit 63), a swap entry
 * (62), or a write-protect marker where a protected page of a file mapping was dropped (57), which
 * is what a write then faults on; a page only if @present_only; true if unknown.
 */
static bool client_has_page(struct space *s, uint64_t addr, bool present_only)
{
	uint64_t e;

	if (uffdio_pagemap_entry(pagemap_open(s), addr, &e) < 0)
		return true;
	if (present_only)
		return e >> 63 & 1;
	return (e >> 62 & 3) || (e >> 57 & 1);
}

/* Park the fault at @addr on @v; false if there is no memory for it (it is served now). */
static bool wait_push(struct private_wait **v, size_t *n, uint64_t addr, uint64_t flags,
		      uint64_t t0)
{
	struct private_wait *w = realloc(*v, (*n + 1) * sizeof(*w));

	if (!w)
		return false;
	*v = w;
	w[(*n)++] = (struct private_wait){ addr, flags, t0 };
	return true;
}

/*
 * A fault on a page of a page-out under way waits for its end: once its DROP is sent, any fault
 * (the page may be in the client or moved out until the answer); before, a missing page's: one
 * that another DROP took, sent where the client moved the page since, and whose slot is not
 * given yet. Return: whether it waits.
 */
static bool hold(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct page_out *po;

	list_for_each_entry (po, &s->priv.outs, link)
		if ((po->dropping || !(flags & UFFD_PAGEFAULT_FLAG_WP)) &&
		    page_trail_has(&po->trail, addr))
			return wait_push(&po->held, &po->n_held, addr, flags, t0);
	return false;
}

/*
 * Whether the page at @a of @s is in a page-out of @s under way. A page written while its
 * page-out was under way stays and is no longer leaving, but the DROP may still come to it: a
 * second page-out would write-protect it again, and the first DROP's move would then take it,
 * answered for a page-out whose slot it no longer holds (drop_settle() keeps such a page as in
 * memory): the page would be gone from the client with its data. It waits for the first to end.
 */
static bool in_page_out(const struct space *s, uint64_t a)
{
	const struct page_out *po;

	list_for_each_entry (po, &s->priv.outs, link)
		if (page_trail_has(&po->trail, a))
			return true;
	return false;
}

/*
 * A write to the page at @addr of @r, read back with its slot kept (so write-protected): the pages
 * after it that came back the same way are a writer's next in order. For a run written in order
 * (r->wr_next: the page after it; r->wr_window: its last window), up to twice the last window
 * (the read-ahead minimum to IN_AHEAD_MAX_PAGES) lose their slots and protection with it, not a
 * write-protect fault each. Return: the end of the pages to make writable, @addr's at least.
 */
static uint64_t kept_window(struct space *s, struct region *r, uint64_t addr)
{
	const struct daemon_config *cfg = &s->d->config;
	const struct ptable *t = &s->priv.table;
	bool ahead = r && addr == r->wr_next && cfg->readahead_max_pages;
	uint64_t n = 1, k;

	if (ahead) {
		n = MAX(2 * (uint64_t)r->wr_window, (uint64_t)cfg->readahead_min_pages);
		n = MIN(MIN(n, (uint64_t)IN_AHEAD_MAX_PAGES), (uint64_t)cfg->readahead_max_pages);
		n = MIN(n, (region_end(r) - addr) >> UPAGER_PAGE_SHIFT);
	}
	for (k = 1; k < n; k++) {
		uint64_t a = addr + (k << UPAGER_PAGE_SHIFT);
		const struct ptable_chunk *ch = ptable_find(t, a);
		unsigned i = ch ? ptable_index(ch, a) : 0;

		if (!ch || !ptable_bit(ch->present, i) || ptable_bit(ch->leaving, i) ||
		    ptable_bit(ch->reading, i) || ptable_slot(ch, i) < 0 || in_page_out(s, a))
			break;
	}
	if (r) {
		r->wr_window = ahead ? (uint32_t)k : 0;
		r->wr_next = addr + (k << UPAGER_PAGE_SHIFT);
	}
	return addr + (k << UPAGER_PAGE_SHIFT);
}

/**
 * private_fault() - serve a fault on a page of a private anonymous mapping of @s
 * @addr: the page
 * @flags: the fault's (UFFD_PAGEFAULT_FLAG_*)
 * @t0: when it was read; its latency is counted once it is served (space_account_fault())
 *
 * Return: whether the fault is served (or waits for the store); false: the caller maps zeroes.
 */
bool private_fault(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct cache *c = &s->d->cache;
	struct ptable *t = &ready(s)->table;
	struct ptable_chunk *ch = ptable_find(t, addr);
	unsigned i = ch ? ptable_index(ch, addr) : 0;
	int64_t slot;

	if (ch && ptable_bit(ch->leaving, i) && hold(s, addr, flags, t0))
		return true;
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write-protect fault read after its page left (a DROP moved it, or dropped a
		 * copy in place, while the fault waited), or while it is read back: the page's
		 * slot holds its data, and the writer, woken, faults again on the missing page. A
		 * copy dropped in place leaves a marker, which pagemap shows as this protection:
		 * there, only a page present is the client's. */
		const struct region *r = region_find(&s->regions, addr);

		if (ch && r && !ptable_bit(ch->present, i) && ptable_slot(ch, i) >= 0 &&
		    !client_has_page(s, addr, r->obj != NULL)) {
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
			return served(s, addr, t0);
		}
		/* A write to a page on its way out: it stays, dirty; or one the protection of its
		 * parent's page-out came to with fork(): the write goes on. */
		if (ch && ptable_bit(ch->leaving, i))
			set_leaving(c, t, ch, i, false);
		uint64_t end = ch ? kept_window(s, region_find(&s->regions, addr), addr)
				  : addr + UPAGER_PAGE_SIZE;

		for (uint64_t a = addr; a < end; a += UPAGER_PAGE_SIZE) {
			struct ptable_chunk *c2 = ptable_find(t, a);

			if (!c2)
				continue;
			c2->used |= 1ULL << ptable_index(c2, a);
			/* Its copy in the store, if it kept one, is stale from now on. */
			ptable_clear_slot(t, c->store, c2, ptable_index(c2, a));
			ptable_drop_if_empty(t, c2);
		}
		uffdio_resolve_unprotect(s->uffd, addr, end - addr);
		return served(s, addr, t0);
	}
	if (ch && ptable_bit(ch->reading, i))
		return served(s, addr, t0); /* the page being read back wakes this one too */
	slot = ch ? ptable_slot(ch, i) : -1;
	/* Above the budget, with pages on their way out: the touch waits for them to be gone; a
	 * client that does not answer its DROPs waits for its answers. So does a touch of a client
	 * whose memory cgroup is over its cap, with pages of it on their way out (groups.c). */
	if (c->private_out &&
	    (((cache_private_leaving(c) || s->priv.stalled) && !cache_room(c, 1)) ||
	     s->priv.group_wait) &&
	    wait_push(&s->priv.waits, &s->priv.n_waits, addr, flags, t0))
		return true;
	if (slot >= 0 && c->store) {
		page_in(s, ch, i, (uint64_t)slot, flags, t0, true);
		return true;
	}
	zero_in(s, addr, flags);
	served(s, addr, t0);
	return true;
}

/**
 * private_copied() - the page at @addr of a private mapping of an object in @s is the process's
 * own copy from now on (its first write goes on into the kernel's copy): in memory, and used
 */
void private_copied(struct space *s, uint64_t addr)
{
	struct ptable_chunk *ch = ptable_get(&ready(s)->table, addr);

	if (!ch)
		return;
	set_present(&s->d->cache, &s->priv.table, ch, ptable_index(ch, addr), true);
	ch->used |= 1ULL << ptable_index(ch, addr);
}

#define COPY_BLOCK_PAGES 16 /* a random first write unprotects the 64 KiB around it */

/*
 * The pages [*lo, return) around @addr that a first write to the object's page there in @r makes
 * writable, each counted as a copy, all without a copy yet and within the mapping and the
 * budget's room: for a run written in order (r->wr_next: the page after it; r->wr_window: its
 * last window), from @addr twice the last window, from the read-ahead minimum up to
 * ZERO_AHEAD_MAX_PAGES; for another write, the block of COPY_BLOCK_PAGES aligned pages around it.
 * Unprotecting a page allocates nothing: its copy is made at its write, and a page never written
 * is counted only until a page-out finds it uncopied (set_present_in_client()).
 */
static uint64_t copy_window(struct space *s, struct region *r, uint64_t addr, uint64_t *lo)
{
	const struct daemon_config *cfg = &s->d->config;
	const struct ptable *t = &s->priv.table;
	uint64_t room = cache_room_pages(&s->d->cache), hi, end;
	bool ahead = addr == r->wr_next && cfg->readahead_max_pages;

	if (ahead) {
		uint64_t n = MAX(2 * (uint64_t)r->wr_window, (uint64_t)cfg->readahead_min_pages);

		n = MIN(MIN(n, (uint64_t)ZERO_AHEAD_MAX_PAGES), (uint64_t)cfg->readahead_max_pages);
		*lo = addr;
		end = addr + (MIN(n, room) << UPAGER_PAGE_SHIFT);
	} else {
		*lo = MAX(ALIGN_DOWN(addr, COPY_BLOCK_PAGES * UPAGER_PAGE_SIZE), r->start);
		end = *lo + (MIN((uint64_t)COPY_BLOCK_PAGES, room) << UPAGER_PAGE_SHIFT);
	}
	end = MIN(end, region_end(r));
	for (hi = addr + UPAGER_PAGE_SIZE; hi < end && ptable_page_empty(t, hi);
	     hi += UPAGER_PAGE_SIZE)
		;
	for (uint64_t a = addr; a > *lo; a -= UPAGER_PAGE_SIZE)
		if (!ptable_page_empty(t, a - UPAGER_PAGE_SIZE)) {
			*lo = a;
			break;
		}
	r->wr_window = ahead ? (uint32_t)((hi - addr) >> UPAGER_PAGE_SHIFT) : 0;
	r->wr_next = hi;
	return hi;
}

/* The address of @r from which its copies are past the end of its file (r->cut_offset). */
static uint64_t cut_start(const struct region *r)
{
	return r->start + (r->cut_offset > r->offset ? r->cut_offset - r->offset : 0);
}

/*
 * Whether the page at @addr of @s, in @r, is a copy past the end of its file whose slot, if it
 * had one, is forgotten now: a touch of it faults on the object, past its end (SIGBUS).
 */
static bool cut_away(struct space *s, const struct region *r, uint64_t addr)
{
	struct ptable *t = &s->priv.table;
	struct ptable_chunk *ch;
	unsigned i;

	if (!r || !r->cutting || addr < cut_start(r))
		return false;
	ch = ptable_find(t, addr);
	i = ch ? ptable_index(ch, addr) : 0;
	if (ch && !ptable_bit(ch->present, i) && !ptable_bit(ch->leaving, i) &&
	    !ptable_bit(ch->reading, i) && !in_page_out(s, addr)) {
		ptable_clear_slot(t, s->d->cache.store, ch, i);
		ptable_drop_if_empty(t, ch);
	}
	return ptable_page_empty(t, addr);
}

/**
 * private_copy_fault() - serve a fault on a page of a private mapping of an object in @s
 * (region_keeps_copies()) if it is the process's own copy (in memory, leaving, out or being read
 * back), or a write to the object's page, mapped write-protected, that makes one
 * @addr: the page
 * @flags: the fault's (UFFD_PAGEFAULT_FLAG_*)
 * @t0: when it was read
 *
 * Return: whether the fault is served (or waits); false: the object's page goes in (fault.c).
 */
bool private_copy_fault(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct cache *c = &s->d->cache;
	struct ptable *t = &ready(s)->table;

	struct ptable_chunk *ch;
	unsigned i;
	bool own;

	/* A copy past the end of a file that shrank is gone, as with the kernel. */
	if (cut_away(s, region_find(&s->regions, addr), addr))
		return false;
	ch = ptable_find(t, addr);
	i = ch ? ptable_index(ch, addr) : 0;
	own = !ptable_page_empty(t, addr);

	/* A removal the control thread's drop made came before any fault on the page. */
	if (ch && ptable_bit(ch->dropped, i) && !in_page_out(s, addr)) {
		ch->dropped &= ~(1ULL << i);
		chunk_changed(t, ch);
	}
	if (!own && (flags & UFFD_PAGEFAULT_FLAG_WP)) {
		/* The first write to the object's page: the kernel copies it once the protection
		 * is off; a writer in order, the pages of its window as it writes them. */
		struct region *r = region_find(&s->regions, addr);
		uint64_t lo = addr, hi = r ? copy_window(s, r, addr, &lo) : addr + UPAGER_PAGE_SIZE;

		for (uint64_t a = lo; a < hi; a += UPAGER_PAGE_SIZE)
			private_copied(s, a);
		uffdio_resolve_unprotect(s->uffd, lo, hi - lo);
		return served(s, addr, t0);
	}
	if (!own)
		return false;
	if (!(flags & UFFD_PAGEFAULT_FLAG_WP) && ptable_bit(ch->present, i) &&
	    !ptable_bit(ch->leaving, i) && !ptable_bit(ch->reading, i) && ptable_slot(ch, i) < 0) {
		/* Counted, yet no longer in the client: the object's page shows again. */
		set_present(c, t, ch, i, false);
		ch->used &= ~(1ULL << i);
		ptable_drop_if_empty(t, ch);
		return false;
	}
	return private_fault(s, addr, flags, t0);
}

/*
 * A fault that waited (for a DROP's answer, for room in the budget) is served again. In a private
 * mapping of an object, a page that is no longer the process's copy is the object's, which the
 * fault path maps: the thread is woken to touch it again.
 */
static void fault_again(struct space *s, const struct private_wait *w)
{
	struct region *r = region_find(&s->regions, w->addr);

	if (!r || !r->obj) {
		private_fault(s, w->addr, w->flags, w->t0);
	} else if (!region_keeps_copies(s, r) || !private_copy_fault(s, w->addr, w->flags, w->t0)) {
		uffdio_wake(s->uffd, w->addr, UPAGER_PAGE_SIZE);
		served(s, w->addr, w->t0);
	}
}

/**
 * private_object_run() - how many of the @n pages from @addr of @s, the first always, a window of
 * object pages may map at once (a private mapping of an object): up to the first page that is
 * the process's own copy (in memory, leaving, out or being read back). UFFDIO_CONTINUE takes the
 * marker a copy dropped in place leaves for an empty page, and would map the object's page over it.
 */
uint64_t private_object_run(struct space *s, uint64_t addr, uint64_t n)
{
	const struct ptable *t = &ready(s)->table;
	uint64_t k;

	for (k = 1; k < n && ptable_page_empty(t, addr + (k << UPAGER_PAGE_SHIFT)); k++)
		;
	return MIN(k, n);
}

/** private_filled() - [addr, addr+len) of @s is in memory now (a populate) */
void private_filled(struct space *s, uint64_t addr, uint64_t len)
{
	ready(s);

	for (uint64_t a = addr; a < addr + len; a += UPAGER_PAGE_SIZE) {
		struct ptable_chunk *ch = ptable_get(&s->priv.table, a);

		if (!ch)
			return;
		set_present(&s->d->cache, &s->priv.table, ch, ptable_index(ch, a), true);
	}
}

/**
 * private_forget() - [start, end) of @s left the client, or its pages did (munmap, MADV_DONTNEED):
 * their slots are freed, and a touch there maps zeroes
 */
void private_forget(struct space *s, uint64_t start, uint64_t end)
{
	struct ptable *t = &ready(s)->table;
	uint64_t present = t->present, leaving = t->leaving;
	struct page_out *po;

	ptable_forget(t, s->d->cache.store, start, end);
	account(&s->d->cache, t, present, leaving);
	list_for_each_entry (po, &s->priv.outs, link)
		page_trail_forget(&po->trail, start, end);
}

/* An event of @s's mm read before a fork's took [start, end) from the fork too. */
static void forks_forget(struct space *s, uint64_t start, uint64_t end)
{
	struct fork_table *f;

	list_for_each_entry (f, &ready(s)->forks, link)
		ptable_forget(&f->table, s->d->cache.store, start, end);
}

/**
 * private_unmap() - [start, end) of @s was unmapped (UFFD_EVENT_UNMAP): as private_forget(), and
 * for the forks read after the event and not followed yet
 */
void private_unmap(struct space *s, uint64_t start, uint64_t end)
{
	private_forget(s, start, end);
	forks_forget(s, start, end);
}

/*
 * The removals a space may have the daemon expect at once: those of its page-outs under way,
 * and more. A client that answers DROPs with pages it never dropped cannot make the list grow
 * for ever: past this, the oldest expectation goes (and a removal that still came for it
 * forgets its pages: that client's own).
 */
#define EXPECT_MAX (4 * SPARE_PARTS * OUT_MAX_PAGES)

/* How long a refused mapping is left alone: from the first refusal, twice as long at each next. */
#define REFUSED_MIN_NS (10 * 1000 * 1000ULL)
#define REFUSED_MAX_NS (1000 * 1000 * 1000ULL)

/*
 * The client refused every page of @po (@refused) or took some: the mappings of a refused set send
 * nothing out for a while, 10 ms the first time and twice as long each time after, up to a
 * second, rather than be read and written out again at every turn for nothing; one that gave a
 * page starts again from 10 ms. A mapping left alone long at once held the budget up: its pages
 * could not leave and none was on its way out, so faults read on above the budget (5 MiB over a
 * 16 MiB budget while a fork shared a parent's pages for a moment).
 */
static void refuse_runs(struct page_out *po, bool refused)
{
	struct page_set_run run = { 0 };
	uint64_t now = now_ns();
	struct region *last = NULL;

	while (page_set_next_run(&po->set, &run)) {
		struct region *r = region_find(&po->s->regions, run.addr);

		if (!r || r == last)
			continue;
		last = r;
		if (!refused) {
			r->refused_for_ns = 0;
			continue;
		}
		r->refused_for_ns = r->refused_for_ns ? MIN(2 * r->refused_for_ns, REFUSED_MAX_NS)
						      : REFUSED_MIN_NS;
		r->refused_until_ns = now + r->refused_for_ns;
	}
}

/*
 * A page the client refused to move at @a of @s: if its mapping is not writable now, the private
 * anonymous pages of its region are dropped in place from now on (UFFDIO_MOVE takes pages of
 * writable mappings only), at once; pages a fork shares are refused either way.
 */
static void follow_protection(struct space *s, uint64_t a)
{
	struct region *r = region_find(&s->regions, a);
	struct mm_mark m = space_mm(s);

	if (!r || r->obj || r->drop_in_place || vma_writable(&m, a) != 0)
		return;
	r->drop_in_place = true;
	r->refused_until_ns = r->refused_for_ns = 0;
}

/* Another range whose UFFD_EVENT_REMOVE is to come; false without memory for it. */
static bool expect_push(struct private_pages *pp, uint64_t start, uint64_t end)
{
	struct private_range *v;

	if (pp->n_expect == EXPECT_MAX)
		memmove(pp->expect, pp->expect + 1, --pp->n_expect * sizeof(*pp->expect));
	v = realloc(pp->expect, (pp->n_expect + 1) * sizeof(*v));
	if (!v)
		return false;
	pp->expect = v;
	v[pp->n_expect++] = (struct private_range){ start, end };
	return true;
}

/* Whether [start, end) is (part of) a range whose removal is expected: then it is not any more. */
static bool expect_take(struct private_pages *pp, uint64_t start, uint64_t end)
{
	for (size_t k = 0; k < pp->n_expect; k++) {
		struct private_range e = pp->expect[k];

		if (start < e.start || end > e.end)
			continue;
		pp->expect[k] = pp->expect[--pp->n_expect];
		if (e.start < start)
			expect_push(pp, e.start, start);
		if (end < e.end)
			expect_push(pp, end, e.end);
		return true;
	}
	return false;
}

static int addr_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/**
 * private_remove() - madvise() took [start, end) of @s from the client (UFFD_EVENT_REMOVE): as
 * private_forget(), but not for the pages the control thread drops in place with MADV_DONTNEED
 * (page_out.in_place), which come here too: before its answer to the DROP, those pages wait for it
 * (drop_settle()), which says which it took (and forgets those two removals took: the client's
 * too); after, what it took is expected (expect_removals())
 */
void private_remove(struct space *s, uint64_t start, uint64_t end)
{
	static uint64_t held[2 * SPARE_PARTS * OUT_MAX_PAGES];
	struct private_pages *pp = ready(s);
	struct ptable *t = &pp->table;
	struct page_out *po;
	uint64_t from = start;
	size_t n = 0;

	if (expect_take(pp, start, end))
		return;
	list_for_each_entry (po, &s->priv.outs, link) {
		uint32_t bit = 0;
		uint64_t a;

		for (uint64_t k = 0; po->dropping && page_set_next(&po->set, &bit, &a); k++) {
			const struct region *r = region_find(&s->regions, a);

			if (a < start || a >= end || po->trail.at[k] != a || !r || !po->in_place ||
			    n == ARRAY_SIZE(held))
				continue;
			if (po->removed[k / 64] >> (k % 64) & 1)
				po->removed_twice[k / 64] |= 1ULL << (k % 64);
			po->removed[k / 64] |= 1ULL << (k % 64);
			held[n++] = a;
		}
	}
	/* Copies a daemon before this one had dropped (saved so): the removal is the control
	 * thread's, once. */
	for (struct ptable_chunk *ch = ptable_from(t, start & ~(PTABLE_CHUNK_BYTES - 1));
	     ch && ch->base < end; ch = ptable_next(t, ch)) {
		for (unsigned i = 0; ch->dropped && i < PTABLE_CHUNK_PAGES; i++) {
			uint64_t a = ch->base + ((uint64_t)i << UPAGER_PAGE_SHIFT);

			if (!ptable_bit(ch->dropped, i) || a < start || a >= end ||
			    in_page_out(s, a) || n == ARRAY_SIZE(held))
				continue;
			ch->dropped &= ~(1ULL << i);
			chunk_changed(t, ch);
			held[n++] = a;
		}
	}
	qsort(held, n, sizeof(held[0]), addr_cmp);
	for (size_t k = 0; k < n; k++) {
		if (held[k] > from)
			private_unmap(s, from, held[k]);
		from = held[k] + UPAGER_PAGE_SIZE;
	}
	if (from < end)
		private_unmap(s, from, end);
}

/** private_move() - mremap() moved [from, from+len) of @s to @to: its pages' states go along */
void private_move(struct space *s, uint64_t from, uint64_t to, uint64_t len)
{
	struct ptable *t = &ready(s)->table;
	uint64_t present = t->present, leaving = t->leaving;

	struct page_out *po;

	struct fork_table *f;

	ptable_move(t, s->d->cache.store, from, to, len);
	account(&s->d->cache, t, present, leaving);
	list_for_each_entry (f, &s->priv.forks, link)
		ptable_move(&f->table, s->d->cache.store, from, to, len);
	/* A page on its way out goes on: its slot, once written, is given where it is now. */
	list_for_each_entry (po, &s->priv.outs, link)
		page_trail_move(&po->trail, from, to, len);
}

/*
 * @child, empty, as a fork of the space whose table is @parent gets it now: the slots of the pages
 * out (a reference each), and the pages in memory, not leaving or being read: shared with the
 * parent until one of them writes, the write is a copy the kernel makes without a fault. Counted
 * twice until then, they err on the safe side of the budget, and the child's can leave as the
 * parent's do. Pages whose DROP is under way may have left the parent already: their slots are in
 * its table then (page_out_give_slots()), so the child gets them too, and not the page.
 */
static void fork_fill(const struct ptable *parent, struct ptable *child)
{
	ptable_fork(parent, child);
	for (struct ptable_chunk *ch = ptable_from(parent, 0); ch; ch = ptable_next(parent, ch)) {
		uint64_t in = ch->present & ~ch->leaving & ~ch->reading;
		struct ptable_chunk *cc = in ? ptable_get(child, ch->base) : NULL;

		for (unsigned i = 0; cc && i < PTABLE_CHUNK_PAGES; i++)
			if (ptable_bit(in, i))
				ptable_set_present(child, cc, i, true);
	}
}

/**
 * private_fork_read() - the event of a fork of @s, which names the child's userfaultfd @ufd, is
 * read: the kernel lets the parent go on from now, so the child's table is made now, and kept for
 * private_fork() (struct fork_table)
 */
void private_fork_read(struct space *s, int ufd)
{
	struct fork_table *f = calloc(1, sizeof(*f));

	if (!f)
		return; /* private_fork() makes the table from the parent's as it is then */
	f->ufd = ufd;
	fork_fill(&ready(s)->table, &f->table);
	list_add_tail(&f->link, &s->priv.forks);
}

/* The table private_fork_read() made for the fork of @parent whose userfaultfd is @ufd, taken off
 * its list; NULL if there is none. */
static struct fork_table *fork_table_take(struct space *parent, int ufd)
{
	struct fork_table *f;

	list_for_each_entry (f, &ready(parent)->forks, link)
		if (f->ufd == ufd) {
			list_del_init(&f->link);
			return f;
		}
	return NULL;
}

static void fork_table_free(struct cache *c, struct fork_table *f)
{
	ptable_forget(&f->table, c->store, 0, UINT64_MAX);
	free(f);
}

/**
 * private_fork() - @child, whose userfaultfd is @ufd, is a fork of @parent: it takes the table
 * made when the fork's event was read (private_fork_read())
 */
void private_fork(struct space *parent, struct space *child, int ufd)
{
	struct fork_table *f = fork_table_take(parent, ufd);
	struct ptable *ct = &ready(child)->table;

	if (f) {
		ptable_take(ct, &f->table);
		free(f);
	} else {
		fork_fill(&parent->priv.table, ct);
	}
	child->d->cache.private_pages += ct->present;
	parent->priv.forked = child->priv.forked = true;
}

/** private_fork_abandon() - the fork of @parent whose userfaultfd is @ufd is not followed */
void private_fork_abandon(struct space *parent, int ufd)
{
	struct fork_table *f = fork_table_take(parent, ufd);

	if (f)
		fork_table_free(&parent->d->cache, f);
}

/** private_free() - @s is gone: the slots of its pages are freed */
void private_free(struct space *s)
{
	ready(s);

	private_forget(s, 0, UINT64_MAX);
	while (!list_empty(&s->priv.forks)) {
		struct fork_table *f = list_first_entry(&s->priv.forks, struct fork_table, link);

		list_del_init(&f->link);
		fork_table_free(&s->d->cache, f);
	}
	free(s->priv.waits);
	s->priv.waits = NULL;
	s->priv.n_waits = 0;
	free(s->priv.expect);
	s->priv.expect = NULL;
	s->priv.n_expect = 0;
	if (s->priv.pagemap_open)
		close(s->priv.pagemap_fd);
	s->priv.pagemap_open = false;
}

/*
 * The client's pagemap entries of the window of @ps, up to its last page (entry k - 1 for the k-th
 * page of the window), in one buffer of the loop's, valid until the next call; NULL if they could
 * not be read.
 */
static const uint64_t *set_entries(struct space *s, const struct page_set *ps)
{
	static uint64_t entries[UPAGER_DROP_WINDOW_PAGES];
	uint64_t span = 0, a;
	uint32_t k = 0;
	int fd = pagemap_open(s);

	if (fd < 0)
		return NULL;
	while (page_set_next(ps, &k, &a))
		span = k;
	if (pread(fd, entries, span * 8, (off_t)(ps->base >> UPAGER_PAGE_SHIFT) * 8) !=
	    (ssize_t)(span * 8))
		return NULL;
	return entries;
}

/*
 * Whether every page of @ps is in the client's page tables (pagemap bit 63, or 62: a swap or
 * migration entry, which the kernel resolves itself); of @copies, the object's pages (bit 61)
 * are taken out of @ps and of the table, and there must be some left. With @unmapped, only
 * this, for copies before they are write-protected: their pages that are in no page table are
 * taken out of @ps and of the table (never copied, or their object page evicted since), as
 * write-protecting would leave a marker there (a swap entry for pagemap, and a fault on the
 * client's userfaultfd for process_vm_readv(), which only this thread serves).
 * The daemon reads the pages with process_vm_readv(), whose touch of a page not there is a fault
 * on the client's userfaultfd, which only this thread serves: it would wait for itself, and every
 * client with it, for ever. A page the table has in memory that the client does not is taken out
 * of the table: with a slot, its data is there; without, it is logged (a fault maps zeroes).
 */
static bool set_present_in_client(struct space *s, struct page_set *ps, bool copies, bool unmapped)
{
	const uint64_t *entries = set_entries(s, ps);
	struct cache *c = &s->d->cache;
	uint64_t a;
	uint32_t k = 0;
	bool all = true;

	if (!entries)
		return false;
	for (k = 0; page_set_next(ps, &k, &a);) {
		uint64_t e = entries[k - 1];
		bool object_page = copies && (e >> 62 & 3) && (e >> 61 & 1);
		struct ptable_chunk *ch;

		/* A copy in a swap entry may be a marker, whose read would wait for this thread:
		 * not now. */
		if (copies && !unmapped && (e >> 62 & 3) == 1) {
			all = false;
			continue;
		}
		/* Present, or swapped or migrating: the read waits for the kernel. */
		if ((e >> 62 & 3) && (!object_page || unmapped))
			continue;
		ch = ptable_find(&s->priv.table, a);
		if (object_page || unmapped) {
			/* Counted, not copied yet (a write window, a write that did not go on):
			 * not counted any more, and protected, so that its first write is seen. */
			page_set_remove(ps, a, 1);
		} else {
			all = false;
			if (ch && !copies && ptable_slot(ch, ptable_index(ch, a)) < 0)
				log_limited(LOG_ERR,
					    "pid %d: page %#" PRIx64 " is not in memory as it was",
					    (int)s->pid, a);
		}
		if (!ch)
			continue;
		set_present(c, &s->priv.table, ch, ptable_index(ch, a), false);
		ch->used &= ~(1ULL << ptable_index(ch, a));
		ptable_drop_if_empty(&s->priv.table, ch);
	}
	return all && ps->n;
}

/**
 * private_serve_waits() - serve the touches of private pages that waited for room, while there is
 * room or nothing more is leaving (for a client that leaves its DROPs unanswered: its answers)
 * @d: the daemon; called where no fault is half done, before the budget's balance is worked out
 * (what these touches bring in counts in it)
 */
void private_serve_waits(struct daemon *d)
{
	struct cache *c = &d->cache;
	struct space *s;

	list_for_each_entry (s, &d->spaces, link) {
		size_t k = 0, n = s->priv.n_waits;
		struct private_wait *w = s->priv.waits;

		if (!n)
			continue;
		s->priv.waits = NULL;
		s->priv.n_waits = 0;
		for (; k < n && (s->dead || ((cache_room(c, 1) ||
					      (!cache_private_leaving(c) && !s->priv.stalled)) &&
					     !s->priv.group_wait));
		     k++)
			if (!s->dead)
				fault_again(s, &w[k]);
		/* What still waits goes back. */
		for (; k < n; k++)
			if (!wait_push(&s->priv.waits, &s->priv.n_waits, w[k].addr, w[k].flags,
				       w[k].t0))
				fault_again(s, &w[k]);
		free(w);
	}
}

/* The slots of @po, written to or not, go back to the store, unless the table has them. */
static void page_out_put_slots(struct page_out *po)
{
	for (uint64_t k = 0; po->slot >= 0 && !po->slots_given && k < po->set.n; k++)
		ptable_put(po->s->d->cache.store, (uint64_t)po->slot + k);
	po->slots_given = true;
}

/*
 * The run is in the store: each page still leaving holds its slot in the table from now on, saved
 * before the DROP goes, so that a daemon that takes over after the client moved the pages knows
 * where they are. A page no longer leaving lets its slot go.
 */
static void page_out_give_slots(struct page_out *po)
{
	struct space *s = po->s;
	struct cache *c = &s->d->cache;
	uint64_t a;

	for (uint32_t k = 0; po->slot >= 0 && k < po->trail.n; k++) {
		uint64_t slot = (uint64_t)po->slot + k;
		struct ptable_chunk *ch = NULL;

		a = po->trail.at[k];
		if (a != PAGE_TRAIL_GONE)
			ch = ptable_find(&s->priv.table, a);

		/* Its chunk has its slot table (page_out()), unless the page moved: then the
		 * table is made now, and without memory for it the slot goes. */
		if (ch && ptable_bit(ch->leaving, ptable_index(ch, a)))
			ptable_set_slot(&s->priv.table, c->store, ch, ptable_index(ch, a), slot);
		else
			ptable_put(c->store, slot);
	}
	/* A page dropped in place, written now or clean, may be dropped from now on: saved so, a daemon
	 * that takes over knows the removal for the control thread's (private_remove()). Not one
	 * that moved: the DROP does not name it (page_out_done()). */
	for (uint32_t bit = 0, k = 0; po->in_place && page_set_next(&po->set, &bit, &a); k++) {
		struct ptable_chunk *ch =
			po->trail.at[k] == a ? ptable_find(&s->priv.table, a) : NULL;

		if (ch && ptable_bit(ch->leaving, ptable_index(ch, a))) {
			ch->dropped |= 1ULL << ptable_index(ch, a);
			chunk_changed(&s->priv.table, ch);
		}
	}
	po->slots_given = true;
	daemon_save(s->d);
}

static void page_out_free(struct page_out *po)
{
	po->s->priv.n_outs--;
	list_del_init(&po->link);
	bufpool_put(&po->s->d->cache.bufpool, po->buf);
	space_unref(po->s);
	free(po->held);
	free(po);
}

/*
 * The control thread dropped the pages of @po that @moved says with one MADV_DONTNEED a run (a
 * run of pages in a row), each an UFFD_EVENT_REMOVE of its mm; those not come yet (they may come
 * after the answer: read while an ioctl waited, events.c) are expected, so that they forget
 * nothing (private_remove()).
 */
static void expect_removals(struct page_out *po, const uint64_t *moved)
{
	struct private_pages *pp = &po->s->priv;
	uint64_t start = 0, end = 0, a;
	uint32_t bit = 0;

	if (!(po->s->features & UFFD_FEATURE_EVENT_REMOVE))
		return;
	for (uint64_t k = 0; page_set_next(&po->set, &bit, &a); k++) {
		if (!(moved[k / 64] >> (k % 64) & 1) || po->removed[k / 64] >> (k % 64) & 1)
			continue;
		if (a != end) {
			if (end > start)
				expect_push(pp, start, end);
			start = a;
		}
		end = a + UPAGER_PAGE_SIZE;
	}
	if (end > start)
		expect_push(pp, start, end);
}

/*
 * The answer to a DROP (@moved: a bit per page that left the client), or none (@moved NULL: the
 * channel closed; the pages still leaving are taken for moved, so that none is lost: a page that
 * did not move and is touched again just keeps its slot unused). Then the faults that waited.
 */
static void drop_settle(struct page_out *po, const uint64_t *moved)
{
	struct space *s = po->s;
	struct cache *c = &s->d->cache;
	struct ptable *t = &s->priv.table;
	uint32_t bit = 0;
	uint64_t a;

	uint64_t forget[UPAGER_DROP_MAX_PAGES], refused_at = 0;
	size_t n_forget = 0, refused = 0;

	for (uint64_t k = 0; page_set_next(&po->set, &bit, &a); k++) {
		/* Where the page is now: the client may have moved it since (page-trail.h). */
		uint64_t at = po->trail.at[k];
		struct ptable_chunk *ch = at == PAGE_TRAIL_GONE ? NULL : ptable_find(t, at);
		unsigned i = ch ? ptable_index(ch, at) : 0;
		bool leaving = ch && ptable_bit(ch->leaving, i);
		bool gone = moved ? moved[k / 64] >> (k % 64) & 1 : leaving;

		/* Not moved by this DROP and not written since it was read (still leaving), yet
		 * not in the client: a DROP sent where the client has moved it since took it, or
		 * a move the daemon has not read yet has it. Either way its slot holds its data. */
		if (!gone && leaving && moved && !po->in_place && !client_has_page(s, at, false))
			gone = true;
		/* A copy that madvise() took from the client and the control thread did not, or
		 * that both took: the object's page shows there now. */
		if (ch && ((po->removed[k / 64] >> (k % 64) & 1 && !gone) ||
			   po->removed_twice[k / 64] >> (k % 64) & 1))
			forget[n_forget++] = at;
		/* The page holds the run's slot still (page_out_give_slots()), or none was written:
		 * not unmapped, moved or written meanwhile. */
		bool ours = ch && (po->clean ? ptable_slot(ch, i) >= 0
					     : po->slot < 0 ||
						       ptable_slot(ch, i) == po->slot + (int64_t)k);

		if (leaving)
			set_leaving(c, t, ch, i, false);
		if (ch && ptable_bit(ch->dropped, i)) {
			ch->dropped &= ~(1ULL << i);
			chunk_changed(t, ch);
		}
		if (gone && ours) {
			struct region *r = region_find(&s->regions, at);

			set_present(c, t, ch, i, false);
			ch->used &= ~(1ULL << i);
			c->stats.pages_out++;
			if (r)
				r->private_out++;
		} else if (po->clean || (leaving && ours && at != a && !po->in_place)) {
			/* Still clean, it keeps its slot and its protection; written, it lost both.
			 * So does a page the client moved since it was read, not written since: a
			 * DROP sent where it is now may take it yet. A clean page the client
			 * refused (shared with a fork) counts as refused below. */
			if (po->clean && leaving && !gone && moved && ch) {
				ch->used |= 1ULL << i;
				refused_at = refused++ ? refused_at : at;
			}
		} else {
			/* Still write-protected and in the client, yet not moved: the client
			 * refused it (shared with a fork, or a mapping made read-only by
			 * mprotect(), which UFFDIO_MOVE does not take). The clock spares it a
			 * turn. */
			if (leaving && !gone && moved && ch) {
				ch->used |= 1ULL << i;
				refused_at = refused++ ? refused_at : at;
			}
			/* Written meanwhile, gone from the client, or shared with a fork: it stays,
			 * and its slot is freed. */
			if (ours && po->slot >= 0)
				ptable_clear_slot(t, c->store, ch, i);
			if (leaving)
				uffdio_writeprotect(s->uffd, at, UPAGER_PAGE_SIZE, false);
		}
		if (ch)
			ptable_drop_if_empty(t, ch);
	}
	if (moved && po->in_place)
		expect_removals(po, moved);
	/* Nothing moved: the mappings of the set are left alone for a while; unless its pages
	 * are to be dropped in place from now on. */
	refuse_runs(po, refused == po->set.n);
	if (refused && !po->in_place)
		follow_protection(s, refused_at);
	for (size_t k = 0; k < n_forget; k++)
		private_forget(s, forget[k], forget[k] + UPAGER_PAGE_SIZE);
	for (size_t k = 0; k < po->n_held && !s->dead; k++)
		fault_again(s, &po->held[k]);
}

/* Whether a DROP's answer says some page moved. */
static bool any_moved(const struct upager_msg *reply)
{
	for (size_t k = 0; k < UPAGER_DROP_MAX_PAGES / 64; k++)
		if (reply->u.drop_reply.moved[k])
			return true;
	return false;
}

static void dropped(struct space *s, struct chan_req *req, const struct upager_msg *reply)
{
	struct page_out *po = container_of(req, struct page_out, req);

	/* Without an answer the part stays taken: the client holds its pages, if it lives. A
	 * failed one says which pages moved all the same; the part stays taken if they may still
	 * be there (the client could not empty it). */
	if (reply && (reply->status == 0 || !any_moved(reply)))
		s->priv.spare_busy &= ~(1u << po->part);
	if (reply && reply->status < 0)
		log_limited(LOG_WARNING, "pid %d could not drop pages it was asked to: %s",
			    (int)s->pid, strerror(-reply->status));
	if (!s->dead && reply) {
		uint64_t moved[UPAGER_DROP_MAX_PAGES / 64];

		page_set_unrank(&po->set, &po->sent, reply->u.drop_reply.moved, moved);
		drop_settle(po, moved);
	} else if (!s->dead)
		drop_settle(po, NULL);
	else
		page_out_put_slots(po);
	page_out_free(po);
}

/*
 * A page-out that ends without a DROP: each page is settled as not moved (one no longer in the
 * client counts as out, drop_settle()), its slots not given yet go back, its part of the spare
 * area is free.
 */
static void page_out_abandon(struct page_out *po)
{
	uint64_t none[UPAGER_DROP_MAX_PAGES / 64] = { 0 };

	po->s->priv.spare_busy &= ~(1u << po->part);
	page_out_put_slots(po);
	drop_settle(po, none);
	page_out_free(po);
}

static void page_out_done(void *userdata, int res)
{
	struct page_out *po = userdata;
	struct space *s = po->s;
	struct upager_msg m = { .op = UPAGER_OP_DROP };

	if (s->dead) {
		page_out_put_slots(po);
		page_out_free(po);
		return;
	}
	if (res < 0) {
		log_limited(LOG_WARNING, "paging out to the swap store: %s", strerror(-res));
		page_out_abandon(po);
		return;
	}
	/* Written: the copy is not needed any more. */
	bufpool_put(&s->d->cache.bufpool, po->buf);
	po->buf = NULL;
	page_out_give_slots(po);
	/* A page the client moved since it was read is not named where it was: another page may
	 * be there now, which the DROP would take in its place. */
	if (page_trail_in_place(&po->trail, &po->set, &po->sent) == 0) {
		page_out_abandon(po);
		return;
	}
	m.u.drop.addr = po->sent.base;
	m.u.drop.pages = po->sent.n;
	m.u.drop.flags = po->in_place ? UPAGER_DROP_IN_PLACE : 0;
	memcpy(m.u.drop.map, po->sent.map, sizeof(m.u.drop.map));
	m.u.drop.spare =
		s->priv.spare + ((uint64_t)po->part * UPAGER_DROP_MAX_PAGES << UPAGER_PAGE_SHIFT);
	if (channel_send(s, &m, &po->req, dropped) < 0) {
		page_out_abandon(po);
		return;
	}
	po->dropping = true;
}

static bool all_zero(const void *buf, size_t len)
{
	const uint64_t *p = buf;

	for (size_t k = 0; k < len / sizeof(*p); k++)
		if (p[k])
			return false;
	return true;
}

/*
 * Write-protect the pages of @ps in @s, or take the protection away. -EBUSY if a removal read and
 * not dispatched yet takes some (space_removal_queued(); read before, or by an ioctl here): the
 * client goes on with it once it is read, and its pages would leave markers in a file mapping
 * where protected, which the page-out's read would fault on, waiting for its own thread.
 */
static int protect(struct space *s, const struct page_set *ps, bool on)
{
	struct page_set_run r = { 0 };
	int ret = 0;

	while (page_set_next_run(ps, &r))
		if (uffdio_writeprotect(s->uffd, r.addr, r.pages << UPAGER_PAGE_SHIFT, on) < 0)
			ret = on ? -EBUSY : 0;
	r = (struct page_set_run){ 0 };
	while (on && ret == 0 && page_set_next_run(ps, &r))
		if (space_removal_queued(s, r.addr, r.addr + (r.pages << UPAGER_PAGE_SHIFT)))
			ret = -EBUSY;
	return ret;
}

/* Read the pages of @ps from the client into @buf, in address order, with one system call. */
static int read_set(struct space *s, const struct page_set *ps, void *buf)
{
	struct iovec remote[UPAGER_DROP_MAX_PAGES],
		local = { buf, (size_t)ps->n << UPAGER_PAGE_SHIFT };
	struct page_set_run r = { 0 };
	bool raced = false;
	unsigned n = 0;
	int ret;

	while (page_set_next_run(ps, &r))
		remote[n++] =
			(struct iovec){ (void *)(uintptr_t)r.addr, r.pages << UPAGER_PAGE_SHIFT };
	struct mm_mark m = space_mm(s);

	ret = remote_read(&m, s->uffd, &local, remote, n, &raced);
	if (ret == -EPERM)
		return ret;
	if (ret == -ESRCH && s->pid > 0) {
		/* The pid no longer shows the space's memory (mm.c): it is not read through it. */
		log_limited(LOG_WARNING, "pid %d shows another memory than its mappings'",
			    (int)s->pid);
		s->pid = 0;
		space_mark(s);
	}
	/* A move of the pages by the client met the read (remote-read.c): not their data. */
	return ret != (int)local.iov_len || raced ? -EFAULT : 0;
}

/*
 * The anonymous pages of @ps in the client, which forked or is a fork, are read once (into a
 * buffer of the pool): a page a fork shared may not be the process's own, even once the other
 * process has let it go (mapped once, pagemap bit 56, is not enough), and only its own page moves
 * (UFFDIO_MOVE); a read pins each page, and the kernel makes a page it pins the process's own,
 * copied if still shared, its write-protection kept. A clean page-out reads nothing otherwise, and
 * its DROPs of such pages would be refused for as long as they live, counted over the budget.
 */
static void unshare_set(struct space *s, const struct page_set *ps)
{
	struct bufpool *pool = &s->d->cache.bufpool;
	const uint64_t *entries = set_entries(s, ps);
	struct page_set shared = { 0 };
	uint64_t a;
	uint32_t k = 0;

	if (!entries)
		return;
	while (page_set_next(ps, &k, &a)) {
		uint64_t e = entries[k - 1];

		if ((e >> 63 & 1) && !(e >> 61 & 1))
			page_set_add(&shared, a);
	}
	if (shared.n) {
		void *buf = bufpool_get(pool);

		if (buf)
			read_set(s, &shared, buf);
		bufpool_put(pool, buf);
	}
}

/* The slot tables the pages of @ps need for slots @slot on, in their order. */
static int reserve_slots(struct space *s, const struct page_set *ps, uint64_t slot)
{
	struct page_set_run r = { 0 };
	int ret = 0;

	while (ret == 0 && page_set_next_run(ps, &r))
		ret = ptable_reserve_slots(&s->priv.table, r.addr, r.pages, slot + r.rank);
	return ret;
}

/*
 * Send the pages of @ps out (all in memory, in private mappings, none leaving), with one read
 * from the client, one write of contiguous slots and one DROP; @discard: their data is not kept
 * (MAP_DROPPABLE); @clean: they kept their slots and their write-protection since they came back,
 * so only the DROP is left to do; @copies: they are copies of object pages, written even if all
 * zeroes; @in_place: private anonymous pages of a mapping made read-only (region.drop_in_place).
 * Pages of both kinds are dropped in place (page_out.in_place).
 * Return: the pages sent: the set's first ones, as many as the store had slots next to each other
 * for; or a negative errno (-EBUSY: not now; -ENOSPC: the store is full; the pages stay).
 */
static int64_t page_out(struct space *s, const struct page_set *set, bool discard, bool clean,
			bool copies, bool in_place)
{
	struct cache *c = &s->d->cache;
	struct page_set one = *set, *ps = &one;
	uint64_t n = ps->n, len = n << UPAGER_PAGE_SHIFT, a;
	const bool droppable = discard;
	bool protected = false;
	int ret = 0;
	struct page_out *po;
	uint32_t bit = 0;
	unsigned part;
	uint64_t slot = UINT64_MAX, held = 0; /* slots allocated from slot on */

	for (part = 0; part < SPARE_PARTS && s->priv.spare_busy & (1u << part); part++)
		;
	if (part == SPARE_PARTS)
		return -EBUSY;
	discard |= clean;
	/* Slots first, before anything is done to the client: as many of the set's first pages as
	 * the store has slots next to each other for; a full store takes none, and costs nothing. */
	if (!discard) {
		int64_t got = c->store ? store_alloc_run(c->store, ps->n, &slot) : -ENOSPC;

		if (got < 0)
			return (int)got;
		held = (uint64_t)got;
		page_set_keep_first(ps, (uint32_t)held);
	}
	po = calloc(1, sizeof(*po));
	po->buf = po && !discard ? bufpool_get(&c->bufpool) : NULL;
	if (!po || (!discard && !po->buf)) {
		free(po);
		if (held)
			store_free(c->store, slot, held);
		return -ENOMEM;
	}
	if (copies && !clean && !set_present_in_client(s, ps, true, true)) {
		ret = -EBUSY;
	} else if (clean && !droppable && s->priv.forked) {
		unshare_set(s, ps);
	} else if (!clean) {
		/* The tables saved first: a slot a page let go of since the last save (it came back
		 * writable, or was written) must not be taken over as the copy of a page protected
		 * again, which a daemon that takes over counts clean (private_adopt()). */
		daemon_save(s->d);
		ret = protect(s, ps, true);
		protected = true;
	}
	if (ret == 0 && !discard && !set_present_in_client(s, ps, copies, false))
		ret = -EBUSY;
	n = ps->n;
	len = n << UPAGER_PAGE_SHIFT;
	if (ret == 0 && !discard)
		ret = read_set(s, ps, po->buf);
	/* The slots the pages still in the set take; all zeroes take none. */
	if (ret == 0 && !discard && (copies || !all_zero(po->buf, len))) {
		store_free(c->store, slot + n, held - n);
	} else {
		if (held)
			store_free(c->store, slot, held);
		slot = UINT64_MAX;
	}
	held = 0;
	/* The slot tables the pages will need, now: a page moved out must have its slot. */
	if (ret == 0 && slot != UINT64_MAX) {
		ret = reserve_slots(s, ps, slot);
		if (ret < 0)
			store_free(c->store, slot, n);
	}
	if (ret < 0) {
		if (protected)
			protect(s, ps, false);
		bufpool_put(&c->bufpool, po->buf);
		free(po);
		return ret;
	}
	*po = (struct page_out){ .s = space_ref(s),
				 .set = *ps,
				 .slot = slot == UINT64_MAX ? -1 : (int64_t)slot,
				 .part = part,
				 .buf = po->buf,
				 .clean = clean,
				 .in_place = copies || in_place,
				 .slots_given = clean };
	page_trail_init(&po->trail, &po->set);
	s->priv.spare_busy |= 1u << part;
	s->priv.n_outs++;
	list_add_tail(&po->link, &s->priv.outs);
	while (page_set_next(ps, &bit, &a)) {
		struct ptable_chunk *ch = ptable_find(&s->priv.table, a);

		set_leaving(c, &s->priv.table, ch, ptable_index(ch, a), true);
	}
	if (po->slot < 0) {
		page_out_done(po, 0);
		return (int64_t)n;
	}
	ret = store_write(c->store, slot, po->buf, n, page_out_done, po);
	if (ret < 0)
		page_out_done(po, ret);
	return (int64_t)n;
}

/*
 * Whether the pages on their way out of every client leave room for another page-out. They count
 * as out (their room is taken at once), and stay in their client until its DROP is done: so that
 * the pages in memory stay within the budget and the slack, at most the slack of them (one
 * page-out at least) are on their way.
 */
static bool room_to_leave(const struct cache *c)
{
	return c->private_leaving + OUT_MAX_PAGES <= MAX(cache_slack(c), OUT_MAX_PAGES);
}

/* Whether the clock may take pages of @s: a live client with a spare area, a thread to drop
 * them, and pages in memory. */
static bool may_page_out(const struct space *s)
{
	return !s->dead && s->pid > 0 && s->chan && !s->priv.stalled && s->priv.spare &&
	       room_to_leave(&s->d->cache) && s->priv.table.present &&
	       (s->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) && (s->features & UFFD_FEATURE_MOVE);
}

/* The private anonymous mapping, or private mapping of an object, that holds all of
 * [addr, addr+len), if it may go out now. */
static const struct region *run_region(struct space *s, uint64_t addr, uint64_t len)
{
	struct region *r = region_find(&s->regions, addr);

	if (!r || (r->obj && !region_keeps_copies(s, r)) || r->view || addr + len > region_end(r) ||
	    (r->flags & MAP_LOCKED) ||
	    (r->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE))
		return NULL;
	/* The clock read only for a mapping refused a while ago: this is called for each run. */
	if (r->refused_until_ns) {
		if (r->refused_until_ns > now_ns())
			return NULL;
		r->refused_until_ns = 0;
	}
	space_locked_refresh(s);
	return locked_overlaps(&s->locked, addr, addr + len) ? NULL : r;
}

enum run_kind {
	RUN_ANON,
	RUN_ANON_IN_PLACE,
	RUN_DROPPABLE,
	RUN_COPIES
};

/*
 * Send the pages of @ps out, those that may go: each run of them in one private mapping that may
 * go out now, all of the first run's kind: anonymous (moved, or dropped in place), dropped
 * (MAP_DROPPABLE) or copies of object pages. @ps is emptied. Return: the pages sent; *@full set if the store had no slot for them.
 */
static uint64_t set_out(struct space *s, struct page_set *ps, bool clean, bool *full)
{
	struct page_set_run r = { 0 };
	int64_t sent = 0;
	int kind = -1;

	while (page_set_next_run(ps, &r)) {
		uint64_t a = r.addr, end = r.addr + (r.pages << UPAGER_PAGE_SHIFT);

		/* A run over several mappings (one-page mappings side by side, which the kernel
		 * merges into one VMA) is checked mapping by mapping: taken whole, it was refused,
		 * and such pages never left memory. */
		while (a < end) {
			const struct region *at = region_find(&s->regions, a);
			uint64_t piece = at ? MIN(end, region_end(at)) : a + UPAGER_PAGE_SIZE;
			const struct region *reg = run_region(s, a, piece - a);
			int k = !reg					   ? -1
				: reg->obj				   ? RUN_COPIES
				: (reg->flags & MAP_TYPE) == MAP_DROPPABLE ? RUN_DROPPABLE
				: reg->drop_in_place			   ? RUN_ANON_IN_PLACE
									   : RUN_ANON;

			if (kind < 0)
				kind = k;
			if (k < 0 || k != kind)
				page_set_remove(ps, a, (piece - a) >> UPAGER_PAGE_SHIFT);
			a = piece;
		}
	}
	if (ps->n)
		sent = page_out(s, ps, kind == RUN_DROPPABLE, clean, kind == RUN_COPIES,
				kind == RUN_ANON_IN_PLACE);
	if (sent == -ENOSPC)
		*full = true;
	*ps = (struct page_set){ 0 };
	return sent > 0 ? (uint64_t)sent : 0;
}

/* Take the page at @a of @s into @ps, sending @ps out first if it is full or @a is past it. */
static uint64_t set_take(struct space *s, struct page_set *ps, uint64_t a, bool clean, bool *full)
{
	uint64_t sent = 0;

	if (!page_set_add(ps, a)) {
		sent = set_out(s, ps, clean, full);
		page_set_add(ps, a);
	}
	return sent;
}

/*
 * Move the hand of @s over its pages: a page used since the hand passed is spared once; others go
 * in page-outs of up to UPAGER_DROP_MAX_PAGES pages each within a window of
 * UPAGER_DROP_WINDOW_PAGES, one for pages that kept their slots, one for the others. Once the
 * store has no slot left (*@full), only pages that kept theirs go. Return: pages sent out.
 */
static uint64_t sweep_space(struct space *s, uint64_t want, uint64_t *scan, bool *full)
{
	struct private_pages *pp = &s->priv;
	struct page_set sets[2] = { 0 }; /* [clean] */
	uint64_t sent = 0;
	struct ptable_chunk *ch = ptable_from(&pp->table, pp->hand);
	bool wrapped = false;

	/* Until the sets hold what is wanted: once they did, the hand went on through every chunk
	 * of the table for nothing and came round to its start, so that each sweep began at the
	 * lowest address again and took the pages of the first mapping whatever their use. */
	while (sent + sets[0].n + sets[1].n<want && * scan> 0 && s->priv.n_outs < SPARE_PARTS) {
		if (!ch) {
			if (wrapped)
				break;
			wrapped = true;
			ch = ptable_from(&pp->table, 0);
			continue;
		}
		/* In memory, neither leaving nor being read back; a copy a daemon before sent out
		 * may be dropped still: its removal, when it comes, must not be taken for another
		 * DROP's. Most pages of a table are out: a chunk without such pages costs a test. */
		uint64_t may = ch->present & ~ch->leaving & ~ch->reading & ~ch->dropped;

		while (may && sent + sets[0].n + sets[1].n < want) {
			unsigned i = (unsigned)__builtin_ctzll(may);
			uint64_t a = ch->base + ((uint64_t)i << UPAGER_PAGE_SHIFT);
			bool clean;

			may &= may - 1;
			if (in_page_out(s, a))
				continue;
			clean = ptable_slot(ch, i) >= 0;
			if (*full && !clean)
				continue;
			(*scan)--;
			if (ptable_bit(ch->used, i))
				ch->used &= ~(1ULL << i);
			else
				sent += set_take(s, &sets[clean], a, clean, full);
		}
		pp->hand = ch->base + PTABLE_CHUNK_BYTES;
		ch = pp->hand ? ptable_from(&pp->table, pp->hand) : NULL;
	}
	for (int clean = 0; clean < 2; clean++)
		if (sets[clean].n && !(*full && !clean))
			sent += set_out(s, &sets[clean], clean, full);
	return sent;
}

/*
 * MAP_DROPPABLE pages of @s go before any other, used or not, in page-outs of up to
 * UPAGER_DROP_MAX_PAGES. Return: pages sent out.
 */
static uint64_t sweep_droppable(struct space *s, uint64_t want)
{
	struct page_set ps = { 0 };
	uint64_t sent = 0;
	struct region *r;
	bool full = false; /* dropped pages take no slot */

	region_for_each(r, &s->regions)
	{
		if ((r->flags & MAP_TYPE) != MAP_DROPPABLE || r->obj)
			continue;
		for (uint64_t a = r->start; a < region_end(r); a += UPAGER_PAGE_SIZE) {
			struct ptable_chunk *ch = ptable_find(&s->priv.table, a);
			unsigned i = ch ? ptable_index(ch, a) : 0;
			bool take = ch && ptable_bit(ch->present, i) &&
				    !ptable_bit(ch->leaving, i) && !ptable_bit(ch->reading, i) &&
				    !in_page_out(s, a);

			if (sent + ps.n >= want || s->priv.n_outs == SPARE_PARTS)
				break;
			if (take)
				sent += set_take(s, &ps, a, false, &full);
		}
	}
	if (ps.n)
		sent += set_out(s, &ps, false, &full);
	return sent;
}

/*
 * The copies of @r past the end of its file: a slot is forgotten, the copies in memory go out
 * discarded (DROPs in place, nothing written), as many page-outs as the spare area lets be under
 * way. Return: whether some may be left (on their way somewhere, or not sent yet).
 */
static bool sweep_cut(struct space *s, struct region *r)
{
	struct ptable *t = &s->priv.table;
	uint64_t a = cut_start(r), end = region_end(r);
	bool left = false, can = may_page_out(s);

	while (a < end) {
		struct page_set ps = { 0 };
		uint64_t stop = end; /* where the next page set starts */

		for (struct ptable_chunk *ch = ptable_from(t, a), *next; ch && ch->base < stop;
		     ch = next) {
			next = ptable_next(t, ch);
			for (unsigned i = 0; i < PTABLE_CHUNK_PAGES; i++) {
				uint64_t p = ch->base + ((uint64_t)i << UPAGER_PAGE_SHIFT);

				if (p < a || p >= stop)
					continue;
				if (ptable_bit(ch->leaving, i) || ptable_bit(ch->reading, i) ||
				    in_page_out(s, p) || (ptable_bit(ch->present, i) && !can))
					left = true;
				else if (!ptable_bit(ch->present, i))
					ptable_clear_slot(t, s->d->cache.store, ch, i);
				else if (!page_set_add(&ps, p))
					stop = p;
			}
			ptable_drop_if_empty(t, ch);
		}
		/* Sent, they are looked at again once settled: one the client kept stays. */
		if (ps.n)
			left = true;
		if (ps.n && page_out(s, &ps, true, false, true, false) < 0)
			break;
		a = stop;
	}
	return left;
}

/**
 * private_follow_cuts() - once a file shrank behind the cache, the copies past its new end in
 * private mappings of it go: the kernel's truncation unmaps those too, and a touch past the end
 * gets SIGBUS (fault.c), not the copy
 */
void private_follow_cuts(struct daemon *d)
{
	struct cache *c = &d->cache;
	bool mark = c->shrinks != c->shrinks_followed;
	struct space *s;

	if (!mark && !c->cutting)
		return; /* the loop's every turn: nothing to do, nothing read */
	/* Every region is looked at: for a file that shrank, not more often than CUT_EVERY_NS
	 * (the loop wakes at least each LIVENESS_MS), so that a process truncating a file over
	 * and over costs little. */
	if (mark) {
		uint64_t now = now_ns();

		mark = now >= c->cuts_next_ns;
		if (mark) {
			c->cuts_next_ns = now + CUT_EVERY_NS;
			c->shrinks_followed = c->shrinks;
		}
	}
	if (!mark && !c->cutting)
		return;
	c->cutting = 0;
	list_for_each_entry (s, &d->spaces, link) {
		struct region *r;

		if (s->dead)
			continue;
		region_for_each(r, &s->regions)
		{
			uint64_t end;

			if (mark && region_keeps_copies(s, r) && r->obj->kind == OBJECT_FILE) {
				end = ALIGN_UP(r->obj->file_size, UPAGER_PAGE_SIZE);
				if (end < r->offset + r->length &&
				    (!r->cutting || end < r->cut_offset)) {
					r->cutting = true;
					r->cut_offset = end;
				}
			}
			if (r->cutting)
				r->cutting = sweep_cut(s, r);
			c->cutting += r->cutting;
		}
	}
}

/** private_use() - the private pages of @s that count in the budget: in memory, not leaving */
uint64_t private_use(const struct space *s)
{
	const struct ptable *t = &s->priv.table;

	if (!s->d->cache.private_out)
		return 0;
	return s->priv.stalled ? t->present : t->present - t->leaving;
}

/**
 * private_watch_answers() - find the clients whose control thread has left a request unanswered
 * for DROP_PATIENCE_NS (stopped, stuck, or not reading): their spaces start no page-out, and the
 * pages their DROPs name count as in memory (cache.private_stalled), so that no other client's
 * fault waits for them to leave. A late answer ends the page-out as any answer does.
 * @d: the daemon; at each turn of the loop, before the touches that waited are served
 */
void private_watch_answers(struct daemon *d)
{
	uint64_t now = now_ns(), stalled = 0;
	struct space *s;

	list_for_each_entry (s, &d->spaces, link) {
		uint64_t oldest = s->dead ? 0 : channel_oldest_ns(s);
		bool was = s->priv.stalled;

		s->priv.stalled = oldest && now - oldest > DROP_PATIENCE_NS;
		if (s->priv.stalled && !was)
			log_limited(LOG_WARNING,
				    "client %d has not answered its control channel for %" PRIu64
				    " ms: its pages stay in memory",
				    (int)s->pid, (now - oldest) / 1000000);
		if (s->priv.stalled)
			stalled += s->priv.table.leaving;
	}
	d->cache.private_stalled = stalled;
}

/*
 * The spaces of users over their share send out what those users are over, up to @want; a user
 * still over with page-outs under way (a space has only so many at a time) sets over->waiting;
 * *@full: the store had no slot for a page-out.
 */
static uint64_t sweep_users_over(struct daemon *d, struct users_over *over, uint64_t want,
				 uint64_t *scan, bool *full)
{
	uint64_t sent = 0;
	struct space *s;

	for (size_t k = 0; over && k < over->n && sent < want; k++) {
		struct user_over *u = &over->u[k];

		list_for_each_entry (s, &d->spaces, link) {
			uint64_t n;

			if (!u->pages || sent >= want || !*scan)
				break;
			if (s->uid != u->uid || users_over_swap_full(over, s->uid))
				continue;
			if (!may_page_out(s)) {
				/* Its page-outs under way (as many as may be) make the room: the
				 * others wait for them, rather than give theirs. */
				if (u->pages && s->priv.n_outs)
					over->waiting = true;
				continue;
			}
			n = sweep_space(s, MIN(u->pages, want - sent), scan, full);
			u->pages -= MIN(n, u->pages);
			sent += n;
			if (u->pages && s->priv.n_outs)
				over->waiting = true;
		}
	}
	return sent;
}

/* The spaces of the memory cgroups over their cap send out what each is over (groups.c). */
static void sweep_groups_over(struct daemon *d, const struct groups_over *groups, uint64_t *scan,
			      bool *full)
{
	struct space *s;

	for (size_t k = 0; groups && k < groups->n; k++) {
		uint64_t want = groups->g[k].pages;

		list_for_each_entry (s, &d->spaces, link) {
			if (!want || !*scan)
				break;
			if (s->priv.group == groups->g[k].id && may_page_out(s))
				want -= MIN(want, sweep_space(s, want, scan, full));
		}
	}
}

/**
 * private_balance() - send private anonymous pages out: those of the memory cgroups over their
 * cap, then their share of what the budget wants to go: the pages of users over their share
 * first, then as many of the pages over the budget as private pages are of the pages in memory
 * @d: the daemon; called where no fault is half done, after private_serve_waits() and
 * shares_over(), before the cache's own balance
 * @over: the users over their share (share.c), what they are over taken off as they give; or NULL
 * @groups: the memory cgroups over their cap (groups.c), or NULL
 */
void private_balance(struct daemon *d, struct users_over *over, const struct groups_over *groups)
{
	struct cache *c = &d->cache;
	uint64_t use, low, want, scan;
	bool full = false; /* the store had no slot for a page-out: only clean pages go on */
	struct space *s;

	if (!c->private_out || !c->private_pages)
		return;
	scan = 2 * c->private_pages + 64;
	sweep_groups_over(d, groups, &scan, &full);
	if (!cache_must_page_out(c))
		return;
	use = cache_use(c);
	low = cache_low_mark(c);
	want = use - low + 1;
	list_for_each_entry (s, &d->spaces, link)
		if (may_page_out(s))
			want -= MIN(want, sweep_droppable(s, want));
	want -= MIN(want, sweep_users_over(d, over, want, &scan, &full));
	/* What the droppable pages and the users over their share did not cover, and what those
	 * users' objects will not give next (cache_balance()): the private pages' share of it. */
	use = cache_use(c);
	low += users_over_objects(over);
	if (!want || use <= low || !scan || (over && over->waiting))
		return;
	want = (use - low) * cache_private_use(c) / use + 1;
	list_for_each_entry (s, &d->spaces, link) {
		uint64_t sent;

		if (!may_page_out(s) || users_over_swap_full(over, s->uid))
			continue;
		sent = sweep_space(s, want, &scan, &full);
		want -= MIN(sent, want);
		if (!want || !scan)
			break;
	}
}
