// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What a client can do with the descriptors the daemon hands it, tried as an attacker would: a
 * process of another user (65534) against a root upagerd. It may use them as its own file
 * descriptor allows and not beyond: never write a cache it may only read, never shrink, grow or
 * seal a memfd under the daemon's mappings, never reopen one for more access through /proc.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "harness.h"
#include "tests/lingering.h"
#include "upager.h"

TestSuite(trust, .init = harness_start, .fini = harness_stop, .timeout = 60);

/*
 * libupager closes every memfd it is handed once it has mapped it; an attacker keeps them. This
 * recvmsg(2), which libupager calls in place of libc's, keeps a duplicate of every descriptor
 * that comes with a message once an attacker child sets keep_received.
 */
static bool keep_received;

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, struct msghdr *, int);
	ssize_t n;

	if (!real)
		real = (ssize_t(*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
	n = real(fd, msg, flags);
	if (n < 0 || !keep_received)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < k; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			(void)!dup(got);
		}
	}
	return n;
}

/* Whether open(2) of /proc/self/fd/@fd with @flags fails with EACCES. */
static bool reopen_refused(int fd, int flags)
{
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = open(path, flags);
	if (r >= 0)
		close(r);
	return r < 0 && errno == EACCES;
}

/* Whether no seal can be added to @fd and its size can be neither shrunk nor grown. */
static bool size_and_seals_fixed(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return false;
	return fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 && errno == EPERM &&
	       ftruncate(fd, 0) < 0 && ftruncate(fd, st.st_size + PAGE) < 0;
}

/*
 * In a child: become user 65534, open @path with @flags and map @len bytes of it shared with
 * @prot through libupager; exits with 97 to 99 if any of that fails.
 */
static char *map_as_nobody(const char *path, int flags, size_t len, int prot)
{
	char *p;
	int fd;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	keep_received = true;
	fd = open(path, flags);
	if (fd < 0)
		_exit(98);
	p = upager_mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(97);
	return p;
}

/* Run @fn(@path) as a child; it must exit 0. */
static void child_passes(void (*fn)(void *), const char *path)
{
	int status;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	status = run_child(fn, (void *)path);
	cr_assert(WIFEXITED(status), "status %x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
}

static void reader_child(void *arg)
{
	char *p = map_as_nobody(arg, O_RDONLY, 4 * PAGE, PROT_READ);
	int cache;

	if (*(volatile uint64_t *)p != pattern_at(0))
		_exit(3);
	cache = harness_memfd_named("upager:file");
	if (cache < 0)
		_exit(4);
	/* Not through /proc, for writing or at all, */
	if (!reopen_refused(cache, O_RDWR) || !reopen_refused(cache, O_RDONLY))
		_exit(5);
	/* nor with the descriptor it was handed. */
	errno = 0;
	if (pwrite(cache, "evil", 4, 0) >= 0 || errno != EBADF)
		_exit(6);
	if (ftruncate(cache, 0) >= 0 ||
	    fallocate(cache, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE) >= 0)
		_exit(7);
	if (fcntl(cache, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) >= 0)
		_exit(8);
	if (mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, cache, 0) != MAP_FAILED ||
	    errno != EACCES)
		_exit(9);
	/* Its own mapping may be made writable: a private copy, which nobody else sees. */
	if (mprotect(p, PAGE, PROT_READ | PROT_WRITE) < 0)
		_exit(10);
	memcpy(p, "evil", 4);
	_exit(0);
}

Test(trust, a_reader_cannot_write_the_cache_of_a_file_it_may_only_read)
{
	char path[512];
	int fd = make_pattern_file("rootfile", 4 * PAGE, path);
	uint64_t *mine, word;

	cr_assert_eq(fchmod(fd, 0644), 0);
	/* Root's own shared writable mapping, its cache filled first. */
	mine = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(mine, MAP_FAILED);
	cr_assert_eq(mine[0], pattern_at(0));

	child_passes(reader_child, path);

	cr_assert_eq(mine[0], pattern_at(0), "the reader changed root's page");
	mine[1] = 7; /* root dirties the page: what is written back is root's */
	cr_assert_eq(upager_msync(mine, PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, &word, 8, 0), 8);
	cr_assert_eq(word, pattern_at(0));
	cr_assert_eq(upager_munmap(mine, 4 * PAGE), 0);
}

