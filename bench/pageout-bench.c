// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-pageout: a file 4x the memory budget, read through upager with `upagerd
 * --memory-max B` and through the kernel's own mmap(2), in the same run. The kernel's reader runs
 * in a memory cgroup limited to B; upagerd and upager's reader run in one limited to B plus a
 * headroom (the daemon's own heap, the page cache its reads go through). Three workloads, each
 * from cold caches (dropped before every run, the daemon caching nothing), each on a fresh
 * MAP_SHARED, PROT_READ mapping, the time including the mmap call: the whole file in order (one
 * word per page), uniform random 4 KiB reads and Zipf (s = 0.99) random 4 KiB reads, as many as
 * twice the file's pages each, the same pages in the same order for both (fixed seeds). A run stops
 * reading after --max-seconds (60 s) and counts the reads it did: the kernel's read-around can
 * take many minutes over a random workload in a small cgroup (docs/benchmarks.md). For information, the
 * random workloads are also read through the kernel's mapping with MADV_RANDOM. Every word read is
 * checked against the file's pattern, and at the end every word of every page is read back through
 * upager once more, under the budget: a wrong word is an error, never a figure.
 *
 * upagerd is started through this program ("upager-bench-pageout --socket PATH", what daemon.c
 * runs), which adds --memory-max to the daemon's arguments; the daemon forks from us while we are
 * in upager's cgroup, so it starts there. Needs root (caches, cgroups). Exit status: 0 when
 * everything was measured, met or not; 1 on an error; 2 on a usage error, a timeout or a signal.
 *
 * Usage: upager-bench-pageout [--quick] [--upagerd PATH] [--budget SIZE] [--file-size SIZE]
 *                             [--headroom SIZE] [--repeat N] [--max-seconds S]
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
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fatal.h"
#include "ctl.h"
#include "memcg.h"
#include "options.h"
#include "upager.h"
#include "zipf.h"

#define PROG "upager-bench-pageout"
#define RUN_ALARM_S 900

enum workload {
	SEQ,
	UNIFORM,
	ZIPF,
	N_WORKLOADS
};

static const char *const workload_name[N_WORKLOADS] = {
	"sequential read",
	"uniform random 4 KiB",
	"Zipf 0.99 random 4 KiB",
};

/* upager's MB/s over the kernel's, at least: the targets of issue 13. */
static const double target[N_WORKLOADS] = { 1.0, 1.0, 1.2 };

static struct {
	uint64_t budget, file_size, headroom;
	uint64_t max_ns; /* a run stops reading after this long */
	unsigned repeat;
	const char *upagerd, *upagerctl;
	char dir[64], path[128];
	size_t pages;
	int fd;
	struct memcg kernel_cg, upager_cg;
} conf = { .dir = "/tmp/upager-pageout-XXXXXX", .fd = -1 };

/* The pages each workload reads, in order (NULL for SEQ: every page once, in order). */
static struct {
	uint32_t *page;
	size_t n;
} plan[N_WORKLOADS];

struct sample {
	double ns;
	size_t reads; /* done before the time was up */
	bool cold;
	uint64_t faults, pages_read, refaults; /* upager, per run */
	bool refaults_known;
	uint64_t shmem; /* upager: its cgroup's shmem (the daemon's memfds) at the run's end */
	long majflt; /* kernel, per run */
};

/* kernel_random: the kernel's mapping with MADV_RANDOM (no read-around), for information. */
struct result {
	struct sample kernel[MAX_REPEAT], kernel_random[MAX_REPEAT], upager[MAX_REPEAT];
} results[N_WORKLOADS];

static void cleanup(void)
{
	pid_t d = daemon_pid();

	if (d > 0) {
		kill(d, SIGKILL);
		waitpid(d, NULL, 0);
	}
	memcg_leave();
	memcg_remove(&conf.kernel_cg);
	memcg_remove(&conf.upager_cg);
	if (conf.path[0])
		unlink(conf.path);
}

/* The 8-byte word at offset @off of the test file (file_create() in sys.c). */
static uint64_t word_at(uint64_t off)
{
	return (off << 8) | page_byte(off / PAGE);
}

/* Whether every word of page @page of the mapping @p is right. */
static bool page_right(const char *p, uint64_t page)
{
	const uint64_t *w = (const uint64_t *)(p + page * PAGE);
	uint64_t e = word_at(page * PAGE), bad = 0;

	for (size_t i = 0; i < PAGE / 8; i++, e += 8 << 8)
		bad |= w[i] ^ e;
	return bad == 0;
}

/*
 * The workload @w on the mapping @p: SEQ reads the first word of every page in order, the others
 * read their plan's pages whole; a run stops early once it has taken conf.max_ns. Return: the
 * first page read wrong, or -1; *@done: the reads done.
 */
static long workload_run(enum workload w, const char *p, uint64_t t0, size_t *done)
{
	size_t i;

	for (i = 0; i < plan[w].n; i++) {
		uint64_t page = w == SEQ ? i : plan[w].page[i];

		if (i % 256 == 255 && now_ns() - t0 > conf.max_ns)
			break;
		if (w == SEQ ? *(const volatile uint64_t *)(p + page * PAGE) != word_at(page * PAGE)
			     : !page_right(p, page)) {
			*done = i;
			return (long)page;
		}
	}
	*done = i;
	return -1;
}

static int plans_make(void)
{
	struct rng uniform = { 0x5eed0001 }, zipf_draws = { 0x5eed0002 };
	struct zipf z;
	int ret;

	plan[SEQ].n = conf.pages;
	for (int w = UNIFORM; w <= ZIPF; w++) {
		plan[w].n = 2 * conf.pages;
		plan[w].page = malloc(plan[w].n * sizeof(*plan[w].page));
		if (!plan[w].page)
			return -ENOMEM;
	}
	for (size_t i = 0; i < plan[UNIFORM].n; i++)
		plan[UNIFORM].page[i] = (uint32_t)rng_below(&uniform, conf.pages);
	ret = zipf_init(&z, conf.pages, 0.99, 0x5eed0003);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < plan[ZIPF].n; i++)
		plan[ZIPF].page[i] = zipf_page(&z, &zipf_draws);
	zipf_deinit(&z);
	return 0;
}

/* The distinct pages of a plan, for the notes. */
static size_t plan_distinct(enum workload w)
{
	uint8_t *seen;
	size_t n = 0;

	if (w == SEQ)
		return conf.pages;
	seen = calloc(conf.pages, 1);
	if (!seen)
		return 0;
	for (size_t i = 0; i < plan[w].n; i++)
		if (!seen[plan[w].page[i]]++)
			n++;
	free(seen);
	return n;
}

/* Drop the kernel's caches; false if they are not cold afterwards. */
static bool make_file_cold(void)
{
	return drop_caches() && file_resident_pages(conf.fd, 0, conf.file_size) == 0;
}

static void kernel_sample(enum workload w, struct sample *s, int advice)
{
	struct rusage r0, r1;
	uint64_t t0;
	long bad;
	char *p;

	s->cold = make_file_cold();
	if (memcg_enter(&conf.kernel_cg) < 0)
		fatal("entering %s: %s", conf.kernel_cg.dir, strerror(errno));
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns();
	p = mmap(NULL, conf.file_size, PROT_READ, MAP_SHARED, conf.fd, 0);
	if (p == MAP_FAILED)
		fatal("mmap: %s", strerror(errno));
	if (advice != MADV_NORMAL && madvise(p, conf.file_size, advice) < 0)
		fatal("madvise: %s", strerror(errno));
	bad = workload_run(w, p, t0, &s->reads);
	s->ns = (double)(now_ns() - t0);
	getrusage(RUSAGE_SELF, &r1);
	munmap(p, conf.file_size);
	memcg_leave();
	if (bad >= 0)
		fatal("%s, kernel: page %ld read wrong", workload_name[w], bad);
	s->majflt = r1.ru_majflt - r0.ru_majflt;
}

static void upager_sample(enum workload w, struct sample *s)
{
	struct daemon_stats st0, st1;
	uint64_t rf0 = 0, rf1 = 0, t0;
	long bad;
	char *p;
	int ret;

	ret = daemon_wait_empty(10000);
	if (ret < 0)
		fatal("the daemon does not let go of the file's pages: %s", strerror(-ret));
	s->cold = make_file_cold();
	s->refaults_known = ctl_stat(conf.upagerctl, "refaults", &rf0) == 0;
	ret = daemon_stats(&st0);
	if (ret < 0)
		fatal("STATS: %s", strerror(-ret));
	if (memcg_enter(&conf.upager_cg) < 0)
		fatal("entering %s: %s", conf.upager_cg.dir, strerror(errno));
	t0 = now_ns();
	p = upager_mmap(NULL, conf.file_size, PROT_READ, MAP_SHARED, conf.fd, 0);
	if (p == MAP_FAILED)
		fatal("upager_mmap: %s", strerror(errno));
	bad = workload_run(w, p, t0, &s->reads);
	s->ns = (double)(now_ns() - t0);
	s->shmem = memcg_stat(&conf.upager_cg, "shmem");
	upager_munmap(p, conf.file_size);
	memcg_leave();
	if (bad >= 0)
		fatal("%s, upager: page %ld read wrong", workload_name[w], bad);
	if (!daemon_alive())
		fatal("upagerd exited during the %s%s", workload_name[w],
		      memcg_oom_killed(&conf.upager_cg) ? " (OOM-killed in its cgroup)" : "");
	ret = daemon_stats(&st1);
	if (ret < 0)
		fatal("STATS: %s", strerror(-ret));
	s->faults = st1.faults - st0.faults;
	s->pages_read = st1.pages_read - st0.pages_read;
	s->refaults_known = s->refaults_known && ctl_stat(conf.upagerctl, "refaults", &rf1) == 0;
	s->refaults = rf1 - rf0;
}

/* Every word of every page through upager, under the budget: the data check of the whole file. */
static void upager_verify(void)
{
	char *p;

	daemon_wait_empty(10000);
	if (memcg_enter(&conf.upager_cg) < 0)
		fatal("entering %s: %s", conf.upager_cg.dir, strerror(errno));
	p = upager_mmap(NULL, conf.file_size, PROT_READ, MAP_SHARED, conf.fd, 0);
	if (p == MAP_FAILED)
		fatal("upager_mmap: %s", strerror(errno));
	for (size_t i = 0; i < conf.pages; i++)
		if (!page_right(p, i))
			fatal("the check of every word, upager: page %zu read wrong", i);
	upager_munmap(p, conf.file_size);
	memcg_leave();
	if (!daemon_alive())
		fatal("upagerd exited during the check of every word");
}

static double rate(const struct sample *s)
{
	return (double)s->reads * PAGE / s->ns * 1e3; /* MB/s */
}

/* The sample of median MB/s. */
static const struct sample *median_sample(const struct sample *s)
{
	const struct sample *by[MAX_REPEAT];

	for (unsigned i = 0; i < conf.repeat; i++)
		by[i] = &s[i];
	for (unsigned i = 1; i < conf.repeat; i++)
		for (unsigned j = i; j > 0 && rate(by[j]) < rate(by[j - 1]); j--) {
			const struct sample *t = by[j];

			by[j] = by[j - 1];
			by[j - 1] = t;
		}
	return by[conf.repeat / 2];
}

static bool all_cold(const struct sample *s)
{
	for (unsigned i = 0; i < conf.repeat; i++)
		if (!s[i].cold)
			return false;
	return true;
}

/* "123 MB/s 1.23 s", and the share of the reads done if the time ran out. */
static const char *fmt_sample(char *buf, size_t size, const struct sample *s, enum workload w)
{
	int n = snprintf(buf, size, "%.0f MB/s %.2f s", rate(s), s->ns / 1e9);

	if (s->reads < plan[w].n)
		snprintf(buf + n, size - (size_t)n, " (%.0f%%)", 100.0 * s->reads / plan[w].n);
	return buf;
}

static void print_row(const char *name, const struct sample *u, const struct sample *k,
		      enum workload w, const char *target_s, const char *result)
{
	char us[40], ks[40];

	printf("%-30s %-24s %-24s %7.2fx %8s  %s\n", name, fmt_sample(us, sizeof(us), u, w),
	       fmt_sample(ks, sizeof(ks), k, w), rate(u) / rate(k), target_s, result);
}

static void print_results(void)
{
	unsigned met = 0;

	printf("\n%-30s %-24s %-24s %8s %8s  %s\n", "workload", "upager", "kernel", "ratio",
	       "target", "result");
	for (int w = 0; w < N_WORKLOADS; w++) {
		const struct sample *u = median_sample(results[w].upager);
		const struct sample *k = median_sample(results[w].kernel);
		bool cold = all_cold(results[w].upager) && all_cold(results[w].kernel);
		bool ok = rate(u) / rate(k) >= target[w];
		char t[16], name[64];

		snprintf(t, sizeof(t), ">= %.1fx", target[w]);
		print_row(workload_name[w], u, k, w, t,
			  !cold ? "not cold"
			  : ok	? "met"
				: "NOT MET");
		met += cold && ok;
		if (w == SEQ)
			continue;
		snprintf(name, sizeof(name), " the same, kernel MADV_RANDOM");
		print_row(name, u, median_sample(results[w].kernel_random), w, "-", "info");
	}
	printf("\nratio: upager's MB/s over the kernel's; median of %u run%s each; (N%%): the "
	       "share "
	       "of the reads done when a run was stopped at %.0f s.\nnotes:\n",
	       conf.repeat, conf.repeat > 1 ? "s" : "", (double)conf.max_ns / 1e9);
	for (int w = 0; w < N_WORKLOADS; w++) {
		const struct sample *u = median_sample(results[w].upager);
		const struct sample *k = median_sample(results[w].kernel);
		size_t distinct = plan_distinct(w);
		char rf[48] = "";

		if (u->refaults_known)
			snprintf(rf, sizeof(rf), ", %" PRIu64 " refaults", u->refaults);
		printf("  %s: %zu reads of %zu distinct pages; upager: %" PRIu64 " faults, %" PRIu64
		       " pages read (%.2fx the distinct pages)%s, %.1f MiB in its memfds at the "
		       "end; "
		       "kernel: %ld major faults",
		       workload_name[w], plan[w].n, distinct, u->faults, u->pages_read,
		       (double)u->pages_read / (double)distinct, rf, (double)u->shmem / MIB,
		       k->majflt);
		if (w != SEQ)
			printf(", %ld with MADV_RANDOM",
			       median_sample(results[w].kernel_random)->majflt);
		printf("\n");
	}
	printf("  peak use of the cgroups (page cache included): kernel's %.1f MiB (limit %.1f), "
	       "upager's %.1f MiB (limit %.1f)\n",
	       (double)memcg_peak(&conf.kernel_cg) / MIB, (double)conf.budget / MIB,
	       (double)memcg_peak(&conf.upager_cg) / MIB,
	       (double)(conf.budget + conf.headroom) / MIB);
	if (!results[0].upager[0].refaults_known)
		printf("  refaults: `upagerctl stats --json` has no \"refaults\" (yet)\n");
	printf("  every word of every page read right through upager, under the budget\n");
	printf("%u of %d targets met\n", met, N_WORKLOADS);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [--quick] [--upagerd PATH] [--budget SIZE] [--file-size SIZE]\n"
		"       [--headroom SIZE] [--repeat N] [--max-seconds S]\n"
		"A file 4x upagerd's memory budget read through upager and through the kernel's\n"
		"mmap in a memory cgroup of the budget's size: in order, uniform random, Zipf.\n\n"
		"      --quick           budget 16 MiB, file 64 MiB: a smoke run\n"
		"      --upagerd PATH    the daemon to start (default $UPAGERD)\n"
		"      --budget SIZE     upagerd --memory-max, and the kernel's cgroup limit\n"
		"                        (default $UPAGER_BENCH_BUDGET or 64M)\n"
		"      --file-size SIZE  default $UPAGER_BENCH_FILE_SIZE or 4x the budget\n"
		"      --headroom SIZE   upager's cgroup is budget + this (default\n"
		"                        $UPAGER_BENCH_HEADROOM or 64M)\n"
		"      --repeat N        runs per workload and side, median shown (default 1)\n"
		"      --max-seconds S   a run stops reading after S s, its MB/s over the reads\n"
		"                        done (default $UPAGER_BENCH_MAX_SECONDS or 60)\n"
		"$UPAGERCTL (default: upagerctl next to upagerd) gives the refault count.\n"
		"Needs root: it drops the kernel's caches and makes memory cgroups.\n");
}

/* The options; --quick and --upagerd are daemon_args()'s, as for the other small benchmarks. */
static void parse_args(int argc, char **argv)
{
	const char *budget = NULL, *file_size = NULL, *headroom = NULL;
	const char *max_s = getenv("UPAGER_BENCH_MAX_SECONDS"), *repeat = "1";
	bool quick;
	const struct option_value opts[] = {
		{ "--budget", &budget },
		{ "--file-size", &file_size },
		{ "--headroom", &headroom },
		{ "--repeat", &repeat },
		{ "--max-seconds", &max_s },
		{ "--upagerd", &conf.upagerd },
		{ NULL, NULL },
	};

	options_parse(argc, argv, opts, usage);
	conf.upagerd = daemon_args(argc, argv, &quick);
	conf.repeat = (unsigned)atoi(repeat);
	if (conf.repeat < 1 || conf.repeat > MAX_REPEAT) {
		fprintf(stderr, PROG ": --repeat takes 1 to %d\n", MAX_REPEAT);
		exit(2);
	}
	conf.budget = size_option(PROG, budget, "UPAGER_BENCH_BUDGET", quick ? 16 * MIB : 64 * MIB);
	conf.file_size = size_option(PROG, file_size, "UPAGER_BENCH_FILE_SIZE", 4 * conf.budget);
	conf.headroom = size_option(PROG, headroom, "UPAGER_BENCH_HEADROOM", 64 * MIB);
	conf.pages = conf.file_size / PAGE;
	if (conf.pages > UINT32_MAX) {
		fprintf(stderr, PROG ": the file may have at most 2^32 pages\n");
		exit(2);
	}
	conf.max_ns = (uint64_t)((max_s ? atof(max_s) : 60) * 1e9);
	if (conf.max_ns == 0 || conf.max_ns > 600 * 1000000000ULL) {
		fprintf(stderr, PROG ": --max-seconds takes more than 0 and at most 600\n");
		exit(2);
	}
}

/* Run as daemon.c's upagerd: the real one, with the budget added to its arguments. */
static int exec_daemon(const char *socket_path)
{
	const char *bin = getenv("UPAGER_BENCH_UPAGERD"), *max = getenv("UPAGER_BENCH_MEMORY_MAX");

	if (!bin || !max)
		return 127;
	execl(bin, "upagerd", "--socket", socket_path, "--memory-max", max, (char *)NULL);
	return 127;
}

/* Our upagerd, started in upager's cgroup; the test file, charged to neither cgroup. */
static void setup(void)
{
	char max[32];
	int ret;

	ret = memcg_new(&conf.kernel_cg, "bench-pageout-kernel", conf.budget);
	if (ret == 0)
		ret = memcg_new(&conf.upager_cg, "bench-pageout-upager",
				conf.budget + conf.headroom);
	if (ret < 0) {
		memcg_remove(&conf.kernel_cg);
		fprintf(stderr, PROG ": cannot make a memory cgroup: %s\n", strerror(-ret));
		exit(1);
	}
	snprintf(max, sizeof(max), "%" PRIu64, conf.budget);
	setenv("UPAGER_BENCH_UPAGERD", conf.upagerd, 1);
	setenv("UPAGER_BENCH_MEMORY_MAX", max, 1);
	if (memcg_enter(&conf.upager_cg) < 0)
		fatal("entering %s: %s", conf.upager_cg.dir, strerror(errno));
	ret = daemon_start_private(self_exe(), conf.dir);
	memcg_leave();
	atexit(cleanup); /* runs before daemon.c's, which removes the folder */
	if (ret < 0)
		fatal("starting %s: %s", conf.upagerd, strerror(-ret));
	snprintf(conf.path, sizeof(conf.path), "%s/file", conf.dir);
	ret = file_create(conf.path, conf.file_size);
	if (ret < 0)
		fatal("writing %s: %s", conf.path, strerror(-ret));
	conf.fd = open(conf.path, O_RDONLY | O_CLOEXEC);
	if (conf.fd < 0)
		fatal("%s: %s", conf.path, strerror(errno));
	ret = plans_make();
	if (ret < 0)
		fatal("the workloads' pages: %s", strerror(-ret));
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = fatal_on_signal };

	if (argc == 3 && strcmp(argv[1], "--socket") == 0)
		return exec_daemon(argv[2]);
	parse_args(argc, argv);
	fatal_init(PROG, conf.dir, cleanup);
	conf.upagerctl = ctl_find(conf.upagerd);
	if (!self_exe()) {
		fprintf(stderr, PROG ": cannot find /proc/self/exe\n");
		return 1;
	}
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(RUN_ALARM_S);
	setup();
	printf(PROG ": budget %.0f MiB, file %.0f MiB (%.1fx), kernel's cgroup %.0f MiB, upager's "
		    "%.0f MiB (cgroup %s)\n",
	       (double)conf.budget / MIB, (double)conf.file_size / MIB,
	       (double)conf.file_size / (double)conf.budget, (double)conf.budget / MIB,
	       (double)(conf.budget + conf.headroom) / MIB, conf.kernel_cg.v1 ? "v1" : "v2");
	for (int w = 0; w < N_WORKLOADS; w++)
		for (unsigned i = 0; i < conf.repeat; i++) {
			struct sample *k = &results[w].kernel[i], *u = &results[w].upager[i];

			alarm(RUN_ALARM_S);
			kernel_sample(w, k, MADV_NORMAL);
			if (w != SEQ) {
				alarm(RUN_ALARM_S);
				kernel_sample(w, &results[w].kernel_random[i], MADV_RANDOM);
			}
			alarm(RUN_ALARM_S);
			upager_sample(w, u);
			printf("  %s, run %u: upager %.0f MB/s, kernel %.0f MB/s\n",
			       workload_name[w], i + 1, rate(u), rate(k));
		}
	alarm(RUN_ALARM_S);
	upager_verify();
	alarm(0);
	daemon_stop();
	print_results();
	close(conf.fd);
	return 0;
}
