/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Buffers of the pages that go to the swap store and come back from it (private.c): each
 * BUFFER_BYTES, page-aligned. A few freed ones are kept for the next page-out or page-in, their
 * pages faulted in already; the others go back to the system when freed, so that the daemon's
 * own memory beyond the budget is the buffers in use and at most BUFFERS_KEPT more.
 */
#pragma once

#include <stddef.h>

#define BUFFER_BYTES (1UL << 20) /* a page-out of UPAGER_DROP_MAX_PAGES pages */
#define BUFFERS_KEPT 4

struct buffers {
	void *kept[BUFFERS_KEPT];
	unsigned n;
};

void *buffer_get(struct buffers *b);
void buffer_put(struct buffers *b, void *buf);
void buffers_release(struct buffers *b);
