// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The soak (soak.h). Each page of the file holds a pattern of its page number and a version in
 * every word; its owner thread writes version after version, and publishes each in shared memory
 * once the page holds it. Every thread, in a loop until the time is up:
 *   40% writes the next version of one of its pages;
 *   30% reads one of its pages back (it must hold exactly the last version written);
 *   15% reads any page (every word names that page, with a version no older than its owner had
 *       published when the read began);
 *    8% msync()s its whole mapping, MS_SYNC or MS_ASYNC;
 *    3% unmaps its mapping and maps the file again;
 *    4% remaps one of its pages to show another of its own, reads it there, and remaps it back.
 * At the end every mapping is gone and the file, read with pread(2), must hold the last version
 * of every page.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <upager.h>

#include "common/macro.h"
#include "soak.h"
#include "tests/procfs.h"

#define PAGE 4096u
#define WORDS (PAGE / sizeof(uint64_t))
#define REPORT_MAX 8 /* mismatches told in detail, per process */

/* What the processes share: the last version of each page, and the counters. */
struct shared {
	struct soak_result sum; /* added to with atomics */
	uint64_t version[]; /* per page, written by its owner once the page holds it */
};

struct worker {
	const struct soak_config *c;
	struct shared *sh;
	int fd;
	unsigned id; /* over every process */
	unsigned reported;
};

static uint64_t word(uint64_t page, uint64_t version, unsigned k)
{
	return page << 40 | (version & 0x7fffffff) << 9 | k;
}

static uint64_t word_page(uint64_t w)
{
	return w >> 40;
}

static uint64_t word_version(uint64_t w)
{
	return (w >> 9) & 0x7fffffff;
}

