// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-mappings: what a request costs as a client holds more mappings, next to the kernel
 * in the same run. One process makes N one-page private anonymous mappings, touches each, then
 * unmaps each; the figures are the mean cost of one mmap, one first touch and one munmap at each
 * N, and how much they grow from the smallest N to the largest (the goal: within 1.5x). Then the
 * cost of munmap of a shared mapping of a sparse file with 64 pages written, at sizes from 1 GiB
 * up: it should follow the pages touched, not the size of the range. Last, the mappings again with
 * the daemon under an fd store, as under systemd: $NOTIFY_SOCKET is a datagram socket of ours,
 * drained by a thread that closes the descriptors the daemon stores, and the daemon saves its
 * tables for a restart (daemon/state.c) as it serves.
 *
 * Client and daemon are pinned to one CPU (see docs/benchmarks.md).
 *
 * Usage: upager-bench-mappings [--quick] [--upagerd PATH]   ($UPAGERD is the default path)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "upager.h"

#define TOUCHED 64

static char dir[64] = "/tmp/upager-mappings-XXXXXX";

static void die(const char *what)
{
	fprintf(stderr, "upager-bench-mappings: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct costs {
	double map, touch, unmap; /* ns per call */
};

typedef void *(*map_fn)(void *, size_t, int, int, int, off_t);
typedef int (*unmap_fn)(void *, size_t);

/* N one-page mappings made, touched and unmapped with the given calls. */
static struct costs run(size_t n, map_fn map, unmap_fn unmap, const char *what)
{
	char **v = calloc(n, sizeof(*v));
	struct costs c;
	uint64_t t0;

	if (!v)
		die("calloc");
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		v[i] = map(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (v[i] == MAP_FAILED)
			die(what);
	}
	c.map = (double)(now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		*(volatile char *)v[i] = (char)i;
	c.touch = (double)(now_ns() - t0) / (double)n;
	for (size_t i = 0; i < n; i++)
		if (v[i][0] != (char)i) {
			fprintf(stderr, "upager-bench-mappings: %s: mapping %zu is wrong\n", what,
				i);
			exit(1);
		}
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		if (unmap(v[i], PAGE) < 0)
			die(what);
	c.unmap = (double)(now_ns() - t0) / (double)n;
	free(v);
	return c;
}

/* A service manager's notify socket that takes what the daemon sends and closes the descriptors. */
static void *drain(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096], cbuf[CMSG_SPACE(253 * sizeof(int))];

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c;

		if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				     i++)
					close(((int *)(void *)CMSG_DATA(c))[i]);
	}
}

/* $NOTIFY_SOCKET for the daemons started from now on. */
static void notify_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_t t;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("notify socket");
	if (pthread_create(&t, NULL, drain, (void *)(intptr_t)fd))
		die("drain thread");
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
}

/* The mappings at each N, upager's next to the kernel's, and how they grow. */
static void rows(bool quick, int nc)
{
	static const size_t counts[] = { 1000, 4000, 16000, 32000 };
	struct costs u[4], k[4];

	pin_pair(0, daemon_pid());
	/* Not counted: heaps and the connection settle. */
	run(100, upager_mmap, upager_munmap, "upager warm-up");
	for (int i = 0; i < nc; i++) {
		size_t n = quick && i == 1 ? 32000 : counts[i];

		k[i] = run(n, mmap, munmap, "kernel");
		u[i] = run(n, upager_mmap, upager_munmap, "upager");
		printf("N = %5zu   mmap %7.2f us (kernel %5.2f)   touch %6.2f us (kernel %5.2f)   "
		       "munmap %7.2f us (kernel %5.2f)\n",
		       n, u[i].map / 1e3, k[i].map / 1e3, u[i].touch / 1e3, k[i].touch / 1e3,
		       u[i].unmap / 1e3, k[i].unmap / 1e3);
	}
	printf("%-34s %8s %8s\n", "growth from the first N to the last", "upager", "kernel");
	printf("%-34s %7.2fx %7.2fx\n", "mmap", u[nc - 1].map / u[0].map, k[nc - 1].map / k[0].map);
	printf("%-34s %7.2fx %7.2fx\n", "touch", u[nc - 1].touch / u[0].touch,
	       k[nc - 1].touch / k[0].touch);
	printf("%-34s %7.2fx %7.2fx\n", "munmap", u[nc - 1].unmap / u[0].unmap,
	       k[nc - 1].unmap / k[0].unmap);
}

/* munmap of a shared mapping of a sparse file of size bytes with TOUCHED pages written: ns. */
static double sparse_unmap(size_t size, bool upager)
{
	char path[128];
	uint64_t t0, t;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "%s/sparse", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		die("sparse file");
	p = upager ? upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
		   : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		die("mmap of the sparse file");
	for (size_t i = 0; i < TOUCHED; i++)
		p[i * (size / TOUCHED)] = 1;
	t0 = now_ns();
	if ((upager ? upager_munmap(p, size) : munmap(p, size)) < 0)
		die("munmap of the sparse file");
	t = now_ns() - t0;
	close(fd);
	unlink(path);
	return (double)t;
}

/* The rows and the sparse files against a daemon started by hand. */
static void plain(bool quick)
{
	static const size_t sizes[] = { 1UL << 30, 64UL << 30, 1UL << 40 };
	int ns = quick ? 2 : 3;

	rows(quick, quick ? 2 : 4);
	printf("munmap of a shared mapping of a sparse file, %d pages written:\n", TOUCHED);
	for (int i = 0; i < ns; i++) {
		double ut = sparse_unmap(sizes[i], true), kt = sparse_unmap(sizes[i], false);

		printf("  %5zu GiB   upager %9.1f us   kernel %9.1f us   ratio %7.1fx\n",
		       sizes[i] >> 30, ut / 1e3, kt / 1e3, ut / kt);
	}
}

/*
 * Each daemon in a child of its own: a process that mapped through upager waits at fork(2) for
 * its daemon to read the fork event, and a stopped daemon never does.
 */
static void in_child(const char *bin, bool quick, bool fdstore)
{
	pid_t child = fork();
	int ret, status;

	if (child < 0)
		die("fork");
	if (child > 0) {
		if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			exit(1);
		return;
	}
	if (fdstore)
		notify_socket();
	ret = daemon_start(bin, dir);
	if (ret < 0) {
		errno = -ret;
		die("starting upagerd");
	}
	if (fdstore) {
		printf("under an fd store (the tables saved for a restart, as under systemd):\n");
		rows(quick, quick ? 2 : 4);
	} else {
		plain(quick);
	}
	daemon_stop();
	exit(0);
}

int main(int argc, char **argv)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	const char *bin;
	bool quick;
	char cmd[160];

	bin = daemon_args(argc, argv, &quick);
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(quick ? 180 : 900);
	setrlimit(RLIMIT_NOFILE, &rl);
	if (!mkdtemp(dir))
		die("mkdtemp");
	in_child(bin, quick, false);
	in_child(bin, quick, true);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
	return 0;
}
