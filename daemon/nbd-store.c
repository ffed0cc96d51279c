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

struct nbd_store {
	struct store store;
	uv_loop_t *loop;
	struct nbd_handle *nbd; /* the connection, or the one being made; NULL while none */
	uv_poll_t *poll; /* its socket's */
	uv_timer_t retry; /* the next attempt to connect, or the end of one under way */
	int events; /* what the poll waits for */
	char *uri; /* with its credentials, to connect again */
	char *where; /* the URI without credentials */
	bool up; /* connected: requests go to the server */
	bool away; /* lost for longer than timeout_ms: requests fail */
	bool trim; /* the server can trim */
	bool closing; /* store_close() came while I/O was in flight */
	bool destroyed;
	bool delivering;
	bool adopted; /* the tables of a previous daemon: claimed slots keep their checksums */
	unsigned gen; /* connections lost so far */
	uint64_t lost_ms, backoff_ms, timeout_ms;
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

/* One transfer (or trim) of the cache's, in pieces of NBD_IO_MAX. */
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
	unsigned gen; /* the connection it was issued on */
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

/* Poll the socket for what libnbd waits for. A connection found dead outside a poll is taken
 * for lost on the loop's next turn. */
static void ns_arm(struct nbd_store *ns)
{
	unsigned dir = nbd_aio_get_direction(ns->nbd);
	int events = (dir & LIBNBD_AIO_DIRECTION_READ ? UV_READABLE : 0) |
		     (dir & LIBNBD_AIO_DIRECTION_WRITE ? UV_WRITABLE : 0);

	if (ns->up && conn_dead(ns->nbd))
		uv_timer_start(&ns->retry, on_retry, 0, 0);
	if (events == ns->events)
		return;
	ns->events = events;
	if (events)
		uv_poll_start(ns->poll, events, on_poll);
	else
		uv_poll_stop(ns->poll);
}

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

/* Close the connection or the attempt: the pieces in flight end, their ops on the done list. */
static void ns_drop(struct nbd_store *ns)
{
	if (ns->poll)
		uv_close((uv_handle_t *)ns->poll, poll_closed);
	ns->poll = NULL;
	ns->events = 0;
	if (ns->nbd)
		nbd_close(ns->nbd);
	ns->nbd = NULL;
	ns->up = false;
}

static void ns_closed(uv_handle_t *h)
{
	struct nbd_store *ns = h->data;

	if (ns->tables)
		munmap(ns->tables, PAGE + page_sums_bytes(ns->slots.pages));
	if (ns->tables_fd >= 0)
		close(ns->tables_fd);
	slots_deinit(&ns->slots);
	free(ns->uri);
	free(ns->where);
	free(ns);
}

static void ns_destroy(struct nbd_store *ns)
{
	if (ns->destroyed)
		return;
	ns->destroyed = true;
	ns_drop(ns);
	uv_close((uv_handle_t *)&ns->retry, ns_closed);
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

static void ns_lost(struct nbd_store *ns);
static void ns_attempt(struct nbd_store *ns, bool dial);

/* An error of the connection, not of the request: the server shuts down, or it is gone. */
static bool conn_error(int error)
{
	return error == -ESHUTDOWN || error == -ENOTCONN || error == -ECONNRESET || error == -EPIPE;
}

/* An op that failed on a connection lost since (or with an error that says it is): to be made
 * again, unless the server is away for good or the store closes. Return: whether it waits (or
 * went again). */
static bool op_again(struct nbd_store *ns, struct nbd_op *op)
{
	if (op->error == 0 && op->completed == op->pieces)
		return false;
	if (op->gen == ns->gen && ns->up && conn_error(op->error)) {
		ns_lost(ns);
		ns_attempt(ns, true);
	}
	if (op->gen == ns->gen || ns->away || ns->closing)
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

	if (++op->ended == op->pieces)
		list_add_tail(&op->link, &op->ns->done);
}

/* Issue @op's pieces; 0 once one is on its way (done will be called), else a negative errno. */
static int op_issue(struct nbd_store *ns, struct nbd_op *op)
{
	uint64_t len = op->pages * PAGE;
	int ret = 0;

	op->gen = ns->gen;
	op->pieces = 1; /* until all are issued: none ends the op before */
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
			cookie = nbd_aio_pwrite(ns->nbd, op->buf + at, n, offset, cb, 0);
		else if (op->kind == OP_READ)
			cookie = nbd_aio_pread(ns->nbd, op->buf + at, n, offset, cb, 0);
		else
			cookie = nbd_aio_trim(ns->nbd, n, offset, cb, 0);
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
		list_del_init(&op->link);
		return ret < 0 ? ret : -EIO;
	}
	ns_arm(ns);
	return 0;
}

/* Send @op, or have it wait for the connection: 0, or a negative errno (no done). */
static int ns_go(struct nbd_store *ns, struct nbd_op *op)
{
	int ret;

	if (ns->up && !conn_dead(ns->nbd)) {
		ret = op_issue(ns, op);
		if (ret == 0 || !conn_dead(ns->nbd))
			return ret;
		op->pieces = op->ended = op->completed = 0;
		op->error = 0;
		uv_timer_start(&ns->retry, on_retry, 0, 0);
	}
	list_add_tail(&op->link, &ns->waiting);
	return 0;
}

/* Start an attempt to connect to the server; the poll and the timer follow it. */
static int ns_dial(struct nbd_store *ns)
{
	int ret = -ENOMEM;

	ns->nbd = nbd_create();
	if (!ns->nbd)
		return nbd_errno();
	nbd_set_handle_name(ns->nbd, "upagerd");
	/* The administrator's URI may name a TLS key file (tls-psk-file). */
	nbd_set_uri_allow_local_file(ns->nbd, true);
	ns->poll = malloc(sizeof(*ns->poll));
	if (ns->poll && nbd_aio_connect_uri(ns->nbd, ns->uri) < 0)
		ret = nbd_errno();
	else if (ns->poll && uv_poll_init(ns->loop, ns->poll, nbd_aio_get_fd(ns->nbd)) < 0)
		ret = -EIO;
	else if (ns->poll)
		ret = 0;
	if (ret < 0) {
		free(ns->poll);
		ns->poll = NULL;
		ns_drop(ns);
		return ret;
	}
	ns->poll->data = ns;
	ns_arm(ns);
	uv_timer_start(&ns->retry, on_retry, CONNECT_MS, 0);
	return 0;
}

/* No connection: past the timeout, the waiting ops fail; an attempt now if @dial, else after a
 * while. */
static void ns_attempt(struct nbd_store *ns, bool dial)
{
	uint64_t since = uv_now(ns->loop) - ns->lost_ms, wait = ns->backoff_ms;

	if (!ns->away && since >= ns->timeout_ms) {
		ns->away = true;
		log_error("nbd: %s: away for %.1f s: its pages fail until it is back", ns->where,
			  (double)since / 1000);
		ns_fail_waiting(ns, -EIO);
	}
	if (ns->closing || (dial && ns_dial(ns) == 0))
		return;
	ns->backoff_ms = MIN(2 * ns->backoff_ms, (uint64_t)BACKOFF_MAX_MS);
	if (!ns->away)
		wait = MIN(wait, ns->timeout_ms - since);
	uv_timer_start(&ns->retry, on_retry, wait, 0);
}

/* The connection is lost: its requests wait for the next. */
static void ns_lost(struct nbd_store *ns)
{
	log_limited(LOG_ERR, "nbd: %s: connection lost: %s; connecting again", ns->where,
		    nbd_get_error() ? nbd_get_error() : "closed");
	ns_drop(ns);
	ns->gen++;
	ns->lost_ms = uv_now(ns->loop);
	ns->backoff_ms = BACKOFF_MIN_MS;
}

/* Whether the export may hold the store: as large as its slots need, and writable. */
static int export_fits(struct nbd_store *ns)
{
	int64_t size = nbd_get_size(ns->nbd);

	if (size < 0)
		return nbd_errno();
	if (nbd_is_read_only(ns->nbd) == 1)
		return -EROFS;
	return (uint64_t)size < store_slot_offset(ns->slots.pages) ? -EINVAL : 0;
}

/* Connected again: the requests that waited go. */
static void ns_connected(struct nbd_store *ns)
{
	struct nbd_op *op, *tmp;
	int ret = export_fits(ns);

	if (ret < 0) {
		log_limited(LOG_ERR, "nbd: %s: the export is no longer ours: %s", ns->where,
			    strerror(-ret));
		ns_drop(ns);
		uv_timer_start(&ns->retry, on_retry, BACKOFF_MAX_MS, 0);
		return;
	}
	uv_timer_stop(&ns->retry);
	log_info("nbd: %s: connected again after %.1f s", ns->where,
		 (double)(uv_now(ns->loop) - ns->lost_ms) / 1000);
	ns->up = true;
	ns->away = false;
	ns->info.reconnects++;
	ns->trim = nbd_can_trim(ns->nbd) == 1;
	list_for_each_entry_safe (op, tmp, &ns->waiting, link) {
		list_del_init(&op->link);
		ret = op_issue(ns, op);
		if (ret < 0) {
			op->error = ret;
			list_add_tail(&op->link, &ns->done);
		}
	}
}

static void on_retry(uv_timer_t *t)
{
	struct nbd_store *ns = t->data;

	if (ns->up)
		ns_lost(ns); /* found dead outside a poll */
	else if (ns->nbd)
		ns_drop(ns); /* an attempt that took too long */
	if (ns->closing)
		ns_fail_waiting(ns, -ESHUTDOWN);
	else if (!ns->nbd)
		ns_attempt(ns, true);
	ns_deliver(ns);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct nbd_store *ns = poll->data;
	int r = 0;

	if (status < 0)
		events = UV_READABLE; /* libnbd finds the error itself */
	if (events & UV_READABLE)
		r = nbd_aio_notify_read(ns->nbd);
	if (r == 0 && (events & UV_WRITABLE) &&
	    (nbd_aio_get_direction(ns->nbd) & LIBNBD_AIO_DIRECTION_WRITE))
		r = nbd_aio_notify_write(ns->nbd);
	if (r < 0 || conn_dead(ns->nbd)) {
		if (ns->up) {
			ns_lost(ns);
			ns_attempt(ns, true);
		} else {
			/* An attempt failed: the next after a while. */
			ns_drop(ns);
			ns_attempt(ns, false);
		}
	} else if (!ns->up && nbd_aio_is_ready(ns->nbd) == 1) {
		ns_connected(ns);
		if (ns->up)
			ns_arm(ns);
	} else {
		ns_arm(ns);
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

	*pages = ns->slots.pages;
	*used = ns->slots.used;
}

static void ns_info(struct store *st, struct store_info *out)
{
	struct nbd_store *ns = ns_of(st);

	*out = ns->info;
	out->kind = "nbd";
	out->where = ns->where;
	out->inflight = ns->inflight;
}

static void ns_close(struct store *st)
{
	struct nbd_store *ns = ns_of(st);

	ns->closing = true;
	if (ns->inflight == 0 && !ns->delivering)
		ns_destroy(ns);
	else if (!ns->up)
		uv_timer_start(&ns->retry, on_retry, 0, 0); /* the waiting ops fail */
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
	uint64_t waited = 0, backoff = BACKOFF_MIN_MS;
	int ret;

	for (;;) {
		ns->nbd = nbd_create();
		if (!ns->nbd)
			return nbd_errno();
		nbd_set_handle_name(ns->nbd, "upagerd");
		/* The administrator's URI may name a TLS key file (tls-psk-file). */
		nbd_set_uri_allow_local_file(ns->nbd, true);
		if (!nbd_supports_uri(ns->nbd))
			return -EPROTONOSUPPORT;
		if (nbd_connect_uri(ns->nbd, ns->uri) == 0)
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
		nbd_close(ns->nbd);
		ns->nbd = NULL;
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
	int64_t size;
	int ret;

	if (!head)
		return -ENOMEM;
	ret = ns_connect_wait(ns, ns->timeout_ms);
	if (ret < 0)
		return ret;
	size = nbd_get_size(ns->nbd);
	if (size < 0)
		return nbd_errno();
	if (nbd_is_read_only(ns->nbd) == 1)
		return -EROFS;
	if ((uint64_t)size < 2 * PAGE)
		return -EINVAL;
	ns->trim = nbd_can_trim(ns->nbd) == 1;
	ret = slots_init(&ns->slots, MIN((uint64_t)size / PAGE - 1, max_bytes / PAGE));
	if (ret < 0)
		return ret;
	if (nbd_pread(ns->nbd, head, MIN((uint64_t)size, STORE_BLANK_BYTES), 0, 0) < 0)
		return nbd_errno();
	if ((uint64_t)size < STORE_BLANK_BYTES)
		memset(head + size, 0, STORE_BLANK_BYTES - (size_t)size);
	ret = store_header_check(head);
	if (ret < 0)
		return ret;
	if (ns->adopted && memcmp(head, STORE_MAGIC, sizeof(STORE_MAGIC)) != 0)
		return -ENODATA;
	store_header_make(head);
	if (nbd_pwrite(ns->nbd, head, PAGE, 0, 0) < 0)
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

	if (!ns) {
		closep(&fd);
		return -ENOMEM;
	}
	ns->store.ops = &nbd_store_ops;
	ns->loop = loop;
	ns->tables_fd = -1;
	ns->timeout_ms = opts->timeout_ms;
	ns->adopted = fd >= 0;
	list_init(&ns->done);
	list_init(&ns->waiting);
	ns->where = uri_shown(uri);
	ns->uri = strdup(uri);
	ns->poll = malloc(sizeof(*ns->poll));
	if (ns->where && ns->uri && ns->poll)
		ret = ns_connect(ns, opts->max_bytes);
	if (ret == 0)
		ret = tables_map(ns, fd_take(&fd), opts->kept);
	if (ret == 0 && uv_poll_init(loop, ns->poll, nbd_aio_get_fd(ns->nbd)) < 0)
		ret = -EIO;
	if (ret < 0) {
		closep(&fd);
		if (ns->nbd)
			nbd_close(ns->nbd);
		if (ns->tables)
			munmap(ns->tables, PAGE + page_sums_bytes(ns->slots.pages));
		if (ns->tables_fd >= 0)
			close(ns->tables_fd);
		slots_deinit(&ns->slots);
		free(ns->poll);
		free(ns->uri);
		free(ns->where);
		free(ns);
		return ret;
	}
	uv_timer_init(loop, &ns->retry);
	ns->retry.data = ns;
	ns->poll->data = ns;
	ns->up = true;
	ns_arm(ns);
	*out = &ns->store;
	return 0;
}

/** nbd_store_tables_fd() - the memfd of the store's tables (opts->kept), or -1; still the store's */
int nbd_store_tables_fd(struct store *st)
{
	return ns_of(st)->tables_fd;
}

#endif
