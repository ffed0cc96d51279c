// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A swap store on an NBD server, behind the page-store interface (store.h): far memory. The
 * export is laid out as a local store is (store-header.h: our header in page 0, slot N at page
 * N + 1), and taken only if it holds that header or zeroes in its first MiB.
 *
 * One connection through libnbd in its asynchronous mode: its socket is polled in the daemon's
 * loop (nbd_aio_get_direction() says for what), each transfer is one nbd_aio_pread() or
 * nbd_aio_pwrite() (pieces of NBD_IO_MAX) with a completion callback, and as many are in flight as
 * the cache asks. libnbd calls those callbacks inside its own calls, where no libnbd call may be
 * made: a transfer that ends goes on a list, and its done is called once libnbd has returned.
 * libnbd sets TCP_NODELAY on a TCP connection itself.
 *
 * The server is not trusted with the data: each page written has its CRC32C kept here
 * (page-sums.c), and a page read back that differs is -EIO, never data. Freed slots are trimmed
 * where the server can, by the policy of slots_trim_due(); the slots stay allocated until the trim
 * is over, since the server may reorder a trim and a later write to the same place.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "nbd-store.h"

/** nbd_store_is_uri() - whether @where names an NBD server (nbd:, nbds:, nbd+unix: ...) */
bool nbd_store_is_uri(const char *where)
{
	const char *colon = strchr(where, ':');

	return strncmp(where, "nbd", 3) == 0 && colon && strncmp(colon, "://", 3) == 0 &&
	       !memchr(where, '/', (size_t)(colon - where));
}

#ifndef HAVE_LIBNBD

/** nbd_store_available() - whether this daemon was built with libnbd */
bool nbd_store_available(void)
{
	return false;
}

/** nbd_store_open() - without libnbd: -EPROTONOSUPPORT */
int nbd_store_open(uv_loop_t *loop, const char *uri, const struct nbd_store_opts *opts,
		   struct store **out)
{
	(void)loop, (void)uri, (void)out;
	if (opts->tables_fd >= 0)
		close(opts->tables_fd);
	return -EPROTONOSUPPORT;
}

/** nbd_store_tables_fd() - without libnbd: none */
int nbd_store_tables_fd(struct store *st)
{
	(void)st;
	return -1;
}

#else

#include <libnbd.h>

#include "common/list.h"
#include "log.h"
#include "memfd.h"
#include "page-sums.h"
#include "slots.h"
#include "store-header.h"
#include "store.h"

#define PAGE UPAGER_PAGE_SIZE
#define NBD_IO_MAX (4U << 20) /* the most one request moves: servers take 32 MiB at least */
#define NBD_TABLES_MAGIC "upager nbd tables, format 1\n"
#define BACKOFF_MIN_MS 50 /* the first attempt to connect again, after a loss */
#define BACKOFF_MAX_MS 1000 /* attempts double their interval up to this */
#define CONNECT_MS 5000 /* the longest one attempt may take */
#define NBD_CONNS_MAX 16 /* the most connections (--swap-connections) */
#define NBD_SNDBUF (4 << 20) /* a Unix socket's send buffer: several page-outs at once */

struct nbd_store;

/* One connection to the server: the first, and more if it offers multi-conn. */
struct nbd_conn {
	struct nbd_store *ns;
	struct nbd_handle *nbd; /* the connection, or the one being made; NULL while none */
	uv_poll_t *poll; /* its socket's */
	uv_timer_t retry; /* the next attempt to connect, or the end of one under way */
	int events; /* what the poll waits for */
	bool up; /* connected: requests go to it */
	bool off; /* given up: the server no longer offers multi-conn */
	unsigned gen; /* times it was lost so far */
	unsigned busy; /* ops on their way on it */
	uint64_t lost_ms, backoff_ms;
};

struct nbd_store {
	struct store store;
	uv_loop_t *loop;
	struct nbd_conn conn[NBD_CONNS_MAX];
	unsigned nconn; /* of conn[] in use: 1, or more where the server offers multi-conn */
	unsigned timers; /* conn[].retry not closed yet, once destroyed */
	char *uri; /* with its credentials, to connect again */
	char *where; /* the URI without credentials */
	bool away; /* no connection for longer than timeout_ms: requests fail */
	bool trim; /* the server can trim */
	bool closing; /* store_close() came while I/O was in flight */
	bool destroyed;
	bool delivering;
	bool adopted; /* the tables of a previous daemon: claimed slots keep their checksums */
	uint64_t timeout_ms;
	uint64_t top; /* the end of the slots ever allocated */
	struct slots slots;
	struct page_sums sums;
	void *tables; /* a header page, then the sums (a memfd's if tables_fd >= 0) */
	int tables_fd;
	struct list_head waiting; /* struct nbd_op.link: to issue once connected */
	struct list_head done; /* struct nbd_op.link: ended, their done not called yet */
	unsigned inflight; /* struct nbd_op asked, not delivered */
	struct store_info info;
};

