// SPDX-License-Identifier: LGPL-2.1-or-later
/* MAP_POPULATE, MAP_POPULATE|MAP_NONBLOCK, and read-ahead for sequential readers only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(populate, .init = harness_start, .fini = harness_stop, .timeout = 60);

static size_t count_present(const void *p, size_t pages)
{
	size_t n = 0;

	for (size_t i = 0; i < pages; i++)
		n += page_present((const char *)p + i * PAGE);
	return n;
}

static void check_populated(void *m, size_t pages, bool file)
{
	struct region_info r;
	volatile uint64_t *w = m;

	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert_eq(count_present(m, pages), pages, "not every page is present");
	for (size_t i = 0; i < pages; i++)
		cr_assert_eq(w[i * PAGE / 8], file ? pattern_at(i * PAGE) : 0);
	cr_assert(harness_region(getpid(), m, &r));
	cr_assert_eq(r.faults, 0, "touching a populated mapping faulted %llu times",
		     (unsigned long long)r.faults);
	cr_assert_eq(r.resident_pages, pages);
	cr_assert_eq(r.pages_populated, pages);
}

Test(populate, map_populate_maps_every_page_before_returning)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);

	check_populated(upager_mmap(NULL, 64 * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0),
			64, true);
	check_populated(upager_mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_POPULATE, fd, 0),
			64, true);
	{
		uint64_t *m = upager_mmap(NULL, 32 * PAGE, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_POPULATE, fd, 16 * PAGE);
		struct region_info r;

		cr_assert_neq(m, MAP_FAILED);
		cr_assert_eq(count_present(m, 32), 32);
		for (size_t i = 0; i < 32; i++)
			cr_assert_eq(m[i * PAGE / 8], pattern_at((16 + i) * PAGE));
		/* As Linux, the populate of a private writable mapping made each page's copy:
		 * counted by the daemon as it mapped them, so that a write faults no more. */
		for (size_t i = 0; i < 32; i++)
			cr_assert_eq(pagemap_entry(m + i * PAGE / 8) >> 61 & 1, 0,
				     "page %zu is the file's, not a copy", i);
		m[5] = 1;
		cr_assert(harness_region(getpid(), m, &r));
		cr_assert_eq(r.faults, 0, "%llu faults", (unsigned long long)r.faults);
	}
}

