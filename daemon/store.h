/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A page store: where the cache reads pages from and keeps the pages that leave memory, by key.
 * A file is the store of its object (file-store.c: the key is the page in the file; read only, its
 * write-back is object.c's); the swap store (swap.c, swap-store.c) keeps shared anonymous pages
 * in slots it hands out. The cache knows only this interface, so that another store (a remote
 * one) plugs in beside them, and a test can give the cache one of its own.
 */
#pragma once

#include <errno.h>
#include <stdint.h>

struct store;

/*
 * A completion, on the loop: the bytes moved (a read may end short at the end of a file: the rest
 * is zeroes), or a negative errno (-EIO: the data came back different).
 */
typedef void (*store_done_fn)(void *userdata, int result);

struct store_ops {
	/* @pages contiguous slots: 0 and *key, or -ENOSPC. NULL where keys are not handed out
	 * (a file), as are free and write. */
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
	/* A store a previous daemon left (under the fd store): slots [key, key+pages) hold pages
	 * of the cache, allocated again; 0, or -EINVAL if any is in use or past the end. NULL: a
	 * store that never outlives the daemon. */
	int (*claim)(struct store *st, uint64_t key, uint64_t pages);
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

static inline int store_claim(struct store *st, uint64_t key, uint64_t pages)
{
	return st->ops->claim ? st->ops->claim(st, key, pages) : -EINVAL;
}

static inline int store_read(struct store *st, uint64_t key, void *buf, uint64_t pages,
			     store_done_fn done, void *userdata)
{
	return st->ops->read(st, key, buf, pages, done, userdata);
}
