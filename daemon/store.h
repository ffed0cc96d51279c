/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A page store: where the cache keeps the pages of shared anonymous memory that leave memory, by
 * key (a run of slots it hands out). The swap store (swap.c) is one; the cache knows only this
 * interface, so that another store (a remote one) plugs in beside it, and a test can give the
 * cache one of its own.
 */
#pragma once

#include <stdint.h>

struct store;

/* A completion, on the loop: 0 or a negative errno (-EIO: the data came back different). */
typedef void (*store_done_fn)(void *userdata, int result);

struct store_ops {
	/* @pages contiguous slots: 0 and *key, or -ENOSPC. */
	int (*alloc)(struct store *st, uint64_t pages, uint64_t *key);
	void (*free)(struct store *st, uint64_t key, uint64_t pages);
	/* Queue a transfer of @pages pages from or to the page-aligned @buf; @done is called
	 * unless this returns a negative errno. */
	int (*write)(struct store *st, uint64_t key, const void *buf, uint64_t pages,
		     store_done_fn done, void *userdata);
	int (*read)(struct store *st, uint64_t key, void *buf, uint64_t pages, store_done_fn done,
		    void *userdata);
	/* Its size and the slots in use, in pages. */
	void (*figures)(struct store *st, uint64_t *pages, uint64_t *used);
};

struct store {
	const struct store_ops *ops;
};

static inline int store_alloc(struct store *st, uint64_t pages, uint64_t *key)
{
	return st->ops->alloc(st, pages, key);
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

static inline int store_read(struct store *st, uint64_t key, void *buf, uint64_t pages,
			     store_done_fn done, void *userdata)
{
	return st->ops->read(st, key, buf, pages, done, userdata);
}
