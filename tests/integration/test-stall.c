// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A client's file whose file system stops answering (a FUSE file system that stalls, as a hung
 * NFS server would) costs that client its request, after upagerd's --file-timeout, and no one
 * else anything: the daemon's loop never waits on it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "harness.h"
#include "upager.h"

static void start_with_a_short_timeout(void)
{
	static const char *const args[] = { "--file-timeout", "1", NULL };

	harness_start_args(args);
}

TestSuite(stall, .init = start_with_a_short_timeout, .fini = harness_stop, .timeout = 60);

struct stallfs {
	char mnt[400], flag[400], fail[400], attr[400], flush[400], data[420];
	pid_t pid;
};

static bool mounted(void *arg)
{
	struct stallfs *fs = arg;
	struct stat st;

	return stat(fs->data, &st) == 0 && st.st_size == 16 * (off_t)PAGE;
}

static void stallfs_start(struct stallfs *fs)
{
	const char *bin = getenv("STALLFS");

	if (!bin || access("/dev/fuse", R_OK | W_OK) < 0)
		cr_skip_test("no FUSE here (STALLFS unset or no /dev/fuse)");
	snprintf(fs->mnt, sizeof(fs->mnt), "%s/mnt", harness_tmpdir());
	snprintf(fs->flag, sizeof(fs->flag), "%s/stall", harness_tmpdir());
	snprintf(fs->fail, sizeof(fs->fail), "%s/fail", harness_tmpdir());
	snprintf(fs->attr, sizeof(fs->attr), "%s/attr", harness_tmpdir());
	snprintf(fs->flush, sizeof(fs->flush), "%s/flush", harness_tmpdir());
	snprintf(fs->data, sizeof(fs->data), "%s/data", fs->mnt);
	cr_assert_eq(mkdir(fs->mnt, 0755), 0);
	fs->pid = harness_fork();
	cr_assert(fs->pid >= 0);
	if (fs->pid == 0) {
		setenv("STALLFS_FLAG", fs->flag, 1);
		setenv("STALLFS_FAIL", fs->fail, 1);
		setenv("STALLFS_ATTR", fs->attr, 1);
		setenv("STALLFS_FLUSH", fs->flush, 1);
		execl(bin, "stallfs", fs->mnt, (char *)NULL);
		_exit(127);
	}
	cr_assert(wait_until(mounted, fs, 5000), "stallfs did not mount %s", fs->mnt);
}

/* Set or clear one of the file system's flags (its stall, its failing writes). */
static void flag_set(const char *path, bool on)
{
	if (on)
		close(open(path, O_WRONLY | O_CREAT, 0644));
	else
		cr_assert_eq(unlink(path), 0);
}

static void stallfs_set(struct stallfs *fs, bool stalled)
{
	flag_set(fs->flag, stalled);
}

static bool unmounted(void *arg)
{
	struct stallfs *fs = arg;
	char cmd[500];

	snprintf(cmd, sizeof(cmd), "fusermount3 -u %s 2>/dev/null", fs->mnt);
	return system(cmd) == 0;
}

/* The daemon lets go of the file once its last mapping is gone and the stalled call is over. */
static void stallfs_stop(struct stallfs *fs)
{
	int status;

	cr_assert(wait_until(unmounted, fs, 5000), "%s stays busy", fs->mnt);
	cr_assert_eq(waitpid(fs->pid, &status, 0), fs->pid);
}

/*
 * A while after a client's request began to wait on the stalled file, another client maps 4 pages
 * of the pattern file @fd and reads them, in well under a second. Return: the mapping.
 */
static uint64_t *served_at_once(int fd)
{
	uint64_t *m, ms;

	usleep(200 * 1000);
	ms = harness_pattern_served_ms(fd, &m);
	cr_assert_lt(ms, 500, "another client waited %llu ms", (unsigned long long)ms);
	return m;
}

