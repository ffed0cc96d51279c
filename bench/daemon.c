// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The benchmark's own upagerd: started on a socket in the benchmark's temporary folder (as the
 * integration tests do), UPAGER_SOCKET pointed at it, stopped at the end. Its STATS are read over a
 * second, inspection-only connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/fdmsg.h"
#include "proto/codec.h"

static pid_t pid;
static char sock_path[108];

static int connect_raw(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/**
 * daemon_start() - start @bin listening on @dir/upager.sock and set UPAGER_SOCKET to it
 *
 * Its log goes to @dir/upagerd.log. The daemon gets SIGTERM if we die.
 * Return: 0 once it accepts connections, or a negative errno.
 */
int daemon_start(const char *bin, const char *dir)
{
	char log[320];
	int logfd;

	snprintf(sock_path, sizeof(sock_path), "%s/upager.sock", dir);
	snprintf(log, sizeof(log), "%s/upagerd.log", dir);
	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	/* Plain fork(): nothing is mapped through upager yet, so no fork event reaches anyone. */
	pid = fork();
	if (pid < 0) {
		close(logfd);
		return -errno;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(logfd, 2);
		execl(bin, "upagerd", "--socket", sock_path, (char *)NULL);
		_exit(127);
	}
	close(logfd);
	setenv("UPAGER_SOCKET", sock_path, 1);
	for (int i = 0; i < 500; i++) {
		int fd = connect_raw();

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (!daemon_alive())
			return -ECHILD;
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

static char *private_dir;

static void private_cleanup(void)
{
	char cmd[160];

	daemon_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", private_dir);
	(void)!system(cmd);
}

/**
 * daemon_args() - the options of the small benchmarks: [--quick] [--upagerd PATH]
 * @argc: from main()
 * @argv: likewise; argv[0] names the program in the usage message
 * @quick: set if --quick was given
 *
 * Return: the daemon to start ($UPAGERD unless --upagerd says otherwise); exits with status 2
 * and a usage message if there is none.
 */
const char *daemon_args(int argc, char **argv, bool *quick)
{
	const char *bin = getenv("UPAGERD");

	*quick = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			*quick = true;
		else if (!strcmp(argv[i], "--upagerd") && i + 1 < argc)
			bin = argv[++i];
	}
	if (!bin) {
		fprintf(stderr, "usage: %s [--quick] --upagerd PATH\n", argv[0]);
		exit(2);
	}
	return bin;
}

/**
 * daemon_start_private() - a temporary folder made from @dir_template, our upagerd in it
 *
 * Both go at exit. @dir_template (XXXXXX at its end, as for mkdtemp(3)) holds the folder's name
 * afterwards.
 * Return: 0, or a negative errno.
 */
int daemon_start_private(const char *bin, char *dir_template)
{
	if (!mkdtemp(dir_template))
		return -errno;
	private_dir = dir_template;
	atexit(private_cleanup);
	return daemon_start(bin, dir_template);
}

/** daemon_stop() - SIGTERM, and SIGKILL if it is not gone within 10 s */
void daemon_stop(void)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	wait_helper(pid, 10000);
	pid = 0;
}

/** daemon_pid() - the pid of our upagerd, or 0 */
pid_t daemon_pid(void)
{
	return pid;
}

/** daemon_alive() - false once our upagerd has exited */
bool daemon_alive(void)
{
	int status;

	if (pid <= 0)
		return false;
	if (waitpid(pid, &status, WNOHANG) == pid) {
		pid = 0;
		return false;
	}
	return true;
}

static int call(int fd, struct upager_msg *req, struct upager_msg *rep)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	static uint32_t seq;
	int fds[FDMSG_MAX_FDS];
	size_t n_fds = 0;
	ssize_t n;
	int len;

	req->seq = ++seq;
	len = upager_msg_encode(buf, sizeof(buf), req);
	if (len < 0)
		return len;
	if (fdmsg_send(fd, buf, (size_t)len, NULL, 0) < 0)
		return -EIO;
	n = fdmsg_recv(fd, buf, sizeof(buf), fds, &n_fds);
	fdmsg_close_fds(fds, n_fds);
	if (n <= 0 || upager_msg_decode(buf, (size_t)n, rep) < 0)
		return -EIO;
	return rep->status;
}

/**
 * daemon_stats() - the daemon's STATS, over a fresh inspection connection
 *
 * Return: 0, or a negative errno.
 */
int daemon_stats(struct daemon_stats *st)
{
	struct upager_msg req = { .op = UPAGER_OP_HELLO }, rep;
	struct timeval tv = { 10, 0 };
	int fd = connect_raw(), ret;

	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	req.u.hello.version_min = 1;
	req.u.hello.version_max = 1;
	req.u.hello.flags = UPAGER_HELLO_CTL;
	ret = call(fd, &req, &rep);
	if (ret == 0) {
		memset(&req, 0, sizeof(req));
		req.op = UPAGER_OP_STATS;
		ret = call(fd, &req, &rep);
	}
	close(fd);
	if (ret < 0)
		return ret;
	st->objects = rep.u.stats_reply.objects;
	st->cached_pages = rep.u.stats_reply.cached_pages;
	st->faults = rep.u.stats_reply.faults;
	st->pages_read = rep.u.stats_reply.pages_read;
	st->bytes_read = rep.u.stats_reply.bytes_read;
	st->pages_out = rep.u.stats_reply.pages_out;
	st->store_bytes_out = rep.u.stats_reply.store_bytes_out;
	return 0;
}

/**
 * daemon_wait_empty() - wait until the daemon caches no page of any object
 *
 * The daemon frees an object's cache when its last mapping goes; this makes sure a figure that
 * needs the daemon's cache cold gets it.
 * Return: 0, -EBUSY if pages were still cached after @timeout_ms, or another negative errno.
 */
int daemon_wait_empty(int timeout_ms)
{
	struct daemon_stats st;

	for (int t = 0;; t += 20) {
		int ret = daemon_stats(&st);

		if (ret < 0)
			return ret;
		if (st.cached_pages == 0 && st.objects == 0)
			return 0;
		if (t >= timeout_ms)
			return -EBUSY;
		sleep_ms(20);
	}
}

/**
 * process_cpu_ns() - CPU time used so far by @pid, all its threads together
 *
 * From the user and system times of /proc/PID/stat, which include threads that have exited (an
 * idle io_uring worker exits after a while), in clock ticks: good to 10 ms or so.
 * Return: nanoseconds, 0 if unknown.
 */
uint64_t process_cpu_ns(pid_t p)
{
	unsigned long long utime = 0, stime = 0;
	long tick = sysconf(_SC_CLK_TCK);
	char path[64], buf[1024], *s;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || tick <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold anything; the fields after it start after the last ')'. */
	s = strrchr(buf, ')');
	if (!s || sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		return 0;
	return (utime + stime) * (1000000000ULL / (unsigned long long)tick);
}
