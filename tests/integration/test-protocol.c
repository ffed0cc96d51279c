// SPDX-License-Identifier: LGPL-2.1-or-later
/* Bad input never takes the daemon down or disturbs another client; clients act only on their own. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "common/fdmsg.h"
#include "harness.h"
#include "upager.h"

TestSuite(protocol, .init = harness_start, .fini = harness_stop, .timeout = 60);

/* What the daemon does after a datagram: 1 if it closed the connection, or the reply's status. */
static int answer(int fd)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct upager_msg rep;
	int fds[FDMSG_MAX_FDS];
	size_t n_fds;
	ssize_t n;

	cr_assert_eq(poll(&p, 1, 5000), 1, "no answer from the daemon");
	n = fdmsg_recv(fd, buf, sizeof(buf), fds, &n_fds);
	fdmsg_close_fds(fds, n_fds);
	if (n <= 0)
		return 1;
	cr_assert_eq(upager_msg_decode(buf, (size_t)n, &rep), 0);
	return rep.status;
}

static int send_raw(const void *buf, size_t len)
{
	int fd = harness_connect_raw();

	cr_assert(fd >= 0);
	cr_assert_eq(send(fd, buf, len, 0), (ssize_t)len);
	return fd;
}

static size_t encode(struct upager_msg *m, uint8_t *buf)
{
	int n = upager_msg_encode(buf, UPAGER_MSG_MAX, m);

	cr_assert_gt(n, 0);
	return (size_t)n;
}

/* Another client keeps working: map and touch through the library. */
static void still_serving(void)
{
	static int round;
	char *p =
		upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "the daemon stopped serving: %m");
	p[0] = (char)++round;
	cr_assert_eq(p[1], 0);
}

Test(protocol, garbage_truncated_oversized_and_lying_messages_close_the_connection)
{
	static uint8_t buf[2 * UPAGER_MSG_MAX];
	struct upager_msg hello = { .op = UPAGER_OP_HELLO };
	size_t n;
	int fd;

	still_serving();
	memset(buf, 0xa5, sizeof(buf));
	fd = send_raw(buf, 100); /* garbage */
	cr_assert_eq(answer(fd), 1);
	close(fd);
	still_serving();

	hello.u.hello.version_min = hello.u.hello.version_max = 1;
	hello.u.hello.flags = UPAGER_HELLO_CTL;
	n = encode(&hello, buf);
	fd = send_raw(buf, 10); /* truncated header */
	cr_assert_eq(answer(fd), 1);
	close(fd);
	fd = send_raw(buf, n - 4); /* truncated body, header says more */
	cr_assert_eq(answer(fd), 1);
	close(fd);
	still_serving();

	fd = send_raw(buf, UPAGER_MSG_MAX + 100); /* oversized */
	cr_assert_eq(answer(fd), 1);
	close(fd);

	n = encode(&hello, buf);
	buf[8] = (uint8_t)(n + 8); /* the length field lies */
	fd = send_raw(buf, n);
	cr_assert_eq(answer(fd), 1);
	close(fd);

	hello.version = 9; /* unknown version */
	n = encode(&hello, buf);
	fd = send_raw(buf, n);
	cr_assert_eq(answer(fd), 1);
	close(fd);
	still_serving();
}