Test(populate, map_populate_anonymous)
{
	check_populated(upager_mmap(NULL, 48 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
			48, false);
	check_populated(upager_mmap(NULL, 48 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
			48, false);
}

/*
 * As Linux, a private anonymous mapping populated for writing has pages of its own (mapped once:
 * pagemap bit 56, which the zero page never has), so that its writes fault no more; one populated
 * for reading (MAP_NONBLOCK, or without PROT_WRITE) shares the zero page.
 */
Test(populate, a_writable_private_populate_gets_pages_of_its_own)
{
	char *w = upager_mmap(NULL, 48 * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	char *r = upager_mmap(NULL, 48 * PAGE, PROT_READ,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	struct region_info info;

	cr_assert_neq(w, MAP_FAILED);
	cr_assert_neq(r, MAP_FAILED);
	for (size_t i = 0; i < 48; i++) {
		cr_assert_eq(pagemap_entry(w + i * PAGE) >> 56 & 0x81, 0x81,
			     "page %zu populated for writing is not its own", i);
		cr_assert_eq(pagemap_entry(r + i * PAGE) >> 56 & 0x81, 0x80,
			     "page %zu populated for reading is not the zero page", i);
	}
	for (size_t i = 0; i < 48; i++)
		w[i * PAGE] = 1;
	cr_assert(harness_region(getpid(), w, &info));
	cr_assert_eq(info.faults, 0, "%llu faults", (unsigned long long)info.faults);
	cr_assert_eq(upager_munmap(w, 48 * PAGE), 0);
	cr_assert_eq(upager_munmap(r, 48 * PAGE), 0);
}

Test(populate, a_failure_to_populate_does_not_fail_the_call)
{
	int fd = make_pattern_file("f", 3 * PAGE, NULL);
	/* Pages 3..7 are beyond end of file: they cannot be populated, the call still succeeds. */
	char *m = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);

	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert_eq(count_present(m, 3), 3);
	cr_assert_eq(count_present(m + 3 * PAGE, 5), 0);
}

static uint64_t daemon_bytes_read(void)
{
	struct upager_msg st;

	cr_assert_eq(harness_stats(&st), 0);
	return st.u.stats_reply.bytes_read;
}

static void evict(int fd)
{
	cr_assert_eq(fsync(fd), 0);
	cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
}

Test(populate, nonblock_installs_only_what_is_in_memory)
{
	size_t pages = 512, half = pages / 2;
	int fd = make_pattern_file("f", pages * PAGE, NULL);
	volatile char *a;
	char *b;
	uint64_t before;

	evict(fd);
	/* Read the first half through one mapping: it is then in the daemon's cache. */
	a = upager_mmap(NULL, half * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(a, MAP_FAILED);
	for (size_t i = 0; i < half; i++)
		(void)a[i * PAGE];
	before = daemon_bytes_read();
	b = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE | MAP_NONBLOCK, fd,
			0);
	cr_assert_neq(b, MAP_FAILED, "%m");
	cr_assert_eq(daemon_bytes_read(), before, "the call read the backing store");
	cr_assert_eq(count_present(b, half), half);
	cr_assert_eq(count_present(b + half * PAGE, pages - half), 0);
	/* The rest faults in on demand as usual. */
	cr_assert_eq(*(uint64_t *)(b + (pages - 1) * PAGE), pattern_at((pages - 1) * PAGE));
}

Test(populate, nonblock_takes_pages_from_the_kernel_page_cache)
{
	size_t pages = 256;
	int fd = make_pattern_file("f", pages * PAGE, NULL);
	static char buf[64 * 4096];
	char *m;
	uint64_t before;

	evict(fd);
	/* The kernel has pages 64..127 cached (read(2)), the daemon nothing. */
	cr_assert_eq(pread(fd, buf, sizeof(buf), 64 * PAGE), (ssize_t)sizeof(buf));
	before = daemon_bytes_read();
	m = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_PRIVATE | MAP_POPULATE | MAP_NONBLOCK,
			fd, 0);
	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert_eq(daemon_bytes_read(), before);
	cr_assert_eq(count_present(m + 64 * PAGE, 64), 64);
	cr_assert_eq(count_present(m, 64), 0);
	cr_assert_eq(*(uint64_t *)(m + 100 * PAGE + 8), pattern_at(100 * PAGE + 8));
}

Test(populate, sequential_readers_read_ahead_random_ones_do_not)
{
	size_t pages = 2048; /* 8 MiB */
	int fd = make_pattern_file("f", pages * PAGE, NULL);
	volatile uint64_t *seq, *rnd;
	struct region_info r;
	uint64_t before;

	evict(fd);
	seq = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert_neq(seq, MAP_FAILED);
	for (size_t i = 0; i < pages; i++)
		cr_assert_eq(seq[i * PAGE / 8], pattern_at(i * PAGE));
	cr_assert(harness_region(getpid(), (void *)seq, &r));
	cr_assert_lt(r.faults, pages / 16, "a sequential reader faulted %llu times for %zu pages",
		     (unsigned long long)r.faults, pages);
	/* With a memory budget as small as the file (the budget suite), pages read may leave and be
	 * read again; each is read at least once, and whole. */
	if (getenv("UPAGER_TEST_MEMORY_MAX"))
		cr_assert_geq(r.pages_read, pages, "pages read %llu",
			      (unsigned long long)r.pages_read);
	else
		cr_assert_eq(r.pages_read, pages, "pages read %llu",
			     (unsigned long long)r.pages_read);
	cr_assert_eq(r.bytes_read, r.pages_read * PAGE);
	cr_assert_gt(r.latency_avg_ns, 0);
	cr_assert_geq(r.latency_max_ns, r.latency_avg_ns, "avg %llu max %llu faults %llu",
		      (unsigned long long)r.latency_avg_ns, (unsigned long long)r.latency_max_ns,
		      (unsigned long long)r.faults);
	cr_assert_eq(upager_munmap((void *)seq, pages * PAGE), 0); /* the cache goes with it */

	evict(fd);
	before = daemon_bytes_read();
	rnd = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert_neq(rnd, MAP_FAILED);
	/* 200 pages far apart, in no order: each is one fault and one page read, nothing more. */
	for (size_t k = 0; k < 200; k++) {
		size_t i = (k * 7919 % 200) * 10 + 3;

		cr_assert_eq(rnd[i * PAGE / 8], pattern_at(i * PAGE));
	}
	cr_assert(harness_region(getpid(), (void *)rnd, &r));
	cr_assert_eq(r.faults, 200);
	cr_assert_eq(r.pages_read, 200);
	cr_assert_eq(daemon_bytes_read() - before, 200 * PAGE, "random faults read %llu bytes",
		     (unsigned long long)(daemon_bytes_read() - before));
}

Test(populate, daemon_figures_count_populate_reads_and_latency)
{
	int fd = make_pattern_file("f", 128 * PAGE, NULL);
	struct upager_msg st;
	volatile char *m;

	evict(fd);
	m = upager_mmap(NULL, 128 * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.pages_populated, 128);
	cr_assert_eq(st.u.stats_reply.pages_read, 128);
	cr_assert_eq(st.u.stats_reply.bytes_read, 128 * PAGE);
	cr_assert_eq(st.u.stats_reply.faults, 0);
	m = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < 8; i++)
		(void)m[i * PAGE];
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.faults, 8);
	cr_assert_gt(st.u.stats_reply.latency_p50_ns, 0);
	cr_assert_geq(st.u.stats_reply.latency_p99_ns, st.u.stats_reply.latency_p50_ns);
	cr_assert_geq(st.u.stats_reply.latency_max_ns, st.u.stats_reply.latency_p99_ns);
}

