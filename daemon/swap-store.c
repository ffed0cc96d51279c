// SPDX-License-Identifier: LGPL-2.1-or-later
/* The swap store (swap.c) as a page store of the cache (store.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "swap-store.h"
#include "swap.h"

struct swap_store {
	struct store store;
	struct swap *swap;
	char *path;
};

static struct swap *swap_of(struct store *st)
{
	return container_of(st, struct swap_store, store)->swap;
}

static int ss_alloc(struct store *st, uint64_t pages, uint64_t *key)
{
	return swap_alloc(swap_of(st), pages, key);
}

static void ss_free(struct store *st, uint64_t key, uint64_t pages)
{
	swap_free(swap_of(st), key, pages);
}

/* A transfer of the swap store, whose completion says 0: the bytes, as the cache counts them. */
struct ss_op {
	uint64_t bytes;
	store_done_fn done;
	void *userdata;
};

static void ss_done(void *userdata, int result)
{
	struct ss_op op = *(struct ss_op *)userdata;

	free(userdata);
	op.done(op.userdata, result < 0 ? result : (int)op.bytes);
}

static int ss_io(struct store *st, bool write, uint64_t key, void *buf, uint64_t pages,
		 store_done_fn done, void *userdata)
{
	struct ss_op *op = malloc(sizeof(*op));
	int ret;

	if (!op)
		return -ENOMEM;
	*op = (struct ss_op){ pages << UPAGER_PAGE_SHIFT, done, userdata };
	ret = write ? swap_write(swap_of(st), key, buf, pages, ss_done, op)
		    : swap_read(swap_of(st), key, buf, pages, ss_done, op);
	if (ret < 0)
		free(op);
	return ret;
}

static int ss_write(struct store *st, uint64_t key, const void *buf, uint64_t pages,
		    store_done_fn done, void *userdata)
{
	return ss_io(st, true, key, (void *)buf, pages, done, userdata);
}

static int ss_read(struct store *st, uint64_t key, void *buf, uint64_t pages, store_done_fn done,
		   void *userdata)
{
	return ss_io(st, false, key, buf, pages, done, userdata);
}

static int ss_claim(struct store *st, uint64_t key, uint64_t pages)
{
	return swap_claim(swap_of(st), key, pages);
}

static void ss_figures(struct store *st, uint64_t *pages, uint64_t *used)
{
	struct swap_stats s;

	swap_stats(swap_of(st), &s);
	/* Out of room below: as full as it is, so that nothing waits for a page-out to it. */
	*pages = s.full ? s.used_pages : s.size_bytes >> UPAGER_PAGE_SHIFT;
	*used = s.used_pages;
}

static void ss_info(struct store *st, struct store_info *out)
{
	struct swap_store *ss = container_of(st, struct swap_store, store);
	struct swap_stats s;

	swap_stats(ss->swap, &s);
	*out = (struct store_info){ .kind = "file",
				    .where = ss->path,
				    .inflight = s.inflight,
				    .bytes_out = s.pages_out << UPAGER_PAGE_SHIFT,
				    .bytes_in = s.pages_in << UPAGER_PAGE_SHIFT,
				    .errors = s.errors };
}

static const struct store_ops swap_store_ops = {
	.alloc = ss_alloc,
	.free = ss_free,
	.write = ss_write,
	.read = ss_read,
	.figures = ss_figures,
	.claim = ss_claim,
	.info = ss_info,
	.close = swap_store_free,
};

/**
 * swap_store_new() - the page store of @swap at @path, for the cache; free it (store_close())
 * before swap_close()
 * Return: the store, or NULL without memory.
 */
struct store *swap_store_new(struct swap *swap, const char *path)
{
	struct swap_store *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return NULL;
	ss->path = strdup(path);
	if (!ss->path) {
		free(ss);
		return NULL;
	}
	ss->store.ops = &swap_store_ops;
	ss->swap = swap;
	return &ss->store;
}

/** swap_store_free() - free a store of swap_store_new() */
void swap_store_free(struct store *st)
{
	struct swap_store *ss = st ? container_of(st, struct swap_store, store) : NULL;

	if (ss) {
		free(ss->path);
		free(ss);
	}
}
