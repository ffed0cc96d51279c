// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-anon: anonymous memory 4x the memory budget B, random 4 KiB reads and writes,
 * through upager with `upagerd --memory-max B --swap PATH` and through the kernel with a swap file
 * of its own, in the same run (issue 13, "Benchmark"). Both swap on the same disk (/var/tmp).
 *
 * The kernel: a swap file made here (fallocate, mkswap, swapon; swapoff and removed at the end, on
 * an error or a signal too), a child process in a memory cgroup limited to B with swap allowed,
 * on MAP_PRIVATE|MAP_ANONYMOUS memory and, for information, MAP_SHARED|MAP_ANONYMOUS. Without
 * swapon (a container, no root) the kernel's side is skipped with a message. upager likewise, on
 * upager_mmap(MAP_PRIVATE|MAP_ANONYMOUS) (the target's side: a page-out ends in a DROP to the
 * client's control thread, a page-in is a UFFDIO_COPY of a page read from the store) and, for
 * information, MAP_SHARED|MAP_ANONYMOUS (pages go out of and back into the daemon's memfd): each
 * side an upagerd of its own and a child, both in one cgroup of B plus a headroom, without the
 * kernel's swap, so that the daemon's figures (pages out and in, CPU time) are the side's.
 *
 * Each side maps the memory (timed), writes all of it in order (each word its offset and a
 * version), then does N random page reads and writes, 50/50, the same pages in the same order
 * (fixed seed), each a whole page; every word read is checked. Then the latency of a fault that
 * reads a page back from swap: a write pass over all the memory pushes the first pages out, and
 * pages of the first half are read in a random order, each once, timing the first load of pages
 * that mincore() says are not in memory; once free to run anywhere, once with the client and the
 * daemon pinned to one CPU. Next to it, the disk's own latency: 4 KiB O_DIRECT preads at random
 * offsets of a file on the same disk, free and pinned alike.
 *
 * upagerd is started through this program ("upager-bench-anon --socket PATH", what daemon.c
 * runs), which adds --memory-max and --swap. Needs root. Exit status: 0 when everything was
 * measured, met or not; 1 on an error; 2 on a usage error, a timeout or a signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "fatal.h"
#include "ctl.h"
#include "memcg.h"
#include "options.h"
#include "upager.h"
#include "zipf.h"

#define PROG "upager-bench-anon"
#define RUN_ALARM_S 900
#define MAX_SAMPLES 100000
#define OPS_SEED 0x5eed0a01
#define LATENCY_SEED 0x5eed0a02
#define DISK_SEED 0x5eed0a03

enum side {
	KERNEL_PRIVATE,
	KERNEL_SHARED,
	UPAGER_PRIVATE,
	UPAGER_SHARED,
	N_SIDES
};

static const char *const side_name[N_SIDES] = {
	"kernel MAP_PRIVATE",
	"kernel MAP_SHARED",
	"upager MAP_PRIVATE",
	"upager MAP_SHARED",
};

enum pin {
	FREE,
	PINNED,
	N_PINS
};

/* The page-in latencies of one side (or the disk's reads), free and pinned. */
struct latency {
	uint32_t n[N_PINS], skipped[N_PINS]; /* skipped: pages that were in memory */
	float us[N_PINS][MAX_SAMPLES];
};

/* What one side measured; in shared memory, since each side runs in a child. */
struct result {
	bool done;
	char error[320];
	double map_fill_ns, ops_ns;
	uint64_t ops; /* done before the time was up */
	long majflt;
	uint64_t faults; /* upager: the daemon's over the random phase */
	uint64_t pages_out, pages_in; /* upager: the whole side's, from upagerctl */
	bool paging_known;
	uint64_t daemon_cpu_ns; /* upager: the daemon's CPU time over the side */
	uint64_t threads_cpu_ns; /* upager: the CPU time of the library's threads in the client */
	uint64_t peak; /* the cgroup's peak */
	struct latency lat;
};

static struct {
	uint64_t budget, size, headroom, ops, max_ns;
	unsigned samples;
	size_t pages;
	const char *upagerd, *upagerctl;
	char dir[64], store[160], swapfile[64], diskfile[64];
	bool swap_on;
	int cpu;
	volatile pid_t child;
	struct memcg kernel_cg, upager_cg;
	struct result *res; /* N_SIDES of them, and the disk's latency in disk */
	struct latency *disk;
	char kernel_skipped[200];
} conf = { .dir = "/var/tmp/upager-anon-XXXXXX" };

static void cleanup(void)
{
	pid_t d = daemon_pid();

	if (conf.child > 0) {
		kill(conf.child, SIGKILL);
		waitpid(conf.child, NULL, 0);
		conf.child = 0;
	}
	if (d > 0) {
		kill(d, SIGKILL);
		waitpid(d, NULL, 0);
	}
	memcg_leave();
	if (conf.swap_on)
		swapoff(conf.swapfile);
	conf.swap_on = false;
	if (conf.swapfile[0])
		unlink(conf.swapfile);
	if (conf.diskfile[0])
		unlink(conf.diskfile);
	memcg_remove(&conf.kernel_cg);
	memcg_remove(&conf.upager_cg);
}

/* The word at byte @off of the memory, written with version @v (never 0: zeroes are wrong). */
static uint64_t word_at(uint64_t off, uint8_t v)
{
	return (off << 8) | v;
}

static void page_write(char *p, size_t page, uint8_t v)
{
	uint64_t *w = (uint64_t *)(p + page * PAGE), e = word_at(page * PAGE, v);

	for (size_t i = 0; i < PAGE / 8; i++, e += 8 << 8)
		w[i] = e;
}

static bool page_right(const char *p, size_t page, uint8_t v)
{
	const uint64_t *w = (const uint64_t *)(p + page * PAGE);
	uint64_t e = word_at(page * PAGE, v), bad = 0;

	for (size_t i = 0; i < PAGE / 8; i++, e += 8 << 8)
		bad |= w[i] ^ e;
	return bad == 0;
}

static uint8_t next_version(uint8_t v)
{
	return v == 255 ? 1 : v + 1;
}

/* Whether page @page of @p is in memory (for a shared mapping: in its shmem file). */
static bool resident(char *p, size_t page)
{
	unsigned char vec = 0;

	return mincore(p + page * PAGE, PAGE, &vec) == 0 && (vec & 1);
}

static void sort_floats(float *v, size_t n)
{
	for (size_t gap = n / 2; gap > 0; gap /= 2)
		for (size_t i = gap; i < n; i++)
			for (size_t j = i; j >= gap && v[j - gap] > v[j]; j -= gap) {
				float t = v[j];

				v[j] = v[j - gap];
				v[j - gap] = t;
			}
}

/* The @q-th percentile of the sorted @v, in us; 0 if there are no samples. */
static double percentile(const float *v, size_t n, unsigned q)
{
	return n ? v[n * q / 100 < n ? n * q / 100 : n - 1] : 0;
}

/* The pages of the first half of the memory, in a random order (the same every run). */
static uint32_t *latency_order(void)
{
	return rng_permutation(conf.pages / 2, LATENCY_SEED);
}

/* Pin us (and @other, if any) to conf.cpu, or give both every CPU back. */
static void pin(bool on, pid_t other)
{
	if (on) {
		pin_self(conf.cpu);
		if (other > 0)
			pin_process(other, conf.cpu);
	} else {
		if (other > 0)
			unpin_process(other);
		unpin_self();
	}
}

/*
 * The latency of faults that read a page back from swap, into @lat: a write pass over all of @p
 * pushes the first pages out; pages of the first half that are not in memory are then read in
 * @order, the first load timed, every word checked. Return: 0, or -EIO if a page read wrong.
 */
static int latency_run(char *p, uint8_t *ver, const uint32_t *order, struct latency *lat,
		       enum pin k, pid_t other)
{
	uint64_t t0;
	uint32_t n = 0;

	for (size_t i = 0; i < conf.pages; i++) {
		ver[i] = next_version(ver[i]);
		page_write(p, i, ver[i]);
	}
	pin(k == PINNED, other);
	t0 = now_ns();
	for (size_t i = 0; i < conf.pages / 2 && n < conf.samples; i++) {
		size_t page = order[i];
		uint64_t f0, f1;

		if (n % 64 == 63 && now_ns() - t0 > conf.max_ns)
			break;
		if (resident(p, page)) {
			lat->skipped[k]++;
			continue;
		}
		f0 = now_ns();
		(void)*(volatile uint64_t *)(p + page * PAGE);
		f1 = now_ns();
		if (!page_right(p, page, ver[page])) {
			pin(false, other);
			return -EIO;
		}
		lat->us[k][n++] = (float)(f1 - f0) / 1e3f;
	}
	pin(false, other);
	lat->n[k] = n;
	sort_floats(lat->us[k], n);
	return 0;
}

/* The workload on the mapping @p (mapped at @t0): fill, random reads and writes, latency. */
static void workload(struct result *r, char *p, uint64_t t0, uint8_t *ver, pid_t other)
{
	struct rng ops = { OPS_SEED };
	uint32_t *order = latency_order();
	struct daemon_stats st0 = { 0 }, st1 = { 0 };
	uint64_t i;

	if (!order) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return;
	}
	for (size_t pg = 0; pg < conf.pages; pg++) {
		ver[pg] = 1;
		page_write(p, pg, 1);
	}
	r->map_fill_ns = (double)(now_ns() - t0);
	if (other > 0)
		daemon_stats(&st0);
	t0 = now_ns();
	for (i = 0; i < conf.ops; i++) {
		size_t page = rng_below(&ops, conf.pages);
		bool write = rng_next(&ops) & 1;

		if (i % 256 == 255 && now_ns() - t0 > conf.max_ns)
			break;
		if (write) {
			ver[page] = next_version(ver[page]);
			page_write(p, page, ver[page]);
		} else if (!page_right(p, page, ver[page])) {
			snprintf(r->error, sizeof(r->error), "random phase: page %zu read wrong",
				 page);
			free(order);
			return;
		}
	}
	r->ops_ns = (double)(now_ns() - t0);
	r->ops = i;
	if (other > 0) {
		daemon_stats(&st1);
		r->faults = st1.faults - st0.faults;
	}
	for (int k = FREE; k < N_PINS; k++)
		if (latency_run(p, ver, order, &r->lat, k, other) < 0) {
			snprintf(r->error, sizeof(r->error), "latency, %s: a page read wrong",
				 k == PINNED ? "pinned" : "free");
			break;
		}
	free(order);
	r->done = !r->error[0];
}

/* The CPU time of this process's threads other than the calling one (the library's, for upager). */
static uint64_t other_threads_cpu_ns(void)
{
	struct timespec ts;
	uint64_t all = process_cpu_ns(getpid()), self;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	self = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	return all > self ? all - self : 0;
}

/* A side, in a child in its cgroup: its memory and swap go when it exits. */
static void side_child(enum side s, const struct memcg *cg)
{
	struct result *r = &conf.res[s];
	bool upager = s == UPAGER_PRIVATE || s == UPAGER_SHARED;
	int flags = (s == KERNEL_PRIVATE || s == UPAGER_PRIVATE ? MAP_PRIVATE : MAP_SHARED) |
		    MAP_ANONYMOUS;
	uint8_t *ver = calloc(conf.pages, 1);
	struct rusage r0, r1;
	uint64_t t0;
	char *p;

	signal(SIGINT, SIG_DFL); /* the parent cleans up */
	signal(SIGTERM, SIG_DFL);
	if (ver)
		memset(ver, 0, conf.pages); /* charged here, not to the side's cgroup */
	if (!ver || memcg_enter(cg) < 0) {
		snprintf(r->error, sizeof(r->error), "entering %s: %s", cg->dir, strerror(errno));
		_exit(1);
	}
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns();
	if (upager)
		p = upager_mmap(NULL, conf.size, PROT_READ | PROT_WRITE, flags, -1, 0);
	else
		p = mmap(NULL, conf.size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(r->error, sizeof(r->error), "%s: %s", upager ? "upager_mmap" : "mmap",
			 strerror(errno));
		_exit(1);
	}
	workload(r, p, t0, ver, upager ? daemon_pid() : 0);
	getrusage(RUSAGE_SELF, &r1);
	r->majflt = r1.ru_majflt - r0.ru_majflt;
	if (upager) {
		r->threads_cpu_ns = other_threads_cpu_ns();
		upager_munmap(p, conf.size);
	}
	_exit(r->done ? 0 : 1);
}

/* Run side @s in a child in @cg and wait for it; exit if it did not finish. */
static void side_run(enum side s, const struct memcg *cg)
{
	struct result *r = &conf.res[s];
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0)
		side_child(s, cg);
	conf.child = pid;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	conf.child = 0;
	r->peak = memcg_peak(cg);
	if (!r->done)
		fatal("%s: %s", side_name[s],
		      r->error[0]	     ? r->error
		      : memcg_oom_killed(cg) ? "OOM-killed in its cgroup"
					     : "the child died");
}

