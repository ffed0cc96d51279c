// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The keeper: an fd store of the daemon's own when no service manager keeps one, so that a daemon
 * started by hand that crashes (SIGKILL, SIGSEGV, the OOM killer) leaves its clients to the next
 * one with nothing lost, as under systemd: the next daemon takes over (state.c) instead of the
 * clients resuming (resume.c), which loses the pages paged out.
 *
 * A daemon started without $NOTIFY_SOCKET first connects to its socket's path and asks for the
 * descriptors ("UPAGER_TAKE=1"). A keeper whose daemon is gone answers with every descriptor it
 * keeps, named, and the connection is the new daemon's channel to it from then on; a live daemon
 * answers no such thing, and the new one does not start. With no one there, the daemon starts a
 * keeper: a process of its own (forked twice, in a session of its own) holding the other end of a
 * socket pair. The daemon stores and removes descriptors through the channel with the messages of
 * sd_pid_notify_with_fds() (fdstore.c), never waiting for the keeper: a message the keeper has no
 * room for is lost, as one systemd refused.
 *
 * The keeper polls the client connections it keeps and closes one that hangs up. When its daemon's
 * channel ends, it listens on the daemon's listening socket (kept as upager.listen.0): a client
 * that connects meanwhile is closed at once (its call fails rather than wait), a daemon of the same
 * user that asks takes everything over. A daemon stopped by SIGTERM or SIGINT tells the keeper to
 * end ("UPAGER_STOP=1"), and its clients resume with the next daemon as without a store. The
 * keeper ends too when it keeps no client, or has no listening socket for a next daemon to reach
 * it by.
 *
 * The socket pair and the listening socket are the only ways in: the listening socket answers only
 * a connection whose peer has the keeper's own user (SO_PEERCRED), and only while no daemon runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/macro.h"
#include "keeper.h"
#include "log.h"

#define TAKE_MSG "UPAGER_TAKE=1"
#define FDS_PREFIX "UPAGER_FDS="
#define END_MSG "UPAGER_END=1"
#define STOP_MSG "UPAGER_STOP=1"
#define LISTEN_NAME "upager.listen.0"
#define FDS_PER_MSG FDMSG_MAX_FDS
#define MSG_MAX 16384
#define TAKE_WAIT_MS 10000 /* for the keeper's answer: its descriptors, thousands maybe */
#define ASK_WAIT_MS 1000 /* for the first message of a connection to the keeper */

/* A message of @fd, NUL-terminated in @buf, and up to FDMSG_MAX_FDS descriptors (fdmsg.c):
 * its length, 0 at the end, or a negative errno (-EAGAIN: none queued, unless @wait). */
static ssize_t recv_msg(int fd, char *buf, size_t size, int *fds, size_t *n_fds, bool wait)
{
	ssize_t n = wait ? fdmsg_recv(fd, buf, size - 1, fds, n_fds)
			 : fdmsg_recv_nonblock(fd, buf, size - 1, fds, n_fds);

	buf[n > 0 ? n : 0] = 0;
	return n;
}

static int send_msg(int fd, const char *msg, const int *fds, size_t n_fds)
{
	return fdmsg_send(fd, msg, strlen(msg), fds, n_fds);
}

/* ---- The keeper process. ---- */

#define CLOSERS_MAX 64

static atomic_int closers;

static void *close_main(void *arg)
{
	close((int)(intptr_t)arg);
	atomic_fetch_sub(&closers, 1);
	return NULL;
}

/*
 * Close @fd, which a client may have given: its release may wait for that client (a socket with
 * SO_LINGER and unsent data, descriptors queued in a socket, a userfaultfd taking its process's
 * mmap lock), so a socket is first made to close at once and the close runs in a thread of its
 * own, up to CLOSERS_MAX at a time: the keeper's loop never waits for a client (daemon/closer.c
 * does the same for the daemon).
 */
static void close_apart(int fd)
{
	pthread_attr_t attr;
	pthread_t t;

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1, .l_linger = 0 },
		   sizeof(struct linger));
	if (atomic_fetch_add(&closers, 1) >= CLOSERS_MAX) {
		atomic_fetch_sub(&closers, 1);
		close(fd);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	if (pthread_create(&t, &attr, close_main, (void *)(intptr_t)fd) != 0) {
		atomic_fetch_sub(&closers, 1);
		close(fd);
	}
	pthread_attr_destroy(&attr);
}

