// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The process-wide connection to upagerd. It is opened on first use, carries one request at a
 * time under a mutex, and is re-opened after fork(): a child never speaks on its parent's socket.
 * The process's userfaultfd is made here and handed to the daemon in the first message.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/macro.h"
#include "common/uffd.h"
#include "internal.h"
#include "upager.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static struct {
	int fd; /* connection, -1 if none */
	pid_t pid; /* process that opened it */
	int uffd; /* this process's userfaultfd, kept open so faults wait if the daemon dies */
	bool user_mode_only; /* made with UFFD_USER_MODE_ONLY: faults the kernel takes fail */
	void *token; /* token page, see docs/design.md */
	bool forked; /* we are a child of a client: adopt the space the kernel made */
	unsigned
		gen; /* connections opened so far, so that the watcher knows which one it saw end */
	uint32_t seq;
	uint8_t buf[UPAGER_MSG_MAX];
} conn = { .fd = -1, .uffd = -1 };

/* What the floor above (resume.c) does at a resume and after a fork; see upager__conn_hooks(). */
static struct {
	int (*resumed)(void);
	void (*forked)(void);
} hooks;

/**
 * upager__conn_hooks() - what to do once a new daemon took this process back (@resumed: declare
 * the mappings; its result is the resume's) and in a child after fork() (@forked) (lock held)
 */
void upager__conn_hooks(int (*resumed)(void), void (*forked)(void))
{
	hooks.resumed = resumed;
	hooks.forked = forked;
}

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER; /* see upager__maps_lock() */

static void atfork_child(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	lock = fresh;
	maps_lock = fresh;
	upager__fd_forked();
	if (conn.fd >= 0) {
		close(conn.fd);
		conn.fd = -1;
		conn.forked = true;
	}
	if (conn.uffd >= 0) {
		/* The parent's; the child's registrations live on the userfaultfd the daemon got. */
		close(conn.uffd);
		conn.uffd = -1;
	}
	if (hooks.forked)
		hooks.forked();
}

static void init_once(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/**
 * upager__thread_start() - start a detached thread of the library
 * @name: its name, after UPAGER_THREAD_PREFIX (ending.c knows the library's threads by it)
 * @fn: what it runs
 * @arg: its argument
 * @stack: its stack, static memory: never pager memory, nor a mapping the thread's work might move
 * @size: the stack's size
 *
 * The thread starts with every signal blocked, and keeps them so: a handler never runs on it and
 * it is never the target of a process signal.
 *
 * Return: 0 or a negative errno.
 */
int upager__thread_start(const char *name, void *(*fn)(void *), void *arg, void *stack, size_t size)
{
	char full[16];
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	upager__ending_prepare();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstack(&attr, stack, size);
	ret = -pthread_create(&t, &attr, fn, arg);
	snprintf(full, sizeof(full), UPAGER_THREAD_PREFIX "%s", name);
	if (ret == 0)
		(void)pthread_setname_np(t, full);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/*
 * The lock of the process's mappings as the control thread sees them: a DROP reads the pages'
 * state from pagemap, then moves or drops them; a change of the mappings in between (munmap(2), a
 * new mapping at the same place, MADV_DONTNEED and a write) made it take another mapping's pages,
 * not write-protected and in no slot. The library holds it across its own kernel calls that change
 * what an address maps, the control thread across a DROP.
 */
/** upager__maps_lock() - take the lock of the mappings (see maps_lock) */
void upager__maps_lock(void)
{
	pthread_mutex_lock(&maps_lock);
}

/** upager__maps_unlock() - release it */
void upager__maps_unlock(void)
{
	pthread_mutex_unlock(&maps_lock);
}

/** upager__lock() - take the connection lock */
void upager__lock(void)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
}

/** upager__unlock() - release the connection lock */
void upager__unlock(void)
{
	pthread_mutex_unlock(&lock);
}

/**
 * upager__user_mode_only() - whether this process's userfaultfd serves user-mode faults only
 * (lock held): then a fault the kernel takes on its behalf (a system call's, MADV_POPULATE_READ's)
 * fails with EFAULT instead of reaching the daemon
 */
bool upager__user_mode_only(void)
{
	return conn.user_mode_only;
}

/** upager__uffd() - this process's userfaultfd, or -1 in a forked child not yet connected (lock held) */
int upager__uffd(void)
{
	return conn.uffd;
}

/** upager__connected() - whether this process has a live connection (lock held) */
bool upager__connected(void)
{
	return conn.fd >= 0 && conn.pid == getpid();
}

/*
 * A userfaultfd that serves kernel-mode faults too if we may have one (root, CAP_SYS_PTRACE, or
 * access to /dev/userfaultfd); else one for user-mode faults only, which needs no privilege.
 */
static int uffd_create(bool *user_mode_only)
{
	int fd;

	*user_mode_only = false;
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return upager__fd_park(fd);
	fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		int u = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);

		close(fd);
		if (u >= 0)
			return upager__fd_park(u);
	}
	*user_mode_only = true;
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd < 0 ? neg_errno() : upager__fd_park(fd);
}

