// SPDX-License-Identifier: LGPL-2.1-or-later
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/macro.h"
#include "harness.h"
#include "tests/procfs.h"
#include "upager.h"

static char tmpdir[256];
static char sock_path[300];
static pid_t daemon_pid;

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The last daemon's extra arguments, for harness_daemon_restart(). */
static const char *const *daemon_args;

static int call(int fd, struct upager_msg *req, struct upager_msg *rep, uint8_t *buf);

/* Whether a daemon answers on the test's socket: the keeper of a dead one (daemon/keeper.c) keeps
 * it listening, and closes each connection. */
static bool daemon_answers(void)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct upager_msg req = { .op = UPAGER_OP_HELLO }, rep;
	int fd = harness_connect_raw();
	bool ok;

	if (fd < 0)
		return false;
	req.u.hello.version_min = 1;
	req.u.hello.version_max = 1;
	req.u.hello.flags = UPAGER_HELLO_CTL;
	ok = call(fd, &req, &rep, buf) == 0;
	close(fd);
	return ok;
}

/* Start upagerd on the test's socket, appending to its log, and wait until it answers. */
static void daemon_start(void)
{
	const char *argv[20] = { "upagerd", "--verbose", "--socket", sock_path };
	static char swap[320];
	size_t argc = 4;
	const char *bin = getenv("UPAGERD");
	pid_t parent = getpid();
	int logfd;
	char log[320];

	cr_assert(bin, "UPAGERD is not set; run the tests through meson test");
	snprintf(log, sizeof(log), "%s/upagerd.log", tmpdir);
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	/* The suite run again with a small budget (meson's "budget" suite): pages leave memory in
	 * every test, shared anonymous ones to a swap store of the test's own. */
	if (getenv("UPAGER_TEST_MEMORY_MAX")) {
		snprintf(swap, sizeof(swap), "%s/swap", tmpdir);
		argv[argc++] = "--memory-max";
		argv[argc++] = getenv("UPAGER_TEST_MEMORY_MAX");
		argv[argc++] = "--swap";
		argv[argc++] = swap;
	}
	for (size_t i = 0; daemon_args && daemon_args[i] && argc < ARRAY_SIZE(argv) - 1; i++)
		argv[argc++] = daemon_args[i];
	/* A daemon started by hand, even when the tests run under a service manager. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	/* vfork, not fork: a fork of a client whose daemon died waits for a daemon to read its
	 * fork event, which would be this one; the child makes system calls only. */
	daemon_pid = vfork();
	cr_assert(daemon_pid >= 0);
	if (daemon_pid == 0) {
		/* Never outlive the test, even one that dies before its .fini runs (killed by its
		 * timeout): SIGKILL, since a daemon may not stop on SIGTERM while a write-back
		 * stalls. A test that died before the prctl sends nothing: check it lives. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		dup2(logfd, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(logfd);
	setenv("UPAGER_SOCKET", sock_path, 1);
	for (int i = 0; i < 500; i++) {
		if (daemon_answers())
			return;
		sleep_ms(10);
	}
	cr_assert_fail("upagerd did not start listening on %s", sock_path);
}

void harness_start(void)
{
	harness_start_args(NULL);
}

/**
 * harness_start_args() - harness_start() with more arguments for upagerd
 * @args: NULL-terminated, at most 11; NULL for none
 */
void harness_start_args(const char *const *args)
{
	strcpy(tmpdir, "/tmp/upager-test-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	snprintf(sock_path, sizeof(sock_path), "%s/upager.sock", tmpdir);
	daemon_args = args;
	daemon_start();
}

/**
 * harness_daemon_kill() - kill the test's upagerd with SIGKILL, as a crash would, and reap it; its
 * socket stays where it was
 */
void harness_daemon_kill(void)
{
	int status;

	cr_assert_gt(daemon_pid, 0);
	kill(daemon_pid, SIGKILL);
	cr_assert_eq(waitpid(daemon_pid, &status, 0), daemon_pid);
	daemon_pid = 0;
}

/** harness_daemon_restart() - start a new upagerd on the socket of the one killed */
void harness_daemon_restart(void)
{
	daemon_start();
}

/* The daemon's log onto our stderr, where meson's test log keeps it (a sanitizer's report too). */
static void print_daemon_log(void)
{
	char path[320], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/upagerd.log", tmpdir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	fprintf(stderr, "---- %s\n", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		(void)!write(2, buf, (size_t)n);
	close(fd);
}

/**
 * harness_stop() - stop the test's upagerd with SIGTERM and remove its directory
 *
 * Fails the test, with the daemon's log on stderr, unless the daemon exited with status 0: a
 * sanitizer's report (ASAN_OPTIONS and UBSAN_OPTIONS come from meson) or a crash at shutdown.
 */
void harness_stop(void)
{
	char cmd[400];
	int status = 0;

	if (daemon_pid > 0) {
		kill(daemon_pid, SIGCONT);
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, &status, 0);
		daemon_pid = 0;
		/* A clean exit on SIGTERM: a sanitizer's report or a crash at shutdown fails the test. */
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			print_daemon_log();
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (tmpdir[0])
		(void)!system(cmd);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* A failed assertion in .fini does not fail a Criterion test; a crash fails the run. */
		fprintf(stderr, "upagerd did not exit cleanly on SIGTERM: wait status %#x\n",
			status);
		abort();
	}
}

pid_t harness_daemon_pid(void)
{
	return daemon_pid;
}

const char *harness_socket(void)
{
	return sock_path;
}

const char *harness_tmpdir(void)
{
	return tmpdir;
}

/**
 * harness_start_failing_read() - harness_start() with a daemon that reads at most 4 pages at a
 * time and whose second read fails to start (UPAGER_FAIL_READ, daemon/ring.c; in builds with
 * fault injection only)
 */
void harness_start_failing_read(void)
{
	static const char *const args[] = { "--read-max", "16", NULL };

	setenv("UPAGER_FAIL_READ", "2", 1);
	harness_start_args(args);
}

/** harness_daemon_logged() - whether the daemon's log holds @what */
bool harness_daemon_logged(const char *what)
{
	static char buf[1 << 16];
	char path[320];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/upagerd.log", tmpdir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %m", path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, what) != NULL;
}

int harness_connect_raw(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int call(int fd, struct upager_msg *req, struct upager_msg *rep, uint8_t *buf)
{
	static uint32_t seq;
	int fds[FDMSG_MAX_FDS];
	size_t n_fds;
	int len;
	ssize_t n;

	req->seq = ++seq;
	len = upager_msg_encode(buf, UPAGER_MSG_MAX, req);
	if (len < 0 || fdmsg_send(fd, buf, (size_t)len, NULL, 0) < 0)
		return -EIO;
	n = fdmsg_recv(fd, buf, UPAGER_MSG_MAX, fds, &n_fds);
	fdmsg_close_fds(fds, n_fds);
	if (n <= 0 || upager_msg_decode(buf, (size_t)n, rep) < 0)
		return -EIO;
	return rep->status;
}

static int ctl_connect(uint8_t *buf)
{
	struct upager_msg req = { .op = UPAGER_OP_HELLO }, rep;
	int fd = harness_connect_raw();

	cr_assert(fd >= 0);
	req.u.hello.version_min = 1;
	req.u.hello.version_max = 1;
	req.u.hello.flags = UPAGER_HELLO_CTL;
	cr_assert_eq(call(fd, &req, &rep, buf), 0);
	return fd;
}

int harness_list(pid_t pid, struct region_info *out, int max)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	uint32_t cursor = 0;
	int fd = ctl_connect(buf), n = 0;

	do {
		struct upager_msg req = { .op = UPAGER_OP_LIST }, rep;
		struct upager_list_entry e;
		const uint8_t *pos;
		size_t left;

		req.u.list.cursor = cursor;
		req.u.list.pid = (uint32_t)pid;
		cr_assert_eq(call(fd, &req, &rep, buf), 0);
		pos = rep.u.list_reply.entries;
		left = rep.u.list_reply.entries_len;
		while (upager_list_entry_next(&pos, &left, &e) > 0) {
			if (n < max) {
				struct region_info *r = &out[n];

				r->start = e.start;
				r->length = e.length;
				r->offset = e.offset;
				r->resident_pages = e.resident_pages;
				r->faults = e.faults;
				r->object_id = e.object_id;
				r->pages_populated = e.pages_populated;
				r->pages_read = e.pages_read;
				r->bytes_read = e.bytes_read;
				r->latency_avg_ns = e.latency_avg_ns;
				r->latency_max_ns = e.latency_max_ns;
				r->grown_pages = e.grown_pages;
				r->max_length = e.max_length;
				r->private_pages_out = e.private_pages_out;
				r->private_pages_in = e.private_pages_in;
				r->pid = e.pid;
				r->uid = e.uid;
				r->prot = e.prot;
				r->flags = e.flags;
				snprintf(r->backing, sizeof(r->backing), "%.*s", (int)e.path_len,
					 e.path);
			}
			n++;
		}
		cursor = rep.u.list_reply.next_cursor;
	} while (cursor);
	close(fd);
	return n;
}

bool harness_region(pid_t pid, const void *addr, struct region_info *out)
{
	struct region_info v[64];
	int n = harness_list(pid, v, 64);

	for (int i = 0; i < n && i < 64; i++)
		if (v[i].start == (uintptr_t)addr) {
			*out = v[i];
			return true;
		}
	return false;
}

int harness_stats(struct upager_msg *rep)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct upager_msg req = { .op = UPAGER_OP_STATS };
	int fd = ctl_connect(buf), r;

	r = call(fd, &req, rep, buf);
	close(fd);
	return r;
}

