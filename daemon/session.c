// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Sessions: one per connection. A session reads one datagram at a time, has the codec check it,
 * hands the request to the daemon's handler (request.c) and sends its one reply. A datagram the
 * codec refuses, or a request out of order, closes the connection; a well-formed request that
 * cannot be done gets a reply with a negative errno. The last reply is kept with the saved
 * tables, and sent again to a client whose request a daemon that died had answered (replay).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/macro.h"
#include "closer.h"
#include "context.h"
#include "fault.h"
#include "fdstore.h"
#include "limits.h"
#include "log.h"
#include "proto/codec.h"
#include "session.h"
#include "space.h"
#include "state.h"
#include "view.h"

static void session_close(struct session *s);
static void on_readable(uv_poll_t *h, int status, int events);
static bool request_end(struct session *s, const struct upager_msg *req, int ret);

static bool changes_tables(uint16_t op)
{
	op &= (uint16_t)~UPAGER_OP_REPLY;
	return op != UPAGER_OP_LIST && op != UPAGER_OP_STATS;
}

/* Keep an encoded reply as the last one; the caller set last.fd* if a descriptor goes with it. */
static void remember(struct session *s, const struct upager_msg *m, const uint8_t *msg, int len,
		     size_t n_fds)
{
	if (!changes_tables(m->op))
		return;
	if (!n_fds)
		s->last.fd = REPLY_FD_NONE;
	s->last.seq = m->seq;
	s->last.len = (size_t)len <= sizeof(s->last.msg) ? (uint16_t)len : 0;
	memcpy(s->last.msg, msg, s->last.len);
	session_mark(s);
}

/**
 * session_reply() - send the reply @m to a request, with @status and descriptors
 *
 * Return: what fdmsg_send() returns.
 */
int session_reply(struct session *s, struct upager_msg *m, int status, const int *fds, size_t n_fds)
{
	int len;

	m->op |= UPAGER_OP_REPLY;
	m->version = UPAGER_PROTO_VERSION;
	m->status = status;
	len = upager_msg_encode(s->buf, sizeof(s->buf), m);
	if (len < 0)
		return len;
	remember(s, m, s->buf, len, n_fds);
	/* What the client is told has happened must survive a crash of the daemon. */
	daemon_save(s->d);
	return fdmsg_send(s->fd, s->buf, (size_t)len, fds, n_fds);
}

/*
 * Send the last reply again, with a new descriptor of what went with it (a view's goes with its
 * shared table, the same memfd as before).
 */
static int reply_again(struct session *s)
{
	_cleanup_close_ int fd = -1;
	struct object *o;
	struct view *v = NULL;
	int fds[2];

	if (s->last.fd == REPLY_FD_OBJECT && (o = object_find(&s->d->cache, s->last.fd_id)))
		fd = object_reopen_memfd(o, s->last.fd_writable);
	else if (s->last.fd == REPLY_FD_VIEW && (v = view_find(s->d, s->last.fd_id)))
		fd = view_reopen_memfd(v);
	fds[0] = fd;
	fds[1] = v ? view_table_fd(v) : -1;
	return fdmsg_send(s->fd, s->last.msg, s->last.len, fds, fd < 0 ? 0 : fds[1] < 0 ? 1 : 2);
}

/* A reply that waits for a populate counts as given: a daemon that takes over gives it. */
static void remember_status(struct session *s, const struct upager_msg *req, int status)
{
	struct upager_msg m = {
		.op = req->op | UPAGER_OP_REPLY,
		.seq = req->seq,
		.version = UPAGER_PROTO_VERSION,
		.status = status,
	};
	uint8_t buf[sizeof(s->last.msg)];
	int len = upager_msg_encode(buf, sizeof(buf), &m);

	if (len > 0)
		remember(s, &m, buf, len, 0);
}

/** session_reply_status() - reply to @req with @status alone */
int session_reply_status(struct session *s, const struct upager_msg *req, int status)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };

	return session_reply(s, &m, status, NULL, 0);
}

