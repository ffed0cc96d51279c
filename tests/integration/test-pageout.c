// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Paging out: upagerd with a memory budget and a client in one memory cgroup limited to the budget
 * and some headroom, without swap, and workloads 8 times the budget. Every page's data is checked,
 * and the cgroup's own figure of shared memory (the daemon's caches) is sampled all along.
 *
 * The swap store is a file, or with $UPAGER_TEST_NBD ("unix", "tcp", "tls" or "qcow2") the export of
 * an nbdkit or a qemu-nbd that the test starts (meson runs the anonymous memory tests so again).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "harness.h"
#include "tests/procfs.h"
#include "nbd-server.h"
#include "common/mman.h"
#include "upager.h"

#define BUDGET (16UL << 20)
#define WORKLOAD (8 * BUDGET)
/* The rest of the daemon and the client: under a sanitizer, its quarantine of freed memory too. */
#define HEADROOM (RUNNING_UNDER_SANITIZER ? (1024UL << 20) : (64UL << 20))
/* What the cache may hold above the budget: a fill under way is counted in it already; the
 * cgroup's shared memory also holds the page-state arrays and such small change. */
#define SLACK (1UL << 20)

static char swap_path[256];

/* Whether the swap store is on an NBD server. */
static bool on_nbd(void)
{
	return getenv("UPAGER_TEST_NBD") != NULL;
}

/* A new swap store in swap_path: a file's path, or the URI of a new server. */
static void new_swap_store(void)
{
	const char *nbd = getenv("UPAGER_TEST_NBD");

	if (nbd) {
		nbd_server_start(nbd_server_kind_of(nbd), swap_path, sizeof(swap_path));
		return;
	}
	snprintf(swap_path, sizeof(swap_path), "/var/tmp/upager-test-swap-%d", (int)getpid());
	unlink(swap_path);
}

static bool store_taken(void *arg)
{
	(void)arg;
	return harness_daemon_logged("swap: on the NBD server");
}

/* The daemon listens before it opens its swap store. */
static void start_daemon(const char *const *args)
{
	harness_start_args(args);
	if (on_nbd())
		cr_assert(wait_until(store_taken, NULL, 10000), "the daemon did not take %s",
			  swap_path);
}

static void start(void)
{
	static const char *args[] = { "--memory-max", "16M", "--swap", swap_path, NULL };

	new_swap_store();
	start_daemon(args);
}

static void stop(void)
{
	harness_stop();
	if (on_nbd())
		nbd_server_stop();
	else
		unlink(swap_path);
}

TestSuite(pageout, .init = start, .fini = stop, .timeout = 600);

static uint64_t rss_anon_kib(pid_t pid);

/* The most anonymous memory the daemon had in the last run_limited(), in KiB. */
static uint64_t daemon_anon_max;

/* The most the cgroup's shared memory and the client's anonymous memory held together in the last
 * run_limited(), in KiB. */
static uint64_t pages_max;

/* RssAnon of @pid in KiB, 0 once it is gone (harness_status_kib() ends the process then). */
static uint64_t anon_kib_if_alive(pid_t pid)
{
	unsigned long long kib = 0;

	return procfs_status(pid, "RssAnon: %llu", &kib) ? kib : 0;
}

/* Samples the cgroup's shared memory until told to stop. */
struct watch {
	struct cgroup *cg;
	volatile bool stop;
	uint64_t max_shmem;
	uint64_t max_file; /* the kernel's page cache of files: no double caching */
	uint64_t max_daemon_anon; /* KiB: the daemon's buffers, beyond the budget */
	uint64_t max_pages; /* KiB: the cgroup's shared memory and the client's own, together */
	volatile pid_t child; /* killed at once if the cgroup's OOM killer acts, so the test ends */
	pthread_t thread;
};

static void *watch_run(void *arg)
{
	struct watch *w = arg;

	while (!w->stop) {
		uint64_t v = cgroup_stat(w->cg, "shmem");
		uint64_t f =
			cgroup_stat(w->cg, "active_file") + cgroup_stat(w->cg, "inactive_file");

		if (v > w->max_shmem)
			w->max_shmem = v;
		if (f > w->max_file)
			w->max_file = f;
		uint64_t a = rss_anon_kib(harness_daemon_pid());
		pid_t child = w->child;
		uint64_t both = (v >> 10) + (child > 0 ? anon_kib_if_alive(child) : 0);

		if (a > w->max_daemon_anon)
			w->max_daemon_anon = a;
		if (both > w->max_pages)
			w->max_pages = both;
		if (w->child > 0 && cgroup_oom_killed(w->cg))
			kill(w->child, SIGKILL);
		usleep(1000);
	}
	return NULL;
}

/*
 * Run @fn in a child, the daemon and the child in one cgroup of BUDGET + HEADROOM, and check that
 * the child succeeded, that no one was killed and that the daemon's caches stayed in the budget.
 */
static uint64_t run_limited_caches(void (*fn)(void *), void *arg, bool caches)
{
	struct cgroup cg;
	struct watch w = { .cg = &cg };
	int status;
	pid_t child;

	cgroup_new(&cg, "pageout");
	cgroup_limit(&cg, BUDGET + HEADROOM);
	cgroup_enter(&cg, harness_daemon_pid());
	/* The watcher starts after the fork: a child forked while another thread holds the
	 * allocator's lock (the watcher reads files) would wait on it for ever, as a sanitizer's
	 * allocator showed. */
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		alarm(400); /* a client that hangs fails; a slow machine is only slow */
		cgroup_enter(&cg, getpid());
		fn(arg);
		_exit(0);
	}
	w.child = child;
	cr_assert_eq(pthread_create(&w.thread, NULL, watch_run, &w), 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	w.stop = true;
	pthread_join(w.thread, NULL);
	bool killed = cgroup_oom_killed(&cg);
	cgroup_remove(&cg, harness_daemon_pid());
	cr_assert(!killed, "the cgroup's OOM killer killed a process");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	cr_assert_leq(w.max_shmem, BUDGET + SLACK,
		      "the caches took %llu KiB, the budget is %lu KiB",
		      (unsigned long long)w.max_shmem >> 10, BUDGET >> 10);
	if (caches)
		cr_assert_gt(w.max_shmem, BUDGET / 2,
			     "the caches took only %llu KiB: nothing to page out",
			     (unsigned long long)w.max_shmem >> 10);
	daemon_anon_max = w.max_daemon_anon;
	pages_max = w.max_pages;
	return w.max_file;
}

static uint64_t run_limited(void (*fn)(void *), void *arg)
{
	return run_limited_caches(fn, arg, true);
}

static char file_path[512];

/* The daemon's paging figures (upagerctl stats). */
static struct upager_msg figures(void)
{
	struct upager_msg rep;

	cr_assert_eq(harness_stats(&rep), 0);
	return rep;
}

/* Exit 3 at the first page whose first or last word is not @xor's pattern, said on stderr. */
static void check_pages(const uint64_t *p, uint64_t first, uint64_t count, uint64_t xor)
{
	for (uint64_t i = first; i < first + count; i++) {
		uint64_t off = i * PAGE, want = pattern_at(off) ^ xor;
		uint64_t end = pattern_at(off + PAGE - 8) ^ xor;

		if (p[off / 8] != want || p[(off + PAGE - 8) / 8] != end) {
			/* Said before the status, for a failure seen once in a while. */
			fprintf(stderr, "page %llu: %#llx %#llx, not %#llx %#llx\n",
				(unsigned long long)i, (unsigned long long)p[off / 8],
				(unsigned long long)p[(off + PAGE - 8) / 8],
				(unsigned long long)want, (unsigned long long)end);
			_exit(3);
		}
	}
}

/* The workload file mapped shared; *fdp: its descriptor. The child exits if it cannot. */
static uint64_t *map_file(int prot, int *fdp)
{
	int fd = open(file_path, prot & PROT_WRITE ? O_RDWR : O_RDONLY);
	uint64_t *p;

	if (fd < 0)
		_exit(10);
	p = upager_mmap(NULL, WORKLOAD, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(11);
	if (fdp)
		*fdp = fd;
	return p;
}

static void read_file_twice(void *arg)
{
	uint64_t *p = map_file(PROT_READ, NULL);

	(void)arg;
	for (int round = 0; round < 2; round++)
		check_pages(p, 0, WORKLOAD / PAGE, 0);
	srandom(1);
	for (int i = 0; i < 20000; i++)
		check_pages(p, (uint64_t)random() % (WORKLOAD / PAGE), 1, 0);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, a_file_eight_times_the_budget_is_read_in_the_budget)
{
	uint64_t page_cache;

	close(make_pattern_file("big", WORKLOAD, file_path));
	/* Written just now: the file's pages leave the page cache before the reads begin. */
	cr_assert_eq(system("sync; echo 1 > /proc/sys/vm/drop_caches"), 0);
	page_cache = run_limited(read_file_twice, NULL);
	/* Read with RWF_DONTCACHE where the kernel has it: the kernel's page cache does not hold
	 * the file a second time (no double caching). */
	cr_assert_leq(page_cache, BUDGET, "the kernel's page cache held %llu KiB of the file",
		      (unsigned long long)page_cache >> 10);
	/* The daemon's own figures say the same. */
	struct upager_msg f = figures();

	cr_assert_eq(f.u.stats_reply.budget_bytes, BUDGET);
	cr_assert_geq(f.u.stats_reply.pages_out, 2 * (WORKLOAD - BUDGET) / PAGE,
		      "two reads of the file sent %llu pages out",
		      (unsigned long long)f.u.stats_reply.pages_out);
	cr_assert_geq(f.u.stats_reply.refaults, (WORKLOAD - BUDGET) / PAGE);
	cr_assert_eq(f.u.stats_reply.pages_written_out, 0, "nothing was written");
	cr_assert_eq(f.u.stats_reply.over_budget, 0, "every page could leave");
}

#define XOR 0xffULL

static void write_then_read(void *arg)
{
	uint64_t *p = map_file(PROT_READ | PROT_WRITE, NULL);

	(void)arg;
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++) {
		p[i * PAGE / 8] ^= XOR;
		p[(i * PAGE + PAGE - 8) / 8] ^= XOR;
	}
	check_pages(p, 0, WORKLOAD / PAGE, XOR);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, dirty_pages_are_written_back_before_they_leave_and_read_again_after)
{
	uint64_t word, page_cache;
	int fd = make_pattern_file("dirty", WORKLOAD, file_path);

	cr_assert_eq(system("sync; echo 1 > /proc/sys/vm/drop_caches"), 0);
	page_cache = run_limited(write_then_read, NULL);
	cr_assert_geq(figures().u.stats_reply.pages_written_out, (WORKLOAD - BUDGET) / PAGE);
	/* Written back with RWF_DONTCACHE where the kernel has it: the written pages leave the
	 * kernel's page cache once on disk, not held there a second time, dirty. */
	cr_assert_leq(page_cache, BUDGET, "the kernel's page cache held %llu KiB of the file",
		      (unsigned long long)page_cache >> 10);
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++) {
		cr_assert_eq(pread(fd, &word, 8, (off_t)(i * PAGE)), 8);
		cr_assert_eq(word, pattern_at(i * PAGE) ^ XOR, "page %llu of the file",
			     (unsigned long long)i);
	}
	close(fd);
}

/*
 * A private mapping of a file 8 times the budget: the parent writes three pages in four, more than
 * the cgroup holds, so the copies the writes make go to the swap store and come back; the pages
 * not written read the file; a forked child sees its parent's copies and its own writes only; and
 * MADV_DONTNEED gives the file's pages back. The file is never written.
 */
#define CHILD_XOR 0xf0f0ULL

static uint64_t copy_xor(uint64_t i, bool child)
{
	uint64_t x = i % 4 ? XOR : 0;

	return child && i % 4 < 2 ? x ^ CHILD_XOR : x;
}

static void xor_page(uint64_t *p, uint64_t i, uint64_t x)
{
	p[i * PAGE / 8] ^= x;
	p[(i * PAGE + PAGE - 8) / 8] ^= x;
}

static void check_copies(const uint64_t *p, bool child)
{
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++)
		check_pages(p, i, 1, copy_xor(i, child));
}

static void private_file(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, *p;
	int fd = open(file_path, O_RDONLY), status;
	pid_t child;

	(void)arg;
	p = fd < 0 ? MAP_FAILED
		   : upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		_exit(11);
	for (uint64_t i = 0; i < pages; i++)
		if (i % 4)
			xor_page(p, i, XOR);
	check_copies(p, false);
	srandom(7);
	for (int i = 0; i < 4000; i++) {
		uint64_t k = (uint64_t)random() % pages;

		check_pages(p, k, 1, copy_xor(k, false));
	}
	child = harness_fork();
	if (child == 0) {
		/* Pages of the file and copies of the parent's, written again. */
		for (uint64_t i = 0; i < pages; i++)
			if (i % 4 < 2)
				xor_page(p, i, CHILD_XOR);
		check_copies(p, true);
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		_exit(20);
	if (status != 0)
		_exit(WIFEXITED(status) ? 20 + WEXITSTATUS(status) : 30);
	check_copies(p, false);
	if (madvise(p, WORKLOAD, MADV_DONTNEED) < 0)
		_exit(21);
	check_pages(p, 0, pages, 0);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
	close(fd);
}

Test(pageout, copies_a_private_file_mapping_writes_go_out_and_back)
{
	struct upager_msg before = figures(), f;
	int fd = make_pattern_file("private", WORKLOAD, file_path);
	uint64_t word;

	run_limited_caches(private_file, NULL, false);
	f = figures();
	cr_assert_geq(f.u.stats_reply.pages_out - before.u.stats_reply.pages_out,
		      (WORKLOAD * 3 / 4 - BUDGET) / PAGE, "the copies went to the swap store");
	cr_assert_geq(f.u.stats_reply.pages_in - before.u.stats_reply.pages_in,
		      (WORKLOAD * 3 / 4 - 2 * BUDGET) / PAGE, "the copies came back");
	cr_assert_eq(f.u.stats_reply.pages_written_out, before.u.stats_reply.pages_written_out,
		     "nothing was written to the file");
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++) {
		cr_assert_eq(pread(fd, &word, 8, (off_t)(i * PAGE)), 8);
		cr_assert_eq(word, pattern_at(i * PAGE), "page %llu of the file",
			     (unsigned long long)i);
	}
	close(fd);
	for (int i = 0; i < 100 && figures().u.stats_reply.swap_used_bytes; i++)
		usleep(20 * 1000);
	cr_assert_eq(figures().u.stats_reply.swap_used_bytes, 0, "the slots were freed");
}

