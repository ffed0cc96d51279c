// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-read: what coherence costs a program that read(2)s a file that a live shared
 * mapping maps, upager's next to the kernel's, in the same run. The file is in the page cache; the
 * mapping is made and read first, then a descriptor is opened (after the mapping: the kernel gives
 * only such descriptors fanotify's pre-content events, see daemon/watch.c) and the whole file is
 * read with pread(2), 4 KiB at a time: with the mapping clean, then after the mapping wrote one
 * byte in each page (upager writes each page back before the read of it goes ahead; the kernel's
 * read sees the page cache). Each figure is the median of the runs, us per read; client and daemon
 * are pinned to one CPU. Without pre-content events (no CAP_SYS_ADMIN, Linux before 6.14) the
 * second pass reads the file as it was: the last row counts such reads.
 *
 * Usage: upager-bench-read [--quick] [--upagerd PATH]   ($UPAGERD is the default path)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "fatal.h"
#include "upager.h"

#define RUNS 5

static char dir[64] = "/tmp/upager-read-XXXXXX";

static void die(const char *what)
{
	fatal("%s: %s", what, strerror(errno));
}

/* ns per pread(2) of a page of the whole file through a new descriptor of @path; reads that do
 * not show @want (the mapping's byte) are counted in *@stale. */
static double read_pass(const char *path, size_t pages, char want, size_t *stale)
{
	static char buf[PAGE];
	int fd = open(path, O_RDONLY);
	uint64_t t0;
	double ns;

	if (fd < 0)
		die("open");
	t0 = now_ns();
	for (size_t p = 0; p < pages; p++)
		if (pread(fd, buf, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE)
			die("pread");
		else
			*stale += buf[0] != want;
	ns = (double)(now_ns() - t0) / (double)pages;
	close(fd);
	return ns;
}

/* One run: the clean pass and the pass after the mapping wrote every page. */
static void run(bool kernel, int fd, const char *path, size_t pages, double out[2], size_t *stale)
{
	volatile char *m = (kernel ? mmap : upager_mmap)(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
							 MAP_SHARED, fd, 0);
	long sum = 0;

	if (m == MAP_FAILED)
		die("mmap");
	for (size_t p = 0; p < pages; p++)
		sum += m[p * PAGE];
	if (sum != 0)
		die("the file's bytes");
	out[0] = read_pass(path, pages, 0, stale);
	for (size_t p = 0; p < pages; p++)
		m[p * PAGE] = 1;
	out[1] = read_pass(path, pages, 1, stale);
	for (size_t p = 0; p < pages; p++)
		m[p * PAGE] = 0;
	if ((kernel ? munmap : upager_munmap)((void *)m, pages * PAGE) < 0)
		die("munmap");
}

int main(int argc, char **argv)
{
	const char *what[2] = { "pread 4 KiB, mapping clean", "pread 4 KiB, mapping wrote it" };
	double k[RUNS][2], u[RUNS][2];
	size_t k_stale = 0, u_stale = 0;
	char path[128];
	const char *bin;
	size_t pages;
	int fd, runs;
	bool quick;

	bin = daemon_args(argc, argv, &quick);
	pages = quick ? 4096 : 32768; /* 16 MiB or 128 MiB */
	runs = quick ? 1 : RUNS;
	alarm(quick ? 60 : 300);
	fatal_start_daemon("upager-bench-read", bin, dir);
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) < 0 ||
	    file_read_all(fd, pages * PAGE) < 0)
		die("file");
	pin_pair(0, daemon_pid());
	for (int r = 0; r < runs; r++) {
		run(true, fd, path, pages, k[r], &k_stale);
		run(false, fd, path, pages, u[r], &u_stale);
		usleep(200000); /* the daemon lets the file go: no mark left for the kernel's run */
	}
	printf("read(2) of a %zu MiB file in the page cache that a live shared mapping maps; "
	       "median of %d runs, us per read\nclient and daemon pinned to CPU 0\n",
	       pages * PAGE >> 20, runs);
	printf("%-32s %10s %10s %8s\n", "figure", "upager", "kernel", "ratio");
	for (int f = 0; f < 2; f++) {
		double col[2][RUNS];

		for (int r = 0; r < runs; r++) {
			col[0][r] = u[r][f] / 1e3;
			col[1][r] = k[r][f] / 1e3;
		}
		col[0][0] = median(col[0], (unsigned)runs);
		col[1][0] = median(col[1], (unsigned)runs);
		printf("%-32s %10.2f %10.2f %7.2fx\n", what[f], col[0][0], col[1][0],
		       col[0][0] / col[1][0]);
	}
	printf("%-32s %10zu %10zu\n", "reads without the mapping's byte", u_stale, k_stale);
	return 0;
}