/* The first page of the tables: what they are, and for how many slots. */
struct nbd_tables_header {
	char magic[32];
	uint64_t pages;
};

/* One transfer (or trim) of the cache's, in pieces of NBD_IO_MAX, on one connection. */
struct nbd_op {
	struct list_head link;
	struct nbd_store *ns;
	enum {
		OP_READ,
		OP_WRITE,
		OP_TRIM
	} kind;
	uint64_t slot, pages;
	char *buf;
	struct nbd_conn *conn; /* the connection it was issued on, NULL if none yet */
	unsigned gen; /* conn's gen then */
	unsigned pieces, ended; /* issued, and of those ended (their free called) */
	unsigned completed; /* of those, with a completion and no error */
	int error;
	store_done_fn fn;
	void *userdata;
};

static struct nbd_store *ns_of(struct store *st)
{
	return container_of(st, struct nbd_store, store);
}

static int nbd_errno(void)
{
	int e = nbd_get_errno();

	return e > 0 ? -e : -EIO;
}

static void on_poll(uv_poll_t *poll, int status, int events);
static void on_retry(uv_timer_t *t);

static bool conn_dead(struct nbd_handle *nbd)
{
	return nbd_aio_is_dead(nbd) == 1 || nbd_aio_is_closed(nbd) == 1;
}

/* The connections up. */
static unsigned ns_up(struct nbd_store *ns)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ns->nconn; i++)
		n += ns->conn[i].up;
	return n;
}

/* Poll the socket for what libnbd waits for. A connection found dead outside a poll is taken
 * for lost on the loop's next turn. */
static void conn_arm(struct nbd_conn *c)
{
	unsigned dir = nbd_aio_get_direction(c->nbd);
	int events = (dir & LIBNBD_AIO_DIRECTION_READ ? UV_READABLE : 0) |
		     (dir & LIBNBD_AIO_DIRECTION_WRITE ? UV_WRITABLE : 0);

	if (c->up && conn_dead(c->nbd))
		uv_timer_start(&c->retry, on_retry, 0, 0);
	if (events == c->events)
		return;
	c->events = events;
	if (events)
		uv_poll_start(c->poll, events, on_poll);
	else
		uv_poll_stop(c->poll);
}

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

/* Close the connection or the attempt: the pieces in flight end, their ops on the done list. */
static void conn_drop(struct nbd_conn *c)
{
	if (c->poll)
		uv_close((uv_handle_t *)c->poll, poll_closed);
	c->poll = NULL;
	c->events = 0;
	if (c->nbd)
		nbd_close(c->nbd);
	c->nbd = NULL;
	c->up = false;
}

static void ns_free_all(struct nbd_store *ns)
{
	if (ns->tables)
		munmap(ns->tables, PAGE + page_sums_bytes(ns->slots.pages));
	if (ns->tables_fd >= 0)
		close(ns->tables_fd);
	slots_deinit(&ns->slots);
	free(ns->uri);
	free(ns->where);
	free(ns);
}

static void timer_closed(uv_handle_t *h)
{
	struct nbd_store *ns = ((struct nbd_conn *)h->data)->ns;

	if (--ns->timers == 0)
		ns_free_all(ns);
}

static void ns_destroy(struct nbd_store *ns)
{
	if (ns->destroyed)
		return;
	ns->destroyed = true;
	ns->timers = ns->nconn;
	for (unsigned i = 0; i < ns->nconn; i++) {
		conn_drop(&ns->conn[i]);
		uv_close((uv_handle_t *)&ns->conn[i].retry, timer_closed);
	}
}

/* A read or write that ended: checked, counted, and its done called. */
static void op_finish(struct nbd_store *ns, struct nbd_op *op)
{
	int res = op->error;
	uint64_t bytes = op->pages * PAGE;

	if (res == 0 && op->completed != op->pieces)
		res = -EIO;
	if (op->kind == OP_TRIM) {
		(void)slots_free(&ns->slots, op->slot, op->pages);
		ns->info.errors += res < 0;
		return;
	}
	if (res == 0 && op->kind == OP_WRITE)
		page_sums_commit(&ns->sums, op->slot, op->buf, op->pages);
	else if (res == 0)
		res = page_sums_verify(&ns->sums, "nbd", op->slot, op->buf, op->pages);
	if (res < 0 && op->kind == OP_WRITE)
		slots_out_of_room(&ns->slots, res);
	if (res < 0) {
		ns->info.errors++;
		log_limited(LOG_ERR, "nbd: %s of slots %lu+%lu: %s",
			    op->kind == OP_WRITE ? "write" : "read", (unsigned long)op->slot,
			    (unsigned long)op->pages, strerror(-res));
	} else if (op->kind == OP_WRITE) {
		ns->info.bytes_out += bytes;
	} else {
		ns->info.bytes_in += bytes;
	}
	op->fn(op->userdata, res < 0 ? res : (int)bytes);
}