uint64_t harness_bytes_written(void)
{
	struct upager_msg st;

	cr_assert_eq(harness_stats(&st), 0);
	return st.u.stats_reply.bytes_written;
}

uint64_t pagemap_entry(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PAGE * sizeof(e))),
		     (ssize_t)sizeof(e));
	close(fd);
	return e;
}

bool page_present(const void *addr)
{
	return pagemap_entry(addr) >> 63;
}

uint64_t pattern_at(uint64_t offset)
{
	return offset ^ 0x5a5a5a5a00000000ULL;
}

int make_pattern_file(const char *name, size_t size, char *path_out)
{
	static uint64_t chunk[8192];
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if (path_out)
		strcpy(path_out, path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert(fd >= 0);
	for (size_t off = 0; off < size; off += sizeof(chunk)) {
		size_t n = size - off < sizeof(chunk) ? size - off : sizeof(chunk);

		for (size_t i = 0; i < n / 8; i++)
			chunk[i] = pattern_at(off + i * 8);
		cr_assert_eq(pwrite(fd, chunk, n, (off_t)off), (ssize_t)n);
	}
	return fd;
}

/**
 * harness_fork() - fork(2), in a sanitizer build once the test's other threads are likely idle
 *
 * The allocator of clang 14's AddressSanitizer takes no lock around fork(): a child forked while
 * another thread (Criterion's messaging thread, after a test starts) was in malloc or free
 * inherits its lock taken, and its first allocation waits for ever; the library's fork handler
 * starts a thread in the child, whose start frees memory. glibc's allocator is safe (fork takes
 * its locks), so only the sanitizer build waits.
 *
 * Return: as fork(2).
 */
pid_t harness_fork(void)
{
	if (RUNNING_UNDER_SANITIZER)
		sleep_ms(50);
	return fork();
}

int run_child(void (*fn)(void *), void *arg)
{
	int status;
	pid_t p = harness_fork();

	cr_assert(p >= 0);
	if (p == 0) {
		alarm(20);
		fn(arg);
		_exit(0);
	}
	cr_assert_eq(waitpid(p, &status, 0), p);
	return status;
}

bool wait_until(bool (*cond)(void *), void *arg, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (cond(arg))
			return true;
		sleep_ms(10);
	}
	return cond(arg);
}

