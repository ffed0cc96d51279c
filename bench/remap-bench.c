// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-remap: upager_remap_file_pages() next to the kernel's remap_file_pages() in the
 * same run: the cost of a one-page remap while the kernel is still below vm.max_map_count, the
 * cost of ours at 1,000,000 remapped ranges where the kernel can no longer go, and the cost of the
 * first touch of a remapped page.
 *
 * Usage: upager-bench-remap [--quick] [--upagerd PATH]   ($UPAGERD is the default path)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "upager.h"

#define PAGE 4096UL

static char dir[64] = "/tmp/upager-remap-XXXXXX";

/* Exit with a message; the daemon and the folder go at exit. */
static void die(const char *what)
{
	fprintf(stderr, "upager-bench-remap: %s: %s\n", what, strerror(errno));
	exit(1);
}

typedef int (*remap_fn)(void *addr, size_t size, int prot, size_t pgoff, int flags);

static int kernel_remap(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	return remap_file_pages(addr, size, prot, pgoff, flags);
}

/* Remap alternating single pages [from, to) of m; return ns per remap, or -1 at the first error. */
static double remaps(remap_fn fn, char *m, size_t from, size_t to, int flags, size_t *done)
{
	double t0 = (double)now_ns();

	for (size_t j = from; j < to; j++) {
		if (fn(m + 2 * j * PAGE, PAGE, 0, 2 * j + 1, flags) < 0) {
			*done = j;
			return -1;
		}
	}
	*done = to;
	return ((double)now_ns() - t0) / (double)(to - from);
}

/* Touch the remapped pages [from, to): ns per first touch. */
static double touches(const char *m, size_t from, size_t to)
{
	double t0 = (double)now_ns();

	for (size_t j = from; j < to; j++)
		(void)*(volatile const char *)(m + 2 * j * PAGE);
	return ((double)now_ns() - t0) / (double)(to - from);
}

/* Read file pages [first, first + count) into the kernel's page cache. */
static void warm(int fd, size_t first, size_t count)
{
	static char buf[64 * PAGE];

	for (size_t p = first; p < first + count; p += 64)
		if (pread(fd, buf, sizeof(buf), (off_t)(p * PAGE)) < 0)
			die("pread");
}

/* A row at the last ranges: upager against its own cost below max_map_count (target: 2x). */
static void far_row(const char *what, double ours, double below, bool kernel_failed)
{
	printf("%-48s %10.2f %10s    (%.2fx its own cost below max_map_count: %s)\n", what,
	       ours / 1e3, kernel_failed ? "failed" : "-", ours / below,
	       ours <= 2 * below ? "kept" : "NOT kept");
}

static void row(const char *what, double ours, double kernel, double target, const char *unit)
{
	double ratio = ours / kernel;

	printf("%-48s %10.2f %10.2f %s %7.2fx  %s\n", what, ours / 1e3, kernel / 1e3, unit, ratio,
	       target <= 0	 ? ""
	       : ratio <= target ? "met"
				 : "NOT MET");
}

