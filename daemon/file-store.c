// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A file as the page store of its object: the cache's reads of the file (store.h). Key: the page
 * in the file. A read runs to the end asked or to end of file (short reads read on), through the
 * daemon's io_uring, with RWF_DONTCACHE where the kernel has it, so that what the cache holds is
 * not held twice (the first read refused with EOPNOTSUPP or EINVAL turns it off, and is read again
 * plainly). The file's writes are the write-back's (object.c), in worker threads, not here.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/macro.h"
#include "file-store.h"
#include "ring.h"

struct file_store {
	struct store store;
	struct ring *ring;
	int fd;
};

/* One read under way. */
struct file_read {
	struct file_store *fs;
	uint8_t *buf;
	uint64_t off, len, done;
	bool uncached;
	store_done_fn done_fn;
	void *userdata;
};

/* Cleared for good at the first read the kernel or a file system refuses with RWF_DONTCACHE. */
static bool read_uncached = true;

static void read_done(void *userdata, int res);

static int read_submit(struct file_read *r)
{
	r->uncached = read_uncached;
	return (r->uncached ? ring_read_uncached : ring_read)(
		r->fs->ring, r->fs->fd, r->buf + r->done, (uint32_t)(r->len - r->done),
		r->off + r->done, read_done, r);
}

static void read_end(struct file_read *r, int result)
{
	store_done_fn done = r->done_fn;
	void *userdata = r->userdata;

	free(r);
	done(userdata, result);
}

static void read_done(void *userdata, int res)
{
	struct file_read *r = userdata;
	int ret;

	if (r->uncached && (res == -EOPNOTSUPP || res == -EINVAL)) {
		read_uncached = false;
		res = -EAGAIN; /* read again, plainly */
	}
	if (res > 0)
		r->done += (uint64_t)res;
	/* Interrupted, or short and not at end of file: read on. */
	if (res == -EINTR || res == -EAGAIN || (res > 0 && r->done < r->len)) {
		ret = read_submit(r);
		if (ret < 0)
			read_end(r, ret);
		return;
	}
	read_end(r, res < 0 ? res : (int)r->done);
}

static int fs_read(struct store *st, uint64_t key, void *buf, uint64_t pages, store_done_fn done,
		   void *userdata)
{
	struct file_read *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	*r = (struct file_read){ .fs = container_of(st, struct file_store, store),
				 .buf = buf,
				 .off = key << UPAGER_PAGE_SHIFT,
				 .len = pages << UPAGER_PAGE_SHIFT,
				 .done_fn = done,
				 .userdata = userdata };
	ret = read_submit(r);
	if (ret < 0)
		free(r);
	return ret;
}

static const struct store_ops file_store_ops = { .read = fs_read };

/**
 * file_store_new() - the page store of the file open as @fd (the daemon's reader, borrowed: it
 * must outlive the store), read through @ring
 * Return: the store, or NULL without memory.
 */
struct store *file_store_new(struct ring *ring, int fd)
{
	struct file_store *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->store.ops = &file_store_ops;
	fs->ring = ring;
	fs->fd = fd;
	return &fs->store;
}

/** file_store_free() - free a store of file_store_new(); no read of it may be under way */
void file_store_free(struct store *st)
{
	if (st)
		free(container_of(st, struct file_store, store));
}
