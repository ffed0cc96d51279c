// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-growsdown: the cost of a grown page of a MAP_GROWSDOWN mapping of upager next to
 * the kernel's own MAP_GROWSDOWN, in the same run: a mapping of one page is grown page by page,
 * downward, by writing one byte to the page right below it, PAGES times; each round has fresh
 * mappings and the figure is the median of the rounds. For reference, the first touch of an
 * ordinary anonymous page (no growth), downward too, of upager and of the kernel: what is left
 * over is what the growth itself adds.
 *
 * Usage: upager-bench-growsdown [--quick] [--upagerd PATH]   ($UPAGERD is the default path)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "upager.h"

#define PAGE 4096UL
#define MAX_ROUNDS 15
/* The room kept free below the kernel's mapping beyond what it grows into: stack_guard_gap. */
#define KERNEL_GAP (1UL << 20)

static char dir[64] = "/tmp/upager-growsdown-XXXXXX";

/* Exit with a message; the daemon and the folder go at exit. */
static void die(const char *what)
{
	fprintf(stderr, "upager-bench-growsdown: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Write one byte to each of the pages [top - pages * PAGE, top), downward: ns per page. */
static double touch_down(char *top, size_t pages)
{
	double t0 = (double)now_ns();

	for (size_t i = 1; i <= pages; i++)
		*(volatile char *)(top - i * PAGE) = 1;
	return ((double)now_ns() - t0) / (double)pages;
}

/* Every page below top was grown or faulted in zero-filled and holds the byte written. */
static void check(const char *top, size_t pages, const char *what)
{
	for (size_t i = 1; i <= pages; i++) {
		const char *pg = top - i * PAGE;

		if (pg[0] != 1 || pg[1] != 0 || pg[PAGE - 1] != 0) {
			fprintf(stderr,
				"upager-bench-growsdown: %s: page %zu below the top is wrong\n",
				what, i);
			exit(1);
		}
	}
}

/*
 * The kernel's MAP_GROWSDOWN mapping of one page with the room to grow by pages below it, and the
 * kernel's stack_guard_gap below that, free: reserved first, so that nothing else is placed there.
 */
static char *kernel_growsdown(size_t pages)
{
	size_t below = pages * PAGE + KERNEL_GAP;
	char *area, *p;

	area = mmap(NULL, below + PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		    0);
	if (area == MAP_FAILED)
		die("mmap (reserve)");
	p = mmap(area + below, PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
	if (p == MAP_FAILED)
		die("mmap MAP_GROWSDOWN (kernel)");
	munmap(area, below);
	return p;
}

struct figures {
	double k_grow, u_grow, k_anon, u_anon;
};

static void round_(size_t pages, struct figures *f, bool verify)
{
	char *k, *u;

	/* The kernel's MAP_GROWSDOWN. */
	k = kernel_growsdown(pages);
	f->k_grow = touch_down(k, pages);
	if (verify)
		check(k, pages, "kernel MAP_GROWSDOWN");
	munmap(k - pages * PAGE, (pages + 1) * PAGE);

	/* upager's: the guard page right below the mapping is touched each time. */
	u = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	if (u == MAP_FAILED)
		die("upager_mmap MAP_GROWSDOWN");
	f->u_grow = touch_down(u, pages);
	if (verify)
		check(u, pages, "upager MAP_GROWSDOWN");
	if (upager_munmap(u, PAGE) < 0) /* goes whole, grown pages and guard page too */
		die("upager_munmap MAP_GROWSDOWN");

	/* For reference: the first touch of an ordinary anonymous page, downward too. */
	k = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k == MAP_FAILED)
		die("mmap");
	f->k_anon = touch_down(k + pages * PAGE, pages);
	munmap(k, pages * PAGE);
	u = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (u == MAP_FAILED)
		die("upager_mmap");
	f->u_anon = touch_down(u + pages * PAGE, pages);
	if (verify)
		check(u + pages * PAGE, pages, "upager anonymous");
	if (upager_munmap(u, pages * PAGE) < 0)
		die("upager_munmap");
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of field off of the rounds, and their lowest and highest. */
static double median_of(const struct figures *f, int n, size_t off, double *lo, double *hi)
{
	double v[MAX_ROUNDS];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&f[i] + off);
	qsort(v, (size_t)n, sizeof(v[0]), cmp);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void row(const char *what, const struct figures *f, int n, size_t u_off, size_t k_off)
{
	double ulo, uhi, klo, khi;
	double u = median_of(f, n, u_off, &ulo, &uhi), k = median_of(f, n, k_off, &klo, &khi);

	printf("%-40s %8.2f %8.2f %8.2fx   (upager %.2f-%.2f, kernel %.2f-%.2f)\n", what, u / 1e3,
	       k / 1e3, u / k, ulo / 1e3, uhi / 1e3, klo / 1e3, khi / 1e3);
}

int main(int argc, char **argv)
{
	const char *bin;
	struct figures f[MAX_ROUNDS], warm;
	struct rlimit rl;
	bool quick;
	size_t pages;
	int rounds;
	double u, k, ua, ka, lo, hi;

	bin = daemon_args(argc, argv, &quick);
	pages = quick ? 1024 : 4096;
	rounds = quick ? 3 : 9;
	alarm(quick ? 120 : 600);

	/* Both mappings may grow as far as RLIMIT_STACK: 1 GiB, well above what is grown here. */
	if (getrlimit(RLIMIT_STACK, &rl) < 0)
		die("getrlimit");
	rl.rlim_cur = 1UL << 30;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
		rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur < (pages + 1) * PAGE) {
		errno = EPERM;
		die("RLIMIT_STACK hard limit too low");
	}
	if (setrlimit(RLIMIT_STACK, &rl) < 0)
		die("setrlimit RLIMIT_STACK");

	{
		int ret = daemon_start_private(bin, dir);

		if (ret < 0) {
			errno = -ret;
			die("starting upagerd");
		}
	}
	/* Before the first MAP_GROWSDOWN mapping: the client's growth thread, started then,
	 * inherits it. */
	pin_pair(0, daemon_pid());

	printf("MAP_GROWSDOWN: %zu pages (%zu MiB) grown one by one downward, %d rounds, "
	       "median (times in us/page)\n",
	       pages, pages * PAGE >> 20, rounds);
	printf("client, its growth thread and the daemon pinned to CPU 0 (see "
	       "docs/benchmarks.md)\n");

	/* A round not counted: the growth thread starts, the daemon's and our heaps settle. */
	round_(quick ? 64 : 256, &warm, true);
	for (int i = 0; i < rounds; i++)
		round_(pages, &f[i], i == 0);

	printf("%-40s %8s %8s %9s\n", "figure", "upager", "kernel", "ratio");
	row("grown page, MAP_GROWSDOWN", f, rounds, offsetof(struct figures, u_grow),
	    offsetof(struct figures, k_grow));
	row("first touch, anonymous (no growth)", f, rounds, offsetof(struct figures, u_anon),
	    offsetof(struct figures, k_anon));
	u = median_of(f, rounds, offsetof(struct figures, u_grow), &lo, &hi);
	k = median_of(f, rounds, offsetof(struct figures, k_grow), &lo, &hi);
	ua = median_of(f, rounds, offsetof(struct figures, u_anon), &lo, &hi);
	ka = median_of(f, rounds, offsetof(struct figures, k_anon), &lo, &hi);
	printf("%-40s %8.2f %8.2f\n", "growth itself (grown - first touch)", (u - ua) / 1e3,
	       (k - ka) / 1e3);
	printf("upager grows %.0f pages a second, the kernel %.0f\n", 1e9 / u, 1e9 / k);
	return 0;
}