static void writer_child(void *arg)
{
	/* Two pages mapped of a file of one. */
	char *p = map_as_nobody(arg, O_RDWR, 2 * PAGE, PROT_READ | PROT_WRITE);
	int cache;
	char c;

	p[0] = 'w';
	cache = harness_memfd_named("upager:file");
	if (cache < 0)
		_exit(3);
	if (!reopen_refused(cache, O_RDWR))
		_exit(4);
	/* It may write the file, and so the cache, but not shrink it or seal it. */
	if (ftruncate(cache, 0) >= 0 || errno != EPERM)
		_exit(5);
	if (fcntl(cache, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) >= 0 || errno != EPERM)
		_exit(6);
	/* Growing the cache does not grow the file: the page past its end stays a SIGBUS. */
	if (ftruncate(cache, 4 * PAGE) < 0)
		_exit(7);
	if (!harness_read_sigbus(p + PAGE, &c))
		_exit(8);
	if (p[0] != 'w')
		_exit(9);
	if (upager_msync(p, PAGE, MS_SYNC) < 0)
		_exit(10);
	_exit(0);
}

Test(trust, a_writer_cannot_shrink_or_seal_the_cache)
{
	char path[512];
	int fd = make_pattern_file("theirs", PAGE, path);
	char c;
	char *mine;

	cr_assert_eq(fchmod(fd, 0666), 0);
	child_passes(writer_child, path);
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon died");
	cr_assert_eq(pread(fd, &c, 1, 0), 1);
	cr_assert_eq(c, 'w');
	/* The daemon still serves others. */
	mine = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(mine, MAP_FAILED);
	cr_assert_eq(mine[0], 'w');
}

static void remap_child(void *arg)
{
	char *p = map_as_nobody(arg, O_RDWR, 8 * PAGE, PROT_READ | PROT_WRITE);
	int view, table, states;

	if (upager_remap_file_pages(p, PAGE, 0, 5, 0) < 0)
		_exit(3);
	if (*(volatile uint64_t *)p != pattern_at(5 * PAGE))
		_exit(4);
	view = harness_memfd_named("upager:view");
	table = harness_memfd_named("upager:view-table");
	states = harness_memfd_named("upager:pages");
	if (view < 0 || table < 0 || states < 0)
		_exit(5);
	if (!reopen_refused(states, O_RDWR) || !reopen_refused(view, O_RDWR) ||
	    !reopen_refused(table, O_RDWR))
		_exit(6);
	if (!size_and_seals_fixed(view) || !size_and_seals_fixed(table))
		_exit(7);
	errno = 0;
	if (ftruncate(states, 0) >= 0 || fcntl(states, F_ADD_SEALS, F_SEAL_GROW) >= 0)
		_exit(8);
	/* Every page still reads, through the daemon. */
	for (int i = 1; i < 8; i++)
		if (*(volatile uint64_t *)(p + i * PAGE) != pattern_at((uint64_t)i * PAGE))
			_exit(9);
	if (upager_remap_file_pages(p + PAGE, PAGE, 0, 6, 0) < 0 ||
	    *(volatile uint64_t *)(p + PAGE) != pattern_at(6 * PAGE))
		_exit(10);
	_exit(0);
}

/* The daemon still serves a mapping of the pattern file @fd (2 pages), to anyone. */
static void another_file_is_served(int fd)
{
	uint64_t *m = upager_mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(m[PAGE / 8], pattern_at(PAGE));
}

Test(trust, the_descriptors_of_a_nonlinear_mapping_cannot_kill_the_daemon)
{
	char path[512], other[512];
	int fd = make_pattern_file("remapped", 8 * PAGE, path);
	int ofd = make_pattern_file("other", 2 * PAGE, other);

	cr_assert_eq(fchmod(fd, 0666), 0);
	child_passes(remap_child, path);
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon died");
	another_file_is_served(ofd);
}

/* A reader of a root file remaps nothing (EINVAL, as Linux: its mapping is not shared) and is
 * handed no view memfd: its pages stay those of the cache it cannot write. */
static void private_view_child(void *arg)
{
	char *p = map_as_nobody(arg, O_RDONLY, 4 * PAGE, PROT_READ);

	errno = 0;
	if (upager_remap_file_pages(p, PAGE, 0, 3, 0) == 0 || errno != EINVAL)
		_exit(3);
	if (*(volatile uint64_t *)p != pattern_at(0))
		_exit(4);
	if (harness_memfd_named("upager:view") >= 0)
		_exit(5);
	_exit(0);
}

Test(trust, a_reader_gets_no_view_to_write)
{
	char path[512];
	int fd = make_pattern_file("rootfile", 4 * PAGE, path);

	cr_assert_eq(fchmod(fd, 0644), 0);
	child_passes(private_view_child, path);
}