static int ns_go(struct nbd_store *ns, struct nbd_op *op);

static void conn_lost(struct nbd_conn *c);
static void conn_attempt(struct nbd_conn *c, bool dial);

/* An error of the connection, not of the request: the server shuts down, or it is gone. */
static bool conn_error(int error)
{
	return error == -ESHUTDOWN || error == -ENOTCONN || error == -ECONNRESET || error == -EPIPE;
}

/* An op that failed on a connection lost since (or with an error that says it is): to be made
 * again, on any connection, unless the server is away for good or the store closes. Return:
 * whether it waits (or went again). */
static bool op_again(struct nbd_store *ns, struct nbd_op *op)
{
	struct nbd_conn *c = op->conn;

	if ((op->error == 0 && op->completed == op->pieces) || !c)
		return false;
	if (op->gen == c->gen && c->up && conn_error(op->error)) {
		conn_lost(c);
		conn_attempt(c, true);
	}
	if (op->gen == c->gen || ns->away || ns->closing)
		return false;
	op->pieces = op->ended = op->completed = 0;
	op->error = 0;
	op->error = ns_go(ns, op);
	return op->error == 0;
}

/* The ops that ended, each once, outside libnbd's calls and never nested. */
static void ns_deliver(struct nbd_store *ns)
{
	if (ns->delivering || ns->destroyed)
		return;
	ns->delivering = true;
	while (!list_empty(&ns->done)) {
		struct nbd_op *op = list_first_entry(&ns->done, struct nbd_op, link);

		list_del_init(&op->link);
		if (op_again(ns, op))
			continue;
		op_finish(ns, op);
		free(op);
		ns->inflight--;
	}
	ns->delivering = false;
	if (ns->inflight == 0 && ns->closing)
		ns_destroy(ns);
}

/* End the ops waiting for a connection with @err. */
static void ns_fail_waiting(struct nbd_store *ns, int err)
{
	struct nbd_op *op, *tmp;

	list_for_each_entry_safe (op, tmp, &ns->waiting, link) {
		list_del_init(&op->link);
		op->error = err;
		list_add_tail(&op->link, &ns->done);
	}
}

/* A piece's completion, inside libnbd: its result only. */
static int piece_completed(void *userdata, int *error)
{
	struct nbd_op *op = userdata;

	if (*error)
		op->error = op->error ? op->error : -*error;
	else
		op->completed++;
	return 1;
}

/* A piece is over, completed or never sent (libnbd frees each callback once): the op ends with
 * its last piece. */
static void piece_freed(void *userdata)
{
	struct nbd_op *op = userdata;

	if (++op->ended == op->pieces) {
		op->conn->busy--;
		list_add_tail(&op->link, &op->ns->done);
	}
}

/* Issue @op's pieces on @c; 0 once one is on its way (done will be called), else a negative
 * errno. */
static int op_issue(struct nbd_conn *c, struct nbd_op *op)
{
	uint64_t len = op->pages * PAGE;
	int ret = 0;

	op->conn = c;
	op->gen = c->gen;
	op->pieces = 1; /* until all are issued: none ends the op before */
	c->busy++;
	for (uint64_t at = 0; at < len; at += NBD_IO_MAX) {
		size_t n = (size_t)MIN(len - at, (uint64_t)NBD_IO_MAX);
		uint64_t offset = store_slot_offset(op->slot) + at;
		nbd_completion_callback cb = { .callback = piece_completed,
					       .user_data = op,
					       .free = piece_freed };
		unsigned ended = op->ended;
		int64_t cookie;

		op->pieces++;
		if (op->kind == OP_WRITE)
			cookie = nbd_aio_pwrite(c->nbd, op->buf + at, n, offset, cb, 0);
		else if (op->kind == OP_READ)
			cookie = nbd_aio_pread(c->nbd, op->buf + at, n, offset, cb, 0);
		else
			cookie = nbd_aio_trim(c->nbd, n, offset, cb, 0);
		if (cookie < 0) {
			ret = nbd_errno();
			op->error = op->error ? op->error : ret;
			/* Not sent: over, whether libnbd freed the callback or not. */
			if (op->ended == ended)
				op->ended++;
			break;
		}
	}
	if (--op->pieces == op->ended) {
		/* Nothing on its way: no done. */
		c->busy--;
		list_del_init(&op->link);
		return ret < 0 ? ret : -EIO;
	}
	conn_arm(c);
	return 0;
}