struct kept {
	char **name; /* by descriptor: NULL if not kept */
	bool *polled;
	size_t size;
	int ep, chan, listen;
	size_t n_polled;
};

static void kept_close(struct kept *k, int fd)
{
	if (fd < 0 || (size_t)fd >= k->size || !k->name[fd])
		return;
	if (k->polled[fd]) {
		epoll_ctl(k->ep, EPOLL_CTL_DEL, fd, NULL);
		k->n_polled--;
	}
	if (fd == k->listen)
		k->listen = -1;
	free(k->name[fd]);
	k->name[fd] = NULL;
	k->polled[fd] = false;
	close_apart(fd);
}

static void kept_add(struct kept *k, int fd, const char *name, bool poll)
{
	if ((size_t)fd >= k->size) {
		size_t size = MAX((size_t)fd + 1, 2 * k->size);
		char **nm = realloc(k->name, size * sizeof(*nm));
		bool *pl = nm ? realloc(k->polled, size * sizeof(*pl)) : NULL;

		if (nm)
			k->name = nm;
		if (!nm || !pl) {
			close_apart(fd);
			return;
		}
		k->polled = pl;
		memset(k->name + k->size, 0, (size - k->size) * sizeof(*nm));
		memset(k->polled + k->size, 0, (size - k->size) * sizeof(*pl));
		k->size = size;
	}
	k->name[fd] = strdup(name);
	if (!k->name[fd]) {
		close_apart(fd);
		return;
	}
	if (strcmp(name, LISTEN_NAME) == 0) {
		kept_close(k, k->listen);
		k->listen = fd;
		poll = false;
	}
	if (poll) {
		struct epoll_event ev = { .events = EPOLLRDHUP, .data.fd = fd };

		if (epoll_ctl(k->ep, EPOLL_CTL_ADD, fd, &ev) == 0) {
			k->polled[fd] = true;
			k->n_polled++;
		}
	}
}

/* The value of "@key=" in the lines of @msg, copied into @out; false if there is none. */
static bool field(const char *msg, const char *key, char *out, size_t size)
{
	size_t len = strlen(key);

	for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, len) == 0 && l[len] == '=') {
			const char *v = l + len + 1, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);

			if (n >= size)
				return false;
			memcpy(out, v, n);
			out[n] = 0;
			return true;
		}
	}
	return false;
}

/* A message of the daemon: store, remove, or stop. Return: false once the keeper is to end. */
static bool daemon_msg(struct kept *k, const char *msg, int *fds, size_t n_fds)
{
	char name[256], flag[8];

	if (strcmp(msg, STOP_MSG) == 0) {
		for (size_t i = 0; i < n_fds; i++)
			close_apart(fds[i]);
		return false;
	}
	if (field(msg, "FDSTORE", flag, sizeof(flag)) && strcmp(flag, "1") == 0 &&
	    field(msg, "FDNAME", name, sizeof(name))) {
		bool poll = !(field(msg, "FDPOLL", flag, sizeof(flag)) && strcmp(flag, "0") == 0);

		for (size_t i = 0; i < n_fds; i++)
			kept_add(k, fds[i], name, poll);
		return true;
	}
	for (size_t i = 0; i < n_fds; i++)
		close_apart(fds[i]);
	if (field(msg, "FDSTOREREMOVE", flag, sizeof(flag)) && strcmp(flag, "1") == 0 &&
	    field(msg, "FDNAME", name, sizeof(name)))
		for (size_t fd = 0; fd < k->size; fd++)
			if (k->name[fd] && strcmp(k->name[fd], name) == 0)
				kept_close(k, (int)fd);
	return true;
}