static void fill(uint64_t *page, uint64_t p, uint64_t version)
{
	for (unsigned k = 0; k < WORDS; k++)
		page[k] = word(p, version, k);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Tell of a read of page p that found w0 at word k where version want was due. */
static void tell(struct worker *w, const char *what, uint64_t p, uint64_t want, unsigned k,
		 uint64_t w0)
{
	if (w->reported++ >= REPORT_MAX)
		return;
	fprintf(stderr,
		"soak: thread %u: %s page %" PRIu64 ": want version %" PRIu64
		", found page %" PRIu64 " version %" PRIu64 " at word %u\n",
		w->id, what, p, want, word_page(w0), word_version(w0), k);
}

/*
 * An owned page must hold exactly its last version. what: how it was read (through the page
 * itself, or another page remapped to show it), for the report.
 */
static bool check_own(struct worker *w, const uint64_t *page, uint64_t p, const char *what)
{
	uint64_t v = w->sh->version[p];

	for (unsigned k = 0; k < WORDS; k++)
		if (page[k] != word(p, v, k)) {
			tell(w, what, p, v, k, page[k]);
			add(&w->sh->sum.stale_own, 1);
			return false;
		}
	return true;
}

/* Any page: its own number in every word, and no version older than was published before. */
static void check_any(struct worker *w, const volatile uint64_t *page, uint64_t p)
{
	uint64_t v = __atomic_load_n(&w->sh->version[p], __ATOMIC_ACQUIRE);

	for (unsigned k = 0; k < WORDS; k++) {
		uint64_t x = page[k];

		if (word_page(x) != p || (x & 511) != k || word_version(x) < (v & 0x7fffffff)) {
			tell(w, "any", p, v, k, x);
			add(&w->sh->sum.stale_any, 1);
			return;
		}
	}
}

static char *map_file(struct worker *w)
{
	char *m = upager_mmap(NULL, w->c->file_size, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);

	if (m == MAP_FAILED) {
		fprintf(stderr, "soak: thread %u: upager_mmap: %m\n", w->id);
		return NULL;
	}
	return m;
}

/* Remap page a to show page b, both owned, check it there, and remap it back. */
static int remap_once(struct worker *w, char *m, uint64_t a, uint64_t b)
{
	char *at = m + a * PAGE;

	if (upager_remap_file_pages(at, PAGE, 0, b, 0) < 0)
		return -errno;
	check_own(w, (const uint64_t *)at, b, "own (remapped)");
	if (upager_remap_file_pages(at, PAGE, 0, a, 0) < 0)
		return -errno;
	check_own(w, (const uint64_t *)at, a, "own (remapped back)");
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct soak_config *c = w->c;
	uint64_t pages = c->file_size / PAGE, total = (uint64_t)c->procs * c->threads;
	uint64_t owned = (pages - w->id + total - 1) / total;
	struct soak_result n = { 0 };
	unsigned seed = c->seed * 7919u + w->id;
	double end = now_s() + c->seconds;
	uint64_t buf[WORDS];
	char *m = map_file(w);

	while (m && owned > 0 && now_s() < end) {
		unsigned op = (unsigned)rand_r(&seed) % 100;
		uint64_t p = w->id + (uint64_t)(rand_r(&seed) % owned) * total;

		if (op < 4 && !c->remaps)
			op = 99; /* a write instead */
		if (op < 4) {
			uint64_t b = w->id + (uint64_t)(rand_r(&seed) % owned) * total;
			int ret = b == p ? 0 : remap_once(w, m, p, b);

			if (ret < 0) {
				fprintf(stderr, "soak: thread %u: remap: %s\n", w->id,
					strerror(-ret));
				n.remaps_failed++;
			}
			n.remaps++;
		} else if (op < 7) {
			if (upager_munmap(m, c->file_size) < 0)
				n.errors++;
			m = map_file(w);
			n.remounts++;
		} else if (op < 15) {
			if (upager_msync(m, c->file_size, rand_r(&seed) & 1 ? MS_SYNC : MS_ASYNC) <
			    0)
				n.errors++;
			n.msyncs++;
		} else if (op < 30) {
			uint64_t q = (uint64_t)rand_r(&seed) % pages;

			check_any(w, (const volatile uint64_t *)(m + q * PAGE), q);
			n.reads++;
		} else if (op < 60) {
			check_own(w, (const uint64_t *)(m + p * PAGE), p, "own");
			n.verifies++;
		} else {
			uint64_t v = w->sh->version[p] + 1;

			fill(buf, p, v);
			memcpy(m + p * PAGE, buf, PAGE);
			__atomic_store_n(&w->sh->version[p], v, __ATOMIC_RELEASE);
			n.writes++;
		}
	}
	if (!m)
		n.errors++;
	else if (upager_munmap(m, c->file_size) < 0)
		n.errors++;
	add(&w->sh->sum.writes, n.writes);
	add(&w->sh->sum.verifies, n.verifies);
	add(&w->sh->sum.reads, n.reads);
	add(&w->sh->sum.msyncs, n.msyncs);
	add(&w->sh->sum.remaps, n.remaps);
	add(&w->sh->sum.remaps_failed, n.remaps_failed);
	add(&w->sh->sum.remounts, n.remounts);
	add(&w->sh->sum.errors, n.errors);
	return NULL;
}

/* One process: its threads, each with its own mapping. */
static void process_main(const struct soak_config *c, struct shared *sh, const char *path,
			 unsigned proc)
{
	pthread_t tids[c->threads];
	struct worker ws[c->threads];
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		_exit(2);
	for (unsigned t = 0; t < c->threads; t++) {
		ws[t] = (struct worker){ .c = c, .sh = sh, .fd = fd, .id = proc * c->threads + t };
		if (pthread_create(&tids[t], NULL, worker_main, &ws[t]) != 0)
			_exit(2);
	}
	for (unsigned t = 0; t < c->threads; t++)
		pthread_join(tids[t], NULL);
	_exit(0);
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* A figure of `upagerctl stats --json`, or -1. */
static long long ctl_stat(const struct soak_config *c, const char *key)
{
	char cmd[1024], out[2048], *at;
	long long v = -1;
	size_t len;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' stats --json", c->ctl, c->socket);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	len = fread(out, 1, sizeof(out) - 1, f);
	pclose(f);
	out[len] = 0;
	snprintf(cmd, sizeof(cmd), "\"%s\": ", key);
	at = strstr(out, cmd);
	if (at)
		v = strtoll(at + strlen(cmd), NULL, 10);
	return v;
}

static int make_file(const char *path, uint64_t size)
{
	uint64_t buf[WORDS];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	for (uint64_t p = 0; p < size / PAGE; p++) {
		fill(buf, p, 0);
		if (pwrite(fd, buf, PAGE, (off_t)(p * PAGE)) != PAGE) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	return 0;
}

/* Pages of the file that do not hold the last version written. */
static uint64_t check_file(const char *path, const struct shared *sh, uint64_t pages)
{
	uint64_t buf[WORDS], bad = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return pages;
	for (uint64_t p = 0; p < pages; p++) {
		bool ok = pread(fd, buf, PAGE, (off_t)(p * PAGE)) == PAGE;

		for (unsigned k = 0; ok && k < WORDS; k++)
			ok = buf[k] == word(p, sh->version[p], k);
		if (!ok && bad++ < REPORT_MAX)
			fprintf(stderr,
				"soak: file page %" PRIu64 ": want version %" PRIu64
				", found page %" PRIu64 " version %" PRIu64 "\n",
				p, sh->version[p], word_page(buf[0]), word_version(buf[0]));
	}
	close(fd);
	return bad;
}

/* The daemon's figures settle once it has seen every process of the soak go. */
static void wait_spaces(const struct soak_config *c, long long spaces)
{
	for (int i = 0; i < 100 && ctl_stat(c, "spaces") > spaces; i++)
		usleep(50 * 1000);
}

/*
 * The daemon's descriptors once the connections of the upagerctl runs just made are closed: it
 * may not have seen the last one go yet, so the fewest over 200 ms.
 */
static int settled_fds(pid_t pid)
{
	int n = procfs_count_fds(pid);

	for (int i = 0; i < 10; i++) {
		usleep(20 * 1000);
		n = MIN(n, procfs_count_fds(pid));
	}
	return n;
}

/**
 * soak_run() - run the soak of @c
 * @c: what to run
 * @r: the figures, filled in
 *
 * Return: 0 once it ran (whatever it found: see soak_ok()), or a negative errno if it could not.
 */
int soak_run(const struct soak_config *c, struct soak_result *r)
{
	uint64_t pages = c->file_size / PAGE;
	size_t shsize = sizeof(struct shared) + pages * sizeof(uint64_t);
	long long written0, spaces0;
	struct shared *sh;
	char path[512];
	pid_t pids[c->procs];
	int ret;

	if (pages == 0 || c->procs == 0 || c->threads == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/soak.bin", c->dir);
	ret = make_file(path, c->file_size);
	if (ret < 0)
		return ret;
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	written0 = ctl_stat(c, "bytes_written");
	spaces0 = ctl_stat(c, "spaces");
	*r = (struct soak_result){ .rss_start_kb = rss_kb(c->daemon_pid),
				   .fds_start = settled_fds(c->daemon_pid) };
	for (unsigned i = 0; i < c->procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			process_main(c, sh, path, i);
	}
	for (unsigned i = 0; i < c->procs; i++) {
		int status;

		if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0) {
			r->procs_died++;
			continue;
		}
		if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "soak: process %u: %s %d\n", i,
				WIFSIGNALED(status) ? "killed by signal" : "exit status",
				WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			r->procs_died++;
		}
	}
	wait_spaces(c, spaces0);
	r->writes = sh->sum.writes;
	r->verifies = sh->sum.verifies;
	r->reads = sh->sum.reads;
	r->msyncs = sh->sum.msyncs;
	r->remaps = sh->sum.remaps;
	r->remaps_failed = sh->sum.remaps_failed;
	r->remounts = sh->sum.remounts;
	r->errors = sh->sum.errors;
	r->stale_own = sh->sum.stale_own;
	r->stale_any = sh->sum.stale_any;
	r->stale_file = check_file(path, sh, pages);
	r->bytes_written = (uint64_t)(ctl_stat(c, "bytes_written") - written0);
	r->rss_end_kb = rss_kb(c->daemon_pid);
	/* The daemon closes upagerctl's connection and the file's cache when it has seen them go,
	 * which may be a moment after: up to 2 s for its descriptors to come back. */
	for (int i = 0; i < 200; i++) {
		r->fds_end = procfs_count_fds(c->daemon_pid);
		if (r->fds_end <= r->fds_start)
			break;
		usleep(10000);
	}
	munmap(sh, shsize);
	unlink(path);
	return 0;
}

/** soak_ok() - whether the soak found nothing wrong: no stale page, no death, no error */
bool soak_ok(const struct soak_result *r)
{
	return !r->stale_own && !r->stale_any && !r->stale_file && !r->procs_died && !r->errors &&
	       !r->remaps_failed;
}

/** soak_report() - the figures of a soak, a few lines on @f */
void soak_report(FILE *f, const struct soak_config *c, const struct soak_result *r)
{
	fprintf(f,
		"soak: %u processes x %u threads, %" PRIu64 " MiB, %u s, remaps %s\n"
		"operations: %" PRIu64 " writes, %" PRIu64 " verifies, %" PRIu64 " reads, %" PRIu64
		" msyncs, %" PRIu64 " remaps (%" PRIu64 " failed), %" PRIu64
		" unmaps and maps, %" PRIu64 " errors\n"
		"stale: %" PRIu64 " reads of owned pages, %" PRIu64 " reads of any page, %" PRIu64
		" of %" PRIu64 " file pages at the end\n"
		"processes died: %u\n"
		"daemon: rss %ld -> %ld kB, descriptors %d -> %d\n"
		"written back: %" PRIu64 " bytes (%.1f times the file)\n"
		"%s\n",
		c->procs, c->threads, c->file_size >> 20, c->seconds, c->remaps ? "on" : "off",
		r->writes, r->verifies, r->reads, r->msyncs, r->remaps, r->remaps_failed,
		r->remounts, r->errors, r->stale_own, r->stale_any, r->stale_file,
		c->file_size / PAGE, r->procs_died, r->rss_start_kb, r->rss_end_kb, r->fds_start,
		r->fds_end, r->bytes_written, (double)r->bytes_written / (double)c->file_size,
		soak_ok(r) ? "PASS" : "FAIL");
}