static void kernel_side(enum side s)
{
	int ret;

	memcg_remove(&conf.kernel_cg);
	ret = memcg_new(&conf.kernel_cg, "bench-anon-kernel", conf.budget);
	if (ret == 0)
		ret = memcg_allow_swap(&conf.kernel_cg);
	if (ret < 0)
		fatal("a memory cgroup with swap for the kernel: %s", strerror(-ret));
	side_run(s, &conf.kernel_cg);
}

/* An upagerd of the side's own, in a new cgroup of upager's; its swap store beside its socket. */
static void upager_start(void)
{
	static bool dir_made;
	char max[32];
	int ret;

	memcg_remove(&conf.upager_cg);
	ret = memcg_new(&conf.upager_cg, "bench-anon-upager", conf.budget + conf.headroom);
	if (ret < 0)
		fatal("cannot make a memory cgroup: %s", strerror(-ret));
	snprintf(max, sizeof(max), "%" PRIu64, conf.budget);
	setenv("UPAGER_BENCH_UPAGERD", conf.upagerd, 1);
	setenv("UPAGER_BENCH_MEMORY_MAX", max, 1);
	if (memcg_enter(&conf.upager_cg) < 0)
		fatal("entering %s: %s", conf.upager_cg.dir, strerror(errno));
	if (dir_made)
		ret = daemon_start(self_exe(), conf.dir);
	else
		ret = daemon_start_private(self_exe(), conf.dir);
	dir_made = true;
	memcg_leave();
	if (ret < 0)
		fatal("starting %s: %s", conf.upagerd, strerror(-ret));
}