Test(stall, a_stalled_file_system_fails_its_own_request_and_no_one_waits)
{
	struct stallfs fs;
	char other[512];
	int ofd = make_pattern_file("other", 4 * PAGE, other), fd, status;
	uint64_t t0, *mine, *theirs;
	pid_t child;

	stallfs_start(&fs);
	fd = open(fs.data, O_RDWR);
	cr_assert_geq(fd, 0);
	stallfs_set(&fs, true);

	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		void *p;

		alarm(20);
		t0 = harness_now_ms();
		p = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		/* The daemon's timeout is 1 s: EAGAIN after it, not when the stall ends. */
		_exit(p == MAP_FAILED && errno == EAGAIN ? harness_now_ms() - t0 < 5000 ? 0 : 2
							 : 1);
	}
	/* While the daemon's call on the stalled file waits, another client is served. */
	mine = served_at_once(ofd);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status), "status %x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "the stalled request: step %d", WEXITSTATUS(status));

	/* Once the file system answers again, the file maps and writes back as any other. */
	stallfs_set(&fs, false);
	theirs = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(theirs, MAP_FAILED, "%m");
	cr_assert_eq(theirs[5 * PAGE / 8], pattern_at(5 * PAGE));
	theirs[1] = 42;
	cr_assert_eq(upager_munmap(theirs, 16 * PAGE), 0);
	cr_assert_eq(upager_munmap(mine, 4 * PAGE), 0);
	close(fd);
	stallfs_stop(&fs);
}

/* The stalled file's mappings in the client of client_across_a_stall(). */
static uint64_t *client_map, *client_map2;

/*
 * Mount stallfs and fork a client of its file (opened O_RDWR into *fd): it maps 16 pages shared
 * writable and writes 77 to page 3, then runs before() if given, waits until the file system
 * stalls, and exits with during()'s status. Return: its pid, once the file system stalls.
 */
