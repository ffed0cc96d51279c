/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ABI of the shared memory of a nonlinear mapping between upagerd and libupager: the view
 * table and its claims. Not part of the wire protocol (upager-proto.h): no message carries it;
 * the REMAP convert reply hands a memfd of it over.
 */
#ifndef UPAGER_VIEW_TABLE_H
#define UPAGER_VIEW_TABLE_H

#include <linux/types.h>

/*
 * The view table a REMAP convert reply attaches as its second descriptor: a memfd the client maps
 * shared and writable. It is shared memory, not a message: fields are native 64-bit words, read
 * and written with atomic operations by the daemon and the library at once.
 *
 * entry[i] says which object page view page i shows: that page XOR (base + i), so that a fresh
 * table, all zeroes, shows the file as the linear mapping did and costs no memory until written.
 * UPAGER_VIEW_HELD is set by the daemon alone,
 * while view page i holds a copy (or one is being made): the library then leaves the entry alone
 * and asks the daemon. An entry without it the library may rewrite itself (compare-and-swap, so
 * that it never overwrites a HELD the daemon has just set) for a MAP_NONBLOCK remap, as long as
 * start is the mapping's address; the daemon sets start to 0 when the mapping is moved or cut.
 */
#define UPAGER_VIEW_TABLE_MAGIC 0x54565055ull /* "UPVT" */
#define UPAGER_VIEW_HELD (1ull << 63)

/*
 * A claim: a one-page populating remap the library makes alone, copying an object page that no
 * one holds (its state byte 0 in the object's page states, the third descriptor of the convert
 * reply) from the file (the fourth) into its view with UFFDIO_COPY. In a free slot (IDLE) the
 * library writes index and page, then moves state to ACTIVE; to COPYING just before the copy; to
 * DONE once the copy is mapped and the entry HELD; and from ACTIVE or REVOKED back to IDLE when
 * it gives up. The daemon moves ACTIVE (or, after waiting long enough, COPYING) to REVOKED when
 * it is about to change that object page, and DONE to IDLE once it has taken the copy as its
 * own, which it does at its next look at the view. Each of these moves is a function of
 * proto/claim.h, which both sides use.
 */
enum {
	UPAGER_CLAIM_IDLE = 0,
	UPAGER_CLAIM_ACTIVE = 1,
	UPAGER_CLAIM_COPYING = 2,
	UPAGER_CLAIM_DONE = 3,
	UPAGER_CLAIM_REVOKED = 4,
};

#define UPAGER_VIEW_CLAIMS 32

struct upager_view_claim {
	__u64 state; /* UPAGER_CLAIM_* */
	__u64 index; /* the view page */
	__u64 page; /* the object page copied into it */
};

struct upager_view_table {
	__u64 magic;
	__u64 start; /* where view page 0 is in the client; 0: ask the daemon for every remap */
	__u64 pages; /* view pages; entry[] has this many */
	__u64 object_pages; /* pgoff + pages above this: ask the daemon (it answers EINVAL) */
	__u64 base; /* object page of view page 0 in the linear mapping */
	__u64 reserved[3];
	struct upager_view_claim claim[UPAGER_VIEW_CLAIMS];
	__u64 entry[]; /* object page ^ (base + i), | UPAGER_VIEW_HELD */
};

#endif /* UPAGER_VIEW_TABLE_H */