/* Hand every descriptor kept over @conn, named; then it is the daemon's channel. */
static int hand_over(struct kept *k, int conn)
{
	char *msg = malloc(MSG_MAX);
	int fds[FDS_PER_MSG], ret = 0;
	size_t n = 0, len = 0;

	if (!msg)
		return -ENOMEM;
	for (size_t fd = 0; fd <= k->size && ret == 0; fd++) {
		bool last = fd == k->size;

		if (!last && !k->name[fd])
			continue;
		if (n && (last || n == FDS_PER_MSG ||
			  len + strlen(k->name[fd]) + 2 + sizeof(FDS_PREFIX) > MSG_MAX)) {
			ret = send_msg(conn, msg, fds, n);
			n = 0;
		}
		if (last)
			break;
		if (n == 0)
			len = (size_t)snprintf(msg, MSG_MAX, FDS_PREFIX "%s", k->name[fd]);
		else
			len += (size_t)snprintf(msg + len, MSG_MAX - len, "\n%s", k->name[fd]);
		fds[n++] = (int)fd;
	}
	free(msg);
	return ret < 0 ? ret : send_msg(conn, END_MSG, NULL, 0);
}

/* A connection to the listening socket while no daemon runs: a daemon's, or a client's (closed). */
static void on_connect(struct kept *k)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct pollfd p;
	char msg[64];
	int fd = accept4(k->listen, NULL, NULL, SOCK_CLOEXEC), fds[FDS_PER_MSG];
	size_t n_fds = 0;

	if (fd < 0)
		return;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != getuid() ||
	    poll(&p, 1, ASK_WAIT_MS) != 1 ||
	    recv_msg(fd, msg, sizeof(msg), fds, &n_fds, false) < 0 || strcmp(msg, TAKE_MSG) != 0 ||
	    hand_over(k, fd) < 0) {
		for (size_t i = 0; i < n_fds; i++)
			close_apart(fds[i]);
		close_apart(fd);
		return;
	}
	/* The new daemon's channel; it accepts on the listening socket from now on. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	epoll_ctl(k->ep, EPOLL_CTL_DEL, k->listen, NULL);
	k->chan = fd;
	epoll_ctl(k->ep, EPOLL_CTL_ADD, fd,
		  &(struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd });
}

/* The daemon's channel: its messages; false once the keeper is to end. */
static bool on_chan(struct kept *k)
{
	char *msg = malloc(MSG_MAX);
	int fds[FDS_PER_MSG];
	size_t n_fds;
	ssize_t n;

	if (!msg)
		return true;
	while ((n = recv_msg(k->chan, msg, MSG_MAX, fds, &n_fds, false)) > 0) {
		if (!daemon_msg(k, msg, fds, n_fds)) {
			free(msg);
			return false;
		}
	}
	free(msg);
	if (n == -EAGAIN)
		return true;
	/* The daemon is gone: the next one comes through the listening socket. */
	epoll_ctl(k->ep, EPOLL_CTL_DEL, k->chan, NULL);
	close(k->chan);
	k->chan = -1;
	if (k->listen >= 0)
		epoll_ctl(k->ep, EPOLL_CTL_ADD, k->listen,
			  &(struct epoll_event){ .events = EPOLLIN, .data.fd = k->listen });
	return true;
}

/*
 * The keeper's name over the daemon's command line it was forked with (@argv, the strings the
 * kernel laid out one after another), so that what is meant for daemons by their command line
 * (`pkill -f upagerd`, `pidof upagerd`) leaves the keeper of a daemon killed so: its next daemon
 * takes the pages over. The daemon's options in those strings are not used here any more.
 */
static void retitle(char *const *argv)
{
	static const char name[] = "upager-keeper";
	char *lo = NULL, *hi = NULL;

	prctl(PR_SET_NAME, name);
	for (size_t i = 0; argv && argv[i]; i++) {
		char *end = argv[i] + strlen(argv[i]) + 1;

		if (!lo || argv[i] < lo)
			lo = argv[i];
		if (!hi || end > hi)
			hi = end;
	}
	if (!lo)
		return;
	memset(lo, 0, (size_t)(hi - lo));
	memcpy(lo, name, MIN(sizeof(name), (size_t)(hi - lo)) - 1);
}

static _Noreturn void keeper_main(int chan, char *const *argv)
{
	struct kept k = { .chan = 3, .listen = -1 };
	struct rlimit rl;
	sigset_t none;

	setsid();
	retitle(argv);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (chan != 3) {
		dup2(chan, 3);
		close(chan);
	}
	close_range(4, ~0U, 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fcntl(k.chan, F_SETFL, O_NONBLOCK);
	k.ep = epoll_create1(EPOLL_CLOEXEC);
	if (k.ep < 0 || epoll_ctl(k.ep, EPOLL_CTL_ADD, k.chan,
				  &(struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP,
							 .data.fd = k.chan }) < 0)
		_exit(1);
	for (;;) {
		struct epoll_event ev[64];
		int n;

		if (k.chan < 0 && (k.n_polled == 0 || k.listen < 0))
			_exit(0);
		n = epoll_wait(k.ep, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == k.chan) {
				if (!on_chan(&k))
					_exit(0);
			} else if (fd == k.listen && k.chan < 0) {
				on_connect(&k);
			} else if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				kept_close(&k, fd);
			}
		}
	}
}