/*
 * The client's user ID changed since it connected (setuid(2) after a fork whose child connected
 * at once): its requests are that user's from now on, and so is its space, as a process that
 * drops privileges drops them here too.
 */
static void set_uid(struct session *s, uid_t uid)
{
	log_debug("client pid %d: uid %d -> %d", (int)s->pid, (int)s->uid, (int)uid);
	s->uid = uid;
	session_mark(s);
	if (s->space && !s->ctl) {
		s->space->uid = uid;
		space_mark(s->space);
	}
}

static void read_request(uv_poll_t *h, int status, int events)
{
	struct session *s = h->data;
	struct upager_msg req;
	int fds[FDMSG_MAX_FDS];
	size_t n_fds = 0;
	uid_t uid;
	bool keep;
	ssize_t n;
	int ret;

	(void)events;
	if (status < 0) {
		session_close(s);
		return;
	}
	/* Under an fd store the request stays on the socket until it is answered: if the daemon
	 * dies meanwhile, the one that takes over reads it again. Without a store no daemon takes
	 * over, and one recvmsg(2) instead of a peek and a drop saves 1-2 us a request. */
	keep = s->d->state != NULL;
	n = fdmsg_recv_uid(s->fd, s->buf, sizeof(s->buf), fds, &n_fds, keep, &uid);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		if (n < 0)
			log_limited(LOG_INFO, "client pid %d: %s; closing", (int)s->pid,
				    strerror((int)-n));
		session_close(s);
		return;
	}
	ret = upager_msg_decode(s->buf, (size_t)n, &req);
	if (ret < 0 || (req.op & UPAGER_OP_REPLY)) {
		log_limited(LOG_INFO, "client pid %d sent a bad message (%s); closing", (int)s->pid,
			    strerror(ret < 0 ? -ret : EBADMSG));
		fdmsg_close_fds(fds, n_fds);
		session_close(s);
		return;
	}
	if (s->adopted) {
		s->adopted = false;
		if (s->last.len && req.seq == s->last.seq) {
			/* The dead daemon answered it, and died before it took it off the socket. */
			fdmsg_close_fds(fds, n_fds);
			if (reply_again(s) < 0 || fdmsg_drop(s->fd) < 0)
				session_close(s);
			return;
		}
	}
	if (uid != (uid_t)-1 && uid != s->uid)
		set_uid(s, uid);
	/* What a request changes in the session (busy, pending, ...) is saved with it. */
	if (changes_tables(req.op))
		session_mark(s);
	ret = s->d->handle_request(s, &req, fds, n_fds);
	fdmsg_close_fds(fds, n_fds);
	if (ret == REQUEST_LATER) {
		/* Nothing more is read from the client until then; the request stays on the
		 * socket, under a store, for a daemon that takes over to do again. */
		uv_poll_stop(&s->poll);
		return;
	}
	request_end(s, &req, ret);
}

/*
 * A request of the client, read while its user's descriptors are not backlogged in the closer
 * (closer.c): each request may bring up to 253, whose close a client chooses; past
 * CLOSER_BACKLOG_MAX of them the session is held, read again once they are closed
 * (session_release_held()). The closes of what comes with it are the user's.
 */
static void on_readable(uv_poll_t *h, int status, int events)
{
	struct session *s = h->data;
	uid_t owner;

	if (status == 0 && closer_backlog(s->uid) >= CLOSER_BACKLOG_MAX) {
		uv_poll_stop(&s->poll);
		s->held = true;
		return;
	}
	owner = closer_set_owner(s->uid);
	read_request(h, status, events);
	closer_set_owner(owner);
}

/*
 * A request is over: @ret is REQUEST_REPLIED if it replied itself, else 0 or a negative errno to
 * reply with. Under a store it leaves the socket now. The errnos that end the connection are
 * decided here alone. Return: whether the session was closed.
 */
