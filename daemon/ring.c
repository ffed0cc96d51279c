// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's io_uring. Submissions are batched: ring_read() only queues an SQE; the queue is
 * submitted once per loop iteration (uv_prepare). Completions signal an eventfd that the loop polls,
 * and each completion calls its callback on the loop thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/macro.h"
#include "log.h"
#include "ring.h"

#define RING_ASYNC_BYTES (64 * 1024)

struct ring_op {
	ring_done_fn done;
	void *userdata;
};

struct ring {
	struct io_uring uring;
	int efd;
	uv_poll_t poll;
	uv_prepare_t prepare;
	unsigned queued;
	unsigned inflight;
	unsigned closing; /* handles whose close callback has yet to run */
#ifdef UPAGER_FAULT_INJECTION
	unsigned long reads; /* ring_read() calls so far */
	unsigned long fail_read; /* the one that fails, 0: none */
#endif
};

#ifdef UPAGER_FAULT_INJECTION
/*
 * Tests only: $UPAGER_FAIL_READ=N makes the N-th ring_read() fail to queue, as with a full ring
 * (-EBUSY), so that a fill can fail in the middle of a range. Read once, by ring_new().
 */
static void fail_read_init(struct ring *r)
{
	const char *v = getenv("UPAGER_FAIL_READ");

	r->fail_read = v ? strtoul(v, NULL, 10) : 0;
}

static bool fail_read_now(struct ring *r)
{
	if (!r->fail_read || ++r->reads != r->fail_read)
		return false;
	log_warning("fault injection: ring read %lu fails", r->reads);
	return true;
}
#else
static void fail_read_init(struct ring *r)
{
	(void)r;
}

static bool fail_read_now(struct ring *r)
{
	(void)r;
	return false;
}
#endif

static void ring_reap(struct ring *r)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
		struct ring_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&r->uring, cqe);
		r->inflight--;
		op->done(op->userdata, res);
		free(op);
	}
}

static void ring_submit(struct ring *r)
{
	int n;

	if (r->queued == 0)
		return;
	n = io_uring_submit(&r->uring);
	if (n < 0)
		log_error("io_uring_submit: %s", strerror(-n));
	else
		r->queued -= MIN((unsigned)n, r->queued);
}

static void on_prepare(uv_prepare_t *h)
{
	ring_submit(h->data);
}

static void on_event(uv_poll_t *h, int status, int events)
{
	struct ring *r = h->data;
	uint64_t v;

	(void)status;
	(void)events;
	while (read(r->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	ring_reap(r);
	ring_submit(r);
}

/**
 * ring_new() - set up the ring and hook it to the loop
 * @loop: the daemon's loop
 * @entries: submission queue size
 * @out: the ring
 *
 * Return: 0 or a negative errno (-ENOSYS or -EPERM where io_uring is disabled).
 */
int ring_new(uv_loop_t *loop, unsigned entries, struct ring **out)
{
	struct ring *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = io_uring_queue_init(entries, &r->uring, 0);
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		ret = neg_errno();
		goto fail;
	}
	ret = io_uring_register_eventfd(&r->uring, r->efd);
	if (ret < 0)
		goto fail_efd;
	uv_poll_init(loop, &r->poll, r->efd);
	r->poll.data = r;
	uv_poll_start(&r->poll, UV_READABLE, on_event);
	uv_prepare_init(loop, &r->prepare);
	r->prepare.data = r;
	uv_prepare_start(&r->prepare, on_prepare);
	fail_read_init(r);
	*out = r;
	return 0;

fail_efd:
	close(r->efd);
fail:
	io_uring_queue_exit(&r->uring);
	free(r);
	return ret;
}

/* libuv calls close callbacks in an order of its own: the last of the two frees the ring. */
static void on_closed(uv_handle_t *h)
{
	struct ring *r = h->data;

	if (--r->closing > 0)
		return;
	close(r->efd);
	io_uring_queue_exit(&r->uring);
	free(r);
}

/**
 * ring_free() - wait for what is in flight, then release the ring (after the loop has run once)
 * @r: the ring, or NULL
 */
void ring_free(struct ring *r)
{
	if (!r)
		return;
	ring_submit(r);
	while (r->inflight > 0) {
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe(&r->uring, &cqe) < 0)
			break;
		ring_reap(r);
	}
	uv_poll_stop(&r->poll);
	uv_prepare_stop(&r->prepare);
	r->closing = 2;
	uv_close((uv_handle_t *)&r->poll, on_closed);
	uv_close((uv_handle_t *)&r->prepare, on_closed);
}

static int ring_rw(struct ring *r, bool write, int fd, void *buf, uint32_t len, uint64_t offset,
		   int rw_flags, ring_done_fn done, void *userdata)
{
	struct io_uring_sqe *sqe;
	struct ring_op *op;

	op = malloc(sizeof(*op));
	if (!op)
		return -ENOMEM;
	sqe = io_uring_get_sqe(&r->uring);
	if (!sqe) {
		ring_submit(r);
		sqe = io_uring_get_sqe(&r->uring);
	}
	if (!sqe) {
		free(op);
		return -EBUSY;
	}
	op->done = done;
	op->userdata = userdata;
	if (write)
		io_uring_prep_write(sqe, fd, buf, len, offset);
	else
		io_uring_prep_read(sqe, fd, buf, len, offset);
	sqe->rw_flags = rw_flags;
	/*
	 * Large transfers (read-ahead, populate) go to io_uring's workers: a read of cached data
	 * would otherwise copy inline, on the loop's thread, while faults wait. A small one is
	 * cheaper inline than a hop to a worker and back.
	 */
	if (len >= RING_ASYNC_BYTES)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	io_uring_sqe_set_data(sqe, op);
	r->queued++;
	r->inflight++;
	return 0;
}

/**
 * ring_read() - queue a read; @done runs on the loop with the byte count or a negative errno
 * @r: the ring
 * @fd: file to read
 * @buf: destination
 * @len: bytes
 * @offset: file offset
 * @done: completion callback
 * @userdata: for @done
 *
 * Return: 0, or a negative errno when the request could not be queued (@done is not called).
 */
int ring_read(struct ring *r, int fd, void *buf, uint32_t len, uint64_t offset, ring_done_fn done,
	      void *userdata)
{
	if (fail_read_now(r))
		return -EBUSY;
	return ring_rw(r, false, fd, buf, len, offset, 0, done, userdata);
}

/**
 * ring_read_uncached() - ring_read() with RWF_DONTCACHE (Linux 6.14): the pages the read brings
 * into the kernel's page cache leave it once read; pages that were there stay. A kernel or file
 * system without it fails the read with -EOPNOTSUPP (or -EINVAL): read again with ring_read().
 */
int ring_read_uncached(struct ring *r, int fd, void *buf, uint32_t len, uint64_t offset,
		       ring_done_fn done, void *userdata)
{
	if (fail_read_now(r))
		return -EBUSY;
	return ring_rw(r, false, fd, buf, len, offset, RING_RWF_DONTCACHE, done, userdata);
}

/**
 * ring_write() - queue a write; as ring_read()
 * Return: 0, or a negative errno when the request could not be queued (@done is not called).
 */
int ring_write(struct ring *r, int fd, const void *buf, uint32_t len, uint64_t offset,
	       ring_done_fn done, void *userdata)
{
	return ring_rw(r, true, fd, (void *)buf, len, offset, 0, done, userdata);
}
