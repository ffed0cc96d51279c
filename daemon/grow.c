// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * MAP_GROWSDOWN mappings. Each has one guard page right below it in the client, mapped by the
 * library and registered with the space's userfaultfd, so that a touch of it comes here as a
 * fault. The daemon decides: the mapping may grow by that page if it stays within its limit; the
 * client's control thread (libclient/grow.c) then maps a new guard page below, after checking with
 * MAP_FIXED_NOREPLACE that the configured gap to the next lower mapping stays free. When that
 * thread answers, the new guard is registered, the old one is filled with zeroes and the faulting
 * thread goes on. A growth refused, by the limit here or by the lack of room there, ends with the
 * guard page unmapped by the growth thread and the faulting thread woken: its access, retried,
 * meets no mapping and gets the kernel's own SIGSEGV.
 *
 * Requests travel on the space's control channel (channel.c); the faults stay parked in the
 * kernel meanwhile, and the loop goes on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "common/list.h"
#include "common/macro.h"
#include "common/uffd.h"
#include "context.h"
#include "grow.h"
#include "log.h"
#include "proto/codec.h"
#include "space.h"
#include "uffdio.h"

/* A request the growth thread has not answered yet. */
struct grow_req {
	struct chan_req req;
	struct list_head link; /* growing */
	struct space *space; /* not a reference: the request ends before the space goes */
	uint32_t action;
	uint64_t guard; /* the guard page acted on, or asked for (GUARD) */
	uint64_t addr; /* the faulting page */
	uint64_t t0;
};

/* Every growth request waiting for its answer, of every space: there are few. */
static struct list_head growing = LIST_HEAD_INIT(growing);

/* The region that the guard page at addr belongs to, or NULL. */
static struct region *guarded_region(struct space *s, uint64_t addr)
{
	struct region *r;

	if (addr > UINT64_MAX - UPAGER_PAGE_SIZE)
		return NULL;
	r = region_find(&s->regions, addr + UPAGER_PAGE_SIZE);
	return r && r->guard == addr && r->start == addr + UPAGER_PAGE_SIZE ? r : NULL;
}

static struct region *growsdown_above(struct space *s, uint64_t addr);

/*
 * Every page from addr up to r's start joins r: the guard page (a growth), or everything down to a
 * page touched further below (a leap). The new guard page (and sentinel) the client mapped below
 * addr, if any, are registered first; then the page is mapped and its thread goes on.
 */
static void grow_to(struct space *s, struct region *r, uint64_t addr, bool new_guard,
		    bool new_sentinel)
{
	uint64_t next = addr - UPAGER_PAGE_SIZE;
	int ret = -1;

	r->guard = r->sentinel = 0;
	if (new_guard) {
		ret = uffdio_register(s->uffd, next, UPAGER_PAGE_SIZE,
				      UFFDIO_REGISTER_MODE_MISSING);
		if (ret < 0 && ret != -ESRCH)
			log_warning("cannot register the guard page %#" PRIx64 " of pid %d: %s",
				    next, (int)s->pid, strerror(-ret));
	}
	if (ret == 0) {
		r->guard = next;
		if (new_sentinel &&
		    uffdio_register(s->uffd, next - UPAGER_PAGE_SIZE, UPAGER_PAGE_SIZE,
				    UFFDIO_REGISTER_MODE_MISSING) == 0)
			r->sentinel = next - UPAGER_PAGE_SIZE;
	}
	r->grown_pages += (r->start - addr) >> UPAGER_PAGE_SHIFT;
	region_resize(&s->regions, r, addr, region_end(r));
	uffdio_resolve_zero(s->uffd, addr, UPAGER_PAGE_SIZE);
}

/* The answer to GUARD, asked for by leap(). */
static void finish_guard(struct space *s, struct grow_req *q, int status, bool sentinel)
{
	struct region *r = region_find(&s->regions, q->addr);

	if (r) {
		/* Another leap took it in meanwhile. */
		uffdio_wake(s->uffd, q->addr, UPAGER_PAGE_SIZE);
	} else if ((r = growsdown_above(s, q->addr)) && status == 0) {
		grow_to(s, r, q->addr, true, sentinel);
	} else {
		/* No room below: the growth thread unmapped the pages up to the mapping. */
		if (r) {
			r->guard = r->sentinel = 0;
			space_mark_region(s, r);
		}
		uffdio_wake(s->uffd, q->addr, UPAGER_PAGE_SIZE);
	}
	space_account_fault(s, r, q->t0);
}

