// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The claims of a view table (proto/claim.h): each move the library and the daemon make, the
 * moves each state refuses, and a library thread claiming and copying against a daemon thread
 * revoking and taking copies, checking that a revoked claim never ends DONE, that a DONE claim is
 * never revoked, and that every DONE claim is taken once, with the page the library claimed.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "proto/claim.h"

/* Each test runs in a process of its own: a fresh table, every claim IDLE. */
static struct upager_view_table table;

static __u64 state_of(const struct upager_view_claim *c)
{
	uint64_t index, page;

	return claim_read(c, &index, &page);
}

/* Claim 0, brought to @state (ACTIVE, COPYING or DONE) by the library's moves. */
static struct upager_view_claim *claim_in(__u64 state)
{
	struct upager_view_claim *c = claim_slot(&table);

	cr_assert_eq(c, &table.claim[0]);
	claim_begin(c, 5, 9);
	if (state >= UPAGER_CLAIM_COPYING)
		cr_assert(claim_copying(c));
	if (state >= UPAGER_CLAIM_DONE)
		cr_assert(claim_done(c));
	cr_assert_eq(state_of(c), state);
	return c;
}

/* A claim REVOKED: the library can move it nowhere but back to IDLE. */
static void expect_revoked(struct upager_view_claim *c)
{
	cr_assert_eq(state_of(c), UPAGER_CLAIM_REVOKED);
	cr_assert_not(claim_copying(c));
	cr_assert_not(claim_done(c));
	cr_assert_eq(state_of(c), UPAGER_CLAIM_REVOKED);
	cr_assert_neq(claim_slot(&table), c, "a claim REVOKED is not free");
	claim_abandon(c);
	cr_assert_eq(state_of(c), UPAGER_CLAIM_IDLE);
}

Test(claim, the_library_copies_and_the_daemon_takes_the_copy)
{
	struct upager_view_claim *c = claim_in(UPAGER_CLAIM_ACTIVE);
	uint64_t index, page;

	cr_assert_eq(claim_read(c, &index, &page), UPAGER_CLAIM_ACTIVE);
	cr_assert_eq(index, 5);
	cr_assert_eq(page, 9);
	cr_assert_eq(claim_slot(&table), &table.claim[1], "a claim ACTIVE is not free");
	cr_assert(claim_copying(c));
	cr_assert_eq(state_of(c), UPAGER_CLAIM_COPYING);
	cr_assert_not(claim_copying(c), "COPYING only from ACTIVE");
	cr_assert(claim_done(c));
	cr_assert_eq(state_of(c), UPAGER_CLAIM_DONE);
	cr_assert_eq(claim_slot(&table), &table.claim[1], "a claim DONE is not free");
	claim_take_done(c);
	cr_assert_eq(state_of(c), UPAGER_CLAIM_IDLE);
	cr_assert_eq(claim_slot(&table), c);
}

Test(claim, a_claim_revoked_while_active_never_copies)
{
	struct upager_view_claim *c = claim_in(UPAGER_CLAIM_ACTIVE);

	cr_assert_not(claim_revoke(c, UPAGER_CLAIM_COPYING), "the state read is stale");
	cr_assert(claim_revoke(c, UPAGER_CLAIM_ACTIVE));
	expect_revoked(c);
}

Test(claim, a_claim_revoked_while_copying_never_ends_done)
{
	struct upager_view_claim *c = claim_in(UPAGER_CLAIM_COPYING);

	cr_assert_not(claim_revoke(c, UPAGER_CLAIM_ACTIVE), "the state read is stale");
	cr_assert(claim_revoke(c, UPAGER_CLAIM_COPYING));
	expect_revoked(c);
}

Test(claim, a_claim_done_is_never_revoked)
{
	struct upager_view_claim *c = claim_in(UPAGER_CLAIM_DONE);

	cr_assert_not(claim_revoke(c, UPAGER_CLAIM_COPYING));
	cr_assert_not(claim_revoke(c, UPAGER_CLAIM_ACTIVE));
	cr_assert_eq(state_of(c), UPAGER_CLAIM_DONE);
}

Test(claim, no_slot_while_every_claim_is_busy)
{
	for (uint64_t k = 0; k < UPAGER_VIEW_CLAIMS; k++) {
		struct upager_view_claim *c = claim_slot(&table);

		cr_assert_eq(c, &table.claim[k]);
		claim_begin(c, k, k);
		cr_assert(claim_copying(c));
		cr_assert(claim_done(c));
	}
	cr_assert_null(claim_slot(&table));
	claim_take_done(&table.claim[17]);
	cr_assert_eq(claim_slot(&table), &table.claim[17]);
}

Test(claim, a_state_that_is_none_is_reset_unless_it_moved)
{
	struct upager_view_claim *c = &table.claim[3];

	c->state = 77;
	claim_reset(c, 77);
	cr_assert_eq(state_of(c), UPAGER_CLAIM_IDLE);
	c->state = 78;
	claim_reset(c, 77);
	cr_assert_eq(state_of(c), 78, "moved since it was read");
}

/* The race: one library thread, one daemon thread, one table. */
#define ROUNDS 8000