/* The connection up with the fewest ops on their way, or NULL. */
static struct nbd_conn *ns_pick(struct nbd_store *ns)
{
	struct nbd_conn *best = NULL;

	for (unsigned i = 0; i < ns->nconn; i++) {
		struct nbd_conn *c = &ns->conn[i];

		if (c->up && !conn_dead(c->nbd) && (!best || c->busy < best->busy))
			best = c;
	}
	return best;
}

/* Send @op, or have it wait for a connection: 0, or a negative errno (no done). */
static int ns_go(struct nbd_store *ns, struct nbd_op *op)
{
	struct nbd_conn *c;
	int ret;

	while ((c = ns_pick(ns))) {
		ret = op_issue(c, op);
		if (ret == 0 || !conn_dead(c->nbd))
			return ret;
		op->pieces = op->ended = op->completed = 0;
		op->error = 0;
		uv_timer_start(&c->retry, on_retry, 0, 0);
	}
	op->conn = NULL;
	list_add_tail(&op->link, &ns->waiting);
	return 0;
}

/*
 * A new libnbd handle, not connected. Simple replies: the store reads and writes whole pages and
 * asks nothing else, and a simple reply to a read is two receives where a structured one is four.
 */
static struct nbd_handle *handle_new(void)
{
	struct nbd_handle *nbd = nbd_create();

	if (!nbd)
		return NULL;
	nbd_set_handle_name(nbd, "upagerd");
	/* The administrator's URI may name a TLS key file (tls-psk-file). */
	nbd_set_uri_allow_local_file(nbd, true);
	nbd_set_request_structured_replies(nbd, false);
	return nbd;
}

/*
 * A connection on a Unix socket asks for a send buffer of several page-outs: through the default
 * (208 KiB) a write of 1 MiB goes in many turns of the loop, each waiting for the server to read,
 * and page-outs ran at half the speed. SO_SNDBUFFORCE passes net.core.wmem_max where the daemon
 * may (CAP_NET_ADMIN), else SO_SNDBUF gives twice that at most. TCP tunes its own buffers, and
 * fixing them would stop that.
 */