/* Kilobytes of memory this process has locked (VmLck). */
static long locked_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

Test(populate, map_locked_populates_and_locks_as_mlock_does)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);
	long before = locked_kib();
	void *s, *a, *nb;

	/* As Linux: MAP_LOCKED populates the whole mapping, MAP_NONBLOCK or not, and locks it. */
	s = upager_mmap(NULL, 64 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	check_populated(s, 64, true);
	a = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	check_populated(a, 16, false);
	nb = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED | MAP_NONBLOCK, fd,
			 8 * PAGE);
	cr_assert_neq(nb, MAP_FAILED, "%m");
	cr_assert_eq(count_present(nb, 8), 8);
	cr_assert_eq(locked_kib(), before + (64 + 16 + 8) * PAGE / 1024);
	cr_assert_eq(upager_munmap(s, 64 * PAGE), 0);
	cr_assert_eq(locked_kib(), before + (16 + 8) * PAGE / 1024);
}

static void lock_limits(void *arg)
{
	const char *path = arg;
	struct rlimit none = { 0, 0 }, small = { 16 * PAGE, 16 * PAGE };
	int fd = open(path, O_RDONLY);
	void *k, *u;

	/* No longer root: no CAP_IPC_LOCK, RLIMIT_MEMLOCK holds. */
	if (fd < 0 || setgid(65534) < 0 || setuid(65534) < 0 || prctl(PR_SET_DUMPABLE, 1) < 0)
		_exit(20);
	if (setrlimit(RLIMIT_MEMLOCK, &small) < 0)
		_exit(21);
	/* Past the limit: EAGAIN, from the kernel and from upager. */
	errno = 0;
	k = mmap(NULL, 32 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	if (k != MAP_FAILED || errno != EAGAIN)
		_exit(22);
	errno = 0;
	u = upager_mmap(NULL, 32 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	if (u != MAP_FAILED || errno != EAGAIN)
		_exit(23);
	/* Within it: both lock. */
	u = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	if (u == MAP_FAILED || count_present(u, 8) != 8)
		_exit(24);
	/* No right to lock at all: EPERM from both. */
	if (setrlimit(RLIMIT_MEMLOCK, &none) < 0)
		_exit(25);
	errno = 0;
	k = mmap(NULL, PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	if (k != MAP_FAILED || errno != EPERM)
		_exit(26);
	errno = 0;
	u = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, fd, 0);
	if (u != MAP_FAILED || errno != EPERM)
		_exit(27);
	_exit(0);
}

Test(populate, map_locked_fails_as_the_kernel_past_the_lock_limits)
{
	char path[512];
	int status;

	make_pattern_file("f", 64 * PAGE, path);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	status = run_child(lock_limits, path);
	cr_assert(WIFEXITED(status), "status %x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
}

static void touch_and_die(void *p)
{
	/* Under ASan its own handler would report the SIGBUS and exit: die of it as a program does. */
	signal(SIGBUS, SIG_DFL);
	(void)*(volatile char *)p;
	_exit(0);
}

/*
 * A file of size bytes, not a whole number of pages, mapped over two pages more than it has and
 * read from the start, in one read of 16 pages or more (read-ahead, or populate): what the file
 * holds, zeroes past its end in its last page, and SIGBUS on a page wholly past it.
 */
static void check_tail_of(const char *name, size_t size, int flags)
{
	size_t pages = (size + PAGE - 1) / PAGE;
	int fd = make_pattern_file(name, size, NULL), status;
	const volatile char *m;

	evict(fd);
	m = upager_mmap(NULL, (pages + 2) * PAGE, PROT_READ, MAP_SHARED | flags, fd, 0);
	cr_assert_neq(m, MAP_FAILED, "%m");
	for (size_t i = 0; i + 8 <= size; i += 8)
		cr_assert_eq(*(const volatile uint64_t *)(m + i), pattern_at(i), "%s: offset %zu",
			     name, i);
	for (size_t i = size; i < pages * PAGE; i++)
		cr_assert_eq(m[i], 0, "%s: byte %zu past the end of a file of %zu is %d", name, i,
			     size, m[i]);
	status = run_child(touch_and_die, (void *)(m + pages * PAGE));
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
		  "%s: a touch past the end of the file: status %x", name, status);
	cr_assert_eq(upager_munmap((void *)m, (pages + 2) * PAGE), 0);
}

Test(populate, large_reads_leave_zeroes_past_the_end_of_the_file)
{
	const size_t size = 100 * 1024 + 123;

	/* Files read in large reads before: their buffers are used again. */
	check_tail_of("before", 26 * PAGE, 0);
	check_tail_of("read", size, 0);
	check_tail_of("before-populate", 26 * PAGE, MAP_POPULATE);
	check_tail_of("populate", size, MAP_POPULATE);
}

/*
 * A populate that cannot start one of its reads waits for those it started before and maps their
 * pages; the rest fault in as usual. (Once, it stopped waiting at the error and freed what the
 * reads under way would wake: a use after free, which a -Db_sanitize build reports.)
 */
Test(populate, a_read_failing_to_start_midway_leaves_the_reads_before_it_populated,
     .init = harness_start_failing_read)
{
	size_t pages = 16;
	int fd = make_pattern_file("f", pages * PAGE, NULL);
	volatile uint64_t *m;
	struct region_info r;

#ifndef UPAGER_FAULT_INJECTION
	cr_skip_test("built without fault injection");
#endif
	m = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert(harness_daemon_logged("ring read 2 fails"), "the second read did not fail");
	cr_assert_eq(count_present((void *)m, 4), 4, "the first read's pages are not mapped");
	cr_assert_eq(count_present((void *)(m + 4 * PAGE / 8), 4), 0);
	cr_assert(harness_region(getpid(), (void *)m, &r));
	cr_assert_eq(r.pages_populated, 4);
	for (size_t i = 0; i < pages; i++)
		cr_assert_eq(m[i * PAGE / 8], pattern_at(i * PAGE), "page %zu", i);
}

static void *kernel_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
	return mmap(a, l, p, f, fd, o);
}

/* Page i of a private populated mapping after a write to the file through a shared mapping. */
static void private_after_shared_write(void *(*map)(void *, size_t, int, int, int, off_t),
				       const char *name, int extra, uint64_t out[4])
{
	int fd = make_pattern_file(name, 4 * PAGE, NULL);
	uint64_t *s = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t *p = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | extra, fd, 0);

	cr_assert_neq(s, MAP_FAILED, "%m");
	cr_assert_neq(p, MAP_FAILED, "%m");
	for (int i = 0; i < 4; i++)
		s[i * PAGE / 8] = 0xabc0 + i;
	for (int i = 0; i < 4; i++)
		out[i] = p[i * PAGE / 8];
	munmap(s, 4 * PAGE);
	munmap(p, 4 * PAGE);
	close(fd);
}

