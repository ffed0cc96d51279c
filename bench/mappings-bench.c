// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-mappings: what a request costs as a client holds more mappings, next to the kernel
 * in the same run. One process makes N one-page private anonymous mappings, touches each, then
 * unmaps each; the figures are the mean cost of one mmap, one first touch and one munmap at each
 * N, and how much they grow from the smallest N to the largest (the goal: within 1.5x). Then the
 * cost of munmap of a shared mapping of a sparse file with 64 pages written, at sizes from 1 GiB
 * up: it should follow the pages touched, not the size of the range.
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
#include <sys/resource.h>
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

int main(int argc, char **argv)
{
	static const size_t counts[] = { 1000, 4000, 16000, 32000 };
	static const size_t sizes[] = { 1UL << 30, 64UL << 30, 1UL << 40 };
	struct costs u[4], k[4];
	struct rlimit rl = { 1 << 20, 1 << 20 };
	const char *bin;
	bool quick;
	int nc, ns;

	bin = daemon_args(argc, argv, &quick);
	nc = quick ? 2 : 4;
	ns = quick ? 2 : 3;
	alarm(quick ? 120 : 600);
	setrlimit(RLIMIT_NOFILE, &rl);
	{
		int ret = daemon_start_private(bin, dir);

		if (ret < 0) {
			errno = -ret;
			die("starting upagerd");
		}
	}
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

	printf("munmap of a shared mapping of a sparse file, %d pages written:\n", TOUCHED);
	for (int i = 0; i < ns; i++) {
		double ut = sparse_unmap(sizes[i], true), kt = sparse_unmap(sizes[i], false);

		printf("  %5zu GiB   upager %9.1f us   kernel %9.1f us   ratio %7.1fx\n",
		       sizes[i] >> 30, ut / 1e3, kt / 1e3, ut / kt);
	}
	return 0;
}