static void conn_tune(struct nbd_handle *nbd)
{
	int fd = (int)nbd_aio_get_fd(nbd), size = NBD_SNDBUF, domain = 0;
	socklen_t len = sizeof(domain);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* Start an attempt to connect to the server; the poll and the timer follow it. */
static int conn_dial(struct nbd_conn *c)
{
	struct nbd_store *ns = c->ns;
	int ret = -ENOMEM;

	c->nbd = handle_new();
	if (!c->nbd)
		return nbd_errno();
	c->poll = malloc(sizeof(*c->poll));
	if (c->poll && nbd_aio_connect_uri(c->nbd, ns->uri) < 0)
		ret = nbd_errno();
	else if (c->poll && uv_poll_init(ns->loop, c->poll, nbd_aio_get_fd(c->nbd)) < 0)
		ret = -EIO;
	else if (c->poll)
		ret = 0;
	if (ret < 0) {
		free(c->poll);
		c->poll = NULL;
		conn_drop(c);
		return ret;
	}
	c->poll->data = c;
	conn_arm(c);
	uv_timer_start(&c->retry, on_retry, CONNECT_MS, 0);
	return 0;
}

/* @c is not connected: past the timeout with no other up, the waiting ops fail; an attempt now
 * if @dial, else after a while. */
static void conn_attempt(struct nbd_conn *c, bool dial)
{
	struct nbd_store *ns = c->ns;
	uint64_t since = uv_now(ns->loop) - c->lost_ms, wait = c->backoff_ms;

	if (!ns->away && since >= ns->timeout_ms && ns_up(ns) == 0) {
		ns->away = true;
		log_error("nbd: %s: away for %.1f s: its pages fail until it is back", ns->where,
			  (double)since / 1000);
		ns_fail_waiting(ns, -EIO);
	}
	if (ns->closing || (dial && conn_dial(c) == 0))
		return;
	c->backoff_ms = MIN(2 * c->backoff_ms, (uint64_t)BACKOFF_MAX_MS);
	if (!ns->away && since < ns->timeout_ms)
		wait = MIN(wait, ns->timeout_ms - since);
	uv_timer_start(&c->retry, on_retry, wait, 0);
}

/* The connection is lost: its requests go on another or wait for the next. */
static void conn_lost(struct nbd_conn *c)
{
	log_limited(LOG_ERR, "nbd: %s: connection lost: %s; connecting again", c->ns->where,
		    nbd_get_error() ? nbd_get_error() : "closed");
	conn_drop(c);
	c->gen++;
	c->lost_ms = uv_now(c->ns->loop);
	c->backoff_ms = BACKOFF_MIN_MS;
}

/* Whether the export may hold the store: as large as its slots need, and writable. */
static int export_fits(struct nbd_store *ns, struct nbd_handle *nbd)
{
	int64_t size = nbd_get_size(nbd);

	if (size < 0)
		return nbd_errno();
	if (nbd_is_read_only(nbd) == 1)
		return -EROFS;
	return (uint64_t)size < store_slot_offset(ns->slots.pages) ? -EINVAL : 0;
}

/* Connected (again): the requests that waited go. A connection but the first needs multi-conn,
 * else it is given up. */
static void conn_connected(struct nbd_conn *c)
{
	struct nbd_store *ns = c->ns;
	struct nbd_op *op, *tmp;
	int ret = export_fits(ns, c->nbd);
	struct list_head ready = LIST_HEAD_INIT(ready);

	if (ret == 0 && c != &ns->conn[0] && nbd_can_multi_conn(c->nbd) != 1) {
		log_warning("nbd: %s: no multi-conn any more: one connection fewer", ns->where);
		c->off = true;
		conn_drop(c);
		uv_timer_stop(&c->retry);
		return;
	}
	if (ret < 0) {
		log_limited(LOG_ERR, "nbd: %s: the export is no longer ours: %s", ns->where,
			    strerror(-ret));
		conn_drop(c);
		uv_timer_start(&c->retry, on_retry, BACKOFF_MAX_MS, 0);
		return;
	}
	uv_timer_stop(&c->retry);
	if (c->gen) {
		log_info("nbd: %s: connected again after %.1f s", ns->where,
			 (double)(uv_now(ns->loop) - c->lost_ms) / 1000);
		ns->info.reconnects++;
	}
	c->up = true;
	conn_tune(c->nbd);
	ns->away = false;
	ns->trim = nbd_can_trim(c->nbd) == 1;
	list_splice_init(&ns->waiting, &ready);
	list_for_each_entry_safe (op, tmp, &ready, link) {
		list_del_init(&op->link);
		ret = ns_go(ns, op);
		if (ret < 0) {
			op->error = ret;
			list_add_tail(&op->link, &ns->done);
		}
	}
}

static void on_retry(uv_timer_t *t)
{
	struct nbd_conn *c = t->data;
	struct nbd_store *ns = c->ns;

	if (c->up)
		conn_lost(c); /* found dead outside a poll */
	else if (c->nbd)
		conn_drop(c); /* an attempt that took too long */
	if (ns->closing)
		ns_fail_waiting(ns, -ESHUTDOWN);
	else if (!c->nbd && !c->off)
		conn_attempt(c, true);
	ns_deliver(ns);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct nbd_conn *c = poll->data;
	struct nbd_store *ns = c->ns;
	int r = 0;

	if (status < 0)
		events = UV_READABLE; /* libnbd finds the error itself */
	if (events & UV_READABLE)
		r = nbd_aio_notify_read(c->nbd);
	if (r == 0 && (events & UV_WRITABLE) &&
	    (nbd_aio_get_direction(c->nbd) & LIBNBD_AIO_DIRECTION_WRITE))
		r = nbd_aio_notify_write(c->nbd);
	if (r < 0 || conn_dead(c->nbd)) {
		if (c->up) {
			conn_lost(c);
			conn_attempt(c, true);
		} else {
			/* An attempt failed: the next after a while. */
			conn_drop(c);
			conn_attempt(c, false);
		}
	} else if (!c->up && nbd_aio_is_ready(c->nbd) == 1) {
		conn_connected(c);
		if (c->up)
			conn_arm(c);
	} else {
		conn_arm(c);
	}
	ns_deliver(ns);
}

static int ns_submit(struct nbd_store *ns, int kind, uint64_t slot, void *buf, uint64_t pages,
		     store_done_fn done, void *userdata)
{
	struct nbd_op *op;
	int ret;

	if (ns->closing)
		return -ESHUTDOWN;
	if (ns->away && kind != OP_TRIM) {
		ns->info.errors++;
		return -EIO;
	}
	if (kind != OP_TRIM) {
		ret = page_sums_check(&ns->sums, &ns->slots, kind == OP_WRITE, slot, buf, pages);
		if (ret < 0)
			return ret;
	}
	op = malloc(sizeof(*op));
	if (!op)
		return -ENOMEM;
	*op = (struct nbd_op){ .ns = ns,
			       .kind = kind,
			       .slot = slot,
			       .pages = pages,
			       .buf = buf,
			       .fn = done,
			       .userdata = userdata };
	list_init(&op->link);
	/* Until it is written whole, no one reads what the slots held before. */
	if (kind == OP_WRITE)
		page_sums_forget(&ns->sums, slot, pages);
	ret = ns->away ? -EIO : ns_go(ns, op);
	if (ret < 0) {
		ns->info.errors++;
		free(op);
		return ret;
	}
	ns->inflight++;
	return 0;
}
static int ns_write(struct store *st, uint64_t key, const void *buf, uint64_t pages,
		    store_done_fn done, void *userdata)
{
	return ns_submit(ns_of(st), OP_WRITE, key, (void *)buf, pages, done, userdata);
}

static int ns_read(struct store *st, uint64_t key, void *buf, uint64_t pages, store_done_fn done,
		   void *userdata)
{
	return ns_submit(ns_of(st), OP_READ, key, buf, pages, done, userdata);
}

static int ns_alloc(struct store *st, uint64_t pages, uint64_t *key)
{
	struct nbd_store *ns = ns_of(st);
	int ret = slots_alloc(&ns->slots, pages, key);

	if (ret < 0)
		return ret;
	page_sums_forget(&ns->sums, *key, pages);
	ns->top = MAX(ns->top, *key + pages);
	return 0;
}

static void ns_free(struct store *st, uint64_t key, uint64_t pages)
{
	struct nbd_store *ns = ns_of(st);
	uint64_t start, count;

	if (slots_free(&ns->slots, key, pages) < 0)
		return;
	page_sums_forget(&ns->sums, key, pages);
	page_sums_release(&ns->sums, &ns->slots, key);
	if (!ns->trim || ns->closing ||
	    !slots_trim_due(&ns->slots, key, pages, ns->top, &start, &count))
		return;
	/* The server's space goes back; the slots are taken until it has. */
	if (start == 0 && count == ns->top)
		ns->top = 0;
	if (slots_claim(&ns->slots, start, count) == 0 &&
	    ns_submit(ns, OP_TRIM, start, NULL, count, NULL, NULL) < 0)
		(void)slots_free(&ns->slots, start, count);
}

/* A page a previous daemon left in a slot: the slot is not handed out again. With that daemon's
 * tables (nbd_store_open()'s tables_fd) its checksum vouches for it; without, it is not read
 * either (-EINVAL, so the page faults with SIGBUS). */
static int ns_claim(struct store *st, uint64_t key, uint64_t pages)
{
	struct nbd_store *ns = ns_of(st);
	int ret = slots_claim(&ns->slots, key, pages);

	if (ret == 0) {
		if (!ns->adopted)
			page_sums_forget(&ns->sums, key, pages);
		ns->top = MAX(ns->top, key + pages);
	}
	return ret;
}

static void ns_figures(struct store *st, uint64_t *pages, uint64_t *used)
{
	struct nbd_store *ns = ns_of(st);

	/* Out of room on the server: as full as it is, so that nothing waits for a page-out. */
	*pages = slots_full(&ns->slots) ? ns->slots.used : ns->slots.pages;
	*used = ns->slots.used;
}

static void ns_info(struct store *st, struct store_info *out)
{
	struct nbd_store *ns = ns_of(st);

	*out = ns->info;
	out->kind = "nbd";
	out->where = ns->where;
	out->inflight = ns->inflight;
	out->connections = ns_up(ns);
}

static void ns_close(struct store *st)
{
	struct nbd_store *ns = ns_of(st);

	ns->closing = true;
	if (ns->inflight == 0 && !ns->delivering)
		ns_destroy(ns);
	else if (ns_up(ns) == 0)
		uv_timer_start(&ns->conn[0].retry, on_retry, 0, 0); /* the waiting ops fail */
}

static const struct store_ops nbd_store_ops = {
	.alloc = ns_alloc,
	.free = ns_free,
	.write = ns_write,
	.read = ns_read,
	.figures = ns_figures,
	.claim = ns_claim,
	.info = ns_info,
	.close = ns_close,
};

/*
 * @uri as it may be shown: no user name or password before the host, no query parameter but the
 * socket (tls-psk-file and such name secrets).
 */
static char *uri_shown(const char *uri)
{
	const char *scheme_end = strstr(uri, "://"), *host = scheme_end + 3;
	const char *path = host + strcspn(host, "/?"),
		   *at = memchr(host, '@', (size_t)(path - host));
	const char *query = strchr(path, '?'), *sock = query ? strstr(query, "socket=") : NULL;
	size_t n = strlen(uri) + 1;
	char *out = malloc(n);

	if (!out)
		return NULL;
	snprintf(out, n, "%.*s%.*s%s%.*s", (int)(host - uri), uri,
		 (int)((query ? query : path + strlen(path)) - (at ? at + 1 : host)),
		 at ? at + 1 : host, sock ? "?" : "", sock ? (int)strcspn(sock, "&") : 0,
		 sock ? sock : "");
	return out;
}

/*
 * The tables of @ns (slots.pages set): a header page and the sums, in @fd, a previous daemon's
 * (taken), if not -1, else in a new memfd if @kept, else in private memory. Only the part that
 * slots in use touch costs memory.
 */
static int tables_map(struct nbd_store *ns, int fd, bool kept)
{
	uint64_t bytes = PAGE + page_sums_bytes(ns->slots.pages);
	struct nbd_tables_header *h;
	struct stat st;
	int ret;

	if (fd < 0 && kept) {
		ret = memfd_new("upager:nbd", bytes, MEMFD_FIXED_SIZE, &fd);
		if (ret < 0)
			return ret;
	}
	ns->tables_fd = fd;
	if (fd >= 0 && (fstat(fd, &st) < 0 || (uint64_t)st.st_size != bytes))
		return -EINVAL;
	ns->tables = fd >= 0 ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
			     : mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ns->tables == MAP_FAILED) {
		ns->tables = NULL;
		return neg_errno();
	}
	h = ns->tables;
	if (ns->adopted && (memcmp(h->magic, NBD_TABLES_MAGIC, sizeof(NBD_TABLES_MAGIC)) != 0 ||
			    h->pages != ns->slots.pages))
		return -EINVAL;
	memcpy(h->magic, NBD_TABLES_MAGIC, sizeof(NBD_TABLES_MAGIC));
	h->pages = ns->slots.pages;
	page_sums_place(&ns->sums, (char *)ns->tables + PAGE, ns->slots.pages);
	return 0;
}