Test(protocol, out_of_order_and_unsupported_requests)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct upager_msg m = { .op = UPAGER_OP_MSYNC };
	size_t n;
	int fd;

	/* A request before HELLO. */
	n = encode(&m, buf);
	fd = send_raw(buf, n);
	cr_assert_eq(answer(fd), -ENOTCONN);
	close(fd);

	/* HELLO for versions the daemon does not speak. */
	m = (struct upager_msg){ .op = UPAGER_OP_HELLO };
	m.u.hello.version_min = 5;
	m.u.hello.version_max = 7;
	m.u.hello.flags = UPAGER_HELLO_CTL;
	fd = send_raw(buf, encode(&m, buf));
	cr_assert_eq(answer(fd), -EPROTONOSUPPORT);
	close(fd);

	/* HELLO of an inspection client that bounds a wait it has no faults for, or of two kinds. */
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	m.u.hello.flags = UPAGER_HELLO_CTL | UPAGER_HELLO_SOFT;
	fd = send_raw(buf, encode(&m, buf));
	cr_assert_eq(answer(fd), -EINVAL);
	close(fd);
	m.u.hello.flags = UPAGER_HELLO_UFFD | UPAGER_HELLO_FORKED | UPAGER_HELLO_SOFT;
	fd = send_raw(buf, encode(&m, buf));
	cr_assert_eq(answer(fd), -EINVAL);
	close(fd);

	/* HELLO claiming a userfaultfd without passing one. */
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	m.u.hello.flags = UPAGER_HELLO_UFFD;
	m.u.hello.token_addr = 0x10000;
	fd = send_raw(buf, encode(&m, buf));
	cr_assert_eq(answer(fd), -EBADF);

	/* An inspection client may not map, sync or unmap: it has no space. */
	m.u.hello.flags = UPAGER_HELLO_CTL;
	cr_assert_eq(send(fd, buf, encode(&m, buf), 0), (ssize_t)encode(&m, buf));
	cr_assert_eq(answer(fd), 0);
	m = (struct upager_msg){ .op = UPAGER_OP_MUNMAP };
	m.u.range.addr = 0x700000000000;
	m.u.range.length = PAGE;
	cr_assert_gt(send(fd, buf, encode(&m, buf), 0), 0);
	cr_assert_eq(answer(fd), -EPERM);
	m = (struct upager_msg){ .op = UPAGER_OP_REGION_ADD };
	m.u.region_add.addr = 0x700000000000;
	m.u.region_add.length = PAGE;
	cr_assert_gt(send(fd, buf, encode(&m, buf), 0), 0);
	cr_assert_eq(answer(fd), -EPERM);
	/* A second HELLO on the same connection is refused and closes it. */
	m = (struct upager_msg){ .op = UPAGER_OP_HELLO };
	m.u.hello.version_min = m.u.hello.version_max = 1;
	m.u.hello.flags = UPAGER_HELLO_CTL;
	cr_assert_gt(send(fd, buf, encode(&m, buf), 0), 0);
	cr_assert_eq(answer(fd), -EALREADY);
	close(fd);
	still_serving();
}

Test(protocol, a_client_acts_only_on_its_own_mappings)
{
	char *mine = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct region_info r;
	int to_parent[2], status;
	char c;
	pid_t child;

	cr_assert_neq(mine, MAP_FAILED);
	cr_assert(harness_region(getpid(), mine, &r));
	cr_assert_eq(r.uid, getuid());
	cr_assert_eq(r.pid, (uint32_t)getpid());
	cr_assert_eq(pipe(to_parent), 0);
	child = harness_fork();
	if (child == 0) {
		/* A separate client (it never inherited a connection's space for this range): its
		 * upager_munmap of the parent's address only unmaps its own copy. */
		(void)!upager_munmap(mine, 2 * PAGE);
		(void)!write(to_parent[1], "d", 1);
		_exit(0);
	}
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	waitpid(child, &status, 0);
	cr_assert(harness_region(getpid(), mine, &r), "another process removed our region");
	mine[PAGE] = 1;
	cr_assert_eq(mine[PAGE], 1);
}

Test(protocol, another_user_sees_only_mappings_of_its_own_uid)
{
	char *mine = upager_mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char cmd[700], out[8192];
	int to_parent[2], to_child[2], status;
	struct region_info v[8];
	size_t n;
	FILE *f;
	char c;
	pid_t child;

	cr_assert_neq(mine, MAP_FAILED);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	child = harness_fork();
	if (child == 0) {
		char *theirs;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		theirs = upager_mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (theirs == MAP_FAILED)
			_exit(3);
		(void)!write(to_parent[1], "m", 1);
		(void)!read(to_child[0], &c, 1);
		_exit(0);
	}
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	/* Root sees both. */
	n = (size_t)harness_list(0, v, 8);
	cr_assert_geq(n, 2);
	/* The other user sees its own only, and the check is the daemon's (SO_PEERCRED). */
	snprintf(cmd, sizeof(cmd),
		 "setpriv --reuid=65534 --regid=65534 --clear-groups %s --socket %s list --json",
		 getenv("UPAGERCTL"), harness_socket());
	f = popen(cmd, "r");
	cr_assert(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	cr_assert_eq(pclose(f), 0, "%s", out);
	cr_assert(strstr(out, "\"uid\": 65534"), "%s", out);
	cr_assert_null(strstr(out, "\"uid\": 0,"), "another user sees root's mappings: %s", out);
	cr_assert(strstr(out, "\"length\": 12288"), "%s", out);
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
}

/* The daemon lets go of what came with a datagram it refuses: its reader sees the end of a pipe. */
static void assert_released(int pipe_read)
{
	struct pollfd p = { .fd = pipe_read, .events = POLLIN };
	char c;

	cr_assert_eq(poll(&p, 1, 5000), 1, "the daemon still holds the pipe's write end");
	cr_assert_eq(read(pipe_read, &c, 1), 0);
	close(pipe_read);
}

Test(protocol, descriptors_of_a_refused_datagram_are_closed)
{
	static const uint8_t garbage[8] = { 1, 2, 3 };
	int p[2], fd;

	/* An empty datagram reads as the end of the stream; its descriptors must not stay behind. */
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fd = harness_connect_raw();
	cr_assert(fd >= 0);
	cr_assert_eq(fdmsg_send(fd, "", 0, &p[1], 1), 0);
	close(p[1]);
	cr_assert_eq(answer(fd), 1, "an empty datagram did not close the connection");
	close(fd);
	assert_released(p[0]);

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fd = harness_connect_raw();
	cr_assert(fd >= 0);
	cr_assert_eq(fdmsg_send(fd, garbage, sizeof(garbage), &p[1], 1), 0);
	close(p[1]);
	cr_assert_eq(answer(fd), 1);
	close(fd);
	assert_released(p[0]);
	still_serving();
}

/*
 * A process connects; another (its child, with the same token page mapped at the same address)
 * says HELLO over that connection with a userfaultfd of its own memory. The daemon would take the
 * first process's pid for the second's memory, and read and hand out the memory the pid names
 * (process_vm_readv(), /proc/PID/pagemap): after an execve(2) of a set-user-ID program by the
 * first, another user's. It refuses: the memory behind the userfaultfd does not show through the
 * pid.
 */
static int hello_with_childs_userfaultfd(int sock, void *token)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct upager_msg m = { .op = UPAGER_OP_HELLO };
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	int n;

	if (uffd < 0)
		return 100;
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	m.u.hello.flags = UPAGER_HELLO_UFFD;
	m.u.hello.token_addr = (uintptr_t)token;
	n = upager_msg_encode(buf, UPAGER_MSG_MAX, &m);
	if (n <= 0 || fdmsg_send(sock, buf, (size_t)n, &uffd, 1) < 0)
		return 101;
	return answer(sock);
}