struct child_wait {
	pid_t pid;
	int *status;
};

static bool child_ended(void *arg)
{
	struct child_wait *w = arg;

	return waitpid(w->pid, w->status, WNOHANG) == w->pid;
}

bool harness_ended_within(pid_t pid, int ms, int *status)
{
	struct child_wait w = { pid, status };

	if (wait_until(child_ended, &w, ms))
		return true;
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return false;
}

/**
 * harness_ctl_list_json() - run `upagerctl list --json --pid <ours>` against the test's daemon
 * @out: its output, NUL-terminated (cut to fit)
 * @size: room at @out
 *
 * Return: its wait status, as pclose(3) gives it.
 */
int harness_ctl_list_json(char *out, size_t size)
{
	const char *ctl = getenv("UPAGERCTL");
	char cmd[600];
	size_t n;
	FILE *f;

	cr_assert(ctl, "UPAGERCTL is not set; run the tests through meson test");
	snprintf(cmd, sizeof(cmd), "%s --socket %s list --json --pid %d", ctl, harness_socket(),
		 (int)getpid());
	f = popen(cmd, "r");
	cr_assert(f);
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	return pclose(f);
}

/** harness_count_fds() - how many descriptors process @pid has open */
int harness_count_fds(pid_t pid)
{
	int n = procfs_count_fds(pid);

	cr_assert_geq(n, 0, "/proc/%d/fd: %m", (int)pid);
	return n;
}