/* ---- The daemon's side. ---- */

/* The daemon never waits for the keeper: its channel does not block, with room for many
 * messages. */
static void channel_unblock(int fd)
{
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ 4 << 20 }, sizeof(int));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A keeper of our own: the daemon keeps one end of the pair, the keeper (a grandchild) the other. */
static int keeper_start(struct keeper *k, char *const *argv)
{
	int sv[2], pfd[2], status;
	pid_t child, keeper = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return neg_errno();
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		int ret = neg_errno();

		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	child = fork();
	if (child < 0) {
		int ret = neg_errno();

		close(sv[0]);
		close(sv[1]);
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (child == 0) {
		close(sv[0]);
		close(pfd[0]);
		keeper = fork();
		if (keeper == 0)
			keeper_main(sv[1], argv);
		(void)!write(pfd[1], &keeper, sizeof(keeper));
		_exit(0);
	}
	close(sv[1]);
	close(pfd[1]);
	if (read(pfd[0], &keeper, sizeof(keeper)) != sizeof(keeper))
		keeper = -1;
	close(pfd[0]);
	waitpid(child, &status, 0);
	if (keeper <= 0) {
		close(sv[0]);
		return -EAGAIN;
	}
	log_info("keeper of descriptors: pid %d", (int)keeper);
	k->fd = sv[0];
	k->pid = keeper;
	channel_unblock(k->fd);
	return 0;
}

static int passed_add(struct fdstore_passed *p, int fd, const char *name)
{
	int *fds = realloc(p->fds, (p->n + 1) * sizeof(*fds));
	char **names = fds ? realloc(p->names, (p->n + 1) * sizeof(*names)) : NULL;

	if (fds)
		p->fds = fds;
	if (!names)
		return -ENOMEM;
	p->names = names;
	p->fds[p->n] = fd;
	p->names[p->n] = strdup(name);
	p->n++;
	return p->names[p->n - 1] ? 0 : -ENOMEM;
}

/* The descriptors a keeper hands over on @fd, into k->passed. */
static int take_over(struct keeper *k, int fd)
{
	char *msg = malloc(MSG_MAX);
	int fds[FDS_PER_MSG], ret = -EADDRINUSE;
	size_t n_fds;

	if (!msg)
		return -ENOMEM;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *name, *next;
		size_t i = 0;

		if (poll(&p, 1, TAKE_WAIT_MS) != 1 ||
		    recv_msg(fd, msg, MSG_MAX, fds, &n_fds, true) <= 0)
			break;
		if (strcmp(msg, END_MSG) == 0) {
			ret = 0;
			break;
		}
		/* Not a keeper's answer: a live daemon's reply to a bad request. */
		if (strncmp(msg, FDS_PREFIX, strlen(FDS_PREFIX)) != 0) {
			for (; i < n_fds; i++)
				close(fds[i]);
			break;
		}
		for (name = msg + strlen(FDS_PREFIX); name && i < n_fds; name = next, i++) {
			next = strchr(name, '\n');
			if (next)
				*next++ = 0;
			if (passed_add(&k->passed, fds[i], name) < 0)
				close(fds[i]);
		}
		for (; i < n_fds; i++)
			close(fds[i]);
	}
	free(msg);
	return ret;
}

/**
 * keeper_attach() - take over from the keeper a dead daemon on @socket_path left, or start one
 * @socket_path: where the daemon listens
 * @argv: the daemon's command line, which a new keeper writes its own name over
 * @k: filled: the channel, and the descriptors passed back (none from a new keeper)
 *
 * Called before the daemon makes any thread. A keeper that does not start leaves the daemon
 * without one (logged), as without a service manager before.
 *
 * Return: 0, or -EADDRINUSE if a live daemon serves @socket_path.
 */