/* An upager side: its daemon's figures are read here, where no upager mapping is. */
static void upager_side(enum side s)
{
	struct result *r = &conf.res[s];
	uint64_t out0 = 0, in0 = 0, out1 = 0, in1 = 0, cpu0;

	upager_start();
	r->paging_known = ctl_stat(conf.upagerctl, "pages_out", &out0) == 0 &&
			  ctl_stat(conf.upagerctl, "pages_in", &in0) == 0;
	cpu0 = process_cpu_ns(daemon_pid());
	side_run(s, &conf.upager_cg);
	r->daemon_cpu_ns = process_cpu_ns(daemon_pid()) - cpu0;
	if (!daemon_alive())
		fatal("upagerd exited%s",
		      memcg_oom_killed(&conf.upager_cg) ? " (OOM-killed in its cgroup)" : "");
	r->paging_known = r->paging_known && ctl_stat(conf.upagerctl, "pages_out", &out1) == 0 &&
			  ctl_stat(conf.upagerctl, "pages_in", &in1) == 0;
	r->pages_out = out1 - out0;
	r->pages_in = in1 - in0;
	daemon_stop();
}

/* The disk's own 4 KiB O_DIRECT random reads, on a file of the memory's size next to the swaps. */
static void disk_latency(void)
{
	struct latency *lat = conf.disk;
	struct rng r = { DISK_SEED };
	void *buf;
	int fd, ret;

	snprintf(conf.diskfile, sizeof(conf.diskfile), "/var/tmp/upager-anon-disk-%d",
		 (int)getpid());
	ret = file_create(conf.diskfile, conf.size);
	if (ret < 0)
		fatal("writing %s: %s", conf.diskfile, strerror(-ret));
	fd = open(conf.diskfile, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		fatal("%s with O_DIRECT: %s", conf.diskfile, strerror(errno));
	if (posix_memalign(&buf, PAGE, PAGE))
		fatal("out of memory");
	for (int k = FREE; k < N_PINS; k++) {
		pin(k == PINNED, 0);
		for (unsigned i = 0; i < conf.samples; i++) {
			off_t off = (off_t)(rng_below(&r, conf.pages) * PAGE);
			uint64_t t0 = now_ns();

			if (pread(fd, buf, PAGE, off) != (ssize_t)PAGE)
				fatal("%s: a 4 KiB O_DIRECT read failed", conf.diskfile);
			lat->us[k][i] = (float)(now_ns() - t0) / 1e3f;
			if (*(uint64_t *)buf != ((uint64_t)off << 8 | page_byte(off / PAGE)))
				fatal("%s: read wrong at %lld", conf.diskfile, (long long)off);
		}
		pin(false, 0);
		lat->n[k] = conf.samples;
		sort_floats(lat->us[k], conf.samples);
	}
	free(buf);
	close(fd);
	unlink(conf.diskfile);
	conf.diskfile[0] = '\0';
}

/* A swap file of the memory's size plus a little, swapped on; false (and why) if it cannot be. */
static bool kernel_swap_on(void)
{
	char cmd[160];
	int fd;

	snprintf(conf.swapfile, sizeof(conf.swapfile), "/var/tmp/upager-anon-swap-%d",
		 (int)getpid());
	fd = open(conf.swapfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, (off_t)(conf.size + 64 * MIB)) != 0) {
		snprintf(conf.kernel_skipped, sizeof(conf.kernel_skipped), "fallocate %s failed",
			 conf.swapfile);
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "mkswap '%s' >/dev/null", conf.swapfile);
	if (system(cmd) != 0) {
		snprintf(conf.kernel_skipped, sizeof(conf.kernel_skipped), "mkswap %s failed",
			 conf.swapfile);
		return false;
	}
	if (swapon(conf.swapfile, 0) < 0) {
		snprintf(conf.kernel_skipped, sizeof(conf.kernel_skipped), "swapon %s: %s",
			 conf.swapfile, strerror(errno));
		return false;
	}
	conf.swap_on = true;
	return true;
}