int main(int argc, char **argv)
{
	const char *bin;
	bool quick;
	size_t ranges, sample, kdone, udone, kernel_limit;
	size_t pages;
	char path[128];
	double k_nb, k_pop, u_nb, u_pop, u_far, u_far_pop, k_touch, u_touch, k_first, u_first;
	char *km, *um;
	int fd, kernel_errno;

	bin = daemon_args(argc, argv, &quick);
	ranges = quick ? 100000 : 1000000;
	sample = quick ? 5000 : 10000; /* 3 samples stay below the kernel's limit */
	pages = 2 * ranges + 2;
	alarm(quick ? 120 : 600);
	{
		int ret = daemon_start_private(bin, dir);

		if (ret < 0) {
			errno = -ret;
			die("starting upagerd");
		}
	}

	/* A sparse file as long as the mapping: 2 pages per remapped range. */
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) < 0)
		die("file");

	printf("remap of one page, alternating pages, %zu ranges (times in us)\n", ranges);
	printf("client and daemon pinned to CPU 0 (see docs/benchmarks.md)\n");
	pin_pair(0, daemon_pid());
	printf("%-48s %10s %10s    %8s\n", "figure", "upager", "kernel", "ratio");

	km = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	um = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (km == MAP_FAILED || um == MAP_FAILED)
		die("mmap");

	/* The first remap of a mapping makes it nonlinear (upager maps its view over it). */
	k_first = remaps(kernel_remap, km, 0, 1, MAP_NONBLOCK, &kdone);
	u_first = remaps(upager_remap_file_pages, um, 0, 1, MAP_NONBLOCK, &udone);
	if (k_first < 0 || u_first < 0)
		die("remap");
	row("first remap of the mapping, MAP_NONBLOCK", u_first, k_first, 0, "us");
	/* While the kernel is far below vm.max_map_count: the first ranges. */
	k_nb = remaps(kernel_remap, km, 1, sample, MAP_NONBLOCK, &kdone);
	u_nb = remaps(upager_remap_file_pages, um, 1, sample, MAP_NONBLOCK, &udone);
	if (k_nb < 0 || u_nb < 0)
		die("remap");
	row("remap, MAP_NONBLOCK (below max_map_count)", u_nb, k_nb, 2.0, "us");
	/* Both populate from a warm page cache: a hole the kernel's call reads first makes it
	 * allocate page-cache pages, and ours would then find them there. */
	warm(fd, 2 * sample, 2 * sample);
	k_pop = remaps(kernel_remap, km, sample, 2 * sample, 0, &kdone);
	u_pop = remaps(upager_remap_file_pages, um, sample, 2 * sample, 0, &udone);
	if (k_pop < 0 || u_pop < 0)
		die("remap");
	row("remap, populated (below max_map_count)", u_pop, k_pop, 2.0, "us");

	/* First touch of a remapped page that was not populated. */
	if (remaps(kernel_remap, km, 2 * sample, 3 * sample, MAP_NONBLOCK, &kdone) < 0)
		die("remap");
	if (remaps(upager_remap_file_pages, um, 2 * sample, 3 * sample, MAP_NONBLOCK, &udone) < 0)
		die("remap");
	warm(fd, 4 * sample, 2 * sample);
	k_touch = touches(km, 2 * sample, 3 * sample);
	u_touch = touches(um, 2 * sample, 3 * sample);
	row("first touch of a remapped page", u_touch, k_touch, 0, "us");

	/* On to the full count: the kernel stops at vm.max_map_count, upager goes on. */
	remaps(kernel_remap, km, 3 * sample, ranges, MAP_NONBLOCK, &kernel_limit);
	kernel_errno = errno;
	remaps(upager_remap_file_pages, um, 3 * sample, ranges - sample, MAP_NONBLOCK, &udone);
	if (udone != ranges - sample)
		die("upager remap");
	u_far = remaps(upager_remap_file_pages, um, ranges - sample, ranges, MAP_NONBLOCK, &udone);
	if (u_far < 0)
		die("upager remap");
	far_row("remap, MAP_NONBLOCK, at the last ranges", u_far, u_nb, kernel_limit < ranges);
	/* The same ranges again, populated, their file pages read into the page cache first. */
	warm(fd, 2 * (ranges - sample), 2 * sample);
	u_far_pop = remaps(upager_remap_file_pages, um, ranges - sample, ranges, 0, &udone);
	if (u_far_pop < 0)
		die("upager remap");
	far_row("remap, populated, at the last ranges", u_far_pop, u_pop, kernel_limit < ranges);
	printf("kernel remap_file_pages stopped after %zu ranges (%s); upager did %zu\n",
	       kernel_limit, kernel_limit < ranges ? strerror(kernel_errno) : "no error", udone);
	printf("upager remaps per second: %.0f below max_map_count, %.0f at %zu ranges\n",
	       1e9 / u_nb, 1e9 / u_far, ranges);
	return 0;
}