static pid_t client_across_a_stall(struct stallfs *fs, int *fd, bool (*before)(int fd),
				   int (*during)(void))
{
	int up[2], down[2];
	pid_t child;

	stallfs_start(fs);
	*fd = open(fs->data, O_RDWR);
	cr_assert_geq(*fd, 0);
	cr_assert_eq(pipe(up), 0);
	cr_assert_eq(pipe(down), 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		char c;

		alarm(20);
		client_map =
			upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
		if (client_map == MAP_FAILED || (before && !before(*fd)))
			_exit(1);
		client_map[3 * PAGE / 8] =
			77; /* written before the stall: its times are set then */
		if (write(up[1], "w", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(2);
		_exit(during());
	}
	cr_assert_eq(read(up[0], &(char){ 0 }, 1), 1);
	stallfs_set(fs, true);
	cr_assert_eq(write(down[1], "s", 1), 1);
	return child;
}

/* The client's request waited on the stalled file: it ends once the stall does, and its write
 * reached the file. */
static void client_waited(struct stallfs *fs, pid_t child, int fd, const char *request)
{
	uint64_t word = 0;
	pid_t ended = waitpid(child, NULL, WNOHANG);
	int status;

	/* The stall ends first: a daemon stuck in it would outlive the test. */
	stallfs_set(fs, false);
	cr_assert_eq(ended, 0, "the %s did not wait for the file", request);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
	cr_assert_eq(pread(fd, &word, 8, 3 * PAGE), 8);
	cr_assert_eq(word, 77);
}

static int write_and_msync(void)
{
	/* A first write to another page sets the file's times, then msync: both wait. */
	client_map[5 * PAGE / 8] = 88;
	return upager_msync(client_map, 16 * PAGE, MS_SYNC) == 0 ? 0 : 3;
}

/* A write-back to a stalled file, and a first write that sets its times, wait for it in the
 * client that asked (as msync(2) would), and no one else waits: the calls run in worker threads. */
Test(stall, a_write_and_an_msync_to_a_stalled_file_wait_alone)
{
	struct stallfs fs;
	char other[512];
	int ofd = make_pattern_file("other", 4 * PAGE, other), fd;
	uint64_t *mine, word = 0;
	pid_t child = client_across_a_stall(&fs, &fd, NULL, write_and_msync);

	/* The child's msync waits on the stalled file while another client is served. */
	mine = served_at_once(ofd);
	client_waited(&fs, child, fd, "msync");
	cr_assert_eq(pread(fd, &word, 8, 5 * PAGE), 8);
	cr_assert_eq(word, 88);
	cr_assert_eq(upager_munmap(mine, 4 * PAGE), 0);
	close(fd);
	stallfs_stop(&fs);
}

static bool map_again(int fd)
{
	client_map2 = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	return client_map2 != MAP_FAILED && client_map2[0] == pattern_at(0);
}

static int unmap_the_first(void)
{
	return upager_munmap(client_map, 16 * PAGE) == 0 && client_map2[3 * PAGE / 8] == 77 ? 0 : 3;
}

/* A munmap writes back what the range may have dirtied before it returns, also while another
 * mapping of the file stays: it waits for a stalled file as msync would. */
Test(stall, a_munmap_waits_for_its_write_back_while_another_mapping_stays)
{
	struct stallfs fs;
	int fd;
	pid_t child = client_across_a_stall(&fs, &fd, map_again, unmap_the_first);

	usleep(300 * 1000);
	client_waited(&fs, child, fd, "munmap");
	close(fd);
	stallfs_stop(&fs);
}

static void *touch_page_5(void *arg)
{
	const volatile uint64_t *p = arg;

	return (void *)(uintptr_t)p[5 * PAGE / 8];
}

/*
 * A thread's fault waits for its page of the stalled file; meanwhile the client unmaps the file
 * and maps private anonymous memory at the same address. The fill ends (the daemon's timeout)
 * with another mapping there, which starts where the file's did: the fault is woken and faults
 * again on the new memory, which reads zeroes.
 */
static int map_over_a_waiting_fault(void)
{
	pthread_t t;
	void *got = (void *)1;

	if (pthread_create(&t, NULL, touch_page_5, client_map) != 0)
		return 4;
	usleep(200 * 1000); /* the thread waits in its fault */
	if (munmap(client_map, 16 * PAGE) < 0)
		return 5;
	if (upager_mmap(client_map, 16 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != client_map)
		return 6;
	pthread_join(t, &got);
	return got == NULL ? 0 : 7;
}

/* The daemon took the new mapping for the file's and read its object: it died (SIGSEGV). */
Test(stall, a_fault_whose_mapping_is_replaced_while_its_fill_stalls_is_woken)
{
	struct upager_msg st;
	struct stallfs fs;
	int fd, status;
	pid_t child;

	/* A thread made in a forked child of the sanitizer's test process trips the sanitizer's own
	 * check (asan_thread.cpp, "t->context()"), before it faults at all. */
	if (RUNNING_UNDER_SANITIZER)
		cr_skip_test("a thread of a forked child is the sanitizer's own failure");
	child = client_across_a_stall(&fs, &fd, NULL, map_over_a_waiting_fault);

	/* The fill ends with the stall, once the client has mapped over the file (in 200 ms). */
	sleep(1);
	stallfs_set(&fs, false);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the fault on the new mapping read zeroes: status %#x", status);
	cr_assert_eq(harness_stats(&st), 0, "the daemon answers");
	close(fd);
	stallfs_stop(&fs);
}

/*
 * A client of a daemon that died hands its mappings back to the next daemon (RESUME): that
 * daemon's calls on the client's stalled file (its status, its own descriptions of it) run in a
 * worker thread too, and everyone else is served meanwhile.
 */
Test(stall, a_resume_whose_file_stalls_keeps_no_one_else_waiting)
{
	struct stallfs fs;
	char other[512];
	int ofd = make_pattern_file("other", 4 * PAGE, other), fd, up[2];
	uint64_t *mine;
	pid_t child;

	stallfs_start(&fs);
	/* Not inherited by the daemon started below, which would keep the file system busy. */
	fd = open(fs.data, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pipe2(up, O_CLOEXEC), 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		uint64_t *p;

		alarm(20);
		p = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			_exit(1);
		p[3 * PAGE / 8] = 77;
		if (write(up[1], "m", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(up[0], &(char){ 0 }, 1), 1);
	harness_daemon_kill();
	stallfs_set(&fs, true);
	harness_daemon_restart();
	/* The client reconnects and hands its mapping back; its file does not answer. */
	mine = served_at_once(ofd);
	stallfs_set(&fs, false);
	kill(child, SIGKILL);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	cr_assert_eq(upager_munmap(mine, 4 * PAGE), 0);
	close(fd);
	stallfs_stop(&fs);
}

/*
 * A write-back that fails where no msync waits for it (the munmap of another mapping of the file)
 * is kept on the object: upagerctl shows it, and the next msync of those pages reports it, once;
 * the pages stay dirty, and a later write-back that succeeds brings the data to the file.
 */
Test(stall, a_failed_write_back_is_reported_by_the_next_msync)
{
	struct stallfs fs;
	struct upager_msg st;
	char json[16384], buf[8];
	char *a, *b;
	int fd;

	stallfs_start(&fs);
	fd = open(fs.data, O_RDWR);
	cr_assert(fd >= 0);
	a = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(a, MAP_FAILED);
	cr_assert_neq(b, MAP_FAILED);
	memcpy(b, "written", 8);

	flag_set(fs.fail, true);
	cr_assert_eq(upager_munmap(b, PAGE), 0); /* as munmap(2): write-back errors are not its */
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_geq(st.u.stats_reply.writeback_errors, 1);
	cr_assert_eq(WEXITSTATUS(harness_ctl_list_json(json, sizeof(json))), 0);
	cr_assert(strstr(json, "\"object_writeback_error\": \"EIO\""), "%s", json);
	cr_assert(harness_daemon_logged("kept for the next msync"));
	flag_set(fs.fail, false);

	errno = 0;
	cr_assert_eq(upager_msync(a, 16 * PAGE, MS_SYNC), -1);
	cr_assert_eq(errno, EIO, "%s", strerror(errno));
	cr_assert_eq(upager_msync(a, 16 * PAGE, MS_SYNC), 0, "reported twice: %s", strerror(errno));
	cr_assert_eq(pread(fd, buf, 8, 0), 8);
	cr_assert_str_eq(buf, "written");
	cr_assert_eq(WEXITSTATUS(harness_ctl_list_json(json, sizeof(json))), 0);
	cr_assert(strstr(json, "\"object_writeback_error\": null"), "%s", json);
	cr_assert_eq(upager_munmap(a, 16 * PAGE), 0);
	close(fd);
	stallfs_stop(&fs);
}

/*
 * A server that stops answering even for its file's status: an MS_INVALIDATE, which reads the
 * file's size, takes what the kernel holds of it (statx(AT_STATX_DONT_SYNC)), and no one waits;
 * the daemon's loop waited in fstat(2) for the server, and every client with it.
 */
Test(stall, a_file_whose_status_stalls_stops_no_one)
{
	struct stallfs fs;
	char other[512];
	int ofd = make_pattern_file("other", 4 * PAGE, other), fd, status, up[2], down[2];
	uint64_t *mine;
	pid_t child;

	stallfs_start(&fs);
	fd = open(fs.data, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert(pipe(up) == 0 && pipe(down) == 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		uint64_t *m = upager_mmap(NULL, 16 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
		char c;

		alarm(20);
		if (m == MAP_FAILED || m[0] != (0x5a5a5a5a00000000ULL) ||
		    write(up[1], "m", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(1);
		_exit(upager_msync(m, 16 * PAGE, MS_INVALIDATE) == 0 ? 0 : 2);
	}
	cr_assert_eq(read(up[0], &(char){ 0 }, 1), 1);
	flag_set(fs.attr, true);
	cr_assert_eq(write(down[1], "i", 1), 1);
	mine = served_at_once(ofd);
	flag_set(fs.attr, false);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
	cr_assert_eq(upager_munmap(mine, 4 * PAGE), 0);
	close(fd);
	stallfs_stop(&fs);
}

/*
 * A client maps a file of a stalled file system over its token page, where the daemon reads its
 * mark: the read waits on the file system, the daemon gives up on it after a bound, and no one
 * waits with it. (The daemon read it on its loop: a LIST of that client, and every client after,
 * waited for the file system for ever.)
 */
Test(stall, a_stalled_file_over_the_token_page_holds_up_no_one)
{
	int fd = make_pattern_file("served", 4 * PAGE, NULL), ready[2], go[2], status;
	struct region_info info[4];
	struct stallfs fs;
	uint64_t t0;
	pid_t child;
	char c;

	stallfs_start(&fs);
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		uintptr_t token;
		int sfd = open(fs.data, O_RDONLY);

		alarm(60);
		if (sfd < 0 || upager_mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
					   0) == MAP_FAILED)
			_exit(2);
		token = harness_token_page();
		if (!token || mmap((void *)token, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, sfd,
				   0) == MAP_FAILED)
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		_exit(0);
	}
	cr_assert_eq(read(ready[0], &c, 1), 1, "the client did not map the file");
	stallfs_set(&fs, true);
	t0 = harness_now_ms();
	(void)harness_list(child, info, 4); /* the daemon reads the client's mark */
	cr_assert_lt(harness_now_ms() - t0, 3000, "the LIST took %llu ms",
		     (unsigned long long)(harness_now_ms() - t0));
	munmap(served_at_once(fd), 4 * PAGE);
	cr_assert(harness_daemon_logged("does not read"));
	stallfs_set(&fs, false);
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert(harness_ended_within(child, 10 * 1000, &status));
	cr_assert_eq(status, 0);
	close(fd);
	stallfs_stop(&fs);
}

#define FLOOD_CONNECTIONS 100
#define FLOOD_FDS 253 /* the most one datagram carries */

/* Connect to the daemon and send one message it refuses, with FLOOD_FDS copies of @fd. */
static bool send_refused_with(int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FLOOD_FDS)];
		struct cmsghdr align;
	} control = { 0 };
	struct iovec iov = { .iov_base = "junk", .iov_len = 4 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool sent;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", harness_socket());
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * FLOOD_FDS);
	for (int i = 0; i < FLOOD_FDS; i++)
		memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
	sent = c >= 0 && connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	       sendmsg(c, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == 4;
	if (c >= 0)
		close(c);
	return sent;
}

/*
 * A user who can mount FUSE sends the daemon, over a hundred connections, messages it refuses,
 * each with 253 descriptors of a file whose flush (sent at every close) its server never answers:
 * the daemon closes them in threads, two at most for that user, and reads nothing more of its
 * once a thousand wait; its descriptors do not fill, and everyone else is served. (Eight closes
 * that waited held every thread, and every descriptor came into the daemon's table and stayed:
 * 25,000 here, 20,000 within 5 s in an audit, and then no one could connect.)
 */
Test(stall, a_user_whose_descriptors_close_for_ever_fills_no_table_and_holds_up_no_one)
{
	int fd = make_pattern_file("served", 4 * PAGE, NULL), ready[2], go[2], status, fds = 0,
	    sent;
	pid_t daemon = harness_daemon_pid(), flooder;
	struct upager_msg st;
	struct stallfs fs;
	char c;

	stallfs_start(&fs);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	flooder = harness_fork();
	cr_assert(flooder >= 0);
	if (flooder == 0) {
		int sfd = open(fs.data, O_RDONLY);

		sent = 0;
		alarm(60);
		if (sfd < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(99);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(98);
		for (int i = 0; i < FLOOD_CONNECTIONS; i++)
			sent += send_refused_with(sfd);
		/* Its own close waits too: it waits here for the end of the stall. */
		if (write(ready[1], &sent, sizeof(sent)) != sizeof(sent))
			_exit(97);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(ready[0], &c, 1), 1, "the flooder did not open the file");
	flag_set(fs.flush, true);
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(read(ready[0], &sent, sizeof(sent)), sizeof(sent), "the flooder died");
	cr_assert_gt(sent, 0, "the flooder sent nothing");
	/* The most the daemon holds while it reads what was sent, over three seconds. */
	for (int i = 0; i < 60; i++) {
		fds = MAX(fds, harness_count_fds(daemon));
		usleep(50 * 1000);
	}
	if (fds >= 3000) {
		flag_set(fs.flush, false);
		kill(flooder, SIGKILL);
	}
	cr_assert_lt(fds, 3000, "the daemon held %d descriptors", fds);
	cr_log_info("the daemon held %d descriptors at most", fds);
	munmap(served_at_once(fd), 4 * PAGE);
	cr_assert_eq(harness_stats(&st), 0, "a new connection was not answered");
	flag_set(fs.flush, false);
	kill(flooder, SIGKILL);
	cr_assert_eq(waitpid(flooder, &status, 0), flooder);
	close(fd);
	stallfs_stop(&fs);
}
