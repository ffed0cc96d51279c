/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The swap store: a file or a block device of the daemon's own where pages that leave memory are
 * kept, in slots of one page, read and written through the daemon's io_uring.
 */
#pragma once

#include <stdint.h>

struct ring;
struct swap;

/* A completion, on the loop: 0 or a negative errno. */
typedef void (*swap_done_fn)(void *userdata, int result);

struct swap_stats {
	uint64_t size_bytes; /* what the slots can hold */
	uint64_t used_pages, peak_pages; /* slots allocated now, and at most */
	uint64_t pages_out, pages_in; /* pages written, and read back verified */
	uint64_t writes, reads; /* swap_write() and swap_read() done */
	uint64_t errors; /* of those, the ones that failed, a bad checksum included */
	uint64_t inflight; /* swap_write() and swap_read() under way */
	bool full; /* its file system had no room for a write a moment ago: it takes no page now */
};

/* swap_open(): the store's tables go to a memfd, so that the store outlives the daemon. */
#define SWAP_KEPT 1U

int swap_open(struct ring *ring, const char *path, uint64_t max_bytes, unsigned flags,
	      struct swap **out);
int swap_adopt(struct ring *ring, int fd, int tables_fd, struct swap **out);
int swap_claim(struct swap *s, uint64_t slot, uint64_t pages);
int swap_fd(const struct swap *s);
int swap_tables_fd(const struct swap *s);
void swap_close(struct swap *s);
int swap_alloc(struct swap *s, uint64_t pages, uint64_t *slot);
int swap_free(struct swap *s, uint64_t slot, uint64_t pages);
int swap_write(struct swap *s, uint64_t slot, const void *buf, uint64_t pages, swap_done_fn done,
	       void *userdata);
int swap_read(struct swap *s, uint64_t slot, void *buf, uint64_t pages, swap_done_fn done,
	      void *userdata);
int swap_write_now(struct swap *s, uint64_t slot, const void *buf, uint64_t pages);
int swap_read_now(struct swap *s, uint64_t slot, void *buf, uint64_t pages);
void swap_stats(const struct swap *s, struct swap_stats *out);