static void kernel_swap_off(void)
{
	if (conf.swap_on && swapoff(conf.swapfile) < 0)
		fatal("swapoff %s: %s", conf.swapfile, strerror(errno));
	conf.swap_on = false;
	unlink(conf.swapfile);
	conf.swapfile[0] = '\0';
}

static double rate(const struct result *r)
{
	return (double)r->ops * PAGE / r->ops_ns * 1e3; /* MB/s */
}

static void print_rate_row(const char *name, const struct result *u, const struct result *k,
			   const char *target, bool ok)
{
	char ks[48];

	snprintf(ks, sizeof(ks), "%.1f MB/s %.1f s%s", rate(k), k->ops_ns / 1e9,
		 k->ops < conf.ops ? " (stopped)" : "");
	printf("%-44s %-22.1f %-26s %7.2fx %8s  %s\n", name, rate(u), ks, rate(u) / rate(k), target,
	       !target[0] || target[0] == '-' ? "info"
	       : ok			      ? "met"
					      : "NOT MET");
}

static void print_latency_row(const char *name, double u, double d, const char *target, bool ok)
{
	char us[32], ds[40];

	snprintf(us, sizeof(us), "%.1f us", u);
	snprintf(ds, sizeof(ds), "%.1f us disk", d);
	printf("%-44s %-22s %-26s %7.2fx %8s  %s\n", name, us, ds, u / d, target,
	       target[0] == '-' ? "info"
	       : ok		? "met"
				: "NOT MET");
}