/* Whether connecting failed because no server is there (yet): refused, no socket, or cut. */
static bool conn_absent(int error)
{
	return conn_error(error) || error == -ECONNREFUSED || error == -ENOENT;
}

/* Connect, waiting. A previous daemon's pages are on the server if its tables were given: then a
 * server not there is waited for up to @wait_ms, as a connection lost later would be. */
static int ns_connect_wait(struct nbd_store *ns, uint64_t wait_ms)
{
	struct nbd_handle *nbd;
	uint64_t waited = 0, backoff = BACKOFF_MIN_MS;
	int ret;

	for (;;) {
		nbd = ns->conn[0].nbd = handle_new();
		if (!nbd)
			return nbd_errno();
		if (!nbd_supports_uri(nbd))
			return -EPROTONOSUPPORT;
		if (nbd_connect_uri(nbd, ns->uri) == 0)
			return 0;
		ret = nbd_errno();
		if (!ns->adopted || !conn_absent(ret) || waited >= wait_ms) {
			log_error("nbd: %s: %s", ns->where, nbd_get_error());
			return ret;
		}
		if (waited == 0)
			log_warning("nbd: %s: %s; the previous daemon's pages are there: waiting "
				    "up to %.1f s for it",
				    ns->where, nbd_get_error(), (double)wait_ms / 1000);
		nbd_close(nbd);
		ns->conn[0].nbd = NULL;
		usleep((useconds_t)(backoff * 1000));
		waited += backoff;
		backoff = MIN(2 * backoff, (uint64_t)BACKOFF_MAX_MS);
	}
}