/**
 * harness_status_kib() - the figure @name of /proc/@pid/status (VmRSS, RssAnon, VmPTE...), in KiB;
 * the process ends (41) if it cannot read it, as it may be a test's child
 */
uint64_t harness_status_kib(pid_t pid, const char *name)
{
	char path[64], line[256];
	unsigned long long kib = 0;
	size_t len = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		_exit(41);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ':' &&
		    sscanf(line + len + 1, "%llu", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/** harness_now_ms() - a monotonic clock in milliseconds */
uint64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/**
 * harness_pattern_served_ms() - map 4 pages of the pattern file @fd shared and read them
 * (checked), as any client would while another makes the daemon busy
 * @out: the mapping
 * Return: the milliseconds it took.
 */
uint64_t harness_pattern_served_ms(int fd, uint64_t **out)
{
	uint64_t t0 = harness_now_ms(), *m;

	m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(m[i * PAGE / 8], pattern_at(i * PAGE));
	*out = m;
	return harness_now_ms() - t0;
}

static sigjmp_buf bus_jump;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

bool harness_read_sigbus(const volatile char *a, char *out)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	bool bus = false;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jump, 1))
		bus = true;
	else
		*out = *a;
	sigaction(SIGBUS, &old, NULL);
	return bus;
}

static int sigbus_fd = -1;
static struct timespec touch_at;

/* SIGBUS in the bounded client: how long after its touch, on sigbus_fd; exit 42. */
static void on_bounded_sigbus(int sig)
{
	struct timespec now;
	long ms;

	(void)sig;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - touch_at.tv_sec) * 1000 + (now.tv_nsec - touch_at.tv_nsec) / 1000000;
	(void)!write(sigbus_fd, &ms, sizeof(ms));
	_exit(42);
}

/* The client of harness_bounded_wait(): its first page touched, then, once the daemon is dead, its
 * second. */
static void bounded_client(int ready, int go, int result)
{
	char *p, c;

	alarm(10);
	setenv("UPAGER_DAEMON_TIMEOUT", "1", 1);
	sigbus_fd = result;
	signal(SIGBUS, on_bounded_sigbus);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	p[0] = 1;
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		_exit(2);
	clock_gettime(CLOCK_MONOTONIC, &touch_at);
	p[PAGE] = 1;
	_exit(3);
}

/**
 * harness_bounded_wait() - a client with UPAGER_DAEMON_TIMEOUT=1 touches a page never served after
 * the daemon was killed (not started again): it must raise SIGBUS about a second later
 *
 * Forks the client first: call it before the test's process is a client (a client's fork waits for
 * a daemon).
 */
void harness_bounded_wait(void)
{
	int ready[2], go[2], result[2], status;
	long ms = -1;
	pid_t pid;
	char c;

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(result), 0);
	pid = harness_fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		bounded_client(ready[1], go[0], result[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	harness_daemon_kill();
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42,
		  "status %#x: the fault did not end in SIGBUS (14: it waited)", status);
	cr_assert_eq(read(result[0], &ms, sizeof(ms)), (ssize_t)sizeof(ms));
	cr_assert(ms >= 500 && ms <= 3000, "SIGBUS after %ld ms, not about 1 s", ms);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
		close(result[i]);
	}
}

/** harness_memfd_named() - the descriptor of this process that is the daemon's memfd called @name
 * (a prefix of its name, up to a ':' or the end), or -1 */
int harness_memfd_named(const char *name)
{
	char want[128], link[300], target[256];
	struct dirent *e;
	int found = -1;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return -1;
	/* A file's cache is named after its device and inode too: "upager:file:DEV:INO". */
	snprintf(want, sizeof(want), "/memfd:%s", name);
	while ((e = readdir(dir))) {
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		if (strncmp(target, want, strlen(want)) == 0 &&
		    (target[strlen(want)] == ' ' || target[strlen(want)] == ':'))
			found = atoi(e->d_name);
	}
	closedir(dir);
	return found;
}

/* The library's token page: one private anonymous page, read-only, wiped on fork, registered for
 * missing faults ("wf" and "um" in /proc/self/smaps); 0 if none is found. */
uintptr_t harness_token_page(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long start = 0, found = 0, a, b;
	char line[512], perms[8];
	bool one_page = false;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
			start = a;
			one_page = b - a == PAGE && strcmp(perms, "r--p") == 0;
		}
		if (strncmp(line, "VmFlags:", 8) == 0 && one_page && strstr(line, " wf") &&
		    strstr(line, " um"))
			found = start;
	}
	fclose(f);
	return found;
}