/*
 * Words written one at a time at random over a private mapping of a file a quarter of the budget,
 * the k-th write to a page at its word k mod 512, whole pages read back between, and private
 * anonymous memory twice the budget touched as often, so that the copies keep going out: a write
 * to a copy on its way out waits for its page-out, whose DROP takes the copy from the client
 * before the write goes on; the writer then faults the copy back from the swap store, with every
 * word written before. (Such a write was let go on as a first write and the copy's slot
 * forgotten: the file's page came back under it, every earlier word of the copy lost.)
 */
#define WORDS_FILE (BUDGET / 4)
#define WORDS_ANON (2 * BUDGET)

/* What the @n-th write to page @k writes. */
static uint64_t copy_word(uint64_t k, uint64_t n)
{
	return (k << 32 | n) * 0x9e3779b97f4a7c15ULL | 1;
}

/* Page @k of @p, which had @writes writes, holds the file's words but for the last writes. */
static void check_written_words(const uint64_t *p, uint64_t k, uint64_t writes, int op)
{
	for (uint64_t w = 0; w < 512; w++) {
		/* The last write to word w, if any: one whose number is w modulo 512. */
		uint64_t last = writes >= w ? writes - (writes - w) % 512 : 0;
		uint64_t want = last ? copy_word(k, last) : pattern_at(k * PAGE + w * 8);

		if (p[k * PAGE / 8 + w] != want) {
			fprintf(stderr, "op %d: page %llu word %llu holds %#llx, not %#llx\n", op,
				(unsigned long long)k, (unsigned long long)w,
				(unsigned long long)p[k * PAGE / 8 + w], (unsigned long long)want);
			_exit(3);
		}
	}
}

static void copies_written_word_by_word(void *arg)
{
	uint64_t pages = WORDS_FILE / PAGE, anon_pages = WORDS_ANON / PAGE, *p, *a;
	uint64_t *writes = calloc(pages, sizeof(*writes));
	int fd = open(file_path, O_RDONLY);
	unsigned seed = 11;

	(void)arg;
	p = fd < 0 ? MAP_FAILED
		   : upager_mmap(NULL, WORDS_FILE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	a = upager_mmap(NULL, WORDS_ANON, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (p == MAP_FAILED || a == MAP_FAILED || !writes)
		_exit(11);
	for (int op = 0; op < 100000; op++) {
		uint64_t k = (uint64_t)rand_r(&seed) % pages;

		if (op % 2) {
			a[(k * 7919 + (uint64_t)op) % anon_pages * PAGE / 8] = (uint64_t)op;
		} else if (rand_r(&seed) % 4) {
			writes[k]++;
			p[k * PAGE / 8 + writes[k] % 512] = copy_word(k, writes[k]);
		} else {
			check_written_words(p, k, writes[k], op);
		}
	}
	for (uint64_t k = 0; k < pages; k++)
		check_written_words(p, k, writes[k], -1);
	if (upager_munmap(p, WORDS_FILE) < 0 || upager_munmap(a, WORDS_ANON) < 0)
		_exit(12);
	close(fd);
	free(writes);
}

Test(pageout, copies_written_again_on_their_way_out_keep_every_earlier_word)
{
	struct upager_msg before = figures();

	close(make_pattern_file("words", WORDS_FILE, file_path));
	run_limited_caches(copies_written_word_by_word, NULL, false);
	cr_assert_geq(figures().u.stats_reply.pages_out - before.u.stats_reply.pages_out,
		      BUDGET / PAGE, "pages went to the swap store");
}

/*
 * Private anonymous memory made read-only, more than the budget, and write(2)s from a buffer of
 * shared anonymous memory across two pages: the kernel faults them in one after the other and
 * needs both at once. The read-only pages stayed (UFFDIO_MOVE takes writable mappings only), and
 * the two shared pages, all that could leave, each went out to make room for the other, for ever:
 * the write never ended. The read-only pages go out in place now.
 */
static void write_from_two_shared_pages(void *arg)
{
	uint64_t ro = BUDGET / PAGE + BUDGET / PAGE / 4;
	char path[512], *p, *s;
	volatile char sum = 0;
	int fd;

	(void)arg;
	alarm(60);
	snprintf(path, sizeof(path), "%s/written", harness_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	p = upager_mmap(NULL, ro * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	s = upager_mmap(NULL, 256 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			0);
	if (fd < 0 || p == MAP_FAILED || s == MAP_FAILED)
		_exit(11);
	for (uint64_t i = 0; i < ro; i++)
		p[i * PAGE] = 1;
	if (mprotect(p, ro * PAGE, PROT_READ) < 0)
		_exit(12);
	for (uint64_t i = 0; i < ro; i++)
		sum += p[i * PAGE];
	memset(s, 0x5a, 256 * PAGE);
	for (int k = 0; k < 100; k++)
		if (pwrite(fd, s + (k * 37 % 250) * PAGE + 2248, 4864, 0) != 4864)
			_exit(13);
	close(fd);
}

Test(pageout, a_write_from_a_buffer_across_two_pages_ends_when_little_else_can_leave)
{
	run_limited_caches(write_from_two_shared_pages, NULL, false);
}

/* Whether the page at @arg raises SIGBUS now. */
static bool page_gone(void *arg)
{
	char c;

	return harness_read_sigbus(arg, &c);
}

static bool swap_at_most(void *arg)
{
	return figures().u.stats_reply.swap_used_bytes <= *(uint64_t *)arg;
}

/*
 * The file of a private mapping 8 times the budget, three pages in four written (copies in memory
 * and in the swap store), shrinks to half: every page past the new end raises SIGBUS, a copy in
 * the store as well as one in memory, as the kernel's truncation unmaps copies too (mmap(2):
 * SIGBUS past the end of the file); those below keep their data, and the slots of the copies past
 * the end are freed.
 */
Test(pageout, copies_past_the_end_of_a_truncated_file_go)
{
	uint64_t pages = WORKLOAD / PAGE, *p, used, half;
	int fd = make_pattern_file("cut", WORKLOAD, file_path);
	char c;

	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	for (uint64_t i = 0; i < pages; i++)
		if (i % 4)
			xor_page(p, i, XOR);
	used = figures().u.stats_reply.swap_used_bytes;
	cr_assert_geq(used, WORKLOAD / 2, "%llu bytes of copies in the swap store",
		      (unsigned long long)used);
	cr_assert_eq(ftruncate(fd, WORKLOAD / 2), 0);
	cr_assert(wait_until(page_gone, (char *)p + WORKLOAD - PAGE + 1, 500),
		  "the last copy still reads after the truncation");
	for (uint64_t i = pages / 2; i < pages; i++)
		cr_assert(harness_read_sigbus((char *)p + i * PAGE, &c),
			  "page %llu, past the end, reads", (unsigned long long)i);
	for (uint64_t i = 0; i < pages / 2; i++) {
		cr_assert_eq(p[i * PAGE / 8], pattern_at(i * PAGE) ^ copy_xor(i, false),
			     "page %llu", (unsigned long long)i);
		cr_assert_eq(p[(i * PAGE + PAGE - 8) / 8],
			     pattern_at(i * PAGE + PAGE - 8) ^ copy_xor(i, false), "page %llu",
			     (unsigned long long)i);
	}
	half = WORKLOAD * 3 / 8 + WORKLOAD / 16;
	cr_assert(wait_until(swap_at_most, &half, 2000), "%llu bytes of the swap store in use",
		  (unsigned long long)figures().u.stats_reply.swap_used_bytes);
	cr_assert_eq(upager_munmap(p, WORKLOAD), 0);
	close(fd);
}

/* Nonlinear: each run of 64 pages of the mapping shows the file's runs in reverse order. */
#define NL_RUN 64
#define NL_RUNS (WORKLOAD / PAGE / NL_RUN)

static uint64_t nl_file_page(uint64_t i)
{
	return (NL_RUNS - 1 - i / NL_RUN) * NL_RUN + i % NL_RUN;
}

/* Exit 3 at the first page of the nonlinear mapping @p whose words are not the file's ^ @xor. */
static void check_nonlinear(const uint64_t *p, uint64_t xor)
{
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++) {
		uint64_t off = nl_file_page(i) * PAGE;

		if (p[i * PAGE / 8] != (pattern_at(off) ^ xor) ||
		    p[(i * PAGE + PAGE - 8) / 8] != (pattern_at(off + PAGE - 8) ^ xor))
			_exit(3);
	}
}

static void nonlinear_read_write(void *arg)
{
	uint64_t *p = map_file(PROT_READ | PROT_WRITE, NULL);

	(void)arg;
	for (uint64_t r = 0; r < NL_RUNS; r++)
		if (upager_remap_file_pages(p + r * NL_RUN * PAGE / 8, NL_RUN * PAGE, 0,
					    (NL_RUNS - 1 - r) * NL_RUN, 0) < 0)
			_exit(13);
	for (int round = 0; round < 2; round++)
		check_nonlinear(p, 0);
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++) {
		p[i * PAGE / 8] ^= XOR;
		p[(i * PAGE + PAGE - 8) / 8] ^= XOR;
	}
	check_nonlinear(p, XOR);
	if (upager_msync(p, WORKLOAD, MS_SYNC) < 0 || upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, a_nonlinear_mapping_eight_times_the_budget_is_read_and_written_in_the_budget)
{
	uint64_t word;
	int fd = make_pattern_file("nonlinear", WORKLOAD, file_path);

	run_limited(nonlinear_read_write, NULL);
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++) {
		cr_assert_eq(pread(fd, &word, 8, (off_t)(i * PAGE)), 8);
		cr_assert_eq(word, pattern_at(i * PAGE) ^ XOR, "page %llu of the file",
			     (unsigned long long)i);
	}
	close(fd);
}

/*
 * A nonlinear mapping of a file under random work: writes, reads and remaps of runs of up to 8
 * pages anywhere in the file, so that many view pages show one file page; each read checked
 * against the last write to that file page, then upager_msync() of the mapping and every page of
 * the file read with pread(). Before, upager_msync() wrote back only the file pages the view showed
 * then, not those written before a remap took them away (most of them not in the file), where
 * Linux synced a nonlinear mapping's whole linear range. Within the budget (NONLINEAR_PAGES) and
 * at 4x it, where the copies leave all the time: the copy a fault made used to leave again in the
 * same turn, before its thread ran, which then faulted on it for ever.
 */
#define NONLINEAR_OPS 20000
#define NONLINEAR_PAGES 512

static void nonlinear_random(int fd, uint64_t pages)
{
	uint64_t *p, *shadow, seed = 5, word;

	p = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	shadow = calloc(pages, sizeof(*shadow));
	uint64_t *view = malloc(pages * sizeof(*view));
	if (p == MAP_FAILED || !shadow || !view)
		_exit(11);
	for (uint64_t i = 0; i < pages; i++)
		view[i] = i;
	for (int k = 0; k < NONLINEAR_OPS; k++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t r = seed >> 33, i = r % pages, op = (r >> 20) % 100, f = view[i];

		if (op < 40) {
			shadow[f] = r << 8 | 1;
			p[i * PAGE / 8] = shadow[f];
		} else if (op < 90) {
			word = shadow[f] ? shadow[f] : pattern_at(f * PAGE);
			if (p[i * PAGE / 8] != word) {
				fprintf(stderr,
					"op %d: view page %llu (file page %llu) reads %#llx\n", k,
					(unsigned long long)i, (unsigned long long)f,
					(unsigned long long)p[i * PAGE / 8]);
				_exit(3);
			}
		} else {
			uint64_t n = 1 + (r >> 8) % 8, to = (r >> 12) % pages;

			n = i + n > pages ? pages - i : n;
			to = to + n > pages ? pages - n : to;
			if (upager_remap_file_pages(p + i * PAGE / 8, n * PAGE, 0, to, 0) < 0)
				_exit(13);
			for (uint64_t j = 0; j < n; j++)
				view[i + j] = to + j;
		}
	}
	if (upager_msync(p, pages * PAGE, MS_SYNC) < 0)
		_exit(12);
	for (uint64_t f = 0; f < pages; f++) {
		if (pread(fd, &word, 8, (off_t)(f * PAGE)) != 8)
			_exit(14);
		if (word != (shadow[f] ? shadow[f] : pattern_at(f * PAGE))) {
			fprintf(stderr, "file page %llu: %#llx after upager_msync()\n",
				(unsigned long long)f, (unsigned long long)word);
			_exit(4);
		}
	}
	_exit(upager_munmap(p, pages * PAGE) < 0 ? 12 : 0);
}

static void run_nonlinear_random(uint64_t pages)
{
	int fd = make_pattern_file("remapped", pages * PAGE, file_path), status = 0;
	pid_t child = harness_fork();

	cr_assert(child >= 0);
	if (child == 0)
		nonlinear_random(fd, pages);
	if (!harness_ended_within(child, 120 * 1000, &status)) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		cr_assert_fail("the client did not end within 120 s");
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	close(fd);
}

Test(pageout, a_nonlinear_mapping_under_random_remaps_and_writes_loses_no_write_at_msync)
{
	run_nonlinear_random(NONLINEAR_PAGES);
}

Test(pageout, a_nonlinear_mapping_4x_the_budget_under_random_remaps_and_writes_goes_on)
{
	run_nonlinear_random(4 * BUDGET / PAGE);
}

/*
 * Writes racing the eviction of their pages: threads keep writing a counter into pages of their
 * own while a reader streams through the rest of the file, so that the written pages are written
 * back, write-protected and sent out again and again. The file must end with the last counters.
 */
#define WRITERS 4
#define WRITER_PAGES 64

struct writer {
	uint64_t *map;
	int index;
	volatile bool *stop;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;

	for (uint64_t n = 1; !*w->stop; n++) {
		for (int i = 0; i < WRITER_PAGES; i++)
			w->map[(uint64_t)(w->index * WRITER_PAGES + i) * PAGE / 8] = n;
		/* Read back while the pages may be leaving: a write lost shows at once. */
		for (int i = 0; i < WRITER_PAGES; i++)
			if (w->map[(uint64_t)(w->index * WRITER_PAGES + i) * PAGE / 8] != n)
				_exit(5);
	}
	return NULL;
}

static void race(void *arg)
{
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	volatile bool stop = false;
	uint64_t last[WRITERS * WRITER_PAGES];
	int fd;
	uint64_t *p = map_file(PROT_READ | PROT_WRITE, &fd);

	(void)arg;
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .map = p, .index = i, .stop = &stop };
		pthread_create(&t[i], NULL, writer_run, &w[i]);
	}
	for (int round = 0; round < 3; round++)
		check_pages(p, WRITERS * WRITER_PAGES, WORKLOAD / PAGE - WRITERS * WRITER_PAGES, 0);
	stop = true;
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	/* What the mapping shows last must be what the file holds: sent to the parent after the
	 * pages, through the file. */
	for (uint64_t k = 0; k < WRITERS * WRITER_PAGES; k++)
		last[k] = p[k * PAGE / 8];
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
	if (pwrite(fd, last, sizeof(last), (off_t)WORKLOAD) != (ssize_t)sizeof(last))
		_exit(13);
}

