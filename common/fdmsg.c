// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdmsg.h"
#include "macro.h"

/* The most descriptors one datagram carries (the kernel's SCM_MAX_FD). */
#define MAX_PASSED 253

static void plain_close(int fd)
{
	close(fd);
}

static void (*close_fd)(int fd) = plain_close;

/**
 * fdmsg_set_closer() - how received descriptors that nobody takes are closed (close(2) until set)
 * @fn: takes the descriptor over
 */
void fdmsg_set_closer(void (*fn)(int fd))
{
	close_fd = fn;
}

/**
 * fdmsg_send() - send one datagram, with descriptors as SCM_RIGHTS
 * @sock: a connected SOCK_SEQPACKET socket
 * @buf: the datagram
 * @len: its length
 * @fds: descriptors to pass, or NULL
 * @n_fds: how many, at most FDMSG_MAX_FDS
 *
 * Return: 0, or a negative errno (-EPIPE when the peer is gone; SIGPIPE is never raised).
 */
int fdmsg_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDMSG_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (n_fds > FDMSG_MAX_FDS)
		return -EINVAL;
	if (n_fds > 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return neg_errno();
	if ((size_t)n != len)
		return -EMSGSIZE;
	return 0;
}

/**
 * fdmsg_close_fds() - close received descriptors that nobody took
 * @fds: array of descriptors; taken ones are -1
 * @n_fds: entries in @fds
 */
void fdmsg_close_fds(int *fds, size_t n_fds)
{
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] >= 0) {
			close_fd(fds[i]);
			fds[i] = -1;
		}
}

/*
 * Room for a datagram and all a sender may attach to it: the kernel closes what finds none
 * itself, in the receiving thread, and such a close can wait as long as the sender chose
 * (daemon/closer.c).
 */
struct received {
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_PASSED) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} control;
	struct iovec iov;
	struct msghdr msg;
};

static struct msghdr *received_init(struct received *r, void *buf, size_t size)
{
	r->iov = (struct iovec){ .iov_base = buf, .iov_len = size };
	r->msg = (struct msghdr){
		.msg_iov = &r->iov,
		.msg_iovlen = 1,
		.msg_control = r->control.buf,
		.msg_controllen = sizeof(r->control.buf),
	};
	return &r->msg;
}

/*
 * What came with a received @msg: its first @room descriptors into @fds, the others closed
 * (@close_fn, or close_fd if NULL); the sender's user ID into @uid if not NULL (-1 if it sent
 * none). Return: how many descriptors went into @fds.
 */
static size_t take_control(struct msghdr *msg, int *fds, size_t room, uid_t *uid,
			   void (*close_fn)(int fd))
{
	size_t n_fds = 0;

	if (uid)
		*uid = (uid_t)-1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t k;

		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && uid &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred cred;

			/* A datagram sent before the receiver asked for credentials has none: the
			 * kernel fills in pid 0 and the overflow uid (65534), not the sender's. */
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			if (cred.pid != 0)
				*uid = cred.uid;
		}
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n_fds < room)
				fds[n_fds++] = fd;
			else
				(close_fn ? close_fn : close_fd)(fd);
		}
	}
	return n_fds;
}

