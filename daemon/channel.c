// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The control channel of a space. Only the client process can change its own address space (map a
 * guard page, drop pages with MADV_DONTNEED), so a client that needs that gives the daemon one end
 * of a SOCK_SEQPACKET pair (CONTROL), and a thread of the library serves requests on the other end,
 * in order. Each request here waits on the channel's list for its answer; the faults it concerns
 * stay parked in the kernel meanwhile, and the loop goes on. A channel that closes (the client
 * died, or sent something wrong) ends every request with no answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "closer.h"
#include "common/fdmsg.h"
#include "common/macro.h"
#include "context.h"
#include "fdstore.h"
#include "latency.h"
#include "log.h"
#include "proto/codec.h"
#include "space.h"

struct channel {
	struct space *space; /* not a reference: the space detaches before it goes */
	int fd;
	uv_poll_t poll;
	uint32_t seq;
	struct list_head inflight; /* struct chan_req.link, in the order sent */
};

/**
 * channel_send() - send @m on the control channel of @s; @done gets its answer
 * @q: kept until @done is called; its seq and op are set here
 *
 * Return: 0, or a negative errno (no channel: -ENOTCONN); @done is not called then.
 */
int channel_send(struct space *s, struct upager_msg *m, struct chan_req *q, chan_done_fn done)
{
	struct channel *c = s->chan;
	uint8_t buf[512]; /* a DROP is the largest: 168 bytes */
	int len;

	if (!c)
		return -ENOTCONN;
	m->version = UPAGER_PROTO_VERSION;
	m->seq = ++c->seq;
	len = upager_msg_encode(buf, sizeof(buf), m);
	if (len < 0)
		return len;
	if (send(c->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return neg_errno();
	q->seq = m->seq;
	q->op = (uint16_t)m->op;
	q->sent_ns = now_ns();
	q->done = done;
	list_add_tail(&q->link, &c->inflight);
	return 0;
}

/**
 * channel_oldest_ns() - when the oldest request on the control channel of @s still without an
 * answer was sent; 0 if none waits
 */
uint64_t channel_oldest_ns(const struct space *s)
{
	const struct chan_req *q;

	if (!s->chan || list_empty(&s->chan->inflight))
		return 0;
	q = list_first_entry(&s->chan->inflight, struct chan_req, link);
	return q->sent_ns;
}

static void read_answers(struct channel *c, int status)
{
	struct space *s = c->space;
	uint8_t buf[128];

	while (status == 0) {
		struct upager_msg m;
		struct chan_req *q;
		int fds[FDMSG_MAX_FDS];
		size_t n_fds = 0;
		ssize_t n = fdmsg_recv_nonblock(c->fd, buf, sizeof(buf), fds, &n_fds);

		/* An answer carries none: a descriptor is a bad message's. */
		fdmsg_close_fds(fds, n_fds);
		if (n == -EAGAIN)
			return;
		if (n <= 0 || n_fds > 0)
			break;
		q = list_empty(&c->inflight) ? NULL
					     : list_entry(c->inflight.next, struct chan_req, link);
		if (upager_msg_decode(buf, (size_t)n, &m) < 0 || !(m.op & UPAGER_OP_REPLY)) {
			log_limited(LOG_INFO, "pid %d: bad message on the control channel; closing",
				    (int)s->pid);
			break;
		}
		if (!q || m.seq != q->seq) {
			/* The answer to a request of a daemon that ran before this one. */
			log_debug("pid %d: control answer %u not asked for", (int)s->pid, m.seq);
			continue;
		}
		if (m.op != (q->op | UPAGER_OP_REPLY)) {
			log_limited(LOG_INFO,
				    "pid %d: wrong answer on the control channel; closing",
				    (int)s->pid);
			break;
		}
		list_del_init(&q->link);
		q->done(s, q, &m);
	}
	channel_detach(s);
}

/* The answers of the client's control thread; what comes with them, closed, is its user's. */
static void on_readable(uv_poll_t *h, int status, int events)
{
	struct channel *c = h->data;
	uid_t owner = closer_set_owner(c->space->uid);

	(void)events;
	read_answers(c, status);
	closer_set_owner(owner);
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

/**
 * channel_attach() - take the daemon's end of a space's control channel
 * @s: the space
 * @fd: a connected SOCK_SEQPACKET socket; owned from now on, also on failure
 *
 * Return: 0 or a negative errno.
 */
int channel_attach(struct space *s, int fd)
{
	struct channel *c;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	channel_detach(s);
	c->space = s;
	c->fd = fd;
	/* Numbers a daemon before this one used on the channel are not taken again soon. */
	c->seq = (uint32_t)(now_ns() >> 8);
	list_init(&c->inflight);
	uv_poll_init(s->d->loop, &c->poll, fd);
	c->poll.data = c;
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_readable);
	s->chan = c;
	if (!s->soft || s->d->keeper.fd < 0)
		fdstore_add(s->d, fd, "gr", s->id);
	return 0;
}

/**
 * channel_detach() - close the control channel of a space; every request waiting for an answer
 * gets none (its done function is called with no reply)
 */
void channel_detach(struct space *s)
{
	struct channel *c = s->chan;
	struct chan_req *q, *tmp;
	uid_t owner;

	if (!c)
		return;
	s->chan = NULL;
	list_for_each_entry_safe (q, tmp, &c->inflight, link) {
		list_del_init(&q->link);
		q->done(s, q, NULL);
	}
	fdstore_remove(s->d, "gr", s->id);
	uv_poll_stop(&c->poll);
	owner = closer_set_owner(s->uid);
	if (!s->d->stopping)
		closer_drain(c->fd);
	closer_close(c->fd);
	closer_set_owner(owner);
	uv_close((uv_handle_t *)&c->poll, on_closed);
}