Test(pageout, a_write_racing_the_eviction_of_its_page_reaches_the_file)
{
	int fd = make_pattern_file("race", WORKLOAD, file_path);

	run_limited(race, NULL);
	for (uint64_t k = 0; k < WRITERS * WRITER_PAGES; k++) {
		uint64_t last, word;

		cr_assert_eq(pread(fd, &last, 8, (off_t)(WORKLOAD + k * 8)), 8);
		cr_assert_gt(last, 1, "page %llu was written only %llu times",
			     (unsigned long long)k, (unsigned long long)last);
		cr_assert_eq(pread(fd, &word, 8, (off_t)(k * PAGE)), 8);
		cr_assert_eq(word, last, "page %llu holds %llu, its last write was %llu",
			     (unsigned long long)k, (unsigned long long)word,
			     (unsigned long long)last);
	}
	close(fd);
}

/* Shared anonymous memory 8 times the budget: written, paged out to the swap store, read back. */
static uint64_t anon_word(uint64_t page, uint64_t round)
{
	return page * 0x9e3779b97f4a7c15ULL ^ round;
}

static void check_anon(const uint64_t *p, uint64_t first, uint64_t count, uint64_t round)
{
	for (uint64_t i = first; i < first + count; i++)
		if (p[i * PAGE / 8] != anon_word(i, round) ||
		    p[(i * PAGE + PAGE - 8) / 8] != anon_word(i, round) + 1)
			_exit(3);
}

static void write_anon(uint64_t *p, uint64_t first, uint64_t count, uint64_t round)
{
	for (uint64_t i = first; i < first + count; i++) {
		p[i * PAGE / 8] = anon_word(i, round);
		p[(i * PAGE + PAGE - 8) / 8] = anon_word(i, round) + 1;
	}
}

/* The anonymous memory process @pid has in its page tables, in KiB. */
static uint64_t rss_anon_kib(pid_t pid)
{
	return harness_status_kib(pid, "RssAnon");
}

/* WORKLOAD of anonymous memory (MAP_SHARED or MAP_PRIVATE), written, read in order and at random. */
static uint64_t *anon_written(int type, unsigned seed)
{
	uint64_t pages = WORKLOAD / PAGE, *p;

	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(11);
	write_anon(p, 0, pages, 1);
	check_anon(p, 0, pages, 1);
	srandom(seed);
	for (int i = 0; i < 4000; i++)
		check_anon(p, (uint64_t)random() % pages, 1, 1);
	return p;
}