static void finish(struct space *s, struct grow_req *q, int status, bool sentinel)
{
	struct region *r;

	if (q->action == UPAGER_GROW_GUARD) {
		finish_guard(s, q, status, sentinel);
		return;
	}
	r = guarded_region(s, q->guard);

	if (r && q->action == UPAGER_GROW_EXTEND && status == 0) {
		grow_to(s, r, q->guard, true, sentinel);
	} else {
		/* Refused: the guard page is gone from the client, the access faults for good. */
		if (r) {
			r->guard = r->sentinel = 0;
			space_mark_region(s, r);
		}
		uffdio_wake(s->uffd, q->guard, UPAGER_PAGE_SIZE);
	}
	space_account_fault(s, r, q->t0);
}

static void grow_answered(struct space *s, struct chan_req *req, const struct upager_msg *m);

static int send_req(struct space *s, uint32_t action, const struct region *r, uint64_t addr,
		    uint64_t t0)
{
	uint64_t guard = action == UPAGER_GROW_GUARD ? addr - UPAGER_PAGE_SIZE : r->guard;
	struct upager_msg m = { .op = UPAGER_OP_GROW };
	struct grow_req *q;
	int ret;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	m.u.grow.guard_addr = guard;
	m.u.grow.gap = s->d->config.guard_gap;
	/* GUARD: the top of what leaps, which goes if the growth cannot be. */
	m.u.grow.sentinel_addr = action == UPAGER_GROW_GUARD ? r->start : r->sentinel;
	m.u.grow.action = action;
	m.u.grow.prot = r->prot;
	ret = channel_send(s, &m, &q->req, grow_answered);
	if (ret < 0) {
		free(q);
		return ret;
	}
	q->space = s;
	q->action = action;
	q->guard = guard;
	q->addr = addr;
	q->t0 = t0;
	list_add_tail(&q->link, &growing);
	return 0;
}

static bool in_flight(struct space *s, uint64_t addr)
{
	struct grow_req *q;

	list_for_each_entry (q, &growing, link)
		if (q->space == s && q->addr == addr)
			return true;
	return false;
}

/* The MAP_GROWSDOWN region closest above addr, or NULL. */
static struct region *growsdown_above(struct space *s, uint64_t addr)
{
	struct region *r = region_lower(&s->regions, addr + 1);

	if (r && r->start <= addr)
		r = region_next(&s->regions, r);
	return r && r->flags & MAP_GROWSDOWN ? r : NULL;
}

/*
 * A touch below the guard page: of the sentinel, or further down, where the kernel grew the
 * sentinel (it is mapped MAP_GROWSDOWN) as it grows a stack, within its stack_guard_gap. Every
 * page from there up joins the mapping, within the limit, once the growth thread has mapped a new
 * guard page and sentinel below it (or found no room for them). Past the limit nothing can be
 * unmapped that the kernel would not grow again: the access gets SIGBUS.
 */
static bool leap(struct space *s, uint64_t addr, uint64_t t0)
{
	struct region *r = growsdown_above(s, addr);

	if (!r || (!r->guard && !r->sentinel && !r->grown_pages))
		return false;
	r->faults++;
	if (r->max_length && region_end(r) - addr > r->max_length) {
		log_limited(LOG_INFO,
			    "pid %d: a touch at %#" PRIx64
			    " below its guard page passes the limit: "
			    "SIGBUS",
			    (int)s->pid, addr);
		uffdio_sigbus(s->uffd, addr, space_mm(s));
		space_account_fault(s, r, t0);
		return true;
	}
	if (in_flight(s, addr))
		return true;
	/* The new guard page and sentinel first, registered before the thread goes on. */
	if (s->chan && addr >= 2 * UPAGER_PAGE_SIZE &&
	    send_req(s, UPAGER_GROW_GUARD, r, addr, t0) == 0)
		return true;
	grow_to(s, r, addr, false, false);
	space_account_fault(s, r, t0);
	return true;
}