struct race {
	struct upager_view_table *t;
	bool finished; /* the library has made its last claim */
	/* The library's count and the daemon's, of what each saw. */
	uint64_t lib_done, lib_revoked, daemon_taken, daemon_revoked[2]; /* ACTIVE, COPYING */
	uint64_t sweeps; /* of the daemon over every claim */
	uint8_t done[ROUNDS], taken[ROUNDS]; /* per claimed page */
	const char *broken; /* the first broken invariant */
};

static void broke(struct race *r, const char *what)
{
	const char *none = NULL;

	__atomic_compare_exchange_n(&r->broken, &none, what, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
}

/*
 * In one round of four the library stays ACTIVE, in another COPYING, until the daemon has looked at
 * every claim twice: its revoke then races the library's next move.
 */
static void wait_for_daemon(struct race *r, uint64_t page, uint64_t when)
{
	uint64_t from = __atomic_load_n(&r->sweeps, __ATOMIC_ACQUIRE);

	if (page % 4 != when)
		return;
	while (__atomic_load_n(&r->sweeps, __ATOMIC_ACQUIRE) < from + 2)
		sched_yield();
}

/* The library holds no claim here: one REVOKED is one it made DONE. */
static bool revoked_left(struct race *r)
{
	for (size_t k = 0; k < UPAGER_VIEW_CLAIMS; k++)
		if (state_of(&r->t->claim[k]) == UPAGER_CLAIM_REVOKED) {
			broke(r, "a claim is REVOKED that the library made DONE");
			return true;
		}
	return false;
}

static void *library(void *arg)
{
	struct race *r = arg;

	for (uint64_t page = 0; page < ROUNDS; page++) {
		struct upager_view_claim *c;

		while (!(c = claim_slot(r->t)))
			if (revoked_left(r))
				goto out; /* else every slot is DONE: the daemon has yet to take them */
		claim_begin(c, page % 1024, page);
		wait_for_daemon(r, page, 0);
		if (claim_copying(c)) {
			wait_for_daemon(r, page, 1);
			if (claim_done(c)) {
				__atomic_store_n(&r->done[page], 1, __ATOMIC_RELAXED);
				r->lib_done++;
				continue;
			}
		}
		if (state_of(c) != UPAGER_CLAIM_REVOKED)
			broke(r, "a move refused but the claim not REVOKED");
		r->lib_revoked++;
		claim_abandon(c);
	}
out:
	__atomic_store_n(&r->finished, true, __ATOMIC_RELEASE);
	return NULL;
}

static void *daemon_side(void *arg)
{
	struct race *r = arg;
	uint64_t sweep = 0;

	for (;;) {
		bool finished = __atomic_load_n(&r->finished, __ATOMIC_ACQUIRE), busy = false;

		claim_settle_fence();
		for (size_t k = 0; k < UPAGER_VIEW_CLAIMS; k++) {
			struct upager_view_claim *c = &r->t->claim[k];
			uint64_t index, page;
			__u64 state = claim_read(c, &index, &page);

			switch (state) {
			case UPAGER_CLAIM_DONE:
				if (page >= ROUNDS || index != page % 1024 || r->taken[page]++)
					broke(r, "a DONE claim taken twice, or not as claimed");
				r->daemon_taken++;
				claim_take_done(c);
				break;
			case UPAGER_CLAIM_ACTIVE:
			case UPAGER_CLAIM_COPYING:
				busy = true;
				/* Revoke about one claim in three that it sees. */
				if ((sweep + k) % 3 == 0 && claim_revoke(c, state))
					r->daemon_revoked[state == UPAGER_CLAIM_COPYING]++;
				break;
			case UPAGER_CLAIM_REVOKED:
				/* Only the library leaves REVOKED: one it left is a DONE revoked. */
				if (finished)
					broke(r, "a claim is REVOKED that the library made DONE");
				else
					busy = true;
				break;
			}
		}
		if (finished && !busy)
			break;
		__atomic_store_n(&r->sweeps, ++sweep, __ATOMIC_RELEASE);
	}
	return NULL;
}

Test(claim, library_and_daemon_race_and_keep_the_invariants, .timeout = 60)
{
	static struct race r;
	pthread_t lib, dmn;

	r.t = &table;
	cr_assert_eq(pthread_create(&dmn, NULL, daemon_side, &r), 0);
	cr_assert_eq(pthread_create(&lib, NULL, library, &r), 0);
	pthread_join(lib, NULL);
	pthread_join(dmn, NULL);

	cr_assert_null(r.broken, "%s", r.broken);
	cr_assert_eq(r.lib_done + r.lib_revoked, ROUNDS);
	cr_assert_eq(r.daemon_taken, r.lib_done, "every DONE claim taken once");
	cr_assert_eq(r.daemon_revoked[0] + r.daemon_revoked[1], r.lib_revoked,
		     "every revoke seen by the library");
	for (size_t p = 0; p < ROUNDS; p++)
		cr_assert_eq(r.taken[p], r.done[p], "page %zu", p);
	for (size_t k = 0; k < UPAGER_VIEW_CLAIMS; k++)
		cr_assert_eq(state_of(&r.t->claim[k]), UPAGER_CLAIM_IDLE);
	cr_assert_gt(r.daemon_revoked[0], 0, "the daemon revoked claims ACTIVE");
	cr_assert_gt(r.daemon_revoked[1], 0, "the daemon revoked claims COPYING");
	cr_assert_gt(r.lib_done, 0, "the library made some copies");
}