/* Connect, and take the export: our header, or zeroes where it goes (our header only, to take
 * over a previous daemon's tables). */
static int ns_connect(struct nbd_store *ns, uint64_t max_bytes)
{
	_cleanup_free_ char *head = malloc(STORE_BLANK_BYTES);
	struct nbd_handle *nbd;
	int64_t size;
	int ret;

	if (!head)
		return -ENOMEM;
	ret = ns_connect_wait(ns, ns->timeout_ms);
	if (ret < 0)
		return ret;
	nbd = ns->conn[0].nbd;
	size = nbd_get_size(nbd);
	if (size < 0)
		return nbd_errno();
	if (nbd_is_read_only(nbd) == 1)
		return -EROFS;
	if ((uint64_t)size < 2 * PAGE)
		return -EINVAL;
	ns->trim = nbd_can_trim(nbd) == 1;
	ret = slots_init(&ns->slots, MIN((uint64_t)size / PAGE - 1, max_bytes / PAGE));
	if (ret < 0)
		return ret;
	if (nbd_pread(nbd, head, MIN((uint64_t)size, STORE_BLANK_BYTES), 0, 0) < 0)
		return nbd_errno();
	if ((uint64_t)size < STORE_BLANK_BYTES)
		memset(head + size, 0, STORE_BLANK_BYTES - (size_t)size);
	ret = store_header_check(head);
	if (ret < 0)
		return ret;
	if (ns->adopted && memcmp(head, STORE_MAGIC, sizeof(STORE_MAGIC)) != 0)
		return -ENODATA;
	store_header_make(head);
	if (nbd_pwrite(nbd, head, PAGE, 0, 0) < 0)
		return nbd_errno();
	return 0;
}