/*
 * MAP_PRIVATE|MAP_POPULATE with PROT_WRITE takes the private copies at once, as the kernel's
 * populate does (it faults for writing): a later write to the file through a shared mapping does
 * not show in them (selftests map_populate). Without MAP_POPULATE it shows, with both.
 */
Test(populate, private_writable_populate_takes_private_copies)
{
	const int extras[] = { MAP_POPULATE, 0 };

	for (int e = 0; e < 2; e++) {
		uint64_t want[4], got[4];
		char kname[32], uname[32];

		snprintf(kname, sizeof(kname), "private-populate-kernel-%d", e);
		snprintf(uname, sizeof(uname), "private-populate-upager-%d", e);
		private_after_shared_write(kernel_mmap, kname, extras[e], want);
		private_after_shared_write(upager_mmap, uname, extras[e], got);
		for (int i = 0; i < 4; i++) {
			cr_assert_eq(want[i],
				     extras[e] ? pattern_at(i * PAGE) : 0xabc0 + (uint64_t)i,
				     "the kernel's page %d: %#llx", i, (unsigned long long)want[i]);
			cr_assert_eq(got[i], want[i], "flags %#x, page %d: %#llx, not %#llx",
				     extras[e], i, (unsigned long long)got[i],
				     (unsigned long long)want[i]);
		}
	}
}
