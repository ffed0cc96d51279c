// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The keeper of descriptors (daemon/keeper.c), started by the test as a daemon starts it: what it
 * keeps, lets go of and hands to the next daemon, and whom it answers on the listening socket.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/keeper.h"
#include "tests/lingering.h"

static char sock_path[108];

static void path_new(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/upager-keeper-test-%d.sock", (int)getpid());
	unlink(sock_path);
}

static void path_remove(void)
{
	unlink(sock_path);
}

TestSuite(keeper, .init = path_new, .fini = path_remove, .timeout = 30);

/* A socket and the address of sock_path. */
static int socket_at(struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	strcpy(sa->sun_path, sock_path);
	return fd;
}

/* A listening socket on sock_path, as the daemon's. */
static int listener(void)
{
	struct sockaddr_un sa;
	int fd = socket_at(&sa);

	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%m");
	cr_assert_eq(listen(fd, 8), 0);
	return fd;
}

static int connect_to_path(void)
{
	struct sockaddr_un sa;
	int fd = socket_at(&sa);

	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%m");
	return fd;
}

/* The descriptor passed as @name, or -1. */
static int passed(const struct keeper *k, const char *name)
{
	for (size_t i = 0; i < k->passed.n; i++)
		if (strcmp(k->passed.names[i], name) == 0)
			return k->passed.fds[i];
	return -1;
}

/* The next daemon, once the last died: it takes over exactly the descriptors named @names. */
static void next_takes_over(struct keeper *next, const char *const *names, size_t n)
{
	cr_assert_eq(keeper_attach(sock_path, NULL, next), 0);
	cr_assert_geq(next->fd, 0);
	cr_assert_eq(next->passed.n, n, "%zu passed", next->passed.n);
	for (size_t i = 0; i < n; i++)
		cr_assert_geq(passed(next, names[i]), 0, "%s was not passed", names[i]);
}

static void store(struct keeper *k, const char *name, bool poll, int fd)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s%s", name, poll ? "" : "\nFDPOLL=0");
	cr_assert_eq(keeper_send(k, msg, fd), 0);
	close(fd);
}

/* A keeper whose daemon stored the listening socket and a client's connection, then died. */
static void dead_daemon_keeper(int *client)
{
	struct keeper k;
	int sv[2];

	cr_assert_eq(keeper_attach(sock_path, NULL, &k), 0);
	cr_assert_geq(k.fd, 0, "no keeper started");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	store(&k, "upager.listen.0", false, listener());
	store(&k, "upager.cl.1", true, sv[0]);
	*client = sv[1];
	close(k.fd);
}

Test(keeper, the_next_daemon_gets_what_was_stored_and_not_removed)
{
	struct keeper k, next;
	int p[2], sv[2], gone[2];
	char c = 0;

	cr_assert_eq(keeper_attach(sock_path, NULL, &k), 0);
	cr_assert_geq(k.fd, 0, "no keeper started");
	cr_assert_eq(k.passed.n, 0, "a new keeper passes nothing");
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gone), 0);
	store(&k, "upager.listen.0", false, listener());
	store(&k, "upager.ob.1", false, p[0]);
	store(&k, "upager.ob.2", false, p[1]);
	cr_assert_eq(keeper_send(&k, "FDSTOREREMOVE=1\nFDNAME=upager.ob.2", -1), 0);
	store(&k, "upager.cl.3", true, sv[0]);
	store(&k, "upager.cl.4", true, gone[0]);
	close(gone[1]); /* that client hung up: the keeper lets its connection go */
	usleep(200 * 1000);
	close(k.fd); /* the daemon dies */

	next_takes_over(
		&next, (const char *const[]){ "upager.listen.0", "upager.ob.1", "upager.cl.3" }, 3);
	/* The pipe's write end was removed: its read end, kept, reads the end of it. */
	cr_assert_eq(read(passed(&next, "upager.ob.1"), &c, 1), 0);
	/* The client's connection is the same. */
	cr_assert_eq(write(sv[1], "x", 1), 1);
	cr_assert_eq(read(passed(&next, "upager.cl.3"), &c, 1), 1);
	cr_assert_eq(c, 'x');
	keeper_stop(&next);
	for (size_t i = 0; i < next.passed.n; i++)
		close(next.passed.fds[i]);
	close(sv[1]);
}

Test(keeper, a_client_that_connects_while_no_daemon_runs_is_closed)
{
	struct keeper next;
	struct pollfd pl;
	int client, fd;
	char buf[8];

	dead_daemon_keeper(&client);
	fd = connect_to_path();
	cr_assert_eq(send(fd, "HELLO", 5, 0), 5);
	pl = (struct pollfd){ .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&pl, 1, 3000), 1, "the keeper kept a client's connection open");
	cr_assert_eq(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	/* It still hands everything over. */
	cr_assert_eq(keeper_attach(sock_path, NULL, &next), 0);
	cr_assert_eq(next.passed.n, 2);
	keeper_stop(&next);
	for (size_t i = 0; i < next.passed.n; i++)
		close(next.passed.fds[i]);
	close(client);
}