/* An upager side's figures, after its notes line: faults, paging, CPU time of daemon and library. */
static void print_upager_note(const struct result *r)
{
	uint64_t moved = r->pages_out + r->pages_in;

	printf("; %" PRIu64 " faults in the random phase", r->faults);
	if (r->paging_known)
		printf("; pages out %" PRIu64 ", in %" PRIu64, r->pages_out, r->pages_in);
	printf("; CPU: upagerd %.1f s", r->daemon_cpu_ns / 1e9);
	if (r->paging_known && moved)
		printf(" (%.1f us per page out or in)", r->daemon_cpu_ns / 1e3 / (double)moved);
	printf(", the library's threads in the client %.1f s\n", r->threads_cpu_ns / 1e9);
}

static void print_results(void)
{
	const struct result *u = &conf.res[UPAGER_PRIVATE];
	static const char *const pin_name[N_PINS] = { "free", "pinned" };
	bool kernel = !conf.kernel_skipped[0];
	unsigned met = 0, targets = 1;

	printf("\n%-44s %-22s %-26s %8s %8s  %s\n", "random 4 KiB reads and writes", "upager MB/s",
	       "reference", "ratio", "target", "result");
	if (kernel) {
		bool ok = rate(u) >= rate(&conf.res[KERNEL_PRIVATE]);

		targets++;
		met += ok;
		print_rate_row("upager private / kernel private, swap file", u,
			       &conf.res[KERNEL_PRIVATE], ">= 1.0x", ok);
		print_rate_row("upager shared / kernel shared, swap file", &conf.res[UPAGER_SHARED],
			       &conf.res[KERNEL_SHARED], "-", true);
	} else {
		printf("  the kernel with a swap file: skipped (%s)\n", conf.kernel_skipped);
	}
	printf("\npage-in from swap       p50 us   p99 us   samples (in memory, skipped)\n");
	for (int k = FREE; k < N_PINS; k++) {
		const struct latency *d = conf.disk;

		printf("disk 4 KiB O_DIRECT %-6s %8.1f %8.1f   %u\n", pin_name[k],
		       percentile(d->us[k], d->n[k], 50), percentile(d->us[k], d->n[k], 99),
		       d->n[k]);
		for (int s = kernel ? 0 : UPAGER_PRIVATE; s < N_SIDES; s++) {
			const struct latency *l = &conf.res[s].lat;

			printf("%-18s %-6s %8.1f %8.1f   %u (%u)\n", side_name[s], pin_name[k],
			       percentile(l->us[k], l->n[k], 50), percentile(l->us[k], l->n[k], 99),
			       l->n[k], l->skipped[k]);
		}
	}
	for (int k = FREE; k < N_PINS; k++) {
		const struct latency *d = conf.disk, *l = &u->lat;
		double up = percentile(l->us[k], l->n[k], 50),
		       dp = percentile(d->us[k], d->n[k], 50);
		char name[80];

		snprintf(name, sizeof(name), "upager private page-in / disk, p50 %s", pin_name[k]);
		print_latency_row(name, up, dp, k == PINNED ? "<= 1.3x" : "-", up <= 1.3 * dp);
		if (k == PINNED) {
			met += up <= 1.3 * dp;
			snprintf(name, sizeof(name), "upager private page-in / disk, p99 %s",
				 pin_name[k]);
			print_latency_row(name, percentile(l->us[k], l->n[k], 99),
					  percentile(d->us[k], d->n[k], 99), "-", true);
			l = &conf.res[UPAGER_SHARED].lat;
			snprintf(name, sizeof(name), "upager shared page-in / disk, p50 %s",
				 pin_name[k]);
			print_latency_row(name, percentile(l->us[k], l->n[k], 50), dp, "-", true);
		}
	}
	printf("\nnotes:\n");
	for (int s = kernel ? 0 : UPAGER_PRIVATE; s < N_SIDES; s++) {
		const struct result *r = &conf.res[s];

		printf("  %s: map and first write of all %.0f MiB %.2f s (%.0f MB/s); %" PRIu64
		       " of %" PRIu64 " random ops in %.1f s; cgroup peak %.1f MiB",
		       side_name[s], (double)conf.size / MIB, r->map_fill_ns / 1e9,
		       (double)conf.size / r->map_fill_ns * 1e3, r->ops, conf.ops, r->ops_ns / 1e9,
		       (double)r->peak / MIB);
		if (s == UPAGER_PRIVATE || s == UPAGER_SHARED)
			print_upager_note(r);
		else
			printf("; %ld major faults\n", r->majflt);
	}
	printf("  each upager side had an upagerd of its own. MAP_PRIVATE: a page-out ends in a "
	       "DROP answered by the client's control thread (UFFDIO_MOVE, MADV_DONTNEED), a "
	       "page-in is a UFFDIO_COPY of a page read from the store; MAP_SHARED: pages leave "
	       "and come back through the daemon's memfd (UFFDIO_CONTINUE)\n");
	wake_note(conf.cpu);
	printf("  every word read was checked\n%u of %u targets met\n", met, targets);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [--quick] [--upagerd PATH] [--budget SIZE] [--size SIZE]\n"
		"       [--headroom SIZE] [--ops N] [--samples N] [--max-seconds S] [--cpu N]\n"
		"Anonymous memory 4x upagerd's memory budget, random 4 KiB reads and writes,\n"
		"through upager and through the kernel with a swap file of its own; the latency\n"
		"of a page-in from swap next to the disk's own 4 KiB read latency.\n\n"
		"      --quick           budget 16 MiB: a smoke run\n"
		"      --upagerd PATH    the daemon to start (default $UPAGERD)\n"
		"      --budget SIZE     upagerd --memory-max, and the kernel's cgroup limit\n"
		"                        (default $UPAGER_BENCH_BUDGET or 64M)\n"
		"      --size SIZE       the memory (default $UPAGER_BENCH_ANON_SIZE or 4x "
		"budget)\n"
		"      --headroom SIZE   upager's cgroup is budget + this (default\n"
		"                        $UPAGER_BENCH_HEADROOM or 64M)\n"
		"      --ops N           random reads and writes (default 2x the pages)\n"
		"      --samples N       page-in latencies per side and pinning (default 4096)\n"
		"      --max-seconds S   each phase stops after S s (default\n"
		"                        $UPAGER_BENCH_MAX_SECONDS or 60)\n"
		"      --cpu N           the CPU of the pinned figures (default the last one)\n"
		"Needs root: it makes memory cgroups and a swap file under /var/tmp.\n");
}

