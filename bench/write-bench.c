// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-write: writes through a shared file mapping of upager next to the kernel's mmap, in
 * the same run. A mapping of a file that the page cache holds is read page by page (one byte per
 * page), then written, one byte per page: in order, and in a scattered order. The write passes
 * measure what the first write to a page that came in for a read costs: for the kernel a
 * write-protect fault and page_mkwrite, for upager a write-protect fault that the daemon serves
 * (the page is then marked for write-back and the file's times are set), and for a writer in order
 * a window of the following pages made writable with it. Each figure is the median of the runs,
 * each run on fresh mappings; client and daemon are pinned to one CPU.
 *
 * The file is sparse (a hole the size of the file), so that upager's first write to each 64 KiB
 * also reserves the file's blocks (daemon/reserve.c); with --dense it is written full of zeroes
 * first, and has no hole.
 *
 * With --private the mapping is MAP_PRIVATE: a first write copies the page, for the kernel in its
 * write-protect fault, for upager after a write-protect fault the daemon serves, by which it counts
 * the copy in its budget (with a window of pages around it, or ahead of a writer in order).
 *
 * Usage: upager-bench-write [--quick] [--dense] [--private] [--upagerd PATH]
 * ($UPAGERD is the default path)
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
#include "upager.h"

#define PAGE 4096UL
#define RUNS 5

static char dir[64] = "/tmp/upager-write-XXXXXX";

static void die(const char *what)
{
	fprintf(stderr, "upager-bench-write: %s: %s\n", what, strerror(errno));
	exit(1);
}

typedef void *(*map_fn)(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
typedef int (*unmap_fn)(void *addr, size_t length);

/* One run: ns for the read pass, the write pass in order and the scattered one (on two halves). */
static int map_type = MAP_SHARED;

static void run(map_fn map, unmap_fn unmap, int fd, size_t pages, double out[3])
{
	volatile char *m = map(NULL, pages * PAGE, PROT_READ | PROT_WRITE, map_type, fd, 0);
	size_t half = pages / 2;
	uint64_t t0, t1, t2, t3;
	long sum = 0;

	if (m == MAP_FAILED)
		die("mmap");
	t0 = now_ns();
	for (size_t p = 0; p < pages; p++)
		sum += m[p * PAGE];
	t1 = now_ns();
	for (size_t p = 0; p < half; p++)
		m[p * PAGE] = (char)p;
	t2 = now_ns();
	/* 7919 is prime to half (a power of two): every page of the second half once. */
	for (size_t k = 0; k < half; k++)
		m[(half + (k * 7919) % half) * PAGE] = (char)k;
	t3 = now_ns();
	if (sum != 0)
		die("the file's bytes");
	out[0] = (double)(t1 - t0) / (double)pages;
	out[1] = (double)(t2 - t1) / (double)half;
	out[2] = (double)(t3 - t2) / (double)half;
	if (unmap((void *)m, pages * PAGE) < 0)
		die("munmap");
}

/* The file anew: @pages of zeroes, a hole or (@dense) written, all in the page cache. */
static void file_reset(int fd, size_t pages, bool dense)
{
	static char zeroes[1 << 20];

	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)(pages * PAGE)) < 0)
		die("file");
	for (size_t off = 0; dense && off < pages * PAGE; off += sizeof(zeroes))
		if (pwrite(fd, zeroes, sizeof(zeroes), (off_t)off) != (ssize_t)sizeof(zeroes))
			die("file");
	if ((dense && fsync(fd) < 0) || file_read_all(fd, pages * PAGE) < 0)
		die("file");
}

int main(int argc, char **argv)
{
	const char *bin;
	bool quick, dense = false;
	size_t pages;
	double k[RUNS][3], u[RUNS][3];
	const char *what[3] = { "read, one byte per page", "first write, in order",
				"first write, scattered" };
	char path[128];
	int fd, ret, runs;

	for (int i = 1; i < argc; i++) {
		dense |= !strcmp(argv[i], "--dense");
		if (!strcmp(argv[i], "--private"))
			map_type = MAP_PRIVATE;
	}
	bin = daemon_args(argc, argv, &quick);
	pages = quick ? 4096 : 32768; /* 16 MiB or 128 MiB */
	runs = quick ? 1 : RUNS;
	alarm(quick ? 60 : 300);
	ret = daemon_start_private(bin, dir);
	if (ret < 0) {
		errno = -ret;
		die("starting upagerd");
	}
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("file");
	file_reset(fd, pages, dense);
	pin_pair(0, daemon_pid());
	for (int r = 0; r < runs; r++) {
		/* The writes leave the bytes nonzero: zero them again for the next read pass. */
		run(mmap, munmap, fd, pages, k[r]);
		file_reset(fd, pages, dense);
		run(upager_mmap, upager_munmap, fd, pages, u[r]);
		file_reset(fd, pages, dense);
	}
	printf("a %s mapping of %zu MiB of a %s file in the page cache, read then written; "
	       "median of %d runs, us per page\nclient and daemon pinned to CPU 0\n",
	       map_type == MAP_SHARED ? "shared" : "private", pages * PAGE >> 20,
	       dense ? "written (no hole)" : "sparse", runs);
	printf("%-32s %10s %10s %8s\n", "figure", "upager", "kernel", "ratio");
	for (int f = 0; f < 3; f++) {
		double kv[RUNS], uv[RUNS], km, um;

		for (int r = 0; r < runs; r++) {
			kv[r] = k[r][f];
			uv[r] = u[r][f];
		}
		km = median(kv, (unsigned)runs);
		um = median(uv, (unsigned)runs);
		printf("%-32s %10.2f %10.2f %7.2fx\n", what[f], um / 1e3, km / 1e3, um / km);
	}
	return 0;
}
