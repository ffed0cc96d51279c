/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The claims of a view table (proto/view-table.h): every move of a claim's state, by the library
 * and by the daemon, with its atomic operation and memory order, in one place that both use.
 *
 *   move                         by       function            how
 *   IDLE -> ACTIVE               library  claim_begin()       index and page, then state; fence
 *   ACTIVE -> COPYING            library  claim_copying()     compare-and-swap
 *   COPYING -> DONE              library  claim_done()        compare-and-swap
 *   ACTIVE, COPYING or
 *   REVOKED -> IDLE              library  claim_abandon()     store
 *   ACTIVE or COPYING -> REVOKED daemon   claim_revoke()      compare-and-swap
 *   DONE -> IDLE                 daemon   claim_take_done()   store
 *   not a state -> IDLE          daemon   claim_reset()       compare-and-swap
 *
 * A move out of a state that the other side may leave at the same time (ACTIVE, COPYING) is a
 * compare-and-swap: so a claim revoked never ends DONE, and a claim DONE is never revoked.
 * claim_abandon() is a store: a claim given up has no copy to take, whatever the daemon did to it
 * meanwhile; claim_take_done() is one because only the daemon leaves DONE.
 *
 * Ordering against the object's page states (the third descriptor of a REMAP convert reply): the
 * library publishes its claim, then reads the page's state byte (claim_begin() ends with a full
 * fence); the daemon stores the byte non-zero, then reads the claims (claim_settle_fence() before
 * the first claim_read()). So either the library sees the byte and gives up, or the daemon sees the
 * claim. A claim is the client's memory: the daemon trusts no state, index or page it reads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "view-table.h"

/* The library's side. */

/* A free (IDLE) slot of @t, or NULL while every slot is busy. */
static inline struct upager_view_claim *claim_slot(struct upager_view_table *t)
{
	for (size_t k = 0; k < UPAGER_VIEW_CLAIMS; k++)
		if (__atomic_load_n(&t->claim[k].state, __ATOMIC_ACQUIRE) == UPAGER_CLAIM_IDLE)
			return &t->claim[k];
	return NULL;
}

/*
 * IDLE -> ACTIVE: claim object page @page for view page @index. The claim is visible to the daemon
 * before anything the caller reads afterwards (the page's state byte).
 */
static inline void claim_begin(struct upager_view_claim *c, uint64_t index, uint64_t page)
{
	__atomic_store_n(&c->index, index, __ATOMIC_RELAXED);
	__atomic_store_n(&c->page, page, __ATOMIC_RELAXED);
	__atomic_store_n(&c->state, UPAGER_CLAIM_ACTIVE, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ACTIVE -> COPYING, just before the copy; false if the daemon has revoked the claim. */
static inline bool claim_copying(struct upager_view_claim *c)
{
	__u64 state = UPAGER_CLAIM_ACTIVE;

	return __atomic_compare_exchange_n(&c->state, &state, UPAGER_CLAIM_COPYING, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/*
 * COPYING -> DONE, once the copy is mapped and its entry HELD: the daemon takes it from here.
 * False if the daemon, tired of waiting, has revoked the claim: the caller takes its copy back.
 */
static inline bool claim_done(struct upager_view_claim *c)
{
	__u64 state = UPAGER_CLAIM_COPYING;

	return __atomic_compare_exchange_n(&c->state, &state, UPAGER_CLAIM_DONE, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* ACTIVE, COPYING or REVOKED -> IDLE: give the claim up. */
static inline void claim_abandon(struct upager_view_claim *c)
{
	__atomic_store_n(&c->state, UPAGER_CLAIM_IDLE, __ATOMIC_RELEASE);
}

/* The daemon's side. */

/* Before the daemon reads claims: it has just made the page's state byte non-zero. */
static inline void claim_settle_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/*
 * The state of @c, and the view page and object page it names (meaningful from ACTIVE on, as the
 * library stores them before it leaves IDLE). Any value: the client wrote it.
 */
static inline __u64 claim_read(const struct upager_view_claim *c, uint64_t *index, uint64_t *page)
{
	__u64 state = __atomic_load_n(&c->state, __ATOMIC_SEQ_CST);

	*index = __atomic_load_n(&c->index, __ATOMIC_RELAXED);
	*page = __atomic_load_n(&c->page, __ATOMIC_RELAXED);
	return state;
}

/*
 * @state (ACTIVE or COPYING, as claim_read() returned it) -> REVOKED; false if the claim has
 * moved since, which the caller reads again.
 */
static inline bool claim_revoke(struct upager_view_claim *c, __u64 state)
{
	return __atomic_compare_exchange_n(&c->state, &state, UPAGER_CLAIM_REVOKED, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* DONE -> IDLE, once the daemon has taken the copy as its own (or refused it). */
static inline void claim_take_done(struct upager_view_claim *c)
{
	__atomic_store_n(&c->state, UPAGER_CLAIM_IDLE, __ATOMIC_RELEASE);
}

/* @state, which is no state at all (the client's doing) -> IDLE, unless it has moved since. */
static inline void claim_reset(struct upager_view_claim *c, __u64 state)
{
	__atomic_compare_exchange_n(&c->state, &state, UPAGER_CLAIM_IDLE, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
}