static void parse_args(int argc, char **argv)
{
	const char *budget = NULL, *size = NULL, *headroom = NULL, *ops = NULL, *cpu = NULL;
	const char *max_s = getenv("UPAGER_BENCH_MAX_SECONDS"), *samples = "4096";
	bool quick;
	const struct option_value opts[] = {
		{ "--budget", &budget },
		{ "--size", &size },
		{ "--headroom", &headroom },
		{ "--ops", &ops },
		{ "--samples", &samples },
		{ "--max-seconds", &max_s },
		{ "--cpu", &cpu },
		{ "--upagerd", &conf.upagerd },
		{ NULL, NULL },
	};

	options_parse(argc, argv, opts, usage);
	conf.upagerd = daemon_args(argc, argv, &quick);
	conf.upagerctl = ctl_find(conf.upagerd);
	conf.budget = size_option(PROG, budget, "UPAGER_BENCH_BUDGET", quick ? 16 * MIB : 64 * MIB);
	conf.size = size_option(PROG, size, "UPAGER_BENCH_ANON_SIZE", 4 * conf.budget);
	conf.headroom = size_option(PROG, headroom, "UPAGER_BENCH_HEADROOM", 64 * MIB);
	conf.pages = conf.size / PAGE;
	conf.ops = ops ? strtoull(ops, NULL, 10) : 2 * conf.pages;
	conf.samples = (unsigned)atoi(samples);
	conf.cpu = cpu ? atoi(cpu) : cpu_pick();
	conf.max_ns = (uint64_t)((max_s ? atof(max_s) : 60) * 1e9);
	if (conf.pages < 2 || conf.pages > UINT32_MAX || conf.samples < 1 ||
	    conf.samples > MAX_SAMPLES || conf.ops < 1 || conf.max_ns == 0 ||
	    conf.max_ns > 600 * 1000000000ULL) {
		fprintf(stderr,
			PROG ": the memory takes 2 to 2^32 pages, --samples 1 to %d, "
			     "--ops at least 1, --max-seconds more than 0 and at most 600\n",
			MAX_SAMPLES);
		exit(2);
	}
}