Test(keeper, a_live_daemon_is_not_taken_over)
{
	struct keeper k;
	int ls = listener(), status;
	pid_t live = fork();

	cr_assert(live >= 0);
	if (live == 0) {
		/* A daemon answers a request it does not know with an error of its own. */
		int c = accept(ls, NULL, NULL);
		char buf[64];

		if (c < 0 || recv(c, buf, sizeof(buf), 0) <= 0 || send(c, "ERR", 3, 0) != 3)
			_exit(1);
		_exit(0);
	}
	close(ls);
	cr_assert_eq(keeper_attach(sock_path, NULL, &k), -EADDRINUSE);
	cr_assert_eq(k.fd, -1);
	cr_assert_eq(k.passed.n, 0);
	cr_assert_eq(waitpid(live, &status, 0), live);
	cr_assert_eq(status, 0);
}

Test(keeper, a_keeper_whose_clients_all_hung_up_ends_with_its_daemon)
{
	struct keeper next;
	int client;

	dead_daemon_keeper(&client);
	close(client);
	usleep(200 * 1000);
	/* No keeper answers on the socket left behind: the next daemon starts one of its own. */
	cr_assert_eq(keeper_attach(sock_path, NULL, &next), 0);
	cr_assert_geq(next.fd, 0);
	cr_assert_eq(next.passed.n, 0, "the keeper of no client stayed");
	keeper_stop(&next);
}

/*
 * A descriptor a client gave whose close waits (a TCP socket with unsent data and SO_LINGER of 30
 * s, whose peer reads nothing), let go of by the daemon: the keeper closes it at once, and still
 * hands everything over at once (its loop waited out the linger, and the next daemon gave up).
 */
Test(keeper, a_descriptor_whose_close_waits_holds_the_keeper_up_for_nothing)
{
	struct keeper k, next;
	struct pollfd pl;
	int peer, sock = lingering_socket(30, &peer), sv[2];

	cr_assert(sock >= 0, "a lingering socket: %m");
	cr_assert_eq(keeper_attach(sock_path, NULL, &k), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	store(&k, "upager.listen.0", false, listener());
	store(&k, "upager.cl.1", true, sv[0]);
	store(&k, "upager.gr.1", false, sock);
	cr_assert_eq(keeper_send(&k, "FDSTOREREMOVE=1\nFDNAME=upager.gr.1", -1), 0);
	pl = (struct pollfd){ .fd = peer, .events = POLLRDHUP };
	cr_assert_eq(poll(&pl, 1, 2000), 1, "the keeper did not close the socket at once");
	close(k.fd);
	cr_assert_eq(keeper_attach(sock_path, NULL, &next), 0, "the keeper waited out the linger");
	cr_assert_eq(next.passed.n, 2);
	keeper_stop(&next);
	for (size_t i = 0; i < next.passed.n; i++)
		close(next.passed.fds[i]);
	close(sv[1]);
	close(peer);
}

/*
 * Thousands of messages at once, more than the channel holds (as a client with many caches ends):
 * those it has no room for wait and go in order as the keeper reads, so that every removal
 * reaches it and the next daemon gets only what is still stored. (Dropped, the removals left the
 * keeper holding descriptors of caches long gone.)
 */
Test(keeper, a_burst_of_messages_reaches_the_keeper_whole_and_in_order)
{
	struct keeper k, next;
	char name[64], msg[128];
	int p[2], sv[2];

	cr_assert_eq(keeper_attach(sock_path, NULL, &k), 0);
	cr_assert_geq(k.fd, 0, "no keeper started");
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	store(&k, "upager.listen.0", false, listener());
	store(&k, "upager.cl.1", true, sv[0]); /* a client: the keeper outlives its daemon */
	cr_assert_gt(k.pid, 0);
	kill(k.pid, SIGSTOP); /* it reads nothing meanwhile */
	for (int i = 1; i <= 20000; i++) {
		snprintf(name, sizeof(name), "upager.ob.%d", i + 1);
		snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
		cr_assert_eq(keeper_send(&k, msg, p[0]), 0);
		snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
		cr_assert_eq(keeper_send(&k, msg, -1), 0);
	}
	cr_assert_gt(k.n - k.head, 0, "the channel took them all: no burst");
	kill(k.pid, SIGCONT);
	for (int i = 0; i < 2000 && k.head < k.n; i++) {
		usleep(10 * 1000);
		keeper_flush(&k);
	}
	cr_assert_eq(k.n - k.head, 0, "%zu messages still wait", k.n - k.head);
	usleep(200 * 1000);
	close(p[0]);
	close(p[1]);
	close(k.fd); /* the daemon dies */

	next_takes_over(&next, (const char *const[]){ "upager.listen.0", "upager.cl.1" }, 2);
	keeper_stop(&next);
	close(sv[1]);
}