static bool request_end(struct session *s, const struct upager_msg *req, int ret)
{
	if (ret != REQUEST_REPLIED && session_reply_status(s, req, ret) < 0)
		ret = -EPIPE;
	daemon_save(s->d); /* a reply that waits for a populate is saved as given */
	if (s->d->state && fdmsg_drop(s->fd) < 0)
		ret = -EPIPE;
	if (ret == -EPIPE || ret == -EPROTONOSUPPORT || ret == -ENOTCONN || ret == -EALREADY) {
		session_close(s);
		return true;
	}
	return false;
}

/** session_populated() - the populate a request waits for is over: its reply (a populate callback) */
void session_populated(void *userdata)
{
	struct session *s = userdata;

	s->busy = false;
	if (s->closing) {
		session_close(s);
		return;
	}
	if (session_reply_status(s, &s->pending, 0) < 0) {
		session_close(s);
		return;
	}
	uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

/**
 * session_wait_populate() - the reply to @req waits for a populate that calls session_populated()
 * Return: REQUEST_REPLIED: the reply is counted as given, and nothing else is read meanwhile.
 */
int session_wait_populate(struct session *s, const struct upager_msg *req)
{
	s->busy = true;
	s->pending = *req;
	remember_status(s, req, 0);
	uv_poll_stop(&s->poll);
	return REQUEST_REPLIED;
}

/**
 * session_resume() - a request whose reply waited (REQUEST_LATER) is over: reply with @ret and read
 * the next one, or close a session that was closed meanwhile
 */
void session_resume(struct session *s, const struct upager_msg *req, int ret)
{
	if (s->closing) {
		session_close(s);
		return;
	}
	if (!request_end(s, req, ret))
		uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

static void on_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	closer_close_owned(s->fd, s->uid);
	fdstore_remove(s->d, "cl", s->id);
	free(s);
}

static void session_close(struct session *s)
{
	struct daemon *d = s->d;

	if (uv_is_closing((uv_handle_t *)&s->poll))
		return;
	if (s->busy || s->opening || s->listing || s->syncing) {
		/* The populate, open, LIST or write-back under way calls back with this session:
		 * close after it. */
		s->closing = true;
		uv_poll_stop(&s->poll);
		return;
	}
	for (size_t i = 0; i < s->n_opens; i++) {
		object_unref(s->opens[i].obj);
		state_forget(d->state, &s->open_saved[i]);
	}
	s->n_opens = 0;
	if (s->converting && s->space && s->space->converting) {
		/* A conversion abandoned: its region's faults are served as they are. */
		s->space->converting = 0;
		space_mark(s->space);
		fault_unpark(s->space);
	}
	s->converting = view_unref(s->converting);
	if (s->space) {
		/* A space held for a resume that did not end has no table to serve from. */
		if (s->resuming && !s->resumed_space)
			space_kill(s->space);
		s->space->attached = false;
		space_check_alive(s->space);
		s->space = space_unref(s->space);
	}
	list_del_init(&s->link);
	d->n_sessions--;
	state_forget(d->state, &s->saved);
	uv_poll_stop(&s->poll);
	/* What the client left queued goes now: the last close of the socket, here or in the fd
	 * store's keeper, would close its descriptors. A daemon that stops hands it over whole. */
	if (!d->stopping) {
		uid_t owner = closer_set_owner(s->uid);
		closer_drain(s->fd);
		closer_set_owner(owner);
	}
	uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void session_start(struct session *s)
{
	struct daemon *d = s->d;

	list_add_tail(&s->link, &d->sessions);
	d->n_sessions++;
	session_mark(s);
	uv_poll_init(d->loop, &s->poll, s->fd);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

/* The connections of user @uid. */
static unsigned sessions_of(struct daemon *d, uid_t uid)
{
	struct session *s;
	unsigned n = 0;

	list_for_each_entry (s, &d->sessions, link)
		n += s->uid == uid;
	return n;
}

/* A connection of user @uid refused: what its client queued meanwhile is closed off the loop. */
static void end_connection(int fd, uid_t uid)
{
	uid_t owner = closer_set_owner(uid);

	closer_drain(fd);
	closer_close(fd);
	closer_set_owner(owner);
}

/**
 * session_accept() - start a session on a new connection
 * @d: the daemon
 * @fd: the connected socket; owned by the session from now on, also on failure
 *
 * Return: 0 or a negative errno.
 */
int session_accept(struct daemon *d, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct session *s;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		int ret = neg_errno();

		end_connection(fd, 0);
		return ret;
	}
	if (limits_connection(d, cred.uid, sessions_of(d, cred.uid)) < 0) {
		log_limited(LOG_WARNING, "uid %d has as many connections as it may; closing one",
			    (int)cred.uid);
		end_connection(fd, cred.uid);
		return -EMFILE;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		end_connection(fd, cred.uid);
		return -ENOMEM;
	}
	/* Each request carries the uid its sender has when it sends it (set_uid()). */
	setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int));
	s->d = d;
	s->fd = fd;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->id = ++d->next_id;
	state_mark_daemon(d);
	session_start(s);
	fdstore_add(d, fd, "cl", s->id);
	log_debug("client pid %d uid %d connected", (int)s->pid, (int)s->uid);
	return 0;
}

