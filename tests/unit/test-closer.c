// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Closes that a client can make wait (daemon/closer.c): a TCP socket with unsent data and
 * SO_LINGER, which waits for a peer that reads nothing, alone or inside another socket's queue.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "daemon/closer.h"
#include "tests/lingering.h"

TestSuite(closer, .init = NULL, .timeout = 60);

static int lingering(int secs, int *peer)
{
	int c = lingering_socket(secs, peer);

	cr_assert(c >= 0, "a lingering socket: %m");
	return c;
}

/* Whether @peer's connection ended (its other end closed) within @ms. */
static bool ended_within(int peer, int ms)
{
	struct pollfd p = { .fd = peer, .events = POLLRDHUP };

	/* Its receive queue is full from the start: POLLIN says nothing. */
	return poll(&p, 1, ms) == 1 && (p.revents & (POLLERR | POLLHUP | POLLRDHUP));
}

/* A socket handed over is closed at once, its unsent data dropped, not after its linger. */
Test(closer, a_socket_whose_close_would_wait_is_closed_at_once)
{
	int peer, c = lingering(30, &peer);

	cr_assert_eq(closer_start(), 0);
	closer_close(c);
	cr_assert(ended_within(peer, 5000), "the socket was not closed");
}

/*
 * A close that waits all the same (here a socket whose queue holds a lingering one, closed with
 * it) holds one thread: the next descriptor is closed by another.
 */
Test(closer, a_close_that_waits_holds_back_no_other)
{
	int peer, c = lingering(30, &peer), sv[2], pipefd[2];
	struct pollfd p;

	cr_assert_eq(closer_start(), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(fdmsg_send(sv[1], "x", 1, &c, 1), 0);
	close(c);
	close(sv[1]);
	closer_close(sv[0]);
	cr_assert_not(ended_within(peer, 500), "the socket in the queue lingers");
	cr_assert_eq(pipe(pipefd), 0);
	closer_close(pipefd[1]);
	p = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 5000), 1, "the pipe was not closed");
	cr_assert(p.revents & POLLHUP);
}

/*
 * What a client left queued on its connection is taken off when the daemon ends it, and closed
 * off the caller's thread: the connection's own last close (the daemon's, or the fd store's
 * keeper's) has nothing left to close.
 */
Test(closer, an_ended_connection_s_queued_descriptors_are_closed_at_once)
{
	int peer, c = lingering(30, &peer), sv[2];
	char byte;

	cr_assert_eq(closer_start(), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(fdmsg_send(sv[1], "", 0, NULL, 0), 0, "an empty datagram first");
	cr_assert_eq(fdmsg_send(sv[1], "x", 1, &c, 1), 0);
	close(c);
	closer_drain(sv[0]);
	cr_assert(ended_within(peer, 5000), "the queued socket was not closed");
	cr_assert_lt(send(sv[1], "y", 1, MSG_DONTWAIT | MSG_NOSIGNAL), 0, "nothing more comes in");
	cr_assert_eq(recv(sv[0], &byte, 1, MSG_DONTWAIT), 0);
	close(sv[0]);
	close(sv[1]);
}

/* Send @sock a datagram of one byte with the @n descriptors of @fds, as SCM_RIGHTS. */
static void send_with(int sock, const int *fds, size_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253)];
		struct cmsghdr align;
	} control = { 0 };
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	cr_assert_eq(sendmsg(sock, &msg, 0), 1);
}

/*
 * Descriptors beyond what a request carries are received too and closed here: the kernel would
 * close those it finds no room for itself, in the receiving thread, which waited out the linger.
 */
Test(closer, descriptors_past_a_request_s_are_closed_off_the_receiving_thread)
{
	int peer, c = lingering(20, &peer), sv[2], fds[FDMSG_MAX_FDS], sent[16] = { 0 };
	struct timespec t0, t1;
	size_t n_fds;
	char byte;

	cr_assert_eq(closer_start(), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	sent[15] = c;
	/* As on the daemon's connections: the credentials take room too. */
	cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)), 0);
	send_with(sv[1], sent, 16);
	close(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(fdmsg_recv(sv[0], &byte, 1, fds, &n_fds), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(n_fds, FDMSG_MAX_FDS);
	fdmsg_close_fds(fds, n_fds);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 10, "the receive waited out the linger");
	cr_assert(ended_within(peer, 5000), "the extra socket was not closed");
}

/* A descriptor whose close waits: a socket whose queue holds a lingering one (@peer its peer's). */
static int waiting_close(int *peer)
{
	int c = lingering(30, peer), sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(fdmsg_send(sv[1], "x", 1, &c, 1), 0);
	close(c);
	close(sv[1]);
	return sv[0];
}

/*
 * One user's closes that wait, more than the pool has threads, hold two threads: its others
 * queue, counted in its backlog, and another user's descriptor is closed at once. (Eight closes
 * that waited held every thread: everyone's descriptors queued open behind them.)
 */
Test(closer, one_users_closes_that_wait_hold_two_threads_and_no_other_users_close)
{
	int peers[20], pipefd[2];
	struct pollfd p;

	cr_assert_eq(closer_start(), 0);
	for (int i = 0; i < 20; i++)
		closer_close_owned(waiting_close(&peers[i]), 1000);
	cr_assert_eq(closer_backlog(1000), 20);
	cr_assert_eq(pipe(pipefd), 0);
	closer_set_owner(1001);
	closer_close(pipefd[1]);
	closer_set_owner(0);
	p = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 5000), 1, "another user's pipe was not closed");
	cr_assert(p.revents & POLLHUP);
	cr_assert_eq(closer_backlog(1001), 0);
	cr_assert_eq(closer_backlog(1000), 20, "the user's closes are under way or queued");
	for (int i = 0; i < 20; i++)
		cr_assert_not(ended_within(peers[i], 10), "a lingering socket was closed");
}

static pid_t hook_caller; /* the thread that last called the hook below */

static void noting_close(int fd)
{
	hook_caller = gettid();
	closer_close(fd);
}

/*
 * What an ended connection holds queued is taken off in a closer's thread, not the caller's (the
 * loop's): 200 descriptors of a datagram came into the loop's table at once, each then closed
 * with a flush a FUSE server may never answer, and a flood of them filled the table.
 */
Test(closer, an_ended_connection_s_queue_is_taken_off_outside_the_callers_thread)
{
	int sv[2], pipefd[2], fds[200];
	struct pollfd p;

	cr_assert_eq(closer_start(), 0);
	fdmsg_set_closer(noting_close);
	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	for (size_t i = 0; i < 200; i++)
		fds[i] = pipefd[1];
	send_with(sv[1], fds, 200);
	close(pipefd[1]);
	closer_drain(sv[0]);
	close(sv[0]);
	p = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 5000), 1, "the queued descriptors were not closed");
	cr_assert(p.revents & POLLHUP);
	cr_assert_neq(hook_caller, gettid(), "the caller's thread took the descriptors");
	close(sv[1]);
}