/** nbd_store_available() - whether this daemon was built with libnbd */
bool nbd_store_available(void)
{
	return true;
}

/**
 * nbd_store_open() - connect to the NBD server of @uri and use its export as a swap store
 * @loop: the daemon's loop, where the connection's socket is polled
 * @uri: nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, or another URI of libnbd's
 * @opts: the most it holds (less if the export is smaller), how long requests wait for a server
 *        that went away, and where its tables are (@opts->tables_fd is taken)
 * @out: the store; store_close() closes it
 *
 * Connecting waits. Slots are free, whatever the export held; with a previous daemon's tables,
 * the slots that store_claim() takes keep their checksums, so their pages read back.
 *
 * Return: 0; -EPROTONOSUPPORT if libnbd cannot parse URIs; -EROFS for a read-only export;
 * -EINVAL for one smaller than two pages, or tables not for it; -EEXIST if it holds other data
 * (neither our header nor zeroes in its first MiB); -ENODATA if tables were given and the export
 * is blank; or the negative errno of connecting.
 */
int nbd_store_open(uv_loop_t *loop, const char *uri, const struct nbd_store_opts *opts,
		   struct store **out)
{
	struct nbd_store *ns = calloc(1, sizeof(*ns));
	int ret = -ENOMEM, fd = opts->tables_fd;
	struct nbd_conn *c;

	if (!ns) {
		closep(&fd);
		return -ENOMEM;
	}
	c = &ns->conn[0];
	ns->store.ops = &nbd_store_ops;
	ns->loop = loop;
	ns->tables_fd = -1;
	ns->timeout_ms = opts->timeout_ms;
	ns->adopted = fd >= 0;
	list_init(&ns->done);
	list_init(&ns->waiting);
	ns->where = uri_shown(uri);
	ns->uri = strdup(uri);
	c->ns = ns;
	c->poll = malloc(sizeof(*c->poll));
	if (ns->where && ns->uri && c->poll)
		ret = ns_connect(ns, opts->max_bytes);
	if (ret == 0)
		ret = tables_map(ns, fd_take(&fd), opts->kept);
	if (ret == 0 && uv_poll_init(loop, c->poll, nbd_aio_get_fd(c->nbd)) < 0)
		ret = -EIO;
	if (ret < 0) {
		closep(&fd);
		if (c->nbd)
			nbd_close(c->nbd);
		free(c->poll);
		ns_free_all(ns);
		return ret;
	}
	ns->nconn = 1;
	if (nbd_can_multi_conn(c->nbd) == 1)
		ns->nconn = MAX(1U, MIN(opts->connections, (unsigned)NBD_CONNS_MAX));
	c->poll->data = c;
	c->up = true;
	conn_tune(c->nbd);
	for (unsigned i = 0; i < ns->nconn; i++) {
		ns->conn[i].ns = ns;
		uv_timer_init(loop, &ns->conn[i].retry);
		ns->conn[i].retry.data = &ns->conn[i];
	}
	conn_arm(c);
	/* The others connect as a lost one does: in the loop, waiting for nothing. */
	for (unsigned i = 1; i < ns->nconn; i++) {
		ns->conn[i].lost_ms = uv_now(loop);
		ns->conn[i].backoff_ms = BACKOFF_MIN_MS;
		conn_attempt(&ns->conn[i], true);
	}
	*out = &ns->store;
	return 0;
}

/** nbd_store_tables_fd() - the memfd of the store's tables (opts->kept), or -1; still the store's */
int nbd_store_tables_fd(struct store *st)
{
	return ns_of(st)->tables_fd;
}

#endif
