// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Figure 1: the latency of one fault on a random page that the daemon has in its cache already,
 * next to the floor serving the same page from its memory. A first mapping touches every page and
 * stays (the daemon frees a file's cache with its last mapping); a second mapping is then read at
 * random pages, each first touch a fault, with a clock reading on each side. Ours and the floors
 * take turns over a few rounds of fresh mappings. Every figure is taken twice: free to run
 * anywhere, and with the client and the daemon (or the floor's handler) pinned to one CPU.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <upager.h>

#include "bench.h"

/* The latencies of one way of serving faults, pooled over the rounds. */
struct latency {
	uint64_t *lat;
	unsigned n;
	uint64_t p50, p99;
	bool ok;
	int err;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Touch @n pages of @m in the order of @perm, with a clock reading on each side of each touch, and
 * append the latencies to @l; clear l->ok if a byte read was wrong.
 */
static void sample(const char *m, const uint32_t *perm, unsigned n, struct latency *l)
{
	uint64_t *lat = l->lat + l->n;
	uint8_t *vals = malloc(n);

	if (!vals) {
		l->err = -ENOMEM;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const volatile uint8_t *q = (const volatile uint8_t *)(m + (size_t)perm[i] * PAGE);
		uint64_t t0 = now_ns();

		vals[i] = *q;
		lat[i] = now_ns() - t0;
	}
	for (unsigned i = 0; i < n; i++)
		l->ok &= vals[i] == page_byte(perm[i]);
	l->n += n;
	free(vals);
}

static void random_upager(int fd, const uint32_t *perm, unsigned n, int cpu, struct latency *l)
{
	char *m;

	pin_with(cpu, daemon_pid());
	m = upager_mmap(NULL, cfg.rnd, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		l->err = -errno;
	} else {
		sample(m, perm, n, l);
		upager_munmap(m, cfg.rnd);
	}
	unpin_with(cpu, daemon_pid());
}

static void random_floor(int fd, size_t block, const uint32_t *perm, unsigned n, int cpu,
			 struct latency *l)
{
	struct floor f;
	int ret = floor_start(&f, fd, cfg.rnd, block, FLOOR_MEMORY);

	if (ret < 0) {
		l->err = ret;
		return;
	}
	pin_with(cpu, f.pid);
	sample(f.area, perm, n, l);
	unpin_with(cpu, f.pid);
	floor_stop(&f);
}

static void percentiles(struct latency *l)
{
	if (l->err || l->n == 0)
		return;
	qsort(l->lat, l->n, sizeof(*l->lat), cmp_u64);
	l->p50 = l->lat[l->n / 2];
	l->p99 = l->lat[(size_t)l->n * 99 / 100];
}

/* p50 and p99 rows of ours next to a floor; the targets apply to the floor at 4 KiB. */
static void latency_rows(const char *pin, const struct latency *ours, const struct latency *fl,
			 size_t block, bool target)
{
	const char *what[2] = { "p50", "p99" };
	const double limit[2] = { 1.2, 2.0 };

	for (int k = 0; k < 2; k++) {
		char name[48], o[48], r[64], t[24];
		double a = (double)(k ? ours->p99 : ours->p50);
		double b = (double)(k ? fl->p99 : fl->p50);

		snprintf(name, sizeof(name), "1 random fault %s, %s", what[k], pin);
		if (ours->err || fl->err) {
			add_error_row(name, ours->err ? "upager_mmap" : "the floor",
				      ours->err ? ours->err : fl->err);
			continue;
		}
		fmt_time(o, sizeof(o), a);
		snprintf(r, sizeof(r), "%s floor %zuK", fmt_time(t, sizeof(t), b), block / KIB);
		add_row(name, o, r, a / b, target ? '<' : 0, limit[k], ours->ok && fl->ok, true,
			true);
	}
}

/*
 * One pinning: ours, the floor at 4 KiB and at 64 KiB, in turns over cfg.rounds rounds of fresh
 * mappings, each round on its own slice of @perm, so that a change of conditions during the figure
 * (where the scheduler happens to run the daemon) falls on all three alike.
 */
static void random_pinning(int fd, const uint32_t *perm, unsigned n, int cpu)
{
	unsigned rounds = cfg.quick ? 2 : 4, per = n / rounds;
	struct latency v[3] = { { 0 } };
	char pin[24];

	for (int k = 0; k < 3; k++) {
		v[k].lat = malloc(n * sizeof(*v[k].lat));
		v[k].ok = true;
		if (!v[k].lat)
			v[k].err = -ENOMEM;
	}
	for (unsigned r = 0; r < rounds && !v[0].err && !v[1].err && !v[2].err; r++) {
		const uint32_t *slice = perm + (size_t)r * per;

		random_upager(fd, slice, per, cpu, &v[0]);
		random_floor(fd, 4 * KIB, slice, per, cpu, &v[1]);
		random_floor(fd, 64 * KIB, slice, per, cpu, &v[2]);
	}
	for (int k = 0; k < 3; k++)
		percentiles(&v[k]);
	if (cpu >= 0)
		snprintf(pin, sizeof(pin), "pinned CPU %d", cpu);
	else
		snprintf(pin, sizeof(pin), "unpinned");
	latency_rows(pin, &v[0], &v[1], 4 * KIB, true);
	latency_rows(pin, &v[0], &v[2], 64 * KIB, false);
	for (int k = 0; k < 3; k++)
		free(v[k].lat);
}

/** fig_random() - figure 1 */
void fig_random(void)
{
	unsigned pages = (unsigned)(cfg.rnd / PAGE), n = cfg.samples < pages ? cfg.samples : pages;
	uint32_t *perm = malloc(pages * sizeof(*perm));
	uint64_t seed = 0x2545f4914f6cdd1dULL;
	int fd = open_ro(cfg.rnd_path);
	bool ok = true;
	char *warm;

	progress("figure 1: random faults, %u samples over %zu MiB, daemon cache warm", n,
		 cfg.rnd / MIB);
	if (!perm) {
		add_error_row("1 random fault", "malloc", -ENOMEM);
		goto out;
	}
	/* Distinct pages in a random order: each touch is the first of its page. */
	for (unsigned i = 0; i < pages; i++)
		perm[i] = i;
	for (unsigned i = pages - 1; i > 0; i--) {
		unsigned j = (unsigned)(xorshift(&seed) % (i + 1));
		uint32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	warm = upager_warm(fd, cfg.rnd, &ok);
	if (warm == MAP_FAILED || !ok) {
		add_error_row("1 random fault", "warming the cache",
			      warm == MAP_FAILED ? -errno : -EIO);
		if (warm != MAP_FAILED)
			upager_munmap(warm, cfg.rnd);
		goto out;
	}
	random_pinning(fd, perm, n, -1);
	random_pinning(fd, perm, n, cpu_pick());
	upager_munmap(warm, cfg.rnd);
out:
	close(fd);
	free(perm);
}