static void shared_anon(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, *p = anon_written(MAP_SHARED, 2);
	int status;
	pid_t child;

	(void)arg;
	/* A child shares the pages: its writes, paged out and in, are the parent's to see. */
	child = harness_fork();
	if (child == 0) {
		check_anon(p, 0, pages, 1);
		write_anon(p, 0, pages / 2, 2);
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child || status != 0)
		_exit(20);
	check_anon(p, 0, pages / 2, 2);
	check_anon(p, pages / 2, pages - pages / 2, 1);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

/* The blocks the swap store holds on disk, in KiB. */
static uint64_t swap_kib(void)
{
	struct stat st;

	cr_assert_eq(stat(swap_path, &st), 0, "%s: %m", swap_path);
	return (uint64_t)st.st_blocks / 2;
}

Test(pageout, shared_anonymous_memory_eight_times_the_budget_goes_to_the_swap_store_and_back)
{
	const char *where;
	struct stat st;

	run_limited(shared_anon, NULL);
	struct upager_msg f = figures();

	cr_assert_geq(f.u.stats_reply.pages_in, (WORKLOAD - BUDGET) / PAGE,
		      "the pages came back from the swap store");
	cr_assert_gt(f.u.stats_reply.swap_bytes, WORKLOAD);
	/* upagerctl stats says which store took them, and what went each way. */
	cr_assert_eq(f.u.stats_reply.store_kind, on_nbd() ? UPAGER_STORE_NBD : UPAGER_STORE_FILE);
	/* A URI without its credentials (TLS's user name and key file). */
	where = on_nbd() ? nbd_server_uri_shown() : swap_path;
	cr_assert_eq(f.u.stats_reply.store_where_len, strlen(where));
	cr_assert_eq(memcmp(f.u.stats_reply.store_where, where, strlen(where)), 0);
	cr_assert_geq(f.u.stats_reply.store_bytes_out, WORKLOAD - BUDGET);
	cr_assert_geq(f.u.stats_reply.store_bytes_in, WORKLOAD - BUDGET);
	cr_assert_eq(f.u.stats_reply.store_errors, 0);
	if (!on_nbd()) {
		cr_assert_eq(stat(swap_path, &st), 0, "the swap store was made: %m");
		cr_assert_eq(st.st_mode & 0777, 0600);
		/* The client is gone: its slots are freed, their blocks given back. */
		for (int i = 0; i < 100 && swap_kib() > 1024; i++)
			usleep(20 * 1000);
		cr_assert_leq(swap_kib(), 1024, "the swap store still holds %llu KiB",
			      (unsigned long long)swap_kib());
	}
	for (int i = 0; i < 100 && figures().u.stats_reply.swap_used_bytes; i++)
		usleep(20 * 1000);
	cr_assert_eq(figures().u.stats_reply.swap_used_bytes, 0);
	cr_assert_eq(figures().u.stats_reply.memory_pages, 0);
}

/*
 * MADV_DONTNEED of shared anonymous memory most of which is in the swap store keeps the data: the
 * next touch reads it back, as the kernel's shared memory does (madvise(2)).
 */
static void shared_anon_dontneed(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, *p = anon_written(MAP_SHARED, 4);

	(void)arg;
	if (madvise(p, WORKLOAD, MADV_DONTNEED) < 0)
		_exit(20);
	check_anon(p, 0, pages, 1);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, madv_dontneed_keeps_shared_anonymous_pages_in_the_swap_store)
{
	run_limited(shared_anon_dontneed, NULL);
}

/*
 * MADV_REMOVE of shared anonymous pages in memory leaves zeroes (madvise(2)), also where a page
 * read back from the swap store kept its slot there: the removed pages read zeroes after the rest
 * of the mapping, read back, has pushed them out of the budget.
 */
static void shared_anon_remove(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, *p = anon_written(MAP_SHARED, 5), zeroed = 0;
	unsigned char *in = malloc(pages);

	(void)arg;
	check_anon(p, 0, pages, 1); /* in order: the last budget's worth was read back */
	if (!in || mincore(p, WORKLOAD, in) < 0)
		_exit(20);
	if (madvise(p, WORKLOAD, MADV_REMOVE) < 0)
		_exit(21);
	for (uint64_t i = 0; i < pages; i++)
		if (!(in[i] & 1))
			(void)*(volatile uint64_t *)(p + i * (PAGE / 8));
	for (uint64_t i = 0; i < pages; i++) {
		if (!(in[i] & 1))
			continue;
		if (p[i * (PAGE / 8)] || p[i * (PAGE / 8) + PAGE / 8 - 1])
			_exit(22);
		zeroed++;
	}
	if (zeroed < BUDGET / PAGE / 2)
		_exit(23);
	free(in);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, madv_remove_of_shared_anonymous_pages_in_memory_leaves_zeroes)
{
	run_limited(shared_anon_remove, NULL);
}

/*
 * Private anonymous memory 8 times the budget, in a cgroup that cannot hold it (no kernel swap):
 * written, paged out, read back; a forked child sees the parent's data, and each process its own
 * writes only, while their pages go out and come back.
 */
static void private_anon(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, *p = anon_written(MAP_PRIVATE, 3);
	int status;
	pid_t child;

	(void)arg;
	/* The child writes all of its copy, 8 times the budget too: its pages go out as well (an
	 * eighth of it under a sanitizer, whose headroom no OOM killer would reach anyway). */
	child = harness_fork();
	if (child == 0) {
		uint64_t own = RUNNING_UNDER_SANITIZER ? pages / 8 : pages;

		for (int i = 0; i < 2000; i++)
			check_anon(p, (uint64_t)random() % pages, 1, 1);
		write_anon(p, 0, own, 2);
		check_anon(p, 0, own, 2);
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		_exit(20);
	if (status != 0) /* 23: the child read a wrong page */
		_exit(WIFEXITED(status) ? 20 + WEXITSTATUS(status) : 30);
	/* The child's writes are its own. */
	check_anon(p, 0, pages, 1);
	write_anon(p, pages / 4, pages / 4, 3);
	check_anon(p, 0, pages / 4, 1);
	check_anon(p, pages / 4, pages / 4, 3);
	check_anon(p, pages / 2, pages - pages / 2, 1);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

/*
 * @fn run as a client under the budget (run_limited_caches()): the client's pages and the caches
 * stay within the budget and its slack (1 MiB here), the pages on their way out counted: a
 * page-out takes its room at once, and its pages stay in the client until the DROP (5.5 MiB above
 * the budget before). The client's own memory besides is what it had at the fork, and 1 MiB. On
 * NBD over TCP one run in about ten was once seen 4 MiB higher for a moment, not understood yet:
 * checked on a file.
 */
static void run_private_in_budget(void (*fn)(void *))
{
	uint64_t own = rss_anon_kib(getpid());

	run_limited_caches(fn, NULL, false);
	cr_assert(RUNNING_UNDER_SANITIZER || on_nbd() ||
			  pages_max <= (BUDGET >> 10) + 1024 + own + 1024,
		  "%llu KiB in memory, the budget is %lu KiB, the client's own %llu KiB",
		  (unsigned long long)pages_max, BUDGET >> 10, (unsigned long long)own);
}

Test(pageout, private_anonymous_memory_eight_times_the_budget_goes_out_and_back_across_fork)
{
	struct upager_msg before = figures(), f;

	run_private_in_budget(private_anon);
	f = figures();
	cr_assert_geq(f.u.stats_reply.pages_out - before.u.stats_reply.pages_out,
		      (WORKLOAD - BUDGET) / PAGE, "the pages went to the swap store");
	cr_assert_geq(f.u.stats_reply.pages_in - before.u.stats_reply.pages_in,
		      (WORKLOAD - BUDGET) / PAGE, "the pages came back");
	/* The client is gone: its slots are freed. */
	for (int i = 0; i < 100 && figures().u.stats_reply.swap_used_bytes; i++)
		usleep(20 * 1000);
	cr_assert_eq(figures().u.stats_reply.swap_used_bytes, 0, "%llu bytes in use, %llu before",
		     (unsigned long long)figures().u.stats_reply.swap_used_bytes,
		     (unsigned long long)before.u.stats_reply.swap_used_bytes);
}

/*
 * Private anonymous memory 8 times the budget, written, then made read-only with mprotect() and
 * read twice, then writable again and half of it written again: UFFDIO_MOVE takes pages of
 * writable mappings only, and the read-only pages, refused, stayed in memory while every read
 * brought another back (the client read on to the cgroup's limit).
 */
static void private_anon_read_only(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, *p = anon_written(MAP_PRIVATE, 5);

	(void)arg;
	if (mprotect(p, WORKLOAD, PROT_READ) < 0)
		_exit(13);
	check_anon(p, 0, pages, 1);
	check_anon(p, 0, pages, 1);
	if (mprotect(p, WORKLOAD, PROT_READ | PROT_WRITE) < 0)
		_exit(14);
	write_anon(p, pages / 2, pages / 2, 2);
	check_anon(p, 0, pages / 2, 1);
	check_anon(p, pages / 2, pages / 2, 2);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, private_anonymous_memory_made_read_only_goes_out_and_back)
{
	struct upager_msg before = figures(), f;

	run_private_in_budget(private_anon_read_only);
	f = figures();
	/* Out once written, out again from each read-only pass. */
	cr_assert_geq(f.u.stats_reply.pages_out - before.u.stats_reply.pages_out,
		      3 * (WORKLOAD - BUDGET) / PAGE, "the read-only pages went out too");
}

/* A daemon whose budget (1 GiB) is far above what the test's clients write. */
static void start_large(void)
{
	static const char *args[] = { "--memory-max", "1G", "--swap", swap_path, NULL };

	new_swap_store();
	start_daemon(args);
}

#define CAPPED_LIMIT (48UL << 20)
#define CAPPED_EACH (96UL << 20)

/*
 * Two clients in a memory cgroup limited to 48 MiB, below the daemon's own (none), each writing
 * 96 MiB of private anonymous memory and reading it back: the kernel charges those pages to the
 * clients' cgroup, so the budget of 1 GiB would never send them out; the cgroup's cap (half its
 * limit, for its processes together) does, and neither is killed (the cgroup's OOM killer killed
 * them before).
 */
Test(pageout, clients_in_a_memory_cgroup_limited_below_the_daemon_page_out_within_it,
     .init = start_large, .fini = stop)
{
	struct upager_msg before = figures();
	struct cgroup cg;
	pid_t child[2];
	int status[2];
	bool killed;

	if (RUNNING_UNDER_SANITIZER)
		cr_skip_test("a sanitizer's shadow memory alone is over such a limit");
	cgroup_new(&cg, "capped");
	cgroup_limit(&cg, CAPPED_LIMIT);
	for (int k = 0; k < 2; k++) {
		child[k] = harness_fork();
		cr_assert(child[k] >= 0);
		if (child[k] == 0) {
			uint64_t *p, pages = CAPPED_EACH / PAGE;

			alarm(400);
			cgroup_enter(&cg, getpid());
			p = upager_mmap(NULL, CAPPED_EACH, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				_exit(11);
			write_anon(p, 0, pages, (uint64_t)k + 1);
			for (int round = 0; round < 2; round++)
				check_anon(p, 0, pages, (uint64_t)k + 1);
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++)
		cr_assert_eq(waitpid(child[k], &status[k], 0), child[k]);
	killed = cgroup_oom_killed(&cg);
	cgroup_remove(&cg, 0);
	cr_assert(!killed, "the cgroup's OOM killer killed a client");
	for (int k = 0; k < 2; k++)
		cr_assert_eq(status[k], 0, "client %d ended with %#x", k, status[k]);
	cr_assert_geq(figures().u.stats_reply.pages_out - before.u.stats_reply.pages_out,
		      (2 * CAPPED_EACH - CAPPED_LIMIT) / PAGE, "the pages went to the swap store");
}

#define HOT_PAGES 1024 /* a quarter of the budget */
#define COLD_PAGES 6000 /* half again as much as the budget */
#define HOT_ROUNDS 50

/*
 * In a child: COLD_PAGES written once, in one mapping or (@one_page_each) in as many one-page
 * mappings side by side, then a working set of HOT_PAGES mapped after them (at a lower address)
 * touched in HOT_ROUNDS rounds, every word checked. Return: the pages the daemon read back from
 * the swap store meanwhile.
 */
static uint64_t working_set_after_pages_written_once(bool one_page_each)
{
	struct upager_msg before = figures();
	int status;
	pid_t child = harness_fork();

	cr_assert(child >= 0);
	if (child == 0) {
		uint64_t *cold = NULL, *hot;

		alarm(300);
		for (uint64_t i = 0; i < COLD_PAGES; i++) {
			uint64_t *p = cold ? cold + i * PAGE / 8 : NULL;

			if (!one_page_each && !cold)
				p = cold =
					upager_mmap(NULL, COLD_PAGES * PAGE, PROT_READ | PROT_WRITE,
						    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (one_page_each)
				p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
						MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				_exit(11);
			p[0] = anon_word(i, 1);
		}
		hot = upager_mmap(NULL, HOT_PAGES * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (hot == MAP_FAILED)
			_exit(12);
		for (uint64_t round = 2; round < 2 + HOT_ROUNDS; round++) {
			if (round > 2)
				check_anon(hot, 0, HOT_PAGES, round - 1);
			write_anon(hot, 0, HOT_PAGES, round);
		}
		_exit(0);
	}
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert_eq(status, 0, "the client ended with %#x", status);
	return figures().u.stats_reply.pages_in - before.u.stats_reply.pages_in;
}

/*
 * Pages written once leave memory before a working set that fits the budget, wherever they are:
 * each sweep of the private clock went on past the pages it wanted, round the whole table, and
 * the next began at the lowest address again, so that a working set there was sent out and read
 * back at every round (about HOT_PAGES a round) while pages written once above it stayed.
 */
Test(pageout, pages_written_once_leave_before_a_working_set_below_them)
{
	uint64_t in = working_set_after_pages_written_once(false);

	cr_assert_lt(in, 2 * HOT_PAGES, "%llu pages read back for %d rounds of %d pages",
		     (unsigned long long)in, HOT_ROUNDS, HOT_PAGES);
}

/*
 * The same pages written once, each a mapping of its own: side by side, the kernel merges them
 * into one VMA, and a run of them over several mappings was refused whole: they never left.
 */
Test(pageout, one_page_mappings_side_by_side_leave_memory)
{
	uint64_t in = working_set_after_pages_written_once(true);

	cr_assert_lt(in, 2 * HOT_PAGES, "%llu pages read back for %d rounds of %d pages",
		     (unsigned long long)in, HOT_ROUNDS, HOT_PAGES);
}

/*
 * A fork leaves out of the child what madvise(2) said: a MADV_WIPEONFORK range reads zeroes in the
 * child and a MADV_DONTFORK one is not there, though the parent's pages are in the swap store.
 */
/*
 * A daemon killed (SIGKILL) while most pages are out, and started again by hand: its keeper hands
 * the next one every descriptor, and every page comes back, private and shared (the pages out read
 * as zeroes before: a new daemon started its swap store afresh).
 */
static int crash_ready[2], crash_go[2];

static void written_across_a_crash(void *arg)
{
	uint64_t pages = WORKLOAD / 2 / PAGE, *priv, *shared;
	char c = 0;

	(void)arg;
	priv = upager_mmap(NULL, WORKLOAD / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	shared = upager_mmap(NULL, WORKLOAD / 2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			     -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		_exit(11);
	write_anon(priv, 0, pages, 8);
	write_anon(shared, 0, pages, 9);
	if (write(crash_ready[1], &c, 1) != 1 || read(crash_go[0], &c, 1) != 1)
		_exit(12);
	check_anon(priv, 0, pages, 8);
	check_anon(shared, 0, pages, 9);
}

Test(pageout, a_daemon_killed_while_pages_are_out_is_taken_over_with_every_page)
{
	struct upager_msg f;
	int status;
	pid_t child;
	char c = 0;

	cr_assert_eq(pipe(crash_ready), 0);
	cr_assert_eq(pipe(crash_go), 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		alarm(100);
		written_across_a_crash(NULL);
		_exit(0);
	}
	cr_assert_eq(read(crash_ready[0], &c, 1), 1, "the client did not write its pages");
	f = figures();
	cr_assert_geq(f.u.stats_reply.pages_out, (WORKLOAD - 2 * BUDGET) / PAGE,
		      "only %llu pages went out", (unsigned long long)f.u.stats_reply.pages_out);
	harness_daemon_kill();
	harness_daemon_restart();
	cr_assert_eq(write(crash_go[1], &c, 1), 1);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the client ended with %#x (exit 3: a page came back wrong)", status);
}

static void wiped_at_fork(void *arg)
{
	uint64_t pages = WORKLOAD / PAGE, half = pages / 2, *p = anon_written(MAP_PRIVATE, 6);
	int status;
	pid_t child;

	(void)arg;
	if (madvise(p, half * PAGE, MADV_WIPEONFORK) < 0 ||
	    madvise(p + half * (PAGE / 8), (pages - half) * PAGE, MADV_DONTFORK) < 0)
		_exit(20);
	child = harness_fork();
	if (child == 0) {
		unsigned char in;

		for (uint64_t i = 0; i < half; i++)
			if (p[i * (PAGE / 8)] || p[i * (PAGE / 8) + PAGE / 8 - 1])
				_exit(1);
		write_anon(p, 0, half, 2);
		check_anon(p, 0, half, 2);
		_exit(mincore(p + half * (PAGE / 8), PAGE, &in) == -1 && errno == ENOMEM ? 0 : 2);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		_exit(21);
	if (status != 0) /* 22: the child read its parent's data; 23: a wrong page; 24: mapped */
		_exit(WIFEXITED(status) ? 21 + WEXITSTATUS(status) : 30);
	check_anon(p, 0, pages, 1);
	if (upager_munmap(p, WORKLOAD) < 0)
		_exit(12);
}

Test(pageout, a_child_gets_zeroes_where_its_parent_advised_wipeonfork_and_nothing_where_dontfork)
{
	run_limited_caches(wiped_at_fork, NULL, false);
}

/*
 * Private memory 4 times the budget, every word written in rounds as a memory tester writes it
 * (MADV_POPULATE_READ, two passes of writes, then each pair of words swapped, a read then two
 * writes), and checked. A write-protect fault that waited while its page left for the swap store
 * must not find the page gone and its data with it: the writer takes the page back.
 */
static void swapped_words(void *arg)
{
	const uint64_t a = 0x5555aaaa5555aaaaULL, b = ~a;
	uint64_t words = WORKLOAD / 2 / 8;
	volatile uint64_t *p;

	(void)arg;
	p = upager_mmap(NULL, WORKLOAD / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (p == MAP_FAILED)
		_exit(11);
	for (int round = 0; round < 4; round++) {
		if (madvise((void *)p, WORKLOAD / 2, MADV_POPULATE_READ) < 0)
			_exit(20);
		for (uint64_t w = 0; w < words; w++)
			p[w] = w & 1 ? a : b;
		for (uint64_t w = 0; w < words; w++)
			p[w] = w & 1 ? b : a;
		for (uint64_t w = 0; w < words; w += 2) {
			uint64_t t = p[w];

			p[w] = p[w + 1];
			p[w + 1] = t;
		}
		for (uint64_t w = 0; w < words; w++)
			if (p[w] != (w & 1 ? a : b))
				_exit(21);
	}
	if (upager_munmap((void *)p, WORKLOAD / 2) < 0)
		_exit(12);
}

Test(pageout, private_words_swapped_in_place_under_the_budget_are_never_lost)
{
	run_limited_caches(swapped_words, NULL, false);
}

/*
 * A client moves its private memory with mremap(MREMAP_DONTUNMAP) over and over while the daemon
 * pages it out, each of the daemon's reads of the pages slowed down (fault injection) so that a
 * move lands between its look at the pages and its read: the read faults on the emptied old
 * range, which only the daemon serves, while the client waits in mremap() for the daemon. Neither
 * may wait for ever. Privileged clients only: an unprivileged client's userfaultfd
 * (UFFD_USER_MODE_ONLY) fails the daemon's read instead.
 */
static volatile bool moves_done;

/* Touches of @arg (WORKLOAD / 2 of private memory) that keep the daemon paging out. */
static void *keep_paging(void *arg)
{
	uint64_t pages = WORKLOAD / 2 / PAGE, *a = arg;
	unsigned seed = 1;

	while (!moves_done) {
		uint64_t i = (uint64_t)rand_r(&seed) % pages;

		if (a[i * PAGE / 8] != anon_word(i, 1))
			_exit(24); /* the pages that stayed where they were */
	}
	return NULL;
}

static void moved_while_read(void *arg)
{
	uint64_t pages = WORKLOAD / 4 / PAGE, len = WORKLOAD / 4, *a, *p;
	pthread_t t;

	(void)arg;
	alarm(120); /* a daemon that waits for ever fails the test */
	a = upager_mmap(NULL, WORKLOAD / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	p = upager_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || p == MAP_FAILED)
		_exit(11);
	write_anon(a, 0, WORKLOAD / 2 / PAGE, 1);
	write_anon(p, 0, pages, 1);
	if (pthread_create(&t, NULL, keep_paging, a) != 0)
		_exit(21);
	for (int round = 0; round < 100; round++) {
		uint64_t *q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);

		if (q == MAP_FAILED || munmap(p, len) < 0)
			_exit(20);
		p = q;
		usleep(1000);
	}
	moves_done = true;
	pthread_join(t, NULL);
	/* Every page of the moved range holds what was written, though pages of it were on
	 * their way out at the moves, taken by DROPs naming where they had been. */
	for (uint64_t i = 0; i < pages; i++)
		if (p[i * PAGE / 8] != anon_word(i, 1) ||
		    p[(i * PAGE + PAGE - 8) / 8] != anon_word(i, 1) + 1) {
			fprintf(stderr, "page %llu of the moved range holds %#llx, not %#llx\n",
				(unsigned long long)i, (unsigned long long)p[i * PAGE / 8],
				(unsigned long long)anon_word(i, 1));
			_exit(3);
		}
	if (upager_munmap(p, len) < 0 || upager_munmap(a, WORKLOAD / 2) < 0)
		_exit(12);
}

static void start_slow_reads(void)
{
	setenv("UPAGER_SLOW_REMOTE_READ", "20000", 1);
	start();
	unsetenv("UPAGER_SLOW_REMOTE_READ");
}

Test(pageout, a_move_during_a_read_of_its_pages_blocks_neither_client_nor_daemon,
     .init = start_slow_reads)
{
	if (geteuid() != 0)
		cr_skip_test("an unprivileged client's userfaultfd fails the read instead");
	run_limited_caches(moved_while_read, NULL, false);
}

/*
 * The same moves at full speed: a range moved back and forth (each move's new place the one
 * before's old) while its pages go out. A DROP names pages where they were read; a page moved
 * away and back, or another moved there, is what the client finds. Without the page-out following
 * its pages (page-trail.c), a page that moved before its DROP went lost its slot, yet the DROP took
 * it where it was back: zeroes.
 */
Test(pageout, a_range_moved_back_and_forth_while_its_pages_go_out_loses_none)
{
	run_limited_caches(moved_while_read, NULL, false);
}

/*
 * A parent's private pages in memory, half the budget, then a fork: the child writes them all,
 * copies the kernel makes without a fault, then private memory 8 times the budget of its own.
 * The two processes' private memory stays within the budget: the child's pages are counted as its
 * own from the fork on, and leave as any. Uncounted, the copies sat in the child beyond it.
 */
static void fork_copies(void *arg)
{
	uint64_t half = BUDGET / 2 / PAGE, pages = WORKLOAD / PAGE, *p, *q, base, bound;
	int status;
	pid_t child;

	(void)arg;
	base = rss_anon_kib(getpid());
	p = upager_mmap(NULL, BUDGET / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (p == MAP_FAILED)
		_exit(11);
	write_anon(p, 0, half, 1);
	child = harness_fork();
	if (child == 0) {
		write_anon(p, 0, half, 2);
		q = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
		if (q == MAP_FAILED)
			_exit(12);
		write_anon(q, 0, pages, 3);
		check_anon(q, 0, pages, 3);
		check_anon(p, 0, half, 2);
		/* Besides the budget and its slack, what each process had before (its heap,
		 * stacks), and a MiB for the library's own. */
		bound = (BUDGET + SLACK) / 1024 + 2 * base + 1024;
		if (!RUNNING_UNDER_SANITIZER &&
		    rss_anon_kib(getpid()) + rss_anon_kib(getppid()) > bound) {
			fprintf(stderr,
				"private memory of the two: %llu + %llu KiB, at most %llu\n",
				(unsigned long long)rss_anon_kib(getpid()),
				(unsigned long long)rss_anon_kib(getppid()),
				(unsigned long long)bound);
			_exit(40);
		}
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		_exit(20);
	if (status != 0)
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 30);
	check_anon(p, 0, half, 1);
	if (upager_munmap(p, BUDGET / 2) < 0)
		_exit(13);
}

Test(pageout, a_forked_child_counts_the_private_pages_it_shares_with_its_parent)
{
	run_limited_caches(fork_copies, NULL, false);
}

/*
 * Pages read back for a read keep their slots and come back write-protected: unwritten, a DROP
 * alone sends them out again. Shared with a forked child, the pages both map count twice, over the
 * budget, and such a DROP would be refused (UFFDIO_MOVE does not move a page two processes map,
 * nor does a drop in place take a copy mapped twice). The page-out reads them first, which gives
 * each process a page of its own that can go: the pages in memory come back within the budget
 * while parent and child sit still (without it they stayed at 1.5 times the budget, and a child
 * writing its pages grew to the cgroup's limit), and the daemon sends no DROP it knows will be
 * refused at every turn of its loop (without it, 70-80% of a CPU; a fault waiting for room waited
 * for ever when the DROPs of the two took turns). Every word is right after.
 */
#define KEPT_IDLE_MS 2000
#define KEPT_BUSY_MS 300
#define KEPT_WAIT_MS 60000

/* @child ends within @ms and succeeds; else exit 40 if it did not end (it is killed), 20 + its
 * status if it failed, 30 if a signal ended it. */
static void end_child_within(pid_t child, int ms)
{
	int status = 0;

	if (!harness_ended_within(child, ms, &status))
		_exit(40);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		_exit(WIFEXITED(status) ? 20 + WEXITSTATUS(status) : 30);
}

/* The CPU time process @pid has taken so far, in ms (utime + stime of /proc/PID/stat). */
static uint64_t cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		_exit(42);
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* After the name: the state, then ten fields before utime and stime. */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		_exit(43);
	return (utime + stime) * 1000 / (uint64_t)sysconf(_SC_CLK_TCK);
}

/* The child of fork_kept(): once told, it writes every other page and checks them all. */
static void kept_child(uint64_t *p, uint64_t pages, int go)
{
	char c;

	if (read(go, &c, 1) != 1)
		_exit(9);
	for (uint64_t i = 0; i < pages; i += 2)
		write_anon(p, i, 1, 2);
	for (uint64_t i = 0; i < pages; i++)
		check_anon(p, i, 1, 1 + (i % 2 == 0));
	_exit(0);
}

/* A private mapping of @pages pages: anonymous (@path NULL), or of the file at @path, whose
 * descriptor goes to *@fdp (-1 for anonymous). The child exits if it cannot. */
static uint64_t *map_private(const char *path, uint64_t pages, int *fdp)
{
	int fd = path ? open(path, O_RDONLY) : -1;
	uint64_t *p;

	if (path && fd < 0)
		_exit(10);
	p = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | (path ? 0 : MAP_ANONYMOUS), fd, 0);
	if (p == MAP_FAILED)
		_exit(11);
	*fdp = fd;
	return p;
}

/* The mapping of map_private() goes, and its file's descriptor. */
static void unmap_private(uint64_t *p, uint64_t pages, int fd)
{
	if (upager_munmap(p, pages * PAGE) < 0)
		_exit(13);
	if (fd >= 0)
		close(fd);
}

/* @fn on a private anonymous mapping, then on one of a file of @bytes named @name. */
static void run_anon_then_file(void (*fn)(void *), const char *name, uint64_t bytes)
{
	run_limited_caches(fn, NULL, false);
	close(make_pattern_file(name, bytes, file_path));
	run_limited_caches(fn, file_path, false);
}

/* @arg: the file to map privately, or NULL for anonymous memory. */
static void fork_kept(void *arg)
{
	uint64_t pages = BUDGET * 3 / 4 / PAGE, push = 2 * BUDGET / PAGE, *p, *q, busy;
	int go[2], fd;
	struct upager_msg rep;
	pid_t child;

	p = map_private(arg, pages, &fd);
	q = upager_mmap(NULL, push * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (q == MAP_FAILED || pipe(go) < 0)
		_exit(11);
	/* Written, pushed out by another mapping, which goes; read back, they keep their slots. */
	write_anon(p, 0, pages, 1);
	write_anon(q, 0, push, 1);
	if (upager_munmap(q, push * PAGE) < 0)
		_exit(12);
	check_anon(p, 0, pages, 1);
	child = harness_fork();
	if (child == 0)
		kept_child(p, pages, go[0]);
	if (child < 0)
		_exit(20);
	busy = cpu_ms(harness_daemon_pid());
	usleep(KEPT_IDLE_MS * 1000);
	busy = cpu_ms(harness_daemon_pid()) - busy;
	if (harness_stats(&rep) < 0)
		_exit(22);
	if (write(go[1], "", 1) != 1)
		_exit(21);
	end_child_within(child, KEPT_WAIT_MS);
	if (busy > KEPT_BUSY_MS) {
		fprintf(stderr, "the daemon took %llu ms of CPU in %d ms of two idle processes\n",
			(unsigned long long)busy, KEPT_IDLE_MS);
		_exit(41);
	}
	if (rep.u.stats_reply.memory_pages > BUDGET / PAGE) {
		fprintf(stderr, "%llu pages in memory, the budget is %lu\n",
			(unsigned long long)rep.u.stats_reply.memory_pages, BUDGET / PAGE);
		_exit(44);
	}
	check_anon(p, 0, pages, 1);
	unmap_private(p, pages, fd);
}

Test(pageout, pages_shared_with_a_fork_that_refuses_them_are_left_alone_a_while)
{
	run_anon_then_file(fork_kept, "kept", BUDGET);
}

/*
 * A child forked by a process whose memory is four times the budget, read back (the slots kept),
 * writes every third page and reads them all while its parent waits: the pages it brings in need
 * room, which the parent's pages make, each shared with the child or, once the child wrote its
 * own, no longer the parent's own page, which a DROP not preceded by a read of it leaves where it
 * is. The daemon's CPU time for the child's pass stays of the order of what the parent's read pass
 * of as many pages took (1.2-1.4 times here; without the read, 14-16 times, the sweep walking the
 * tables at every turn for pages that never went, and the child crawled for minutes with a budget
 * of 64 MiB). Every word right in both.
 */
#define WRITER_WAIT_MS 60000
#define WRITER_BUSY_TIMES 4
#define WRITER_BUSY_MS 500

static void fork_writer(void *arg)
{
	uint64_t pages = 4 * BUDGET / PAGE, *p, busy, base;
	pid_t child;

	(void)arg;
	p = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (p == MAP_FAILED)
		_exit(11);
	write_anon(p, 0, pages, 1);
	check_anon(p, 0, pages, 1);
	/* Read back out of order too: pages one at a time, each keeping its slot. */
	base = cpu_ms(harness_daemon_pid());
	for (uint64_t i = 0; i < pages; i++)
		check_anon(p, i * 7919 % pages, 1, 1);
	busy = cpu_ms(harness_daemon_pid());
	base = busy - base;
	child = harness_fork();
	if (child == 0) {
		for (uint64_t i = 0; i < pages; i += 3)
			write_anon(p, i, 1, 2);
		for (uint64_t i = 0; i < pages; i++)
			check_anon(p, i, 1, i % 3 ? 1 : 2);
		_exit(0);
	}
	if (child < 0)
		_exit(20);
	end_child_within(child, WRITER_WAIT_MS);
	busy = cpu_ms(harness_daemon_pid()) - busy;
	if (busy > WRITER_BUSY_TIMES * base + WRITER_BUSY_MS) {
		fprintf(stderr, "the daemon took %llu ms of CPU for the child, %llu for the read\n",
			(unsigned long long)busy, (unsigned long long)base);
		_exit(41);
	}
	check_anon(p, 0, pages, 1);
	if (upager_munmap(p, pages * PAGE) < 0)
		_exit(12);
}

Test(pageout, a_fork_writing_its_copies_gets_room_from_its_parents_pages)
{
	run_limited_caches(fork_writer, NULL, false);
}

/*
 * A fork while pages come back: a page-in maps the pages after the one faulted on too (read
 * ahead), and the writer, woken by the first, may fork while the daemon maps the others. The
 * kernel fails each mapping with EAGAIN until the daemon has read the fork's event, so those come
 * after the fork, into the parent only; read back for a write, they lose their slots there. The
 * child must see every page as it was at the fork, the pages its parent got after it read back
 * from their slots. (Taken for in memory, they read zeroes in the child, or the file's page, in
 * about one fork in two.) @arg: NULL, a private anonymous mapping; else one of the file, whose
 * pages written are copies.
 */
#define FORKS_WHILE_PAGING_IN 100
#define READ_AHEAD_CHECKED 64 /* pages after the one faulted on the child checks */

static void fork_while_paging_in(void *arg)
{
	uint64_t pages = 4 * BUDGET / PAGE, *p;
	int forks = 0, fd;
	pid_t child;

	p = map_private(arg, pages, &fd);
	write_anon(p, 0, pages, 1);
	for (uint64_t i = 0; i + READ_AHEAD_CHECKED < pages && forks < FORKS_WHILE_PAGING_IN; i++) {
		bool out = !page_present((char *)p + i * PAGE);

		p[i * PAGE / 8 + 1] = 1; /* a write: its window comes back writable */
		if (!out)
			continue;
		forks++;
		child = harness_fork();
		if (child == 0) {
			check_anon(p, i + 1, READ_AHEAD_CHECKED, 1);
			_exit(0);
		}
		if (child < 0)
			_exit(20);
		end_child_within(child, WRITER_WAIT_MS);
	}
	if (forks < FORKS_WHILE_PAGING_IN)
		_exit(42); /* too few pages were out */
	check_anon(p, 0, pages, 1);
	unmap_private(p, pages, fd);
}

Test(pageout, a_fork_while_pages_come_back_sees_them_as_they_were_at_the_fork)
{
	run_anon_then_file(fork_while_paging_in, "forked", 4 * BUDGET);
}

/* The faults of the mapping at @p of this process so far. */
static uint64_t region_faults(const void *p)
{
	struct region_info info;

	cr_assert(harness_region(getpid(), p, &info));
	return info.faults;
}

/* The faults that writing @pages pages of the mapping at @p in order, round @round, takes. */
static uint64_t faults_writing(uint64_t *p, uint64_t pages, uint64_t round)
{
	uint64_t before = region_faults(p);

	write_anon(p, 0, pages, round);
	return region_faults(p) - before;
}

/*
 * Private pages paged out and written again in order fault a window at a time: those read back for
 * a write come back writable with the page faulted on, and those read back for a read (their slots
 * kept, write-protected) lose the protection a window at a time at the writer's first write. Every
 * word is right. Without it: a fault for each page, the write-protect fault of each page read ahead.
 */
Test(pageout, private_pages_written_again_in_order_fault_a_window_at_a_time)
{
	uint64_t pages = WORKLOAD / PAGE, half = BUDGET / 2 / PAGE, *p, *q, out = 0, faults;

	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	write_anon(p, 0, pages, 1);
	for (uint64_t i = 0; i < pages; i++)
		out += !page_present(p + i * PAGE / 8);
	cr_assert_geq(out, (WORKLOAD - 2 * BUDGET) / PAGE, "%llu pages out",
		      (unsigned long long)out);
	/* Out, written again. */
	faults = faults_writing(p, pages, 2);
	cr_assert_lt(faults, out / 8, "%llu faults to write %llu pages out again",
		     (unsigned long long)faults, (unsigned long long)out);
	check_anon(p, 0, pages, 2);
	cr_assert_eq(upager_munmap(p, WORKLOAD), 0);

	/* Half the budget written, pushed out by another mapping, which then goes: read back,
	 * they stay, their slots kept; then written. */
	q = upager_mmap(NULL, half * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	cr_assert_neq(q, MAP_FAILED);
	write_anon(q, 0, half, 3);
	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	write_anon(p, 0, pages, 1);
	cr_assert_eq(upager_munmap(p, WORKLOAD), 0);
	out = 0;
	for (uint64_t i = 0; i < half; i++)
		out += !page_present(q + i * PAGE / 8);
	cr_assert_geq(out, half / 2, "%llu pages out", (unsigned long long)out);
	check_anon(q, 0, half, 3);
	faults = faults_writing(q, half, 4);
	cr_assert_lt(faults, out / 8, "%llu faults to write %llu pages read back",
		     (unsigned long long)faults, (unsigned long long)out);
	check_anon(q, 0, half, 4);
	cr_assert_eq(upager_munmap(q, half * PAGE), 0);
}

/*
 * Private pages paged out in order and read back in order come back a window at a time: the fault
 * on a page reads the pages after it from the slots that follow, as the kernel's swap read-ahead
 * does, not one fault a page; every word is right. Without it: a fault for each page out.
 */
Test(pageout, private_pages_read_back_in_order_come_a_window_at_a_time)
{
	uint64_t pages = WORKLOAD / PAGE, *p, out = 0;
	struct region_info before, after;

	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	for (uint64_t i = 0; i < pages; i++)
		for (uint64_t k = 0; k < PAGE / 8; k += 64)
			p[i * PAGE / 8 + k] = anon_word(i, 6) + k;
	for (uint64_t i = 0; i < pages; i++)
		out += !page_present(p + i * PAGE / 8);
	cr_assert_geq(out, (WORKLOAD - 2 * BUDGET) / PAGE, "%llu pages out",
		      (unsigned long long)out);
	cr_assert(harness_region(getpid(), p, &before));
	for (uint64_t i = 0; i < pages; i++)
		for (uint64_t k = 0; k < PAGE / 8; k += 64)
			cr_assert_eq(p[i * PAGE / 8 + k], anon_word(i, 6) + k,
				     "page %llu, word %llu", (unsigned long long)i,
				     (unsigned long long)k);
	cr_assert(harness_region(getpid(), p, &after));
	cr_assert_lt(after.faults - before.faults, out / 8, "%llu faults to read %llu pages back",
		     (unsigned long long)(after.faults - before.faults), (unsigned long long)out);
	/* upagerctl list counts the mapping's pages out and back. */
	cr_assert_geq(before.private_pages_out, out, "%llu pages out, %llu counted",
		      (unsigned long long)out, (unsigned long long)before.private_pages_out);
	cr_assert_geq(after.private_pages_in - before.private_pages_in, out,
		      "%llu pages read back, %llu counted", (unsigned long long)out,
		      (unsigned long long)(after.private_pages_in - before.private_pages_in));
	cr_assert_eq(upager_munmap(p, WORKLOAD), 0);
}

/*
 * Shared anonymous pages read back keep their slots while the store has room: read again and again,
 * they leave memory without a second write to the swap store (as the kernel's swap cache keeps a
 * page's swap entry until it is written); a page written after gives its slot up, and its new data
 * is what comes back. Without it: each read pass writes the pages that leave again.
 */
Test(pageout, shared_pages_read_back_leave_again_without_a_write)
{
	uint64_t pages = WORKLOAD / PAGE, *p, before, written;

	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	write_anon(p, 0, pages, 1);
	check_anon(p, 0, pages, 1);
	before = figures().u.stats_reply.store_bytes_out;
	for (int round = 0; round < 2; round++)
		check_anon(p, 0, pages, 1);
	written = figures().u.stats_reply.store_bytes_out - before;
	cr_assert_lt(written, WORKLOAD / 8, "two read passes wrote %llu KiB to the swap store",
		     (unsigned long long)written >> 10);
	cr_assert_geq(figures().u.stats_reply.pages_in, 2 * (WORKLOAD - 2 * BUDGET) / PAGE,
		      "the read passes read pages back");
	write_anon(p, pages / 4, pages / 2, 2);
	check_anon(p, 0, pages / 4, 1);
	check_anon(p, pages / 4, pages / 2, 2);
	check_anon(p, 3 * pages / 4, pages - 3 * pages / 4, 1);
	check_anon(p, pages / 4, pages / 2, 2);
	cr_assert_eq(upager_munmap(p, WORKLOAD), 0);
}

/*
 * Private pages of a mapping made read-only after it was written: UFFDIO_MOVE refuses them (the
 * spare area's protection differs), so they stay where they are while the rest go out and come
 * back; no page is lost (a control thread that dropped pages in place whenever UFFDIO_MOVE said
 * EINVAL lost them), and the mapping is left alone for a while after a DROP it refused whole
 * (before, the daemon read and wrote them out again at every turn, at 90% of a CPU, for minutes).
 */
Test(pageout, private_pages_of_a_mapping_made_read_only_are_never_lost)
{
	uint64_t pages = 4 * BUDGET / PAGE, *p, before, written, t0, seconds;

	p = upager_mmap(NULL, 4 * BUDGET, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	cr_assert_neq(p, MAP_FAILED);
	write_anon(p, 0, pages, 8);
	cr_assert_eq(mprotect(p, 4 * BUDGET, PROT_READ), 0);
	before = figures().u.stats_reply.store_bytes_out;
	t0 = harness_now_ms();
	for (int round = 0; round < 3; round++)
		check_anon(p, 0, pages, 8);
	written = figures().u.stats_reply.store_bytes_out - before;
	seconds = (harness_now_ms() - t0) / 1000 + 1;
	/* Refused, they are not read and written out again at every turn, only once a second (a
	 * round of the four page-outs a space may have under way, 4 MiB): 12 MiB in 4 s here, 66 MiB
	 * in 18 s in a sanitizer build; at every turn, hundreds of MiB a second. */
	cr_assert_leq(written, seconds * (4 << 20) > 4 * BUDGET ? seconds * (4 << 20) : 4 * BUDGET,
		      "the read passes wrote %llu KiB to the swap store in %llu s",
		      (unsigned long long)written >> 10, (unsigned long long)seconds);
	cr_assert_eq(upager_munmap(p, 4 * BUDGET), 0);
}

/* MADV_DONTNEED of private pages in the swap store frees their slots; they read zeroes after. */
Test(pageout, madv_dontneed_frees_the_swap_slots_of_private_pages)
{
	uint64_t pages = WORKLOAD / PAGE, *p, used = 0;

	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	write_anon(p, 0, pages, 5);
	for (int i = 0; i < 100 && used < (WORKLOAD - 2 * BUDGET); i++) {
		used = figures().u.stats_reply.swap_used_bytes;
		usleep(20 * 1000);
	}
	cr_assert_geq(used, WORKLOAD - 2 * BUDGET, "%llu bytes in the swap store",
		      (unsigned long long)used);
	cr_assert_eq(madvise(p, WORKLOAD, MADV_DONTNEED), 0);
	for (int i = 0; i < 100 && figures().u.stats_reply.swap_used_bytes; i++)
		usleep(20 * 1000);
	cr_assert_eq(figures().u.stats_reply.swap_used_bytes, 0);
	for (uint64_t i = 0; i < pages; i += 7)
		cr_assert_eq(p[i * PAGE / 8], 0, "page %llu", (unsigned long long)i);
	cr_assert_eq(upager_munmap(p, WORKLOAD), 0);
}

/*
 * MADV_DONTNEED right after a read back in order: the faults bring windows of pages, the first
 * page woken before the others are mapped; the removal's event, read while they are, holds off
 * those still to map. Every page of the range reads zeroes after (a private mapping of a file:
 * the file's page). Before, the pages mapped after the removal kept their data in one run of 64
 * pages in four. @arg: NULL, anonymous; else the file's path.
 */
#define REMOVED_RUN 64

static void dontneed_after_read_back(void *arg)
{
	uint64_t pages = 4 * BUDGET / PAGE, *p, sum = 0;
	int fd;

	p = map_private(arg, pages, &fd);
	write_anon(p, 0, pages, 6);
	for (uint64_t i = 0; i + REMOVED_RUN <= pages; i += REMOVED_RUN) {
		for (uint64_t k = 0; k < 8; k++)
			sum += p[(i + k) * PAGE / 8];
		if (madvise(p + i * PAGE / 8, REMOVED_RUN * PAGE, MADV_DONTNEED) < 0)
			_exit(21);
		if (arg)
			check_pages(p, i, REMOVED_RUN, 0);
		else
			for (uint64_t k = i; k < i + REMOVED_RUN; k++)
				if (p[k * PAGE / 8] || p[(k * PAGE + PAGE - 8) / 8]) {
					fprintf(stderr,
						"page %llu: %#llx after MADV_DONTNEED (%llu)\n",
						(unsigned long long)k,
						(unsigned long long)p[k * PAGE / 8],
						(unsigned long long)sum);
					_exit(3);
				}
	}
	unmap_private(p, pages, fd);
}

Test(pageout, madv_dontneed_right_after_a_read_back_leaves_no_data_behind)
{
	run_anon_then_file(dontneed_after_read_back, "removed", 4 * BUDGET);
}

/*
 * A private mapping 4 times the budget under random work, as a program's heap sees it: writes
 * (copies, in a mapping of a file), reads, runs of pages read in order, and MADV_DONTNEED of
 * runs, each page checked against what it last was (zeroes or the file's page, or the last
 * write), then all of them in order. Copies go out and come back, dropped in place, while the
 * client reads windows of the file's pages around them and removes some. Before: a window of the
 * file's pages mapped over a copy dropped in place (UFFDIO_CONTINUE takes its marker for an empty
 * page), and an MADV_DONTNEED that met the control thread's drop of the same copy was taken for
 * that drop, so the copy came back. @arg: NULL, anonymous; else the file's path.
 */
#define RANDOM_OPS 12000
#define RANDOM_RUN 64 /* pages at most in a run read or removed */

static uint64_t random_word(const void *arg, const uint64_t *shadow, uint64_t pg, bool last)
{
	if (shadow[pg])
		return last ? ~shadow[pg] : shadow[pg];
	return arg ? pattern_at(pg * PAGE + (last ? PAGE - 8 : 0)) : 0;
}

static void random_check(const void *arg, const uint64_t *p, const uint64_t *shadow, uint64_t pg,
			 int op)
{
	uint64_t a = p[pg * PAGE / 8], b = p[(pg * PAGE + PAGE - 8) / 8];

	if (a != random_word(arg, shadow, pg, false) || b != random_word(arg, shadow, pg, true)) {
		fprintf(stderr, "op %d: page %llu reads %#llx %#llx, not %#llx %#llx\n", op,
			(unsigned long long)pg, (unsigned long long)a, (unsigned long long)b,
			(unsigned long long)random_word(arg, shadow, pg, false),
			(unsigned long long)random_word(arg, shadow, pg, true));
		_exit(3);
	}
}

static void random_work(void *arg)
{
	uint64_t pages = 4 * BUDGET / PAGE, *p, *shadow, seed = 1;
	int fd;

	p = map_private(arg, pages, &fd);
	shadow = calloc(pages, sizeof(*shadow));
	if (!shadow)
		_exit(10);
	for (int i = 0; i < RANDOM_OPS; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t r = seed >> 33, pg = r % pages, op = (r >> 20) % 100;
		uint64_t n = 1 + (r >> 8) % RANDOM_RUN;

		if (n > pages - pg)
			n = pages - pg;

		if (op < 45) {
			shadow[pg] = r << 8 | 1;
			p[pg * PAGE / 8] = shadow[pg];
			p[(pg * PAGE + PAGE - 8) / 8] = ~shadow[pg];
		} else if (op < 90) {
			random_check(arg, p, shadow, pg, i);
		} else if (op < 98) {
			for (uint64_t k = pg; k < pg + n; k++)
				random_check(arg, p, shadow, k, i);
		} else {
			memset(shadow + pg, 0, n * sizeof(*shadow));
			if (madvise(p + pg * PAGE / 8, n * PAGE, MADV_DONTNEED) < 0)
				_exit(21);
		}
	}
	for (uint64_t pg = 0; pg < pages; pg++)
		random_check(arg, p, shadow, pg, RANDOM_OPS);
	free(shadow);
	unmap_private(p, pages, fd);
}

Test(pageout, private_pages_under_random_writes_reads_and_removals_keep_their_data)
{
	run_anon_then_file(random_work, "random", 4 * BUDGET);
}

/*
 * MADV_DONTNEED of copies on their way out: a private mapping of a file 4 times the budget written
 * in order, twice, so that its copies keep going out; every 128 pages the client removes the 1,024
 * pages that end 1,024 pages back, some of them in a DROP under way (dropped in place by the
 * control thread, whose MADV_DONTNEED is a removal too), and each must read the file's page after.
 * Before, a copy that both removals took was taken for one the control thread alone dropped, and
 * came back from the swap store (about one removal in twenty).
 */
#define REMOVED_SPAN 1024
#define REMOVED_EVERY 128

Test(pageout, madv_dontneed_of_copies_on_their_way_out_gives_the_files_pages_back)
{
	uint64_t pages = 4 * BUDGET / PAGE, *p;
	int fd = make_pattern_file("leaving", 4 * BUDGET, file_path);

	p = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	for (int round = 0; round < 2; round++)
		for (uint64_t i = 0; i < pages; i++) {
			uint64_t first = i + 1 - 2 * REMOVED_SPAN;

			xor_page(p, i, XOR);
			if ((i + 1) % REMOVED_EVERY || i + 1 < 2 * REMOVED_SPAN)
				continue;
			cr_assert_eq(
				madvise(p + first * PAGE / 8, REMOVED_SPAN * PAGE, MADV_DONTNEED),
				0);
			for (uint64_t k = first; k < first + REMOVED_SPAN; k++)
				cr_assert_eq(p[k * PAGE / 8], pattern_at(k * PAGE),
					     "round %d: page %llu reads %#llx after MADV_DONTNEED",
					     round, (unsigned long long)k,
					     (unsigned long long)p[k * PAGE / 8]);
		}
	cr_assert_eq(upager_munmap(p, pages * PAGE), 0);
	close(fd);
}

/*
 * MAP_DROPPABLE pages go first under the budget: private pages mapped and written before them
 * stay in memory, nothing reaches the swap store, and a page that went reads zeroes.
 */
Test(pageout, droppable_pages_go_first_and_read_zeroes)
{
	uint64_t keep_pages = BUDGET / 2 / PAGE, drop_pages = 2 * BUDGET / PAGE, zeroes = 0;
	struct upager_msg before = figures();
	uint64_t *keep, *drop;
	unsigned char vec[BUDGET / 2 / PAGE];

	keep = upager_mmap(NULL, BUDGET / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	drop = upager_mmap(NULL, 2 * BUDGET, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS,
			   -1, 0);
	cr_assert_neq(keep, MAP_FAILED, "%m");
	cr_assert_neq(drop, MAP_FAILED, "%m");
	write_anon(keep, 0, keep_pages, 4);
	write_anon(drop, 0, drop_pages, 5);
	cr_assert_eq(mincore(keep, BUDGET / 2, vec), 0);
	for (uint64_t i = 0; i < keep_pages; i++)
		cr_assert(vec[i] & 1, "page %llu of the private mapping left before droppable ones",
			  (unsigned long long)i);
	for (uint64_t i = 0; i < drop_pages; i++) {
		uint64_t w = drop[i * PAGE / 8];

		cr_assert(w == 0 || w == anon_word(i, 5), "droppable page %llu reads %#llx",
			  (unsigned long long)i, (unsigned long long)w);
		zeroes += w == 0;
	}
	cr_assert_geq(zeroes, drop_pages + keep_pages - 2 * BUDGET / PAGE, "%llu pages went",
		      (unsigned long long)zeroes);
	cr_assert_geq(figures().u.stats_reply.pages_out - before.u.stats_reply.pages_out, zeroes);
	cr_assert_eq(figures().u.stats_reply.swap_used_bytes, before.u.stats_reply.swap_used_bytes,
		     "droppable pages were written out");
	check_anon(keep, 0, keep_pages, 4);
	cr_assert_eq(upager_munmap(drop, 2 * BUDGET), 0);
	cr_assert_eq(upager_munmap(keep, BUDGET / 2), 0);
}

/* MAP_POPULATE of more than the budget maps what fits and succeeds, for a file and for shared
 * and private anonymous memory; every page reads right after. */
static void populate_big(void *arg)
{
	int fd = open(file_path, O_RDONLY);
	uint64_t *f, *a, present = 0;

	(void)arg;
	if (fd < 0)
		_exit(10);
	f = upager_mmap(NULL, WORKLOAD, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (f == MAP_FAILED)
		_exit(11);
	check_pages(f, 0, WORKLOAD / PAGE, 0);
	a = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (a == MAP_FAILED)
		_exit(12);
	write_anon(a, 0, WORKLOAD / PAGE, 3);
	check_anon(a, 0, WORKLOAD / PAGE, 3);
	if (upager_munmap(f, WORKLOAD) < 0 || upager_munmap(a, WORKLOAD) < 0)
		_exit(13);
	/* Private: pages of its own as far as the budget has room, nothing after (the zero page
	 * there would be copied by the kernel at the writes, unseen: the cgroup's OOM killer). */
	a = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (a == MAP_FAILED)
		_exit(14);
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++)
		present += page_present(a + i * PAGE / 8);
	if (present == 0 || present > (BUDGET + SLACK) / PAGE)
		_exit(17);
	for (uint64_t i = 0; i < WORKLOAD / PAGE; i++)
		if (a[i * PAGE / 8])
			_exit(15);
	write_anon(a, 0, WORKLOAD / PAGE, 4);
	check_anon(a, 0, WORKLOAD / PAGE, 4);
	if (upager_munmap(a, WORKLOAD) < 0)
		_exit(16);
}

Test(pageout, a_populate_larger_than_the_budget_maps_what_fits_and_succeeds)
{
	close(make_pattern_file("populate", WORKLOAD, file_path));
	cr_assert_eq(system("sync; echo 1 > /proc/sys/vm/drop_caches"), 0);
	run_limited(populate_big, NULL);
	/* Its reads in flight hold a page twice (a bounce buffer) and count once: at most an
	 * eighth of the budget of them (64 MiB whatever the budget before). */
	cr_assert(RUNNING_UNDER_SANITIZER || daemon_anon_max <= 10240,
		  "upagerd had %llu KiB of anonymous memory", (unsigned long long)daemon_anon_max);
	/* The daemon's buffers of reads and page-outs are given back: they are its memory beyond
	 * the budget only while in use (18 MiB of them stayed in its heap). */
	cr_assert(RUNNING_UNDER_SANITIZER || rss_anon_kib(harness_daemon_pid()) <= 8192,
		  "upagerd keeps %llu KiB of anonymous memory",
		  (unsigned long long)rss_anon_kib(harness_daemon_pid()));
}

/*
 * Fairness: a user streaming a file 8 times the budget is over its share (half the budget by
 * default), so its own pages go first, and another user's small working set stays in memory
 * although the daemon never sees it touched (no faults).
 */
#define SET_PAGES 512

static void stream_as_nobody(void *arg)
{
	uint64_t *p;

	(void)arg;
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(30);
	p = map_file(PROT_READ, NULL);
	for (;;)
		check_pages(p, 0, WORKLOAD / PAGE, 0);
}

Test(pageout, a_user_over_its_share_gives_pages_first)
{
	char set_path[512];
	struct region_info info;
	uint64_t *p;
	pid_t streamer;
	int fd, status;

	close(make_pattern_file("stream", WORKLOAD, file_path));
	cr_assert_eq(chmod(file_path, 0644), 0);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	fd = make_pattern_file("set", SET_PAGES * PAGE, set_path);
	streamer = harness_fork();
	cr_assert(streamer >= 0);
	if (streamer == 0) {
		alarm(100);
		stream_as_nobody(NULL);
	}
	p = upager_mmap(NULL, SET_PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert(p != MAP_FAILED);
	for (int round = 0; round < 40; round++) {
		for (uint64_t i = 0; i < SET_PAGES; i++)
			cr_assert_eq(p[i * PAGE / 8], pattern_at(i * PAGE));
		usleep(50 * 1000);
	}
	cr_assert(harness_region(getpid(), p, &info));
	kill(streamer, SIGKILL);
	cr_assert_eq(waitpid(streamer, &status, 0), streamer);
	cr_assert(WIFSIGNALED(status), "the streamer ended with %#x", status);
	cr_assert_leq(info.pages_read, 2 * SET_PAGES,
		      "the working set was read %llu times over while another user streamed",
		      (unsigned long long)(info.pages_read / SET_PAGES));
	upager_munmap(p, SET_PAGES * PAGE);
	close(fd);
}

/* Private anonymous memory 8 times the budget, of a process that became another user (no exec). */
static uint64_t *private_workload_as_nobody(void)
{
	uint64_t *p;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(30);
	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(31);
	return p;
}

/* Another user writes private anonymous memory 8 times the budget, over and over. */
static void write_private_as_nobody(void *arg)
{
	uint64_t *p = private_workload_as_nobody();

	(void)arg;
	for (uint64_t round = 0;; round++)
		write_anon(p, 0, WORKLOAD / PAGE, round);
}

/* A child running @fn, which becomes another user (the test's directory open to it). */
static pid_t start_as_nobody(void (*fn)(void *))
{
	pid_t child;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		alarm(100);
		fn(NULL);
		_exit(0);
	}
	return child;
}

/* Another user writes shared anonymous memory 8 times the budget, over and over. */
static void write_shared_as_nobody(void *arg)
{
	uint64_t *p;

	(void)arg;
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(30);
	p = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(31);
	for (uint64_t round = 0;; round++)
		write_anon(p, 0, WORKLOAD / PAGE, round);
}

/*
 * A private working set read over and over (reads the daemon never sees) while another user over
 * its share writes anonymous memory with @writer: the pages found paged out in 40 rounds.
 */
static uint64_t private_set_absent_while(void (*writer_fn)(void *))
{
	uint64_t *p, absent = 0;
	pid_t writer;
	int status;

	/* First, lest the writer inherit the working set's mapping, and be counted as its user. */
	writer = start_as_nobody(writer_fn);
	p = upager_mmap(NULL, SET_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	cr_assert(p != MAP_FAILED);
	write_anon(p, 0, SET_PAGES, 5);
	for (int round = 0; round < 40; round++) {
		for (uint64_t i = 0; i < SET_PAGES; i++)
			absent += !page_present(p + i * PAGE / 8);
		check_anon(p, 0, SET_PAGES, 5);
		usleep(50 * 1000);
	}
	kill(writer, SIGKILL);
	cr_assert_eq(waitpid(writer, &status, 0), writer);
	cr_assert(WIFSIGNALED(status), "the writer ended with %#x", status);
	upager_munmap(p, SET_PAGES * PAGE);
	return absent;
}

/*
 * The same with private anonymous memory on both sides: the user over its share (--uid-memory-max,
 * half the budget by default) gives its own private pages first; the working set of the other
 * stays in memory.
 */
Test(pageout, a_user_over_its_share_gives_private_pages_first)
{
	uint64_t absent = private_set_absent_while(write_private_as_nobody);

	cr_assert_leq(absent, SET_PAGES / 8,
		      "%llu pages of the working set were found paged out while another user wrote",
		      (unsigned long long)absent);
}

/*
 * A user over its share by shared anonymous memory: its objects give what it is over, and no other
 * user's private pages go for it (the private pages gave their part of what the budget wanted
 * gone as if the user's objects were to give nothing: a third of the working set went).
 */
Test(pageout, a_user_over_its_share_by_shared_memory_leaves_another_users_private_set)
{
	uint64_t absent = private_set_absent_while(write_shared_as_nobody);

	cr_assert_leq(absent, SET_PAGES / 8,
		      "%llu pages of the working set were found paged out while another user wrote",
		      (unsigned long long)absent);
}

/*
 * The same with a shared anonymous working set of the other user, a third of the budget's room,
 * read over and over without faults: the user over its share gives its private pages, never the
 * other's shared ones (the objects' clock took them all, 6 MiB down to 4 KiB, while the writer's
 * own page-outs were under way).
 */
#define SHARED_SET_PAGES (BUDGET * 3 / 8 / PAGE)

Test(pageout, a_user_over_its_share_leaves_another_users_shared_working_set)
{
	uint64_t *p, least = SHARED_SET_PAGES;
	pid_t writer;
	int status;

	writer = start_as_nobody(write_private_as_nobody);
	p = upager_mmap(NULL, SHARED_SET_PAGES * PAGE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	write_anon(p, 0, SHARED_SET_PAGES, 7);
	for (int round = 0; round < 200; round++) {
		uint64_t present = 0;

		for (uint64_t i = 0; i < SHARED_SET_PAGES; i++)
			present += page_present(p + i * PAGE / 8);
		if (present < least)
			least = present;
		check_anon(p, 0, SHARED_SET_PAGES, 7);
		usleep(50 * 1000);
	}
	kill(writer, SIGKILL);
	cr_assert_eq(waitpid(writer, &status, 0), writer);
	cr_assert(WIFSIGNALED(status), "the writer ended with %#x", status);
	cr_assert_geq(
		least, SHARED_SET_PAGES * 9 / 10,
		"the working set of %lu KiB fell to %llu KiB in memory while another user wrote",
		SHARED_SET_PAGES * PAGE / 1024, (unsigned long long)least * PAGE / 1024);
	upager_munmap(p, SHARED_SET_PAGES * PAGE);
}

/*
 * A client stopped (SIGSTOP) while its private pages go out leaves its DROPs unanswered. Another
 * user's private memory twice the budget is still written and read back: the stopped client's pages
 * count as in memory after a while (the daemon logs it), and no fault of anyone else waits for them
 * to leave. Before, every fault waited for those DROPs, for as long as the client stayed stopped.
 */
static void write_twice_the_budget(void *arg)
{
	uint64_t *p = upager_mmap(NULL, 2 * BUDGET, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)arg;
	if (p == MAP_FAILED)
		_exit(31);
	write_anon(p, 0, 2 * BUDGET / PAGE, 6);
	check_anon(p, 0, 2 * BUDGET / PAGE, 6);
	check_anon(p, 0, 2 * BUDGET / PAGE, 6);
}

Test(pageout, a_client_stopped_while_its_pages_go_out_holds_up_no_other)
{
	pid_t writer = start_as_nobody(write_private_as_nobody);
	int status;

	/* Stopped while it writes, its pages going out all the time. */
	usleep(1500 * 1000);
	cr_assert_eq(kill(writer, SIGSTOP), 0);
	status = run_child(write_twice_the_budget, NULL);
	kill(writer, SIGKILL);
	waitpid(writer, NULL, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other client ended with %#x",
		  status);
}

/*
 * A process that dropped root for another user without an execve(2) is not dumpable, and may not
 * open its own /proc/self/pagemap, which its control thread reads to drop the pages the daemon
 * paged out: the daemon hands it one. Its private memory 8 times the budget goes out and comes
 * back like anyone's, and the pages in memory stay within the budget.
 */
static void private_as_nobody(void *arg)
{
	uint64_t *p = private_workload_as_nobody();

	(void)arg;
	write_anon(p, 0, WORKLOAD / PAGE, 1);
	check_anon(p, 0, WORKLOAD / PAGE, 1);
	_exit(0);
}

Test(pageout, private_memory_of_a_process_that_dropped_privileges_goes_out)
{
	struct upager_msg st;
	pid_t child = start_as_nobody(private_as_nobody);
	int status;

	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_geq(st.u.stats_reply.pages_out, WORKLOAD / PAGE - BUDGET / PAGE,
		      "%llu pages went out", (unsigned long long)st.u.stats_reply.pages_out);
	cr_assert_geq(st.u.stats_reply.pages_in, WORKLOAD / PAGE - BUDGET / PAGE,
		      "%llu pages came back", (unsigned long long)st.u.stats_reply.pages_in);
}

/*
 * Pages locked in memory never leave: a file range locked with mlock(2), a MAP_LOCKED mapping and
 * locked shared anonymous memory stay present (mincore) while a stream 8 times the budget goes by.
 */
#define LOCKED_PAGES 256

static bool all_present(const void *p, size_t pages)
{
	unsigned char vec[LOCKED_PAGES];

	if (mincore((void *)p, pages * PAGE, vec) < 0)
		return false;
	for (size_t i = 0; i < pages; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

static void locked_stay(void *arg)
{
	const char *small = arg;
	int fd = open(small, O_RDONLY);
	uint64_t *stream = map_file(PROT_READ, NULL), *mlocked, *maplocked, *anon;

	if (fd < 0)
		_exit(10);
	mlocked = upager_mmap(NULL, LOCKED_PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	maplocked =
		upager_mmap(NULL, LOCKED_PAGES * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	anon = upager_mmap(NULL, LOCKED_PAGES * PAGE, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mlocked == MAP_FAILED || maplocked == MAP_FAILED || anon == MAP_FAILED)
		_exit(11);
	write_anon(anon, 0, LOCKED_PAGES, 7);
	/* The system call itself: a sanitizer's mlock() does nothing. */
	if (syscall(SYS_mlock, mlocked, LOCKED_PAGES * PAGE) < 0 ||
	    syscall(SYS_mlock, anon, LOCKED_PAGES * PAGE) < 0)
		_exit(14);
	for (int round = 0; round < 2; round++) {
		check_pages(stream, 0, WORKLOAD / PAGE, 0);
		if (!all_present(mlocked, LOCKED_PAGES))
			_exit(40);
		if (!all_present(maplocked, LOCKED_PAGES))
			_exit(41);
		if (!all_present(anon, LOCKED_PAGES))
			_exit(42);
	}
	check_pages(mlocked, 0, LOCKED_PAGES, 0);
	check_pages(maplocked, 0, LOCKED_PAGES, 0);
	check_anon(anon, 0, LOCKED_PAGES, 7);
}

/* Private pages locked in memory stay there while other private pages 8x the budget go out. */
static void private_locked_stay(void *arg)
{
	uint64_t *stream, *mlocked, *maplocked;

	(void)arg;
	stream = upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
	mlocked = upager_mmap(NULL, LOCKED_PAGES * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	maplocked = upager_mmap(NULL, LOCKED_PAGES * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	if (stream == MAP_FAILED || mlocked == MAP_FAILED || maplocked == MAP_FAILED)
		_exit(11);
	write_anon(mlocked, 0, LOCKED_PAGES, 8);
	write_anon(maplocked, 0, LOCKED_PAGES, 9);
	if (syscall(SYS_mlock, mlocked, LOCKED_PAGES * PAGE) < 0)
		_exit(14);
	for (uint64_t round = 0; round < 2; round++) {
		write_anon(stream, 0, WORKLOAD / PAGE, round);
		check_anon(stream, 0, WORKLOAD / PAGE, round);
		if (!all_present(mlocked, LOCKED_PAGES))
			_exit(40);
		if (!all_present(maplocked, LOCKED_PAGES))
			_exit(41);
	}
	check_anon(mlocked, 0, LOCKED_PAGES, 8);
	check_anon(maplocked, 0, LOCKED_PAGES, 9);
}

Test(pageout, locked_private_pages_never_leave)
{
	run_limited_caches(private_locked_stay, NULL, false);
	cr_assert_geq(figures().u.stats_reply.pages_out, (WORKLOAD - BUDGET) / PAGE);
}

Test(pageout, locked_pages_never_leave)
{
	char small[512];

	close(make_pattern_file("small", LOCKED_PAGES * PAGE, small));
	close(make_pattern_file("stream", WORKLOAD, file_path));
	run_limited(locked_stay, small);
}

/*
 * A nonlinear mapping larger than the budget, locked: the copies it needs cannot wait for room that
 * locked copies will never make, so they are made above the budget (counted in over_budget), and
 * mlock(2) returns with every page present and right.
 */
#define LOCKED_VIEW_PAGES (BUDGET / PAGE + 256)

static void locked_view(void *arg)
{
	uint64_t n = LOCKED_VIEW_PAGES, *p;
	unsigned char *vec = malloc(n);

	(void)arg;
	p = upager_mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || !vec)
		_exit(11);
	write_anon(p, 0, n, 12);
	/* Page i of the mapping shows page n - 1 - i of the memory. */
	for (uint64_t i = 0; i < n / 2; i++)
		if (upager_remap_file_pages(p + i * PAGE / 8, PAGE, 0, n - 1 - i, 0) < 0 ||
		    upager_remap_file_pages(p + (n - 1 - i) * PAGE / 8, PAGE, 0, i, 0) < 0)
			_exit(12);
	if (syscall(SYS_mlock, p, n * PAGE) < 0)
		_exit(14);
	if (mincore(p, n * PAGE, vec) < 0)
		_exit(15);
	for (uint64_t i = 0; i < n; i++)
		if (!(vec[i] & 1))
			_exit(40);
	for (uint64_t i = 0; i < n; i++)
		if (p[i * PAGE / 8] != anon_word(n - 1 - i, 12) ||
		    p[(i * PAGE + PAGE - 8) / 8] != anon_word(n - 1 - i, 12) + 1)
			_exit(3);
}

Test(pageout, a_locked_nonlinear_mapping_larger_than_the_budget_is_served_above_it)
{
	/* A fault left waiting for room hung mlock(2) until the child's alarm. */
	int status = run_child(locked_view, NULL);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	cr_assert_gt(figures().u.stats_reply.over_budget, 0);
}

/*
 * A nonlinear shared anonymous mapping 4x the budget, written and read back: its pages go to the
 * swap store as any shared anonymous page does (those with copies in memory stay). Before, a
 * shared anonymous object with a view never paged out: any client could hold memory far above the
 * budget with one remap.
 */
static void nonlinear_anon(void *arg)
{
	uint64_t n = 4 * BUDGET / PAGE, *p;
	struct upager_msg f;

	(void)arg;
	p = upager_mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(11);
	/* Its first and last pages change places: the mapping goes nonlinear. */
	if (upager_remap_file_pages(p, PAGE, 0, n - 1, 0) < 0 ||
	    upager_remap_file_pages(p + (n - 1) * PAGE / 8, PAGE, 0, 0, 0) < 0)
		_exit(12);
	write_anon(p, 0, n, 5);
	check_anon(p, 0, n, 5);
	if (harness_stats(&f) < 0)
		_exit(13);
	if (f.u.stats_reply.memory_pages > BUDGET / PAGE) {
		fprintf(stderr, "%llu pages in memory, the budget is %lu\n",
			(unsigned long long)f.u.stats_reply.memory_pages, BUDGET / PAGE);
		_exit(44);
	}
	if (f.u.stats_reply.pages_out == 0)
		_exit(45);
}

Test(pageout, a_nonlinear_shared_anonymous_mapping_larger_than_the_budget_pages_out)
{
	int status = run_child(nonlinear_anon, NULL);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
}

/*
 * A swap store too small for what must leave: shared anonymous memory gets new pages until the
 * budget and the store are full, then SIGBUS at the touch of a page it never had, as on a full
 * tmpfs (upager_mmap(3)): those pages are the daemon's memory. Every page made keeps its data, the
 * pages in memory stay within the budget and its slack, and the daemon serves on.
 */
static void start_small_store(void)
{
	static const char *args[] = { "--memory-max", "4M", "--swap", swap_path,
				      "--swap-max",   "1M", NULL };

	new_swap_store();
	start_daemon(args);
}

Test(pageout, a_full_swap_store_ends_new_shared_anonymous_pages_in_sigbus_and_the_daemon_lives)
{
	size_t size = 16UL << 20, pages = size / PAGE, made = 0;
	struct upager_msg f;
	uint64_t *p;
	char byte;

	/* A daemon of its own, with a store of 1 MiB (the suite's end stops it). */
	stop();
	start_small_store();
	p = upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	for (; made < pages; made++) {
		if (harness_read_sigbus((char *)&p[made * PAGE / 8], &byte))
			break;
		p[made * PAGE / 8] = anon_word(made, 9);
	}
	cr_assert_lt(made, pages, "a page beyond the budget and the store raised SIGBUS");
	cr_assert_geq(made * PAGE, 4UL << 20, "the budget and the store filled first: %zu pages",
		      made);
	for (uint64_t i = 0; i < made; i++)
		cr_assert_eq(p[i * PAGE / 8], anon_word(i, 9), "page %llu", (unsigned long long)i);
	f = figures();
	cr_assert_leq(f.u.stats_reply.swap_used_bytes, 1UL << 20, "the store holds what it can");
	cr_assert_gt(f.u.stats_reply.pages_out, 0, "what fits went out");
	cr_assert_leq(f.u.stats_reply.memory_pages, (5UL << 20) / PAGE,
		      "%llu pages in memory: the budget and its slack at most",
		      (unsigned long long)f.u.stats_reply.memory_pages);
	cr_assert(harness_read_sigbus((char *)&p[(pages - 1) * PAGE / 8], &byte),
		  "a page never touched still raises SIGBUS");
	cr_assert_eq(upager_munmap(p, size), 0);
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon lives");
	/* The store's slots and the budget are free again: the same memory serves anew. */
	p = upager_mmap(NULL, size / 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	for (uint64_t i = 0; i < pages / 8; i++)
		p[i * PAGE / 8] = anon_word(i, 10);
	for (uint64_t i = 0; i < pages / 8; i++)
		cr_assert_eq(p[i * PAGE / 8], anon_word(i, 10), "page %llu", (unsigned long long)i);
	cr_assert_eq(upager_munmap(p, size / 8), 0);
}

/* Private anonymous memory 8 times the budget, written and checked, with a store of 1 MiB. */
static void write_private_past_a_full_store(void *arg)
{
	size_t size = 32UL << 20, pages = size / PAGE;
	uint64_t *p =
		upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)arg;
	if (p == MAP_FAILED)
		_exit(31);
	write_anon(p, 0, pages, 13);
	for (uint64_t i = 0; i < pages; i++)
		if (p[i * PAGE / 8] != anon_word(i, 13))
			_exit(32);
	_exit(0);
}

/*
 * Private anonymous pages that find the swap store full stay in the client's memory (its own, in
 * its cgroup: upager_mmap(3)) and its faults go on at their pace: each turn of the daemon's loop
 * tried a page-out of every window of the client's pages, write-protected, read and given back,
 * and the client went on at a few hundred faults a second (64 MiB took minutes).
 */
Test(pageout, private_memory_past_a_full_swap_store_goes_on_at_its_pace)
{
	pid_t child;
	int status;

	stop();
	start_small_store();
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		alarm(200);
		write_private_past_a_full_store(NULL);
	}
	cr_assert(harness_ended_within(child, 30000, &status), "the client still ran after 30 s");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon lives");
}

/* Shared anonymous memory 8 times the budget: written until SIGBUS, what was made checked. */
static void shared_until_sigbus(void *arg)
{
	size_t size = 32UL << 20, made = 0;
	uint64_t *p =
		upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char byte;

	(void)arg;
	if (p == MAP_FAILED)
		_exit(31);
	for (; made < size / PAGE; made++) {
		if (harness_read_sigbus((char *)&p[made * PAGE / 8], &byte))
			break;
		p[made * PAGE / 8] = anon_word(made, 14);
	}
	for (uint64_t i = 0; i < made; i++)
		if (p[i * PAGE / 8] != anon_word(i, 14))
			_exit(32);
	_exit(made < size / PAGE ? 0 : 33);
}

/*
 * A tmpfs of @size ("4m") at /var/tmp/upager-test-@name-PID, @dir, for a swap store @file in it
 * (not in the test's directory, which a restart of the daemon makes anew), and a daemon of its
 * own started with @args, which name @file. Skips the test where the store is not a file or no
 * tmpfs can be mounted.
 */
static void small_fs(const char *name, const char *size, char *dir, size_t dir_size, char *file,
		     size_t file_size, const char *const *args)
{
	char opts[32];

	if (getenv("UPAGER_TEST_NBD"))
		cr_skip_test("the store is a file here");
	snprintf(dir, dir_size, "/var/tmp/upager-test-%s-%d", name, (int)getpid());
	snprintf(file, file_size, "%s/swap", dir);
	snprintf(opts, sizeof(opts), "size=%s", size);
	cr_assert_eq(mkdir(dir, 0700), 0);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) < 0) {
		rmdir(dir);
		cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
	}
	stop();
	start_daemon(args);
}

/* Run @fn in a child, which must end within @ms; its wait status. */
static int client_status(void (*fn)(void *), int ms)
{
	pid_t child = harness_fork();
	int status;

	cr_assert(child >= 0);
	if (child == 0) {
		alarm(100);
		fn(NULL);
		_exit(0);
	}
	cr_assert(harness_ended_within(child, ms, &status), "the client hung");
	return status;
}

/* The daemon is stopped; its io_uring lets the swap file go a little later. */
static void small_fs_remove(const char *dir)
{
	for (int i = 0; i < 100 && umount(dir) < 0 && errno == EBUSY; i++)
		usleep(20000);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

/*
 * The file system under the swap store runs out of room (a tmpfs of 4 MiB): the store takes no
 * page for a while, as if full, and shared anonymous memory past the budget ends in SIGBUS as with
 * a full store. The daemon tried the same page-outs again at once, each failing, spinning, and
 * every fault that waited for room waited for ever, file mappings' too.
 */
Test(pageout, a_swap_store_whose_file_system_is_full_is_full)
{
	char dir[512], file[600];
	const char *args[] = { "--memory-max", "4M", "--swap", file, NULL };
	int status, fd;
	uint64_t *m;

	small_fs("small", "4m", dir, sizeof(dir), file, sizeof(file), args);
	status = client_status(shared_until_sigbus, 30000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	/* And a file mapping is served after it. */
	fd = make_pattern_file("after", 16 * PAGE, NULL);
	m = upager_mmap(NULL, 16 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(m[5 * PAGE / 8], pattern_at(5 * PAGE));
	cr_assert_eq(upager_munmap(m, 16 * PAGE), 0);
	close(fd);
	stop();
	small_fs_remove(dir);
}

/* As @uid, make and write pages of shared anonymous memory until SIGBUS: how many. */
static size_t fill_shared_as(uid_t uid, uint64_t **out)
{
	size_t size = 16UL << 20, made = 0;
	uint64_t *p;
	char byte;

	if (setgid(uid) < 0 || setuid(uid) < 0)
		_exit(30);
	p = upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(31);
	for (; made < size / PAGE; made++) {
		if (harness_read_sigbus((char *)&p[made * PAGE / 8], &byte))
			break;
		p[made * PAGE / 8] = anon_word(made, 11);
	}
	*out = p;
	return made;
}

/*
 * Two users but root share the swap store: one that fills all it may of it (--max-swap, half the
 * store by default) and the budget with shared anonymous memory gets SIGBUS for more, and the
 * other's shared anonymous memory still goes out and comes back. Before, the first took the
 * whole store and the other's first new page raised SIGBUS.
 */
Test(pageout, a_user_who_filled_its_half_of_the_swap_store_leaves_the_other_half_to_others)
{
	static const char *args[] = { "--memory-max", "4M", "--swap", swap_path,
				      "--swap-max",   "2M", NULL };
	int ready[2], status;
	pid_t hog, other;
	struct upager_msg f;

	stop();
	new_swap_store();
	start_daemon(args);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(ready), 0);
	hog = harness_fork();
	cr_assert(hog >= 0);
	if (hog == 0) {
		uint64_t *p;
		size_t made = fill_shared_as(65534, &p);

		if (write(ready[1], &made, sizeof(made)) != sizeof(made))
			_exit(32);
		pause();
		_exit(0);
	}
	{
		size_t made = 0;

		cr_assert_eq(read(ready[0], &made, sizeof(made)), (ssize_t)sizeof(made));
		cr_assert_lt(made, (16UL << 20) / PAGE, "the first user got SIGBUS");
		cr_assert_geq(made * PAGE, 4UL << 20, "after the budget: %zu pages", made);
	}
	f = figures();
	/* Looked at once per turn of the daemon's loop: a page-out under way may take a run more. */
	cr_assert_leq(f.u.stats_reply.swap_used_bytes, (1UL << 20) + (256UL << 10),
		      "the first user holds %llu bytes of the store, about half of it at most",
		      (unsigned long long)f.u.stats_reply.swap_used_bytes);
	other = harness_fork();
	cr_assert(other >= 0);
	if (other == 0) {
		/* 768 KiB, more than the budget has room for: its pages go to the store. */
		uint64_t *p;
		char byte;

		if (setgid(65533) < 0 || setuid(65533) < 0)
			_exit(30);
		p = upager_mmap(NULL, 768UL << 10, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(31);
		for (uint64_t i = 0; i < (768UL << 10) / PAGE; i++) {
			if (harness_read_sigbus((char *)&p[i * PAGE / 8], &byte))
				_exit(33);
			p[i * PAGE / 8] = anon_word(i, 12);
		}
		for (uint64_t i = 0; i < (768UL << 10) / PAGE; i++)
			if (p[i * PAGE / 8] != anon_word(i, 12))
				_exit(34);
		_exit(0);
	}
	cr_assert(harness_ended_within(other, 60000, &status), "the other user's client hung");
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the other user's client ended with %#x (33: SIGBUS)", status);
	f = figures();
	cr_assert_gt(f.u.stats_reply.pages_out, 256, "the other user's pages went out too");
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon lives");
	close(ready[0]);
	close(ready[1]);
}

static void start_sparse(void)
{
	static const char *args[] = { "--memory-max", "8M",  "--swap", swap_path,
				      "--max-mapped", "64G", NULL };

	new_swap_store();
	start_daemon(args);
}

/*
 * A page table maps 2 MiB, and the kernel keeps it when the pages under it are punched out. A
 * client that reads one page every 2 MiB of a sparse file 2,048 times the budget made the daemon
 * keep a table per page read (32 MiB for 8,192 pages over a budget of 8 MiB): its memory grew
 * with the pages it ever held, past any budget. The tables of blocks left empty are given back.
 */
Test(pageout, the_daemon_s_page_tables_follow_the_pages_in_memory, .init = start_sparse)
{
	size_t size = 16UL << 30, step = 2UL << 20;
	char path[256];
	uint64_t before, after;
	volatile char *p;
	int fd;

	snprintf(path, sizeof(path), "%s/sparse", harness_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	p = upager_mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq((void *)p, MAP_FAILED, "upager_mmap: %s", strerror(errno));
	before = harness_status_kib(harness_daemon_pid(), "VmPTE");
	for (size_t off = 0; off < size; off += step)
		cr_assert_eq(p[off], 0);
	after = harness_status_kib(harness_daemon_pid(), "VmPTE");
	after -= after > before ? before : after;
	cr_assert_lt(after, 16 << 10,
		     "the daemon's page tables grew by %llu KiB for 8,192 pages read over an 8 MiB "
		     "budget",
		     (unsigned long long)after);
	cr_assert_eq(upager_munmap((void *)p, size), 0);
	close(fd);
}

/*
 * Shared anonymous memory twice the budget, read and written at random, with the swap store on a
 * file system with room for a little more than what goes out (a tmpfs of 24 MiB): the store never
 * runs out of room. It took the storage of pages read back, whose freed slots keep their blocks
 * until their run is long, from new places in a store of the size of --swap-max, and met ENOSPC
 * at 24 MiB though it held a few: pages then stayed in memory above the budget. The store takes
 * no more slots than the file system had room for.
 */
static void shared_random_twice_the_budget(void *arg)
{
	size_t size = 32UL << 20, pages = size / PAGE;
	uint64_t *p =
		upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t *round = calloc(pages, sizeof(*round));

	(void)arg;
	if (p == MAP_FAILED || !round)
		_exit(31);
	for (uint64_t i = 0; i < pages; i++)
		p[i * PAGE / 8] = anon_word(i, 0);
	srandom(5);
	for (int k = 0; k < 60000; k++) {
		uint64_t i = (uint64_t)random() % pages;

		if (p[i * PAGE / 8] != anon_word(i, round[i]))
			_exit(32);
		if (k % 2)
			p[i * PAGE / 8] = anon_word(i, ++round[i]);
	}
	_exit(0);
}

Test(pageout, a_swap_store_takes_no_more_than_its_file_system_has_room_for)
{
	char dir[512], file[600];
	const char *args[] = { "--memory-max", "16M", "--swap", file, NULL };
	struct upager_msg f;
	int status;

	small_fs("room", "24m", dir, sizeof(dir), file, sizeof(file), args);
	status = client_status(shared_random_twice_the_budget, 90000);
	f = figures();
	stop();
	small_fs_remove(dir);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client ended with %#x",
		  status);
	cr_assert_eq(f.u.stats_reply.over_budget, 0, "pages stayed above the budget %llu times",
		     (unsigned long long)f.u.stats_reply.over_budget);
	cr_assert_leq(f.u.stats_reply.swap_bytes, 24UL << 20, "a store of %llu KiB",
		      (unsigned long long)f.u.stats_reply.swap_bytes >> 10);
}