static int socket_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = getenv("UPAGER_SOCKET");
	_cleanup_close_ int fd = -1;

	if (!path || !*path)
		path = UPAGER_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = upager__fd_park(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	if (fd < 0)
		return neg_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return neg_errno();
	return fd_take(&fd);
}

/**
 * upager__daemon_timeout() - seconds of UPAGER_DAEMON_TIMEOUT, 0 for none: wait for ever
 */
double upager__daemon_timeout(void)
{
	const char *s = getenv("UPAGER_DAEMON_TIMEOUT");
	char *end;
	double t;

	if (!s || !*s)
		return 0;
	t = strtod(s, &end);
	return *end || t < 0 ? 0 : t;
}

/* HELLO; @got: where the daemon's reply may put a descriptor (a forked child's userfaultfd). A
 * client that bounds its wait for a daemon says so: no keeper is to hold its connection. */
static int hello(uint32_t flags, int uffd, int *got)
{
	struct upager_msg req = { .op = UPAGER_OP_HELLO }, rep;

	req.u.hello.version_min = UPAGER_PROTO_VERSION_MIN;
	req.u.hello.version_max = UPAGER_PROTO_VERSION;
	req.u.hello.flags = flags | (upager__daemon_timeout() > 0 ? UPAGER_HELLO_SOFT : 0);
	req.u.hello.token_addr = (uintptr_t)conn.token;
	return upager__call(&req, &uffd, uffd >= 0 ? 1 : 0, &rep, got, got ? 1 : 0);
}

/*
 * A token page of our own (docs/design.md, "Trust"): private anonymous, never touched by us; the
 * daemon puts its mark of our memory there. A child gets it empty (MADV_WIPEONFORK), for the
 * daemon to mark its memory. A page that a daemon marked stays: a new daemon gets a new one.
 */