/* A client holds a write lease on its file while it maps it: the daemon must not wait for the
 * lease to be broken (lease-break-time, 45 s by default), neither for it nor for anyone else. */
static void lease_child(void *arg)
{
	const char *path = arg;
	uint64_t t0;
	char *p;
	int fd;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	signal(SIGIO, SIG_IGN);
	fd = open(path, O_RDWR);
	if (fd < 0)
		_exit(1);
	if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0)
		_exit(2);
	t0 = harness_now_ms();
	p = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(3);
	if (harness_now_ms() - t0 > 5000)
		_exit(4);
	if (*(volatile uint64_t *)(p + PAGE) != pattern_at(PAGE))
		_exit(5);
	p[0] = 'l';
	if (upager_msync(p, PAGE, MS_SYNC) < 0)
		_exit(6);
	/* The lease was not broken: the daemon used this description. */
	if (fcntl(fd, F_GETLEASE) != F_WRLCK)
		_exit(7);
	_exit(0);
}

Test(trust, a_lease_on_a_file_does_not_stop_the_daemon)
{
	char path[512], other[512];
	int fd = make_pattern_file("leased", 2 * PAGE, path);
	int ofd = make_pattern_file("other", 2 * PAGE, other);
	char c;

	cr_assert_eq(fchown(fd, 65534, 65534), 0);
	close(fd); /* a write lease needs the file open by its holder alone */
	child_passes(lease_child, path);
	fd = open(path, O_RDONLY);
	cr_assert_eq(pread(fd, &c, 1, 0), 1);
	cr_assert_eq(c, 'l');
	another_file_is_served(ofd);
}

/*
 * The descriptor of its own pagemap that a client gets with CONTROL's reply shows its page flags
 * and no page frame numbers (the daemon opened it without CAP_SYS_ADMIN), and cannot be written.
 */
Test(trust, the_pagemap_a_client_is_handed_shows_no_frame_numbers)
{
	char want[64], link[PATH_MAX], path[300];
	uint8_t *p =
		upager_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct dirent *e;
	uint64_t entry = 0;
	int found = -1;
	DIR *d;

	cr_assert_neq(p, MAP_FAILED);
	p[0] = 1;
	snprintf(want, sizeof(want), "/proc/%d/pagemap", (int)getpid());
	d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0 && (link[n] = 0, !strcmp(link, want)))
			found = atoi(e->d_name);
	}
	closedir(d);
	cr_assert_geq(found, 0, "no descriptor of %s", want);
	cr_assert_eq(pread(found, &entry, 8, (off_t)((uintptr_t)p / 4096 * 8)), 8);
	cr_assert(entry >> 63, "the page is not present: %#llx", (unsigned long long)entry);
	cr_assert_eq(entry & ((1ULL << 55) - 1), 0, "a frame number shows: %#llx",
		     (unsigned long long)entry);
	cr_assert_lt(write(found, &entry, 8), 0);
	cr_assert_eq(upager_munmap(p, 4096), 0);
}

/* Move a mapping of the daemon's over the token page, then ask it for more. */
static void cover_token_child(void *arg)
{
	int fd = open(arg, O_RDONLY), other;
	uintptr_t token;
	void *p, *q;

	if (fd < 0 || upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		_exit(10);
	token = harness_token_page();
	if (!token)
		_exit(11);
	other = make_pattern_file("cover2", 2 * PAGE, NULL);
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
	if (p == MAP_FAILED)
		_exit(12);
	q = mremap(p, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)token);
	if (q == MAP_FAILED)
		_exit(13);
	/* The daemon looks at the mark again (its next call): whatever it finds, it answers. */
	(void)upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, PAGE);
	_exit(0);
}

/*
 * A client that maps a mapping of the daemon's over its token page hangs no one: the daemon read
 * the page to see its mark with process_vm_readv(), which waited for the fault that only the
 * daemon's own loop serves; every client hung with it.
 */
Test(trust, a_mapping_moved_over_the_token_page_hangs_neither_daemon_nor_others)
{
	char path[512], other[512];
	int fd = make_pattern_file("cover", 2 * PAGE, path);
	int ofd = make_pattern_file("other", 2 * PAGE, other);
	pid_t child = harness_fork();
	int status;

	cr_assert(child >= 0);
	if (child == 0) {
		alarm(30);
		cover_token_child(path);
	}
	cr_assert(harness_ended_within(child, 20000, &status), "the client hung");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon died");
	another_file_is_served(ofd);
	close(fd);
}

