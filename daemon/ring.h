/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's io_uring: asynchronous reads of backing stores, completed on the event loop. */
#pragma once

#include <stdint.h>
#include <uv.h>

struct ring;

typedef void (*ring_done_fn)(void *userdata, int result);

int ring_new(uv_loop_t *loop, unsigned entries, struct ring **out);
void ring_free(struct ring *r);
int ring_read(struct ring *r, int fd, void *buf, uint32_t len, uint64_t offset, ring_done_fn done,
	      void *userdata);
#define RING_RWF_DONTCACHE 0x00000080
int ring_read_uncached(struct ring *r, int fd, void *buf, uint32_t len, uint64_t offset,
		       ring_done_fn done, void *userdata);
int ring_write(struct ring *r, int fd, const void *buf, uint32_t len, uint64_t offset,
	       ring_done_fn done, void *userdata);
