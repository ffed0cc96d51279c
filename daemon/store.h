/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A page store: where the cache reads pages from and writes the pages that leave memory or are
 * written back, by key. A file is the store of its object (file-store.c: the key is the page in
 * the file; the cache's write-back writes dirty runs there and flushes); the swap store (swap.c,
 * swap-store.c) keeps anonymous pages in slots it hands out, and so does a remote store on an NBD
 * server (nbd-store.c). The cache knows only this interface, and a test can give it one of its own.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

struct store;

/* What upagerctl stats shows of a swap store. */
struct store_info {
	const char *kind; /* "file" or "nbd" */
	const char *where; /* its path, or its URI without credentials */
	uint64_t inflight; /* requests under way */
	uint64_t bytes_out, bytes_in; /* written, and read back verified */
	uint64_t errors; /* requests that failed, a bad checksum included */
	uint64_t reconnects; /* connections made again after one was lost */
	uint32_t connections; /* connections up (a remote store's) */
};

/*
 * A completion, on the loop, not before the call that asked returns (but within store.now's calls,
 * and within a flush whose writes no thread can take): the bytes moved (a read may end short at the
 * end of a file: the rest is zeroes; a write to a file writes nothing past its end), or a negative
 * errno (-EIO: the data came back different).
 */
typedef void (*store_done_fn)(void *userdata, int result);

struct store_ops {
	/* @pages contiguous slots: 0 and *key, or -ENOSPC. NULL where keys are not handed out
	 * (a file), as is free. */
	int (*alloc)(struct store *st, uint64_t pages, uint64_t *key);
	void (*free)(struct store *st, uint64_t key, uint64_t pages);
	/* Queue a transfer of @pages pages from or to the page-aligned @buf, which stays valid
	 * until @done; @done is called unless this returns a negative errno. A store may hold
	 * writes until a flush (a file's), and makes them in the order asked. */
	int (*write)(struct store *st, uint64_t key, const void *buf, uint64_t pages,
		     store_done_fn done, void *userdata);
	int (*read)(struct store *st, uint64_t key, void *buf, uint64_t pages, store_done_fn done,
		    void *userdata);
	/* Its size and the slots in use, in pages. */
	void (*figures)(struct store *st, uint64_t *pages, uint64_t *used);
	/* A store a previous daemon left (under the fd store): slots [key, key+pages) hold pages
	 * of the cache, allocated again; 0, or -EINVAL if any is in use or past the end. NULL: a
	 * store that never outlives the daemon. */
	int (*claim)(struct store *st, uint64_t key, uint64_t pages);
	/* The writes queued before go now; @done once they are over, with 0 or a negative errno,
	 * their data on stable storage if @durable (fdatasync). NULL: writes need none (swap):
	 * store_flush() says 1 and calls no done. */
	int (*flush)(struct store *st, bool durable, store_done_fn done, void *userdata);
	/* Its kind and figures, for upagerctl stats. NULL: none to show. */
	void (*info)(struct store *st, struct store_info *out);
	/* Close the store once the I/O in flight has completed, its done called. */
	void (*close)(struct store *st);
};

struct store {
	const struct store_ops *ops;
	/* Set for a daemon that stops and runs its loop no more: a store with a flush makes each
	 * write and flush on the caller's thread, done called before it returns. */
	bool now;
};

static inline int store_alloc(struct store *st, uint64_t pages, uint64_t *key)
{
	return st->ops->alloc(st, pages, key);
}

/*
 * Keys for up to @pages pages, as many as the store has next to each other: the last free keys of
 * a nearly full store lie apart, and a run that finds none so long takes fewer (halved each time).
 * Return: the pages the keys from *@key on take, or a negative errno (-ENOSPC: not one).
 */
static inline int64_t store_alloc_run(struct store *st, uint64_t pages, uint64_t *key)
{
	for (;;) {
		int ret = store_alloc(st, pages, key);

		if (ret == 0)
			return (int64_t)pages;
		if (ret != -ENOSPC || pages <= 1)
			return ret;
		pages /= 2;
	}
}

static inline void store_free(struct store *st, uint64_t key, uint64_t pages)
{
	st->ops->free(st, key, pages);
}

static inline int store_write(struct store *st, uint64_t key, const void *buf, uint64_t pages,
			      store_done_fn done, void *userdata)
{
	return st->ops->write(st, key, buf, pages, done, userdata);
}

static inline int store_claim(struct store *st, uint64_t key, uint64_t pages)
{
	return st->ops->claim ? st->ops->claim(st, key, pages) : -EINVAL;
}

static inline int store_flush(struct store *st, bool durable, store_done_fn done, void *userdata)
{
	return st->ops->flush ? st->ops->flush(st, durable, done, userdata) : 1;
}

static inline int store_read(struct store *st, uint64_t key, void *buf, uint64_t pages,
			     store_done_fn done, void *userdata)
{
	return st->ops->read(st, key, buf, pages, done, userdata);
}

static inline void store_close(struct store *st)
{
	if (st && st->ops->close)
		st->ops->close(st);
}