/*
 * Send datagrams of 16 zero bytes on @sock in one call: @n_msgs of them (1 or 2), the last with
 * @n descriptors (at most 8). Return: whether all were sent.
 */
static bool send_junk(int sock, int n_msgs, const int *fds, size_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	static char junk[16];
	struct iovec iov = { .iov_base = junk, .iov_len = sizeof(junk) };
	struct mmsghdr msgs[2] = { { .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } },
				   { .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } } };
	struct msghdr *msg = &msgs[n_msgs - 1].msg_hdr;

	if (n > 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg->msg_control = control.buf;
		msg->msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	return sendmmsg(sock, msgs, (unsigned)n_msgs, 0) == n_msgs;
}

/*
 * Hand the daemon, on a new connection, the last reference of a socket whose close waits 45 s: by
 * @way 0, with a bad message; 1, as the eighth descriptor of one (more than a request carries,
 * which the kernel closes itself if the receiver has no room); 2, queued behind a bad message, so
 * that the connection's own close would close it. The socket's peer stays open, in @peer.
 * Return: whether it was sent (by way 2, the daemon may end the connection at the first message
 * before the second is queued).
 */
static bool hand_lingering_socket(int way, int *peer)
{
	int conn = harness_connect_raw(), bomb = lingering_socket(45, peer), fds[8];
	bool sent;

	if (conn < 0 || bomb < 0)
		_exit(94);
	if (way == 0) {
		sent = send_junk(conn, 1, &bomb, 1);
	} else if (way == 1) {
		for (int k = 0; k < 7; k++)
			fds[k] = open("/dev/null", O_RDONLY);
		fds[7] = bomb;
		sent = send_junk(conn, 1, fds, 8);
	} else {
		sent = send_junk(conn, 2, &bomb, 1);
	}
	if (!sent) /* not sent: this process's own close would wait */
		setsockopt(bomb, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 },
			   sizeof(struct linger));
	close(bomb);
	close(conn);
	return sent;
}

/* As user 65534: each way of hand_lingering_socket(), then tell the parent on @arg (a pipe) and wait. */
static void lingering_child(void *arg)
{
	int ready = *(int *)arg, peers[3];

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	for (int way = 0; way < 3; way++)
		for (int tries = 0; !hand_lingering_socket(way, &peers[way]); tries++) {
			close(peers[way]);
			if (tries == 100)
				_exit(93);
		}
	if (write(ready, "r", 1) != 1)
		_exit(95);
	sleep(50);
	_exit(0);
}

static void stats_child(void *arg)
{
	struct upager_msg st;

	(void)arg;
	_exit(harness_stats(&st) == 0 ? 0 : 1);
}

/*
 * A client chooses what the last close of a descriptor it hands the daemon does: a TCP socket with
 * unsent data and SO_LINGER waits for its peer, up to the time the client set. The daemon closes
 * what clients hand it in threads of its own (daemon/closer.c), and a socket with no lingering:
 * while the attacker's peers stay open, the daemon keeps answering everyone (it froze for the
 * whole linger before, whatever the way in).
 */
Test(trust, a_descriptor_whose_close_waits_does_not_stop_the_daemon)
{
	int pipefd[2], status;
	pid_t attacker, checker;
	char c;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(pipefd), 0);
	attacker = harness_fork();
	if (attacker == 0)
		lingering_child(&pipefd[1]);
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1) {
		waitpid(attacker, &status, 0);
		cr_assert_fail("the attacker did not send its messages: status %x", status);
	}
	checker = harness_fork();
	if (checker == 0)
		stats_child(NULL);
	cr_assert(harness_ended_within(checker, 8000, &status),
		  "the daemon answered nobody while the attacker's sockets lingered");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
	kill(attacker, SIGKILL);
	waitpid(attacker, &status, 0);
	close(pipefd[0]);
}