/**
 * session_release_held() - read again the sessions held for their users' backlog of closes, once
 * it is down to half (called each turn of the liveness timer)
 */
void session_release_held(struct daemon *d)
{
	struct session *s;

	list_for_each_entry (s, &d->sessions, link)
		if (s->held && !s->closing && closer_backlog(s->uid) < CLOSER_BACKLOG_MAX / 2) {
			s->held = false;
			uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
		}
}

/**
 * session_set_soft() - the client of @s bounds its wait for a daemon (UPAGER_HELLO_SOFT): the
 * daemon's own keeper keeps neither its connection nor its space's descriptors
 * (space_set_soft()), so that the connection ends with the daemon
 */
void session_set_soft(struct session *s)
{
	if (s->space)
		space_set_soft(s->space);
	if (s->d->keeper.fd >= 0)
		fdstore_remove(s->d, "cl", s->id);
}

/**
 * session_adopt() - take over a session of a previous daemon
 * @d: the daemon
 * @saved: the session's saved fields (state.c): id, pid, uid, hello, ctl, busy, pending.op and
 *         .seq; its space, converting view and pending opens, whose references pass to the new
 *         session (@saved is left without them)
 * @fd: the connection, taken
 *
 * A request whose reply waited for a populate when the previous daemon died is answered now: the
 * region was registered before the populate began, and pages it did not map fault in later. A
 * request the previous daemon answered but left on the socket is answered again when it is read;
 * any other request still on the socket is done as if it were new.
 *
 * Return: 0 or a negative errno.
 */
int session_adopt(struct daemon *d, struct session *saved, int fd)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	*s = *saved;
	saved->space = NULL;
	saved->converting = NULL;
	saved->n_opens = 0;
	s->d = d;
	s->fd = fd;
	s->busy = s->closing = false;
	s->adopted = true;
	if (s->space)
		s->space->attached = true;
	session_start(s);
	if (saved->busy && reply_again(s) < 0)
		session_close(s);
	return 0;
}

/** session_free_all() - close every session (the daemon stops) */
void session_free_all(struct daemon *d)
{
	struct session *s, *tmp;

	list_for_each_entry_safe (s, tmp, &d->sessions, link)
		session_close(s);
}

static void session_fields(struct state_io *io, struct session *s, uint64_t *space_id,
			   uint64_t *view_id)
{
	STATE_NUM(io, 1, s->id);
	STATE_NUM(io, 2, s->pid);
	STATE_NUM(io, 3, s->uid);
	STATE_NUM(io, 4, s->hello);
	STATE_NUM(io, 5, s->ctl);
	STATE_NUM(io, 6, s->busy);
	STATE_NUM(io, 7, s->pending.op);
	STATE_NUM(io, 8, s->pending.seq);
	STATE_NUM(io, 9, *space_id);
	STATE_NUM(io, 10, *view_id);
	STATE_NUM(io, 11, s->last.seq);
	state_bytes(io, 12, s->last.msg, &s->last.len, sizeof(s->last.msg));
	STATE_NUM(io, 13, s->last.fd);
	STATE_NUM(io, 14, s->last.fd_id);
	STATE_NUM(io, 15, s->last.fd_writable);
}

