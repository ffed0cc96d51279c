// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A file as the page store of its object (store.h). Key: the page in the file.
 *
 * Reads run to the end asked or to end of file (short reads read on), through the daemon's
 * io_uring, with RWF_DONTCACHE where the kernel has it, so that what the cache holds is not held
 * twice (the first read refused with EOPNOTSUPP or EINVAL turns it off, and is read again plainly).
 *
 * Writes (the cache's write-back) wait in the store until a flush, then go to a worker thread
 * together, one batch of a store at a time and in the order asked: a file system that stalls holds
 * that thread and the clients waiting for the flush, never the loop. A batch reads the file's size
 * first and writes no byte past its end (with RWF_DONTCACHE where the kernel has it, as reads), syncs the data (fdatasync(2)) for a durable flush, and
 * reads the file's status after its writes, handed to the object (its own writes are no change
 * behind the cache's back). The thread touches only its batch. A store set to write now (a daemon
 * that stops, store.now) makes each transfer on the caller's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/list.h"
#include "common/macro.h"
#include "file-store.h"
#include "ring.h"
#include "worker.h"

struct file_store {
	struct store store;
	struct ring *ring;
	struct worker_pool *workers;
	uint32_t owner; /* of its batches in the worker pool */
	int fd; /* the reader */
	const int *fd_write; /* where the object keeps its writer */
	file_store_written_fn written;
	void *userdata;
	struct list_head queue; /* struct fs_op: writes not yet flushed */
	struct list_head ready; /* writes and flushes for the next batch */
	struct fs_batch *running; /* or NULL */
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

/* A write (buf set) or a flush, queued in the order asked. */
struct fs_op {
	struct list_head link;
	const uint8_t *buf;
	uint64_t off, len;
	bool durable;
	int ret; /* bytes written (0 past end of file), or a negative errno */
	store_done_fn done;
	void *userdata;
};

/* The ops of one flush or more, for a worker thread. */
struct fs_batch {
	struct worker_job job;
	struct file_store *fs;
	int fd;
	struct list_head ops;
	bool have_st;
	struct stat st; /* after the writes */
};

/* Cleared for good at the first write the kernel or a file system refuses with RWF_DONTCACHE. */
static atomic_bool write_uncached = true;

/*
 * pwrite(2), with RWF_DONTCACHE where the kernel has it: the pages written leave the kernel's page
 * cache once on disk, and are not held a second time there, dirty, charged to the daemon (a memory
 * cgroup v1 does not hold back its dirty pages, and they got the daemon OOM-killed).
 */
static ssize_t write_dropped(int fd, const void *buf, size_t len, off_t off)
{
	if (atomic_load(&write_uncached)) {
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
		ssize_t n = pwritev2(fd, &iov, 1, off, RING_RWF_DONTCACHE);

		if (n >= 0 || (errno != EOPNOTSUPP && errno != EINVAL))
			return n;
		atomic_store(&write_uncached, false);
	}
	return pwrite(fd, buf, len, off);
}

/* On the caller's thread: @op's bytes below end of file @eof into @fd, or its sync. */
static void op_run(struct fs_op *op, int fd, uint64_t eof)
{
	const uint8_t *src = op->buf;
	uint64_t off = op->off, len, done = 0;

	op->ret = 0;
	if (!src) {
		if (op->durable && fdatasync(fd) < 0)
			op->ret = neg_errno();
		return;
	}
	len = off < eof ? MIN(op->len, eof - off) : 0;
	while (done < len) {
		ssize_t n = write_dropped(fd, src + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			op->ret = n < 0 ? neg_errno() : -EIO;
			return;
		}
		done += (uint64_t)n;
	}
	/* On disk, then out of the kernel's page cache: not held there a second time. */
	sync_file_range(fd, (off_t)off, (off_t)len,
			SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER);
	posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
	op->ret = (int)done;
}

/* The ops of @ops in order on @fd; whether any byte was written, and then the status in @st. */
static bool ops_run(struct list_head *ops, int fd, struct stat *st)
{
	bool wrote = false;
	struct fs_op *op;
	int err = 0;

	if (fstat(fd, st) < 0)
		err = neg_errno();
	list_for_each_entry (op, ops, link) {
		if (err < 0) {
			op->ret = err;
			continue;
		}
		op_run(op, fd, (uint64_t)st->st_size);
		wrote |= op->buf && op->ret > 0;
	}
	return wrote && fstat(fd, st) == 0;
}

static void batch_run(struct worker_job *job)
{
	struct fs_batch *b = container_of(job, struct fs_batch, job);

	b->have_st = ops_run(&b->ops, b->fd, &b->st);
}

static void batch_done(struct worker_job *job, int status)
{
	(void)job, (void)status; /* an op not run says -ECANCELED already */
}

/* Call the done of every op of @ops, in order; the store may be freed by any of them. */
static void ops_complete(struct list_head *ops)
{
	while (!list_empty(ops)) {
		struct fs_op *op = list_first_entry(ops, struct fs_op, link);

		list_del_init(&op->link);
		op->done(op->userdata, op->ret);
		free(op);
	}
}

static void batch_free(struct worker_job *job);

/* Hand the ops ready to a worker thread, unless a batch of the store runs. */
static void fs_kick(struct file_store *fs)
{
	struct list_head failed;
	struct fs_batch *b;
	struct fs_op *op;
	int ret = -ENOMEM;

	if (fs->running || list_empty(&fs->ready))
		return;
	b = calloc(1, sizeof(*b));
	if (b) {
		*b = (struct fs_batch){ .job = { .run = batch_run,
						 .done = batch_done,
						 .free = batch_free,
						 .owner = fs->owner },
					.fs = fs,
					.fd = *fs->fd_write };
		list_init(&b->ops);
		list_splice_init(&fs->ready, &b->ops);
		list_for_each_entry (op, &b->ops, link)
			op->ret = -ECANCELED;
		fs->running = b;
		ret = worker_submit(fs->workers, &b->job);
		if (ret == 0)
			return;
		fs->running = NULL;
		list_splice_init(&b->ops, &fs->ready);
		free(b);
	}
	/* No thread takes them (the pool stops): over now, the flush that asked included. */
	list_init(&failed);
	list_splice_init(&fs->ready, &failed);
	list_for_each_entry (op, &failed, link)
		op->ret = ret;
	ops_complete(&failed);
}

/* On the loop, once the batch's run is over (or it never ran): its results, then the next. */
static void batch_free(struct worker_job *job)
{
	struct fs_batch *b = container_of(job, struct fs_batch, job);
	struct file_store *fs = b->fs;

	fs->running = NULL;
	if (b->have_st && fs->written)
		fs->written(fs->userdata, &b->st);
	fs_kick(fs);
	ops_complete(&b->ops);
	free(b);
}

/* A store set to write now: @op made on this thread, and done. */
static void op_now(struct file_store *fs, struct fs_op *op)
{
	struct list_head one;
	struct stat st;

	list_init(&one);
	list_add_tail(&op->link, &one);
	if (ops_run(&one, *fs->fd_write, &st) && fs->written)
		fs->written(fs->userdata, &st);
	ops_complete(&one);
}

static int fs_queue(struct store *st, const void *buf, uint64_t key, uint64_t pages, bool durable,
		    store_done_fn done, void *userdata)
{
	struct file_store *fs = container_of(st, struct file_store, store);
	struct fs_op *op;

	if (*fs->fd_write < 0)
		return -EBADF;
	if (pages > (INT32_MAX >> UPAGER_PAGE_SHIFT))
		return -EINVAL;
	op = calloc(1, sizeof(*op));
	if (!op) {
		/* A flush that cannot be asked lets the writes before it go all the same. */
		if (!buf && !st->now) {
			list_splice_init(&fs->queue, &fs->ready);
			fs_kick(fs);
		}
		return -ENOMEM;
	}
	*op = (struct fs_op){ .buf = buf,
			      .off = key << UPAGER_PAGE_SHIFT,
			      .len = pages << UPAGER_PAGE_SHIFT,
			      .durable = durable,
			      .done = done,
			      .userdata = userdata };
	if (st->now) {
		op_now(fs, op);
		return 0;
	}
	list_add_tail(&op->link, &fs->queue);
	if (!buf) {
		list_splice_init(&fs->queue, &fs->ready);
		fs_kick(fs);
	}
	return 0;
}

static int fs_write(struct store *st, uint64_t key, const void *buf, uint64_t pages,
		    store_done_fn done, void *userdata)
{
	return fs_queue(st, buf, key, pages, false, done, userdata);
}

static int fs_flush(struct store *st, bool durable, store_done_fn done, void *userdata)
{
	return fs_queue(st, NULL, 0, 0, durable, done, userdata);
}

static const struct store_ops file_store_ops = { .write = fs_write,
						 .read = fs_read,
						 .flush = fs_flush };

/**
 * file_store_new() - the page store of a file, read through @ring, written in threads of @workers
 * @ring: the daemon's io_uring
 * @workers: the pool that writes; @owner: its batches' owner there
 * @fd: the daemon's reader of the file (borrowed: it must outlive the store)
 * @fd_write: where the object keeps its writer of the file, or -1 (borrowed, read at each write)
 * @written: told the file's status after the store's writes, with @userdata, or NULL
 *
 * Return: the store, or NULL without memory.
 */
struct store *file_store_new(struct ring *ring, struct worker_pool *workers, uint32_t owner, int fd,
			     const int *fd_write, file_store_written_fn written, void *userdata)
{
	struct file_store *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->store.ops = &file_store_ops;
	fs->ring = ring;
	fs->workers = workers;
	fs->owner = owner;
	fs->fd = fd;
	fs->fd_write = fd_write;
	fs->written = written;
	fs->userdata = userdata;
	list_init(&fs->queue);
	list_init(&fs->ready);
	return &fs->store;
}

/**
 * file_store_free() - free a store of file_store_new(); no read or write of it may be under way
 * (writes not flushed are let go: their done is never called)
 */
void file_store_free(struct store *st)
{
	struct file_store *fs = st ? container_of(st, struct file_store, store) : NULL;

	if (!fs)
		return;
	while (!list_empty(&fs->queue)) {
		struct fs_op *op = list_first_entry(&fs->queue, struct fs_op, link);

		list_del_init(&op->link);
		free(op);
	}
	free(fs);
}