/* A second upagerd of the test's own on @sock (no keeper), once it accepts; its pid. */
static pid_t second_daemon(const char *sock)
{
	char log[400];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/second.log", harness_tmpdir());
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		unsetenv("NOTIFY_SOCKET");
		execl(getenv("UPAGERD"), "upagerd", "--socket", sock, "--no-keeper", NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
		usleep(10 * 1000);
	usleep(100 * 1000);
	return pid;
}

/* In a child, through the daemon on @sock: map the file @path and check its pages. */
static void read_through(const char *sock, const char *path, int hold)
{
	const uint64_t *p;
	char c;
	int fd = open(path, O_RDONLY);

	alarm(30);
	setenv("UPAGER_SOCKET", sock, 1);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (fd < 0 || p == MAP_FAILED)
		_exit(2);
	for (size_t off = 0; off < 4 * PAGE; off += 8)
		if (p[off / 8] != pattern_at(off))
			_exit(3);
	if (hold >= 0 && (write(hold, "r", 1) != 1 || read(hold, &c, 1) < 0))
		_exit(4);
	_exit(0);
}

/*
 * A file mapped through one daemon, then through another: each marks it for fanotify's
 * pre-content events, and the second's reads of the file, opened while the first's mark was on
 * it, wait for answers from both. The second's loop waited for its own answer for ever, and every
 * client of it with it; now a thread of its own answers the daemon's own reads.
 */
Test(trust, a_file_mapped_through_two_daemons_hangs_neither)
{
	char path[400], sock[400];
	int sv[2], status;
	pid_t second, first, other;
	char c;

	make_pattern_file("two", 4 * PAGE, path);
	snprintf(sock, sizeof(sock), "%s/second.sock", harness_tmpdir());
	second = second_daemon(sock);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	first = harness_fork();
	if (first == 0)
		read_through(harness_socket(), path, sv[1]);
	cr_assert_eq(read(sv[0], &c, 1), 1, "the first daemon did not serve its client");
	other = harness_fork();
	if (other == 0)
		read_through(sock, path, -1);
	status = -1;
	bool ended = harness_ended_within(other, 10 * 1000, &status);
	if (!ended)
		kill(other, SIGKILL);
	kill(second, SIGKILL);
	waitpid(second, NULL, 0);
	cr_assert_eq(write(sv[0], "g", 1), 1);
	cr_assert(harness_ended_within(first, 10 * 1000, &status));
	cr_assert(ended, "the second daemon's client waited for ever");
	cr_assert_eq(status, 0);
}

#define HOG_BYTES (16ULL << 30)
#define LISTERS 16

/*
 * As user 65534: a private anonymous mapping of 16 GiB with a page written every 2 MiB (a page
 * table each), then LISTERS processes that ask LIST of it over and over, each on a connection of
 * its own; tells the parent on @arg (a pipe) once they run.
 */
static void lister_child(void *arg)
{
	int ready = *(int *)arg;
	struct region_info info[4];
	char *p;

	/* A group of its own, killed whole: a lister left running when the daemon stops would
	 * report its failed LIST to the test's runner. */
	if (setpgid(0, 0) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	p = upager_mmap(NULL, HOG_BYTES, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		_exit(91);
	for (uint64_t off = 0; off < HOG_BYTES; off += 2ULL << 20)
		p[off] = 1;
	for (int k = 0; k < LISTERS; k++) {
		pid_t c = fork();

		if (c < 0)
			_exit(92);
		if (c == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				if (harness_list(0, info, 4) < 1)
					_exit(93);
		}
	}
	if (write(ready, "r", 1) != 1)
		_exit(95);
	/* Until killed: a lister that ends (its LIST failed) ends this too. */
	_exit(wait(NULL) > 0 ? 96 : 97);
}

/*
 * A user asks LIST of a mapping whose page tables span 16 GiB over 16 connections at once, without
 * a pause: the resident pages of each LIST are counted from the client's pagemap, which takes time
 * in proportion to the mapping's length. Another client's faults are served in well under a
 * second all the while (they waited for the counts, read on the daemon's loop, seconds each).
 */
Test(trust, a_user_listing_long_mappings_over_many_connections_holds_up_no_one)
{
	int fd = make_pattern_file("served", 4 * PAGE, NULL), pipefd[2], status;
	uint64_t worst = 0;
	pid_t lister;
	char c;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(pipefd), 0);
	lister = harness_fork();
	if (lister == 0)
		lister_child(&pipefd[1]);
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1) {
		waitpid(lister, &status, 0);
		cr_assert_fail("the lister did not start: status %x", status);
	}
	for (int round = 0; round < 10; round++) {
		uint64_t *m;

		usleep(100 * 1000);
		worst = MAX(worst, harness_pattern_served_ms(fd, &m));
		cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	}
	cr_assert_eq(waitpid(lister, &status, WNOHANG), 0, "the listers ended: status %x", status);
	kill(-lister, SIGKILL);
	waitpid(lister, &status, 0);
	close(pipefd[0]);
	close(fd);
	cr_assert_lt(worst, 1000, "another client's mapping and faults took %llu ms",
		     (unsigned long long)worst);
}