static int token_new(void)
{
	/* Made readable after: a mapping made while mlockall(MCL_FUTURE) holds is populated. */
	void *t = mmap(NULL, UPAGER_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (t == MAP_FAILED)
		return neg_errno();
	if (mprotect(t, UPAGER_PAGE_SIZE, PROT_READ) < 0) {
		int ret = neg_errno();

		munmap(t, UPAGER_PAGE_SIZE);
		return ret;
	}
	(void)madvise(t, UPAGER_PAGE_SIZE, MADV_WIPEONFORK);
	conn.token = t;
	return 0;
}

/*
 * A forked child: show the daemon our pid through a fault on the token page, then adopt. The
 * daemon hands over the userfaultfd the kernel made for the child at the fork: the child's own
 * from now on, as a process that connected itself has (its control thread moves pages with it,
 * and a new daemon takes it back through it).
 */
static int adopt_forked_space(void)
{
	(void)*(volatile char *)conn.token;
	return hello(UPAGER_HELLO_FORKED, -1, &conn.uffd);
}

/*
 * The daemon we had died, and one listens again: hand it our userfaultfd, which still holds our
 * registrations, and every mapping it is to serve (resume.c), with a new token page.
 */
static int resume_space(void)
{
	int ret = token_new();

	if (ret == 0)
		ret = hello(UPAGER_HELLO_RESUME, conn.uffd, NULL);
	return ret < 0 || !hooks.resumed ? ret : hooks.resumed();
}

static int open_space(void)
{
	int ret;

	if (!conn.token) {
		ret = token_new();
		if (ret < 0)
			return ret;
	}
	conn.uffd = uffd_create(&conn.user_mode_only);
	if (conn.uffd < 0) {
		ret = conn.uffd;
		conn.uffd = -1;
		return ret;
	}
	ret = hello(UPAGER_HELLO_UFFD, conn.uffd, NULL);
	if (ret < 0) {
		close(conn.uffd);
		conn.uffd = -1;
	}
	return ret;
}

/**
 * upager__connect() - make sure this process is connected and has its space (lock held)
 *
 * Return: 0, or a negative errno: -ENOENT if the socket does not exist, -ECONNREFUSED if no daemon
 * listens on it, or the daemon's refusal.
 */
int upager__connect(void)
{
	int ret;

	if (upager__connected())
		return 0;
	if (conn.fd >= 0) {
		/* Forked without our atfork handler (a raw clone): the socket is the parent's. */
		close(conn.fd);
		conn.fd = -1;
		conn.forked = true;
		conn.uffd = -1;
	}
	ret = socket_connect();
	if (ret < 0)
		return ret;
	conn.fd = ret;
	conn.pid = getpid();

	conn.gen++;

	ret = -ESRCH;
	if (conn.forked && conn.token)
		ret = adopt_forked_space();
	else if (conn.uffd >= 0)
		ret = resume_space();
	if (ret == -ESRCH)
		ret = open_space();
	if (ret < 0) {
		if (conn.fd >= 0)
			close(conn.fd);
		conn.fd = -1;
		return ret;
	}
	conn.forked = false;
	return 0;
}

/**
 * upager__watch_fd() - a descriptor of this process's connection to watch for its end (lock held)
 * @gen: set to the connection's number, for upager__disconnect()
 *
 * Return: a new descriptor of the connection's socket, the caller's to close; or -1 if there is
 * no connection.
 */
int upager__watch_fd(unsigned *gen)
{
	*gen = conn.gen;
	if (!upager__connected())
		return -1;
	return upager__fd_dup(conn.fd);
}

/**
 * upager__disconnect() - close connection number @gen, which the daemon closed (lock held)
 * @gen: as upager__watch_fd() gave it; a newer connection is left alone
 */
void upager__disconnect(unsigned gen)
{
	if (conn.gen == gen && conn.fd >= 0) {
		close(conn.fd);
		conn.fd = -1;
	}
}

/**
 * upager__reconnect_if_mapped() - be connected if this process can have pager mappings (lock held)
 *
 * A process that never connected, and no ancestor of which did, has none, and needs no daemon
 * for msync or munmap. A forked child inherited its parent's and connects now.
 *
 * Return: 0 when connected, 1 when there is nothing to ask the daemon, or a negative errno.
 */
int upager__reconnect_if_mapped(void)
{
	if (upager__connected())
		return 0;
	if (!conn.token)
		return 1;
	return upager__connect();
}

/**
 * upager__call() - one request and its reply (lock held, connected)
 * @req: the request; its seq is set here
 * @fds: descriptors to send with it
 * @n_fds: how many
 * @rep: the decoded reply
 * @rep_fds: set to the descriptors that came with the reply, -1 for those that did not come;
 *           the caller owns them; more than @n_rep_fds are closed
 * @n_rep_fds: entries in @rep_fds
 *
 * Return: the reply's status (0 or a negative errno), or a negative errno if the exchange failed;
 * a broken connection is closed and re-opened by the next call.
 */
int upager__call(struct upager_msg *req, const int *fds, size_t n_fds, struct upager_msg *rep,
		 int *rep_fds, size_t n_rep_fds)
{
	int rfds[FDMSG_MAX_FDS];
	size_t n_rfds = 0;
	ssize_t n;
	int len, ret;

	for (size_t i = 0; i < n_rep_fds; i++)
		rep_fds[i] = -1;
	req->seq = ++conn.seq;
	len = upager_msg_encode(conn.buf, sizeof(conn.buf), req);
	if (len < 0)
		return len;
	ret = fdmsg_send(conn.fd, conn.buf, (size_t)len, fds, n_fds);
	if (ret < 0)
		goto broken;
	for (;;) {
		n = fdmsg_recv(conn.fd, conn.buf, sizeof(conn.buf), rfds, &n_rfds);
		if (n <= 0) {
			ret = n == 0 ? -ECONNRESET : (int)n;
			goto broken;
		}
		ret = upager_msg_decode(conn.buf, (size_t)n, rep);
		/* A daemon that took over from a crashed one may answer an earlier request again. */
		if (ret == 0 && (rep->op & UPAGER_OP_REPLY) && (int32_t)(rep->seq - req->seq) < 0) {
			fdmsg_close_fds(rfds, n_rfds);
			continue;
		}
		break;
	}
	if (ret == 0 && (rep->op != (req->op | UPAGER_OP_REPLY) || rep->seq != req->seq))
		ret = -EBADMSG;
	if (ret < 0) {
		fdmsg_close_fds(rfds, n_rfds);
		goto broken;
	}
	for (size_t i = 0; i < n_rep_fds && i < n_rfds; i++)
		rep_fds[i] = upager__fd_park(fd_take(&rfds[i]));
	fdmsg_close_fds(rfds, n_rfds);
	return rep->status;

broken:
	/* Shut down, not only closed: the watcher's descriptor of the socket then sees it end. */
	shutdown(conn.fd, SHUT_RDWR);
	close(conn.fd);
	conn.fd = -1;
	return ret;
}