/* Run as daemon.c's upagerd: the real one, with the budget and a swap store beside the socket. */
static int exec_daemon(const char *socket_path)
{
	const char *bin = getenv("UPAGER_BENCH_UPAGERD"), *max = getenv("UPAGER_BENCH_MEMORY_MAX");
	const char *slash = strrchr(socket_path, '/');

	if (!bin || !max || !slash)
		return 127;
	snprintf(conf.store, sizeof(conf.store), "%.*s/swap", (int)(slash - socket_path),
		 socket_path);
	execl(bin, "upagerd", "--socket", socket_path, "--memory-max", max, "--swap", conf.store,
	      (char *)NULL);
	return 127;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = fatal_on_signal };

	if (argc == 3 && strcmp(argv[1], "--socket") == 0)
		return exec_daemon(argv[2]);
	parse_args(argc, argv);
	fatal_init(PROG, conf.dir, cleanup);
	if (!self_exe()) {
		fprintf(stderr, PROG ": cannot find /proc/self/exe\n");
		return 1;
	}
	conf.res = mmap(NULL, N_SIDES * sizeof(*conf.res) + sizeof(*conf.disk),
			PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (conf.res == MAP_FAILED) {
		fprintf(stderr, PROG ": mmap: %s\n", strerror(errno));
		return 1;
	}
	memset(conf.res, 0, N_SIDES * sizeof(*conf.res) + sizeof(*conf.disk));
	conf.disk = (struct latency *)(conf.res + N_SIDES);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	atexit(cleanup);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf(PROG ": budget %.0f MiB, anonymous memory %.0f MiB (%.1fx), %" PRIu64
		    " random ops (50%% writes), swap under /var/tmp, kernel's cgroup %.0f MiB, "
		    "upager's %.0f MiB, pinned figures on CPU %d\n",
	       (double)conf.budget / MIB, (double)conf.size / MIB,
	       (double)conf.size / (double)conf.budget, conf.ops, (double)conf.budget / MIB,
	       (double)(conf.budget + conf.headroom) / MIB, conf.cpu);
	alarm(RUN_ALARM_S);
	disk_latency();
	printf("  disk: 4 KiB O_DIRECT reads p50 %.1f us free, %.1f us pinned\n",
	       percentile(conf.disk->us[FREE], conf.disk->n[FREE], 50),
	       percentile(conf.disk->us[PINNED], conf.disk->n[PINNED], 50));
	if (kernel_swap_on()) {
		for (int s = KERNEL_PRIVATE; s <= KERNEL_SHARED; s++) {
			alarm(RUN_ALARM_S);
			kernel_side(s);
			printf("  %s: %.1f MB/s\n", side_name[s], rate(&conf.res[s]));
		}
		kernel_swap_off();
	} else {
		printf("  the kernel with a swap file: skipped (%s)\n", conf.kernel_skipped);
		kernel_swap_off();
	}
	for (int s = UPAGER_PRIVATE; s <= UPAGER_SHARED; s++) {
		alarm(RUN_ALARM_S);
		upager_side(s);
		printf("  %s: %.1f MB/s\n", side_name[s], rate(&conf.res[s]));
	}
	alarm(0);
	print_results();
	return 0;
}
