/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Buffers of the private pages that go to the swap store and come back from it (private.c):
 * each BUFPOOL_BYTES, page-aligned. A few freed ones are kept for the next page-out or page-in,
 * their pages faulted in already (a new buffer costs a page fault and a cleared page per 4 KiB:
 * a fifth of the daemon's time in a write pass); the others go back to the system when freed, so
 * that the daemon's own memory beyond the budget is the buffers in use and at most
 * BUFPOOL_KEPT more. A buffer given again holds what its last user left in it.
 */
#pragma once

#include <stddef.h>

#define BUFPOOL_BYTES (1UL << 20) /* a page-out of UPAGER_DROP_MAX_PAGES pages */
#define BUFPOOL_KEPT 4
/* Smaller buffers come from the heap; from this size on, malloc() maps each on its own too (the
 * threshold main.c sets), so that none stays in the heap once freed. */
#define BUFPOOL_MIN_BYTES (64UL * 1024)

struct bufpool {
	void *kept[BUFPOOL_KEPT];
	unsigned n;
};

void *bufpool_get(struct bufpool *b);
void bufpool_put(struct bufpool *b, void *buf);
void bufpool_release(struct bufpool *b);