static void open_fields(struct state_io *io, struct pending_open *po, uint64_t *session_id,
			uint64_t *obj_id)
{
	STATE_NUM(io, 1, *session_id);
	STATE_NUM(io, 2, *obj_id);
	STATE_NUM(io, 3, po->prot);
	STATE_NUM(io, 4, po->flags);
	STATE_NUM(io, 5, po->offset);
	STATE_NUM(io, 6, po->length);
	STATE_NUM(io, 7, po->shared);
	STATE_NUM(io, 8, po->may_write);
}

static void session_save(struct state_handle *h, struct state *st)
{
	struct session *s = container_of(h, struct session, saved);
	uint64_t space_id = s->space && !s->space->dead ? s->space->id : 0;
	uint64_t view_id = s->converting ? s->converting->id : 0;
	struct state_io io;

	state_begin(&io, st, STATE_REC_SESSION);
	session_fields(&io, s, &space_id, &view_id);
	state_end(&io);
}

/* An object the session holds for a mapping: its record names the session. */
static void open_save(struct state_handle *h, struct state *st)
{
	struct session *s = h->owner;
	struct pending_open *po = &s->opens[h - s->open_saved];
	uint64_t obj_id = po->obj->id;
	struct state_io io;

	state_begin(&io, st, STATE_REC_OPEN);
	open_fields(&io, po, &s->id, &obj_id);
	state_end(&io);
}

/**
 * session_mark() - the saved record of session @s changed, or is new; with a new session, the
 * records of its opens[] too
 */
void session_mark(struct session *s)
{
	bool fresh = !s->saved.key;

	state_mark(s->d->state, &s->saved, session_save, NULL);
	for (size_t i = 0; fresh && i < s->n_opens; i++)
		session_open_changed(s, i);
}

/**
 * session_open_changed() - opens[@i] of session @s changed or came (@i < n_opens) or went (the
 * others): its record is saved again or deleted
 */
void session_open_changed(struct session *s, size_t i)
{
	if (i < s->n_opens)
		state_mark(s->d->state, &s->open_saved[i], open_save, s);
	else
		state_forget(s->d->state, &s->open_saved[i]);
}

static struct session *find_session(struct daemon *d, uint64_t id)
{
	struct session *s;

	list_for_each_entry (s, &d->sessions, link)
		if (s->id == id)
			return s;
	return NULL;
}

/** session_load() - take a session back from its record and its socket in the fd store */
void session_load(struct daemon *d, struct state_io *io, struct fdstore_passed *p)
{
	uint64_t space_id = 0, view_id = 0;
	struct session *saved = calloc(1, sizeof(*saved));
	struct space *sp;
	struct view *v;
	int fd;

	if (!saved)
		return;
	session_fields(io, saved, &space_id, &view_id);
	fd = fdstore_passed_take(p, "cl", saved->id);
	if (fd >= 0) {
		sp = space_find(d, space_id);
		v = view_find(d, view_id);
		saved->space = sp ? space_ref(sp) : NULL;
		saved->converting = v ? view_ref(v) : NULL;
		session_adopt(d, saved, fd);
	}
	free(saved);
}

/** session_load_open() - an object handed out and not yet mapped, back into its session */
void session_load_open(struct daemon *d, struct state_io *io)
{
	uint64_t session_id = 0, obj_id = 0;
	struct pending_open po = { 0 };
	struct session *s;

	open_fields(io, &po, &session_id, &obj_id);
	s = find_session(d, session_id);
	po.obj = object_find(&d->cache, obj_id);
	if (!s || !po.obj || s->n_opens == MAX_PENDING_OPENS)
		return;
	object_ref(po.obj);
	s->opens[s->n_opens++] = po;
}