static ssize_t recv_flags(int sock, void *buf, size_t size, int *fds, size_t *n_fds, int flags,
			  uid_t *uid)
{
	struct received r;
	struct msghdr *msg = received_init(&r, buf, size);
	ssize_t n;

	*n_fds = 0;
	if (uid)
		*uid = (uid_t)-1;
	do
		n = recvmsg(sock, msg, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return neg_errno();

	*n_fds = take_control(msg, fds, FDMSG_MAX_FDS, uid, NULL);
	/* An empty datagram reads as the end of the stream: nothing is left to own its descriptors.
	 * A datagram whole but for descriptors the receiver had no room for (out of them: the
	 * kernel installs what it can and sets MSG_CTRUNC) is read without those; the caller sees
	 * them missing. */
	if (n == 0 || (msg->msg_flags & MSG_TRUNC)) {
		fdmsg_close_fds(fds, *n_fds);
		*n_fds = 0;
		return n == 0 ? 0 : -EMSGSIZE;
	}
	return n;
}

/**
 * fdmsg_recv() - receive one datagram and the descriptors that came with it
 * @sock: a SOCK_SEQPACKET socket
 * @buf: buffer for the datagram
 * @size: its size
 * @fds: room for FDMSG_MAX_FDS descriptors; received ones are O_CLOEXEC and owned by the caller
 * @n_fds: set to the number received
 *
 * Return: the datagram's length (with fewer descriptors than were sent if this process had no room
 * for them), 0 at end of stream or for an empty datagram, -EMSGSIZE if the datagram was truncated
 * (its descriptors are closed), or another negative errno (-EAGAIN on a non-blocking socket with
 * nothing queued).
 */
ssize_t fdmsg_recv(int sock, void *buf, size_t size, int *fds, size_t *n_fds)
{
	return recv_flags(sock, buf, size, fds, n_fds, 0, NULL);
}

/**
 * fdmsg_recv_nonblock() - fdmsg_recv() without waiting: -EAGAIN if nothing is queued
 *
 * Return: as fdmsg_recv().
 */
ssize_t fdmsg_recv_nonblock(int sock, void *buf, size_t size, int *fds, size_t *n_fds)
{
	return recv_flags(sock, buf, size, fds, n_fds, MSG_DONTWAIT, NULL);
}

/**
 * fdmsg_peek() - fdmsg_recv(), leaving the datagram queued (the descriptors are duplicates)
 *
 * Return: as fdmsg_recv().
 */
ssize_t fdmsg_peek(int sock, void *buf, size_t size, int *fds, size_t *n_fds)
{
	return recv_flags(sock, buf, size, fds, n_fds, MSG_PEEK, NULL);
}

/**
 * fdmsg_recv_uid() - fdmsg_recv() or, if @peek, fdmsg_peek(), on a socket with SO_PASSCRED
 * @uid: set to the user ID the sender had when it sent the datagram (from the kernel), or -1
 *	if the datagram carries none (sent before the receiver set SO_PASSCRED)
 *
 * Return: as fdmsg_recv().
 */
ssize_t fdmsg_recv_uid(int sock, void *buf, size_t size, int *fds, size_t *n_fds, bool peek,
		       uid_t *uid)
{
	return recv_flags(sock, buf, size, fds, n_fds, peek ? MSG_PEEK : 0, uid);
}

/**
 * fdmsg_drop() - take the first queued datagram off @sock and close its descriptors
 * Return: 0 or a negative errno.
 */
int fdmsg_drop(int sock)
{
	int fds[FDMSG_MAX_FDS];
	size_t n_fds = 0;
	char byte;
	ssize_t n;

	n = recv_flags(sock, &byte, 1, fds, &n_fds, 0, NULL);
	fdmsg_close_fds(fds, n_fds);
	return n < 0 && n != -EMSGSIZE ? (int)n : 0;
}

/**
 * fdmsg_drain() - take every datagram queued on @sock off it, closing their descriptors
 * @sock: a socket shut down for reading (shutdown(2)), so that nothing more comes in
 * @max: how many datagrams at most
 * @close_fn: closes each descriptor; NULL: as received descriptors nobody takes are
 *
 * The end of the queue and an empty datagram both read as 0 bytes: with SO_PASSCRED on, every
 * datagram comes with the sender's credentials, and the end with nothing.
 */
void fdmsg_drain(int sock, unsigned max, void (*close_fn)(int fd))
{
	setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int));
	for (unsigned i = 0; i < max; i++) {
		struct received r;
		char byte;
		struct msghdr *msg = received_init(&r, &byte, 1);
		ssize_t n = recvmsg(sock, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && msg->msg_controllen == 0))
			return;
		take_control(msg, NULL, 0, NULL, close_fn);
	}
}