Test(protocol, a_userfaultfd_of_another_process_than_the_connected_one_is_refused)
{
	void *token = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int sock = harness_connect_raw(), status;
	pid_t child;

	cr_assert_neq(token, MAP_FAILED);
	cr_assert_geq(sock, 0);
	child = harness_fork();
	if (child == 0)
		_exit(hello_with_childs_userfaultfd(sock, token) == -EPERM ? 0 : 1);
	cr_assert_gt(child, 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the daemon took a userfaultfd for the connected process's memory (%#x)", status);
	close(sock);
	still_serving();
}

/* A connection of our own that said HELLO with a userfaultfd of ours, our token page registered. */
static int hello_raw(void)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	void *token = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)token, PAGE },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct upager_msg m = { .op = UPAGER_OP_HELLO };
	int sock = harness_connect_raw(), n;

	cr_assert_neq(token, MAP_FAILED);
	cr_assert_geq(uffd, 0);
	cr_assert_geq(sock, 0);
	cr_assert_eq(ioctl(uffd, UFFDIO_API, &api), 0);
	cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	m.u.hello.flags = UPAGER_HELLO_UFFD;
	m.u.hello.token_addr = (uintptr_t)token;
	n = upager_msg_encode(buf, UPAGER_MSG_MAX, &m);
	cr_assert_gt(n, 0);
	cr_assert_eq(fdmsg_send(sock, buf, (size_t)n, &uffd, 1), 0);
	cr_assert_eq(answer(sock), 0, "HELLO");
	close(uffd);
	return sock;
}

/*
 * A write(2) under upager-run names its range by file offset with the writer's descriptor
 * (UPAGER_MSYNC_WRITTEN_FILE): the daemon takes it, a descriptor open for writing only; it refused
 * every MSYNC that came with a descriptor (EBADF), and the write showed in others' mappings only
 * when a file event came.
 */
Test(protocol, a_write_is_named_by_file_offset_with_a_descriptor_open_for_writing)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	char path[512];
	int rw = make_pattern_file("written", 4 * PAGE, path), ro = open(path, O_RDONLY);
	int sock = hello_raw();
	struct upager_msg m = { .op = UPAGER_OP_MSYNC };
	size_t n;

	cr_assert_geq(ro, 0);
	m.u.msync.addr = PAGE + 10;
	m.u.msync.length = 100;
	m.u.msync.flags = UPAGER_MSYNC_WRITTEN_FILE;
	n = encode(&m, buf);
	cr_assert_eq(fdmsg_send(sock, buf, n, &rw, 1), 0);
	cr_assert_eq(answer(sock), 0, "a descriptor open for writing is taken");
	cr_assert_eq(fdmsg_send(sock, buf, n, &ro, 1), 0);
	cr_assert_eq(answer(sock), -EBADF, "one open for reading only is not");
	close(sock);
	close(ro);
	close(rw);
	still_serving();
}