int keeper_attach(const char *socket_path, char *const *argv, struct keeper *k)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int ret;

	*k = (struct keeper){ .fd = -1 };
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return 0; /* listen_on() says so */
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		ret = send_msg(fd, TAKE_MSG, NULL, 0);
		if (ret == 0)
			ret = take_over(k, fd);
		if (ret < 0) {
			for (size_t i = 0; i < k->passed.n; i++) {
				close(k->passed.fds[i]);
				free(k->passed.names[i]);
			}
			free(k->passed.fds);
			free(k->passed.names);
			k->passed = (struct fdstore_passed){ 0 };
			return -EADDRINUSE;
		}
		log_info("took over %zu descriptors from the keeper of the previous daemon",
			 k->passed.n);
		k->fd = fd_take(&fd);
		channel_unblock(k->fd);
		return 0;
	}
	ret = keeper_start(k, argv);
	if (ret < 0)
		log_warning("starting a keeper of descriptors: %s; a crash loses the pages paged "
			    "out",
			    strerror(-ret));
	return 0;
}

#define PENDING_MAX 65536 /* messages kept for a keeper that reads none (stopped): then lost */

static void pending_free(struct keeper *k)
{
	for (size_t i = k->head; i < k->n; i++) {
		free(k->pending[i].msg);
		if (k->pending[i].fd >= 0)
			close(k->pending[i].fd);
	}
	free(k->pending);
	k->pending = NULL;
	k->head = k->n = k->cap = 0;
}

/* Keep @msg (and a duplicate of @fd) for keeper_flush(). Return: 0 or a negative errno. */
static int pending_push(struct keeper *k, const char *msg, int fd)
{
	struct keeper_pending e = { .msg = strdup(msg), .fd = -1 };

	if (k->n - k->head >= PENDING_MAX || !e.msg ||
	    (fd >= 0 && (e.fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)) {
		free(e.msg);
		return -ENOBUFS;
	}
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 64;
		struct keeper_pending *p = realloc(k->pending, cap * sizeof(*p));

		if (!p) {
			free(e.msg);
			if (e.fd >= 0)
				close(e.fd);
			return -ENOMEM;
		}
		k->pending = p;
		k->cap = cap;
	}
	k->pending[k->n++] = e;
	return 0;
}

/**
 * keeper_flush() - send the messages that waited for room in the keeper's channel, in order, as
 * many as it takes now
 * @k: the keeper; called at each message and once in a while (the daemon's liveness timer)
 */
void keeper_flush(struct keeper *k)
{
	while (k->head < k->n) {
		struct keeper_pending *e = &k->pending[k->head];
		int ret = send_msg(k->fd, e->msg, &e->fd, e->fd >= 0 ? 1 : 0);

		if (ret == -EAGAIN || ret == -ENOBUFS)
			return;
		if (ret < 0) {
			/* The keeper is gone: nothing will take them. */
			pending_free(k);
			return;
		}
		free(e->msg);
		if (e->fd >= 0)
			close(e->fd);
		k->head++;
	}
	pending_free(k);
}

/**
 * keeper_send() - send a message of the fd store's (fdstore.c) to the keeper, with @fd if >= 0
 *
 * Never waits: a message the channel has no room for now (a burst of thousands as a client with
 * many caches ends) waits in the daemon, with a duplicate of its descriptor, and goes after those
 * before it, once the keeper has read them (keeper_flush()). Sent in a burst and dropped, the
 * removals left the keeper holding the descriptors of caches gone, memory outside every budget.
 *
 * Return: 0 or a negative errno.
 */
int keeper_send(struct keeper *k, const char *msg, int fd)
{
	int ret;

	keeper_flush(k);
	if (k->head == k->n) {
		ret = send_msg(k->fd, msg, &fd, fd >= 0 ? 1 : 0);
		if (ret != -EAGAIN && ret != -ENOBUFS)
			return ret;
	}
	return pending_push(k, msg, fd);
}

/** keeper_stop() - the daemon stops for good: the keeper closes everything and ends */
void keeper_stop(struct keeper *k)
{
	pending_free(k); /* the keeper closes everything now */
	if (k->fd < 0)
		return;
	/* This one waits: a keeper that missed it would keep everything for a next daemon. */
	fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) & ~O_NONBLOCK);
	send_msg(k->fd, STOP_MSG, NULL, 0);
	closep(&k->fd);
}