/**
 * grow_fault() - serve a fault that may be on the guard page of a MAP_GROWSDOWN mapping
 * @s: the space
 * @addr: the faulting page
 * @t0: when the fault was read
 *
 * Return: true if @addr is a guard page, or below one, and the fault is taken care of.
 */
bool grow_fault(struct space *s, uint64_t addr, uint64_t t0)
{
	struct region *r = guarded_region(s, addr);
	bool fits;
	int ret;

	if (!r)
		return leap(s, addr, t0);
	r->faults++;
	if (in_flight(s, addr))
		return true; /* another thread touched it too: the answer wakes both */
	fits = (!r->max_length || r->length + UPAGER_PAGE_SIZE <= r->max_length) &&
	       addr >= s->d->config.guard_gap;
	if (!s->chan) {
		/*
		 * No growth thread (a forked child that has not made a MAP_GROWSDOWN mapping of its
		 * own): the client's address space cannot change, so the guard page is the last
		 * page it can have.
		 */
		if (fits) {
			grow_to(s, r, addr, false, false);
		} else {
			log_limited(LOG_WARNING,
				    "pid %d: growth past the limit at %#" PRIx64
				    " and no growth thread: SIGBUS",
				    (int)s->pid, addr);
			uffdio_sigbus(s->uffd, addr, space_mm(s));
		}
		space_account_fault(s, r, t0);
		return true;
	}
	ret = send_req(s, fits ? UPAGER_GROW_EXTEND : UPAGER_GROW_REFUSE, r, addr, t0);
	if (ret < 0) {
		log_limited(LOG_WARNING, "pid %d: cannot reach the growth thread: %s", (int)s->pid,
			    strerror(-ret));
		channel_detach(s);
		return grow_fault(s, addr, t0);
	}
	return true;
}

/*
 * The answer to a growth request, or none: the channel closed and the fault is woken to retry
 * (the faulting page: a GUARD request's is below the guard page it asks for).
 */
static void grow_answered(struct space *s, struct chan_req *req, const struct upager_msg *m)
{
	struct grow_req *q = container_of(req, struct grow_req, req);

	list_del_init(&q->link);
	if (m) {
		finish(s, q, m->status, m->u.grow_reply.sentinel);
	} else if (!s->dead) {
		uffdio_wake(s->uffd, q->addr, UPAGER_PAGE_SIZE);
		if (q->guard != q->addr)
			uffdio_wake(s->uffd, q->guard, UPAGER_PAGE_SIZE);
	}
	free(q);
}

/** grow_forget_guards() - guard pages in [start, end) left the client (an UNMAP event) */
void grow_forget_guards(struct space *s, uint64_t start, uint64_t end)
{
	struct region *r;

	/* A guard page is the page below its region, a sentinel the one below that. */
	region_for_each_in(r, &s->regions, start, end + 2 * UPAGER_PAGE_SIZE)
	{
		if (r->guard && r->guard >= start && r->guard < end) {
			r->guard = 0;
			space_mark_region(s, r);
		}
		if (r->sentinel && r->sentinel >= start && r->sentinel < end) {
			r->sentinel = 0;
			space_mark_region(s, r);
		}
	}
}

/**
 * grow_munmap_start() - where an munmap of [start, end) really starts
 *
 * An unmap that covers what the client was given of a MAP_GROWSDOWN mapping takes its grown pages
 * and its guard page too; one that takes the low end of such a mapping takes its guard page.
 *
 * Return: @start, or the lower address the client must unmap from.
 */
uint64_t grow_munmap_start(struct space *s, uint64_t start, uint64_t end)
{
	uint64_t lo = start;
	struct region *r;

	region_for_each_in(r, &s->regions, start, end)
	{
		uint64_t low = r->sentinel ? r->sentinel : r->guard ? r->guard : r->start;

		if (!(r->flags & MAP_GROWSDOWN) || r->start >= end || region_end(r) <= start)
			continue;
		if ((start <= r->base && end >= region_end(r)) || start <= r->start)
			lo = MIN(lo, low);
	}
	return lo;
}
