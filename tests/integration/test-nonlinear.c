// SPDX-License-Identifier: LGPL-2.1-or-later
/* upager_remap_file_pages(): nonlinear mappings in one VMA, coherent with every other mapping. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto/view-table.h"
#include "upager.h"

TestSuite(nonlinear, .init = harness_start, .fini = harness_stop, .timeout = 120);

/* The file page a mapping shows at page i: its first word. */
static uint64_t shows(const void *m, size_t i)
{
	return *(volatile const uint64_t *)((const char *)m + i * PAGE) / PAGE;
}

#define PAGE_NO(p) ((uint64_t)pattern_at((p)*PAGE) / PAGE)

/* The daemon's figures (STATS): stats().u.stats_reply.faults. */
static struct upager_msg stats(void)
{
	struct upager_msg st;

	cr_assert_eq(harness_stats(&st), 0);
	return st;
}

static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* The VMAs of this process that overlap [addr, addr + len). */
static int count_maps_in(const void *addr, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	uintptr_t a = (uintptr_t)addr, start, end;
	char line[512];
	int n = 0;

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start < a + len && end > a)
			n++;
	fclose(f);
	return n;
}

Test(nonlinear, pages_show_the_file_pages_the_table_names)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	char *m = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct region_info r;
	int maps;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(shows(m, 3), PAGE_NO(3));
	maps = count_maps();
	cr_assert_eq(upager_remap_file_pages(m + 2 * PAGE, 3 * PAGE, 0, 10, 0), 0, "%m");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shows(m, 2 + i), PAGE_NO(10 + i), "page %d", 2 + i);
	cr_assert_eq(shows(m, 0), PAGE_NO(0));
	cr_assert_eq(shows(m, 1), PAGE_NO(1));
	cr_assert_eq(shows(m, 5), PAGE_NO(5));
	/* addr and size are rounded down to page boundaries. */
	cr_assert_eq(upager_remap_file_pages(m + 6 * PAGE + 100, 2 * PAGE + 50, 0, 0, 0), 0);
	cr_assert_eq(shows(m, 6), PAGE_NO(0));
	cr_assert_eq(shows(m, 7), PAGE_NO(1));
	cr_assert_eq(shows(m, 8), PAGE_NO(8));
	/* The same file page in several places. */
	cr_assert_eq(upager_remap_file_pages(m + 8 * PAGE, PAGE, 0, 10, 0), 0);
	cr_assert_eq(shows(m, 8), PAGE_NO(10));
	cr_assert_eq(shows(m, 2), PAGE_NO(10));
	/* The mapping is still one VMA, and the process has one more, for the table the library
	 * shares with the daemon, not one per range. (Under a sanitizer its allocator maps memory
	 * of its own at any time, so there the count of the whole process is not asked.) */
	cr_assert_eq(count_maps_in(m, 16 * PAGE), 1, "remapping split the mapping");
	if (!RUNNING_UNDER_SANITIZER)
		cr_assert_eq(count_maps(), maps + 1, "remapping made new VMAs");
	cr_assert(harness_region(getpid(), m, &r));
	cr_assert_eq(r.length, 16 * PAGE);
	cr_assert_str_neq(r.backing, "anon");
}

Test(nonlinear, writes_are_seen_everywhere_the_page_appears)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	int to_child[2], to_parent[2], status;
	volatile uint64_t *m;
	char c;
	pid_t p;

	cr_assert_eq(pipe(to_child), 0);
	cr_assert_eq(pipe(to_parent), 0);
	p = harness_fork(); /* another client, with a linear mapping */
	if (p == 0) {
		volatile uint64_t *l =
			upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (l == MAP_FAILED)
			_exit(2);
		(void)l[10 * PAGE / 8]; /* it has page 10 mapped before the remap */
		(void)!write(to_parent[1], "1", 1);
		if (read(to_child[0], &c, 1) != 1 || l[10 * PAGE / 8 + 1] != 0xaaaa)
			_exit(3);
		l[10 * PAGE / 8 + 2] = 0xbbbb; /* a linear write */
		(void)!write(to_parent[1], "2", 1);
		_exit(read(to_child[0], &c, 1) == 1 ? 0 : 4);
	}
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	m = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)(m + 2 * PAGE / 8), PAGE, 0, 10, 0), 0, "%m");
	cr_assert_eq(upager_remap_file_pages((void *)(m + 8 * PAGE / 8), PAGE, 0, 10, 0), 0, "%m");
	/* A write through one place is seen at the other, and by the linear mapping. */
	m[2 * PAGE / 8 + 1] = 0xaaaa;
	cr_assert_eq(m[8 * PAGE / 8 + 1], 0xaaaa);
	cr_assert_eq(m[10 * PAGE / 8 + 1], 0xaaaa);
	cr_assert_eq(write(to_child[1], "a", 1), 1);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	cr_assert_eq(m[2 * PAGE / 8 + 2], 0xbbbb);
	cr_assert_eq(m[8 * PAGE / 8 + 2], 0xbbbb);
	m[8 * PAGE / 8 + 3] = 0xcccc;
	cr_assert_eq(m[2 * PAGE / 8 + 3], 0xcccc);
	cr_assert_eq(write(to_child[1], "b", 1), 1);
	cr_assert_eq(waitpid(p, &status, 0), p);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %x", status);
	/* And in the file after msync. */
	cr_assert_eq(upager_msync((void *)m, 16 * PAGE, MS_SYNC), 0);
	{
		uint64_t v[4];

		cr_assert_eq(pread(fd, v, sizeof(v), 10 * PAGE), (ssize_t)sizeof(v));
		cr_assert_eq(v[1], 0xaaaa);
		cr_assert_eq(v[2], 0xbbbb);
		cr_assert_eq(v[3], 0xcccc);
	}
	m[2 * PAGE / 8 + 5] = 0xdddd;
	cr_assert_eq(upager_munmap((void *)m, 16 * PAGE), 0);
	{
		uint64_t v = 0;

		cr_assert_eq(pread(fd, &v, 8, 10 * PAGE + 40), 8);
		cr_assert_eq(v, 0xdddd);
	}
}

Test(nonlinear, msync_writes_the_pages_the_table_names)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);
	volatile uint64_t *m =
		upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t v = 0;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, 40, 0), 0, "%m");
	m[3] = 0x4040;
	cr_assert_eq(upager_msync((void *)m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, &v, 8, 40 * PAGE + 24), 8);
	cr_assert_eq(v, 0x4040, "file page 40 was not written back");
	cr_assert_eq(pread(fd, &v, 8, 24), 8);
	cr_assert_eq(v, pattern_at(24));
}

Test(nonlinear, nonblock_reads_nothing_else_remapped_pages_are_populated)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);
	char *m = upager_mmap(NULL, 64 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	uint64_t before;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(fsync(fd), 0);
	cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	before = stats().u.stats_reply.bytes_read;
	cr_assert_eq(upager_remap_file_pages(m, 4 * PAGE, 0, 40, MAP_NONBLOCK), 0, "%m");
	cr_assert_eq(stats().u.stats_reply.bytes_read, before, "MAP_NONBLOCK read the file");
	for (int i = 0; i < 4; i++)
		cr_assert_not(page_present(m + i * PAGE));
	cr_assert_eq(upager_remap_file_pages(m + 8 * PAGE, 4 * PAGE, 0, 50, 0), 0, "%m");
	for (int i = 0; i < 4; i++)
		cr_assert(page_present(m + (8 + i) * PAGE), "remapped page %d not populated", i);
	cr_assert_eq(shows(m, 9), PAGE_NO(51));
	cr_assert_eq(shows(m, 1), PAGE_NO(41)); /* on demand */
}

Test(nonlinear, errors_leave_the_mapping_unchanged)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	char *m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *priv = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(priv, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 3, 0), 0);
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m, PAGE, PROT_READ, 1, 0), -1);
	cr_assert_eq(errno, EINVAL, "prot != 0");
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(priv, PAGE, 0, 1, 0), -1);
	cr_assert_eq(errno, EINVAL, "a private mapping");
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m + 6 * PAGE, 4 * PAGE, 0, 1, 0), -1);
	cr_assert_eq(errno, EINVAL, "a range past the mapping");
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m, 2 * PAGE, 0, 7, 0), -1);
	cr_assert_eq(errno, EINVAL, "pgoff past the file");
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m, 0, 0, 1, 0), -1);
	cr_assert_eq(errno, EINVAL, "size 0");
	cr_assert_eq(shows(m, 0), PAGE_NO(3));
	cr_assert_eq(shows(m, 1), PAGE_NO(1));
	cr_assert_eq(shows(priv, 0), PAGE_NO(0));
}

Test(nonlinear, upagerctl_reports_nonlinear_mappings)
{
	int fd = make_pattern_file("f", 32 * PAGE, NULL);
	char *m = upager_mmap(NULL, 32 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	char out[4096];

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages(m + 2 * PAGE, 3 * PAGE, 0, 10, 0), 0);
	cr_assert_eq(upager_remap_file_pages(m + 20 * PAGE, PAGE, 0, 0, MAP_NONBLOCK), 0);
	cr_assert_eq(upager_remap_file_pages(m + 21 * PAGE, PAGE, 0, 30, MAP_NONBLOCK), 0);
	harness_ctl_list_json(out, sizeof(out));
	cr_assert(strstr(out, "\"nonlinear\": true"), "%s", out);
	cr_assert(strstr(out, "\"remapped_ranges\": 3"), "%s", out);
}

Test(nonlinear, many_single_page_remaps_make_no_vma)
{
	size_t pages = 65536; /* 256 MiB */
	int fd = make_pattern_file("big", pages * PAGE, NULL);
	char *m = upager_mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	int maps;

	cr_assert_neq(m, MAP_FAILED);
	maps = count_maps();
	/* 100,000 remaps of alternating single pages: page 2k shows file page 2k + 1 + round. */
	for (size_t j = 0; j < 100000; j++) {
		size_t i = (2 * j) % pages, round = (2 * j) / pages;

		cr_assert_eq(upager_remap_file_pages(m + i * PAGE, PAGE, 0, (i + 1 + round) % pages,
						     MAP_NONBLOCK),
			     0, "remap %zu: %m", j);
	}
	cr_assert_leq(count_maps(), maps + 2);
	{
		/* The kernel's own remap_file_pages makes a VMA per range and runs out. */
		char *k = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
		size_t j;

		cr_assert_neq(k, MAP_FAILED);
		errno = 0;
		for (j = 0; j < 100000; j++)
			if (remap_file_pages(k + (2 * j % pages) * PAGE, PAGE, 0, 2 * j % pages + 1,
					     0))
				break;
		cr_assert_lt(j, 100000, "the kernel did 100,000 remaps");
		cr_assert_eq(errno, ENOMEM, "the kernel failed with %s", strerror(errno));
		munmap(k, pages * PAGE);
	}
	for (size_t i = 0; i < pages; i += 97) {
		size_t last_round = i % 2 ? 0 : (i < (2 * 100000) % pages ? 3 : 2);
		uint64_t want = i % 2 ? i : (i + 1 + last_round) % pages;

		cr_assert_eq(shows(m, i), PAGE_NO(want), "page %zu", i);
	}
}

static void on_alarm(int sig)
{
	(void)sig;
	kill(harness_daemon_pid(), SIGCONT);
	_exit(9);
}

Test(nonlinear, nonblock_remaps_of_pages_without_copies_need_no_daemon)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);
	char *m = upager_mmap(NULL, 32 * PAGE, PROT_READ, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 40, MAP_NONBLOCK), 0, "%m");
	cr_assert_eq(shows(m, 0), PAGE_NO(40)); /* page 0 now holds a copy */
	/* The daemon stopped: the library remaps pages without copies alone, at once. */
	signal(SIGALRM, on_alarm);
	alarm(10);
	cr_assert_eq(kill(harness_daemon_pid(), SIGSTOP), 0);
	for (int i = 1; i < 32; i++)
		cr_assert_eq(upager_remap_file_pages(m + i * PAGE, PAGE, 0, 63 - i, MAP_NONBLOCK),
			     0);
	cr_assert_eq(upager_remap_file_pages(m + 4 * PAGE, 4 * PAGE, 0, 50, MAP_NONBLOCK), 0);
	cr_assert_eq(kill(harness_daemon_pid(), SIGCONT), 0);
	alarm(0);
	/* A page with a copy goes through the daemon, which drops the copy. */
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 41, MAP_NONBLOCK), 0, "%m");
	cr_assert_not(page_present(m));
	cr_assert_eq(shows(m, 0), PAGE_NO(41));
	for (int i = 1; i < 32; i++) {
		uint64_t want = i >= 4 && i < 8 ? 50 + (uint64_t)(i - 4) : 63 - (uint64_t)i;

		cr_assert_eq(shows(m, i), PAGE_NO(want), "page %d", i);
	}
}

struct toucher {
	const char *m;
	uint64_t gen; /* the main thread's remap count */
	uint64_t seen_gen, seen; /* the count before a read of page 0, and what it showed */
	bool stop;
};

static void *touch_loop(void *arg)
{
	struct toucher *t = arg;

	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		uint64_t g = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE);

		__atomic_store_n(&t->seen, shows(t->m, 0), __ATOMIC_RELAXED);
		__atomic_store_n(&t->seen_gen, g, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * The library rewrites a page's entry while the daemon, on another thread's fault, is about to
 * copy the page in: a read that starts after the remap returned must show the new page. Each
 * round remaps page 0 twice: the first remap drops the copy the reader made (through the daemon),
 * the second finds no copy and is the library's alone, while the reader is likely faulting.
 */
Test(nonlinear, remaps_racing_faults_show_the_last_remap)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	struct toucher t = { 0 };
	pthread_t th;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 8, MAP_NONBLOCK), 0, "%m");
	for (int k = 8; k < 16; k++) /* every page in the daemon's cache: faults need no read */
		cr_assert_eq(upager_remap_file_pages(m + PAGE, PAGE, 0, (size_t)k, 0), 0, "%m");
	t.m = m;
	cr_assert_eq(pthread_create(&th, NULL, touch_loop, &t), 0);
	for (uint64_t k = 1; k <= 5000; k++) {
		uint64_t want = 8 + k % 8;

		cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 8 + (k + 3) % 8, MAP_NONBLOCK), 0);
		cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, want, MAP_NONBLOCK), 0, "%m");
		__atomic_store_n(&t.gen, k, __ATOMIC_RELEASE);
		while (__atomic_load_n(&t.seen_gen, __ATOMIC_ACQUIRE) != k)
			sched_yield();
		cr_assert_eq(__atomic_load_n(&t.seen, __ATOMIC_RELAXED), PAGE_NO(want),
			     "round %" PRIu64 ": a read after the remap showed %" PRIx64, k,
			     __atomic_load_n(&t.seen, __ATOMIC_RELAXED));
	}
	__atomic_store_n(&t.stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
}

Test(nonlinear, a_moved_or_unmapped_mapping_is_remapped_by_the_daemon)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	char *m = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	char *to = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *n;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(to, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 9, MAP_NONBLOCK), 0, "%m");
	n = mremap(m, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	cr_assert_eq(n, to, "%m");
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m + PAGE, PAGE, 0, 10, MAP_NONBLOCK), -1,
		     "a remap where the mapping was");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(upager_remap_file_pages(n + PAGE, PAGE, 0, 11, MAP_NONBLOCK), 0, "%m");
	cr_assert_eq(shows(n, 0), PAGE_NO(9));
	cr_assert_eq(shows(n, 1), PAGE_NO(11));
	cr_assert_eq(upager_munmap(n, 8 * PAGE), 0);
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(n + PAGE, PAGE, 0, 12, MAP_NONBLOCK), -1,
		     "a remap of an unmapped range");
	cr_assert_eq(errno, EINVAL);
}

/* A populating remap of a page no one has copies it from the page cache, without the home page. */
Test(nonlinear, a_page_no_one_has_comes_from_the_page_cache_and_stays_coherent)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	volatile uint64_t *m =
		upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	volatile uint64_t *l;
	uint64_t written, cached, v = 0;
	struct upager_msg st;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(harness_stats(&st), 0);
	cached = st.u.stats_reply.cached_pages;
	cr_assert_eq(upager_remap_file_pages((void *)m, 2 * PAGE, 0, 10, 0), 0, "%m");
	cr_assert(page_present((void *)m) && page_present((char *)m + PAGE));
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.cached_pages, cached, "the daemon's cache was filled");
	cr_assert_eq(shows((void *)m, 0), PAGE_NO(10));
	cr_assert_eq(shows((void *)m, 1), PAGE_NO(11));
	/* Clean copies write nothing back, and leave without a trace. */
	written = stats().u.stats_reply.bytes_written;
	cr_assert_eq(upager_msync((void *)m, 16 * PAGE, MS_SYNC), 0);
	cr_assert_eq(stats().u.stats_reply.bytes_written, written);
	cr_assert_eq(upager_remap_file_pages((void *)m + PAGE, PAGE, 0, 1, 0), 0, "%m");
	cr_assert_eq(shows((void *)m, 1), PAGE_NO(1));
	/* A linear mapping reads page 10 from the file again, and sees a write into the copy. */
	l = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(l, MAP_FAILED);
	cr_assert_eq(shows((void *)l, 10), PAGE_NO(10));
	cr_assert_eq(shows((void *)l, 11), PAGE_NO(11));
	m[1] = 0xaaaa;
	cr_assert_eq(l[10 * PAGE / 8 + 1], 0xaaaa);
	/* A write into a clean copy nobody else has reaches the file. */
	cr_assert_eq(upager_remap_file_pages((void *)m + 2 * PAGE, PAGE, 0, 12, 0), 0, "%m");
	m[2 * PAGE / 8 + 1] = 0xbbbb;
	cr_assert_eq(upager_msync((void *)m, 16 * PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, &v, 8, 12 * PAGE + 8), 8);
	cr_assert_eq(v, 0xbbbb);
	cr_assert_eq(pread(fd, &v, 8, 10 * PAGE + 8), 8);
	cr_assert_eq(upager_munmap((void *)l, 16 * PAGE), 0);
	cr_assert_eq(upager_munmap((void *)m, 16 * PAGE), 0);
	cr_assert_eq(pread(fd, &v, 8, 10 * PAGE + 8), 8);
	cr_assert_eq(v, 0xaaaa);
}

/* Read the file's first pages into the kernel's page cache. */
static void warm_page_cache(int fd, size_t pages)
{
	uint64_t buf[PAGE / 8];

	for (size_t p = 0; p < pages; p++)
		cr_assert_eq(pread(fd, buf, PAGE, (off_t)(p * PAGE)), (ssize_t)PAGE);
}

Test(nonlinear, a_fault_on_a_page_no_one_has_comes_from_the_page_cache)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	char *m = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t cached, from_cache, buf[PAGE / 8];
	struct upager_msg st;

	cr_assert_neq(m, MAP_FAILED);
	warm_page_cache(fd, 16);
	cr_assert_eq(upager_remap_file_pages(m, 4 * PAGE, 0, 8, MAP_NONBLOCK), 0, "%m");
	cr_assert_eq(harness_stats(&st), 0);
	cached = st.u.stats_reply.cached_pages;
	from_cache = st.u.stats_reply.bytes_from_page_cache;
	for (int i = 0; i < 4; i++)
		cr_assert_eq(shows(m, (size_t)i), PAGE_NO(8 + i));
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.cached_pages, cached, "the daemon's cache was filled");
	cr_assert_eq(st.u.stats_reply.bytes_from_page_cache, from_cache + 4 * PAGE);
	/* Those copies are write-protected: a write to one reaches the file. */
	m[2 * PAGE + 8] = 'w';
	cr_assert_eq(upager_msync(m, 16 * PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, buf, 16, 10 * PAGE), 16);
	cr_assert_eq(((char *)buf)[8], 'w');
}

/* One page to populate: the library remaps it and a fault populates it. */
static void populate_one_page(int fd)
{
	char *m = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		_exit(30);
	if (upager_remap_file_pages(m, PAGE, 0, 3, MAP_NONBLOCK) < 0) /* made nonlinear */
		_exit(31);
	if (upager_remap_file_pages(m + 5 * PAGE, PAGE, 0, 9, 0) < 0 || !page_present(m + 5 * PAGE))
		_exit(32);
	if (shows(m, 5) != PAGE_NO(9) || shows(m, 0) != PAGE_NO(3))
		_exit(33);
	/* No signal comes where the page cannot be read: the mapping made PROT_NONE, */
	if (mprotect(m, 16 * PAGE, PROT_NONE) < 0 ||
	    upager_remap_file_pages(m + 6 * PAGE, PAGE, 0, 12, 0) < 0)
		_exit(34);
	if (mprotect(m, 16 * PAGE, PROT_READ) < 0 || shows(m, 6) != PAGE_NO(12))
		_exit(35);
	/* or unmapped by munmap(2) (the call may still succeed: the daemon may not know yet). */
	if (munmap(m, 16 * PAGE) < 0)
		_exit(36);
	errno = 0;
	if (upager_remap_file_pages(m + 7 * PAGE, PAGE, 0, 1, 0) < 0 && errno != EINVAL)
		_exit(37);
}

static void populate_one_page_child(void *arg)
{
	const char *path = arg;
	int rw;

	/* Dumpable again after setuid(), so that /proc/self/pagemap is its own to read. */
	if (setgid(65534) < 0 || setuid(65534) < 0 || prctl(PR_SET_DUMPABLE, 1) < 0)
		_exit(20);
	rw = open(path, O_RDWR);
	if (rw < 0)
		_exit(21);
	populate_one_page(rw);
	_exit(0);
}

Test(nonlinear, a_one_page_populating_remap_is_populated_by_a_fault)
{
	char path[512];
	int fd = make_pattern_file("f", 16 * PAGE, path), status;

	/* A userfaultfd made for user mode only, by a process without privilege that is not the
	 * child of a client (a child's comes from its parent's): a read populates. */
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(fchmod(fd, 0666), 0);
	status = run_child(populate_one_page_child, path);
	cr_assert(WIFEXITED(status), "status %x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
	/* This process's userfaultfd serves the kernel's faults too (MADV_POPULATE_READ). */
	populate_one_page(fd);
}

/*
 * A MAP_SHARED mapping of a file opened for reading only is not shared for Linux, which clears
 * VM_SHARED: remap_file_pages(2) refuses it with EINVAL, and so does upager. Shared anonymous
 * memory is remapped whatever its protection.
 */
Test(nonlinear, a_shared_mapping_of_a_file_opened_for_reading_only_is_not_remapped)
{
	char path[512];
	int fd = make_pattern_file("f", 4 * PAGE, path), ro = open(path, O_RDONLY | O_CLOEXEC);
	char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, ro, 0);
	char *a = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(a, MAP_FAILED);
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 2, 0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(*(volatile uint64_t *)m, pattern_at(0), "the mapping changed");
	cr_assert_eq(upager_remap_file_pages(a, PAGE, 0, 2, 0), 0);
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	cr_assert_eq(upager_munmap(a, 4 * PAGE), 0);
	close(ro);
	close(fd);
}

/*
 * A process that writes 0xc0ffee into the second word of file pages [first, first + count)
 * through a linear mapping when told to. It is forked before the nonlinear mapping is made, so
 * that it does not share its view (a child that does drops the parent's copies as it exits).
 */
struct writer {
	int fd;
	size_t pages, first, count;
	int flags; /* more mmap flags: MAP_POPULATE */
	int go[2];
	pid_t pid;
};

static void writer_start(struct writer *w)
{
	char c;

	cr_assert_eq(pipe(w->go), 0);
	w->pid = harness_fork();
	cr_assert(w->pid >= 0);
	if (w->pid == 0) {
		uint64_t *l;

		alarm(20);
		if (read(w->go[0], &c, 1) != 1)
			_exit(1);
		l = upager_mmap(NULL, w->pages * PAGE, PROT_READ | PROT_WRITE,
				MAP_SHARED | w->flags, w->fd, 0);
		if (l == MAP_FAILED)
			_exit(2);
		for (size_t p = w->first; p < w->first + w->count; p++)
			l[p * PAGE / 8 + 1] = 0xc0ffee;
		_exit(0);
	}
	close(w->go[0]);
}

static void writer_go(struct writer *w)
{
	cr_assert_eq(write(w->go[1], "g", 1), 1);
	close(w->go[1]);
}

static void writer_wait(struct writer *w)
{
	int status;

	cr_assert_eq(waitpid(w->pid, &status, 0), w->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer: status %x", status);
}

/*
 * A shared mapping of the whole file, its pages in the kernel's page cache, made nonlinear by a
 * MAP_NONBLOCK remap of its first page to file page pgoff; the writer forked first.
 */
static volatile uint64_t *map_nonlinear(struct writer *w, int prot, size_t pgoff)
{
	volatile uint64_t *m;

	warm_page_cache(w->fd, w->pages);
	writer_start(w);
	m = upager_mmap(NULL, w->pages * PAGE, prot, MAP_SHARED, w->fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, pgoff, MAP_NONBLOCK), 0, "%m");
	return m;
}

Test(nonlinear, a_page_no_one_holds_is_copied_in_by_the_library_and_stays_coherent)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	struct writer w = { .fd = fd, .pages = 16, .first = 5, .count = 1 };
	volatile uint64_t *m;
	uint64_t faults, v = 0;

	m = map_nonlinear(&w, PROT_READ | PROT_WRITE, 3);
	faults = stats().u.stats_reply.faults;
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, 5, 0), 0, "%m");
	cr_assert(page_present((void *)m));
	cr_assert_eq(m[0], pattern_at(5 * PAGE));
	cr_assert_eq(stats().u.stats_reply.faults, faults, "the daemon served a fault for it");
	/* Another process writes the page: the copy goes, and the write is seen here. */
	writer_go(&w);
	writer_wait(&w);
	cr_assert_eq(m[1], 0xc0ffee);
	/* A write into such a copy reaches the file. */
	cr_assert_eq(upager_remap_file_pages((void *)m + PAGE, PAGE, 0, 9, 0), 0, "%m");
	cr_assert(page_present((char *)m + PAGE));
	m[PAGE / 8 + 1] = 0xbeef;
	cr_assert_eq(upager_msync((void *)m, 16 * PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, &v, 8, 9 * PAGE + 8), 8);
	cr_assert_eq(v, 0xbeef);
	/* The same page copied in at two places: a write at one is seen at the other. */
	cr_assert_eq(upager_remap_file_pages((void *)m + 2 * PAGE, PAGE, 0, 11, 0), 0, "%m");
	cr_assert_eq(upager_remap_file_pages((void *)m + 3 * PAGE, PAGE, 0, 11, 0), 0, "%m");
	cr_assert_eq(m[3 * PAGE / 8], pattern_at(11 * PAGE));
	m[2 * PAGE / 8 + 1] = 0x5151;
	cr_assert_eq(m[3 * PAGE / 8 + 1], 0x5151);
}

Test(nonlinear, a_writable_mapping_populated_later_maps_pages_with_copies_write_protected)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	struct writer w = { .fd = fd, .pages = 16, .first = 4, .count = 8, .flags = MAP_POPULATE };
	volatile uint64_t *m = map_nonlinear(&w, PROT_READ, 1);

	/* Copies of file pages 4 to 11, some read by faults, some copied in by the library. */
	cr_assert_eq(upager_remap_file_pages((void *)m + 2 * PAGE, 4 * PAGE, 0, 4, MAP_NONBLOCK),
		     0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(m[(2 + i) * PAGE / 8], pattern_at((4 + (size_t)i) * PAGE));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(upager_remap_file_pages((void *)m + (6 + (size_t)i) * PAGE, PAGE, 0,
						     8 + (size_t)i, 0),
			     0, "%m");
	/* The writer's MAP_POPULATE maps them all, and its writes must still reach the copies. */
	writer_go(&w);
	writer_wait(&w);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(m[(2 + i) * PAGE / 8 + 1], 0xc0ffee, "view page %d", 2 + i);
}

Test(nonlinear, copies_made_while_another_process_writes_the_pages_stay_coherent)
{
	enum {
		K = 512,
		ROUNDS = 4
	};

	for (int round = 0; round < ROUNDS; round++) {
		char name[16];
		int fd;
		volatile uint64_t *m;
		struct writer w = { .pages = 2 * K, .first = 0, .count = K };
		snprintf(name, sizeof(name), "f%d", round);
		fd = make_pattern_file(name, 2 * K * PAGE, NULL);
		w.fd = fd;
		m = map_nonlinear(&w, PROT_READ, K);
		/* The writer writes file pages [0, K) while view pages [K, 2K) get copies of them. */
		writer_go(&w);
		for (int j = 0; j < K; j++)
			cr_assert_eq(upager_remap_file_pages((void *)m + (K + j) * PAGE, PAGE, 0,
							     (size_t)j, 0),
				     0, "%m");
		writer_wait(&w);
		for (int j = 0; j < K; j++)
			cr_assert_eq(m[(K + j) * PAGE / 8 + 1], 0xc0ffee,
				     "round %d: view page %d shows file page %d as it was", round,
				     K + j, j);
		cr_assert_eq(upager_munmap((void *)m, 2 * K * PAGE), 0);
		close(fd);
	}
}

/* The table the library shares with the daemon: the test scribbles over it as a bad client. */
static struct upager_view_table *find_view_table(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uintptr_t start = 0;

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "upager:view-table") && sscanf(line, "%" SCNxPTR "-", &start) == 1)
			break;
	fclose(f);
	cr_assert_neq(start, 0, "no view table mapped");
	return (struct upager_view_table *)start;
}

static void set_claim(struct upager_view_table *t, int k, uint64_t state, uint64_t i, uint64_t p)
{
	t->claim[k].index = i;
	t->claim[k].page = p;
	__atomic_store_n(&t->claim[k].state, state, __ATOMIC_SEQ_CST);
}

Test(nonlinear, claims_a_client_scribbles_over_only_cost_it_its_own_copies)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);
	struct writer w = { .fd = fd, .pages = 64, .first = 20, .count = 4 };
	volatile uint64_t *m;
	struct upager_view_table *t;

	m = map_nonlinear(&w, PROT_READ | PROT_WRITE, 1);
	t = find_view_table();
	/* A copy under way that never ends, one that says it is done but is not there, and a
	 * state that is none. */
	set_claim(t, 0, UPAGER_CLAIM_COPYING, 10, 20);
	set_claim(t, 1, UPAGER_CLAIM_DONE, 11, 21);
	set_claim(t, 2, 77, 12, 22);
	/* The daemon waits a while for the first, then takes it back; it serves the page. */
	cr_assert_eq(m[10 * PAGE / 8], pattern_at(10 * PAGE));
	cr_assert_eq(__atomic_load_n(&t->claim[0].state, __ATOMIC_SEQ_CST), UPAGER_CLAIM_REVOKED);
	cr_assert_eq(__atomic_load_n(&t->claim[1].state, __ATOMIC_SEQ_CST), UPAGER_CLAIM_IDLE);
	cr_assert_eq(__atomic_load_n(&t->claim[2].state, __ATOMIC_SEQ_CST), UPAGER_CLAIM_IDLE);
	cr_assert_eq(m[11 * PAGE / 8], pattern_at(11 * PAGE));
	/* Once taken back, a claim that stays under way is not waited for again; another process
	 * that writes those pages is not held up. */
	set_claim(t, 0, UPAGER_CLAIM_COPYING, 13, 23);
	writer_go(&w);
	writer_wait(&w);
	for (int p = 20; p < 24; p++) {
		cr_assert_eq(upager_remap_file_pages((void *)m + (size_t)p * PAGE, PAGE, 0,
						     (size_t)p, 0),
			     0, "%m");
		cr_assert_eq(m[(size_t)p * PAGE / 8 + 1], 0xc0ffee, "page %d", p);
	}
	/* The library still copies pages in through the claims left. */
	cr_assert_eq(upager_remap_file_pages((void *)m + 40 * PAGE, PAGE, 0, 41, 0), 0, "%m");
	cr_assert(page_present((char *)m + 40 * PAGE));
	cr_assert_eq(m[40 * PAGE / 8], pattern_at(41 * PAGE));
}

Test(nonlinear, shared_anonymous_memory_is_remapped_as_the_kernel_does)
{
	/* volatile: a store at one address changes what another one shows */
	volatile char *k =
		mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile char *u = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *pk = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *pu = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

	cr_assert(k != MAP_FAILED && u != MAP_FAILED && pk != MAP_FAILED && pu != MAP_FAILED);
	for (int i = 0; i < 8; i++)
		k[i * PAGE] = u[i * PAGE] = (char)('a' + i);
	/* Linux remaps shared anonymous memory (shmem underneath); so does upager. */
	cr_assert_eq(remap_file_pages((void *)k, PAGE, 0, 5, 0), 0, "%m");
	cr_assert_eq(upager_remap_file_pages((void *)u, PAGE, 0, 5, 0), 0, "%m");
	cr_assert_eq(upager_remap_file_pages((void *)u + 2 * PAGE, 2 * PAGE, 0, 6, MAP_NONBLOCK), 0,
		     "%m");
	cr_assert_eq(k[0], 'f');
	cr_assert_eq(u[0], 'f');
	cr_assert_eq(u[2 * PAGE], 'g');
	cr_assert_eq(u[3 * PAGE], 'h');
	cr_assert_eq(u[PAGE], 'b');
	/* The same page in two places, and its home: a write at one is seen at the others. */
	u[0] = 'F';
	cr_assert_eq(u[5 * PAGE], 'F');
	u[3 * PAGE + 1] = 'x';
	cr_assert_eq(u[7 * PAGE + 1], 'x');
	/* Private anonymous memory is not a file's: both refuse it. */
	errno = 0;
	cr_assert_eq(remap_file_pages(pk, PAGE, 0, 1, 0), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(pu, PAGE, 0, 1, 0), -1);
	cr_assert_eq(errno, EINVAL);
}

static bool byte_read(int fd)
{
	char c;

	return read(fd, &c, 1) == 1;
}

Test(nonlinear, two_processes_write_the_same_pages_through_their_own_nonlinear_mappings)
{
	enum {
		N = 512
	};
	int fd = make_pattern_file("f", N * PAGE, NULL), ab[2], ba[2], status, bad = 0;
	volatile uint64_t *m;
	pid_t c;

	warm_page_cache(fd, N);
	cr_assert_eq(pipe(ab), 0);
	cr_assert_eq(pipe(ba), 0);
	/* Forked before any mapping: each process makes its own, and takes turns with the other
	 * on file page p through a view page of its own. */
	c = harness_fork();
	cr_assert(c >= 0);
	m = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || upager_remap_file_pages((void *)m, PAGE, 0, 1, MAP_NONBLOCK) < 0) {
		if (c == 0)
			_exit(100);
		cr_assert_fail("%m");
	}
	for (size_t p = 1; p < N; p++) {
		size_t i = 64 + p % 64;
		volatile uint64_t *w = m + i * PAGE / 8 + 2;

		if (c == 0) {
			if (!byte_read(ab[0]))
				break;
			if (upager_remap_file_pages((void *)m + i * PAGE, PAGE, 0, p, 0) < 0 ||
			    *w != p)
				bad++;
			*w = p + 1;
			if (write(ba[1], "b", 1) != 1)
				break;
		} else {
			if (upager_remap_file_pages((void *)m + i * PAGE, PAGE, 0, p, 0) < 0 ||
			    *w != pattern_at(p * PAGE + 16))
				bad++;
			*w = p;
			cr_assert_eq(write(ab[1], "a", 1), 1);
			cr_assert(byte_read(ba[0]));
			if (*w != p + 1)
				bad++;
		}
	}
	if (c == 0)
		_exit(bad > 99 ? 99 : bad);
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other process: %x", status);
	cr_assert_eq(bad, 0, "%d pages showed another process's write late", bad);
	cr_assert_eq(upager_msync((void *)m, N * PAGE, MS_SYNC), 0);
	for (size_t p = 1; p < N; p++) {
		uint64_t v = 0;

		cr_assert_eq(pread(fd, &v, 8, (off_t)(p * PAGE + 16)), 8);
		cr_assert_eq(v, p + 1, "file page %zu", p);
	}
}

/* Whether thread tid of process pid waits in a kernel function whose name has what in it. */
static bool waits_in(pid_t pid, pid_t tid, const char *what)
{
	char path[96], wchan[128] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, wchan, sizeof(wchan) - 1);
	close(fd);
	return n > 0 && strstr(wchan, what);
}

/* Whether thread tid of process pid waits in a userfaultfd (a fault, or an event not read). */
static bool waits_on_userfaultfd(pid_t pid, pid_t tid)
{
	return waits_in(pid, tid, "userfault");
}

struct unmapper {
	void *addr;
	volatile pid_t tid;
};

static void *unmap_other(void *arg)
{
	struct unmapper *u = arg;

	u->tid = gettid();
	cr_assert_eq(munmap(u->addr, PAGE), 0);
	return NULL;
}

/* A reader of file page 5 through a linear mapping of its own: one word per "r" on in. */
static void linear_reader(int fd, int in, int out)
{
	volatile uint64_t *l = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	uint64_t v;
	char c;

	alarm(20);
	if (l == MAP_FAILED)
		_exit(2);
	while (read(in, &c, 1) == 1) {
		v = l[5 * PAGE / 8];
		if (write(out, &v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(3);
	}
	_exit(0);
}

static uint64_t read_through(pid_t child, int to, int from, bool stopped)
{
	uint64_t v = 0;

	cr_assert_eq(write(to, "r", 1), 1);
	if (stopped) /* its fault is queued first, before the daemon runs again */
		for (int t = 0; t < 200 && !waits_on_userfaultfd(child, child); t++)
			usleep(10000);
	else
		cr_assert_eq(read(from, &v, sizeof(v)), (ssize_t)sizeof(v));
	return v;
}

/*
 * The daemon takes a writable copy back (another process reads the page through a linear
 * mapping) while the copy's client has an unmap event the daemon has not read: the kernel
 * refuses to write-protect the copy until the daemon reads it (EAGAIN). The daemon must read it
 * and protect the copy all the same: left writable, the client's next write would reach neither
 * the other mapping nor the file. Made deterministic with the daemon stopped: the reader's fault
 * is queued before the unmap event, and the daemon serves it first when it runs again.
 */
Test(nonlinear, a_writable_copy_is_protected_while_its_client_has_an_event_not_read)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	int to_child[2], from_child[2];
	struct unmapper u = { 0 };
	volatile uint64_t *m;
	pthread_t th;
	pid_t child;
	uint64_t v;
	int status;

	cr_assert_eq(pipe(to_child), 0);
	cr_assert_eq(pipe(from_child), 0);
	/* Forked before any mapping: it shares no view, and has its own space. */
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		close(to_child[1]);
		close(from_child[0]);
		linear_reader(fd, to_child[0], from_child[1]);
	}
	m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	u.addr =
		upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(u.addr, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, 5, 0), 0, "%m");
	m[0] = 0x1111; /* the one writable copy of file page 5 */
	cr_assert_eq(read_through(child, to_child[1], from_child[0], false), 0x1111);
	m[0] = 0x2222; /* writable again */

	/* Stopped while it waits for work: no descriptor it served last is still on epoll's list of
	 * ready ones, ahead of the reader's. */
	for (int t = 0; t < 200 && !waits_in(harness_daemon_pid(), harness_daemon_pid(), "epoll");
	     t++)
		usleep(10000);
	cr_assert_eq(kill(harness_daemon_pid(), SIGSTOP), 0);
	read_through(child, to_child[1], from_child[0], true);
	cr_assert(waits_on_userfaultfd(child, child), "the reader's fault is not queued");
	cr_assert_eq(pthread_create(&th, NULL, unmap_other, &u), 0);
	for (int t = 0; t < 200 && !(u.tid && waits_on_userfaultfd(getpid(), u.tid)); t++)
		usleep(10000);
	cr_assert(waits_on_userfaultfd(getpid(), u.tid), "the unmap event is not queued");
	cr_assert_eq(kill(harness_daemon_pid(), SIGCONT), 0);
	cr_assert_eq(read(from_child[0], &v, sizeof(v)), (ssize_t)sizeof(v));
	cr_assert_eq(v, 0x2222);
	cr_assert_eq(pthread_join(th, NULL), 0);

	/* Protected, this write faults and takes the page from the reader again. */
	m[0] = 0x3333;
	cr_assert_eq(read_through(child, to_child[1], from_child[0], false), 0x3333,
		     "a write to the copy did not reach the other mapping");
	cr_assert_eq(upager_msync((void *)m, 8 * PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, &v, sizeof(v), 5 * PAGE), (ssize_t)sizeof(v));
	cr_assert_eq(v, 0x3333, "the file holds %#" PRIx64, v);
	close(to_child[1]);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader: status %x", status);
}

/* Reader threads of the next test: they read whatever mapping `current` names, and a mapping
 * that goes away under them raises a signal they recover from. */
static volatile uint64_t *volatile current;
static volatile bool readers_stop;
static __thread sigjmp_buf *recover;
static volatile int main_signals;

static void on_fault_signal(int sig)
{
	(void)sig;
	if (recover)
		siglongjmp(*recover, 1);
	abort();
}

static void *read_current(void *arg)
{
	sigjmp_buf jb;
	volatile uint64_t sum = 0;

	(void)arg;
	recover = &jb;
	while (!readers_stop) {
		volatile uint64_t *m = current;

		if (!m || sigsetjmp(jb, 1))
			continue;
		for (int i = 0; i < 64; i++)
			sum += m[i * PAGE / 8];
	}
	return (void *)(uintptr_t)sum;
}

Test(nonlinear, faults_that_wait_while_their_mapping_goes_nonlinear_are_served_by_its_view,
     .timeout = 120)
{
	int fd = make_pattern_file("f", 64 * PAGE, NULL);
	struct sigaction sa = { .sa_handler = on_fault_signal, .sa_flags = SA_NODEFER };
	pthread_t readers[3];
	pid_t others[2] = { -1, -1 };
	sigjmp_buf jb;

	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
	/* Three processes at once, each with its own mappings of the file and its readers. */
	for (int c = 0; c < 2; c++) {
		others[c] = harness_fork();
		cr_assert(others[c] >= 0);
		if (others[c] == 0)
			break;
	}
	for (int t = 0; t < 3; t++)
		cr_assert_eq(pthread_create(&readers[t], NULL, read_current, NULL), 0);
	/* Mappings come and go at the same few addresses, one in three made nonlinear, while
	 * other threads fault on whatever is there: a fault left waiting for a fill when its
	 * mapping became nonlinear must not poison the view, and no fault may be left unanswered
	 * when its mapping goes. */
	recover = &jb;
	for (int k = 0; k < 1000; k++) {
		char *m = upager_mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (m == MAP_FAILED ||
		    (k % 3 == 0 && upager_remap_file_pages(m, PAGE, 0, 5, 0) < 0))
			main_signals += 1000;
		current = (volatile uint64_t *)m;
		if (sigsetjmp(jb, 1) == 0)
			m[(k % 64) * PAGE + 8] = 1;
		else
			main_signals++;
		usleep(100);
		current = NULL;
		if ((k % 2 ? upager_munmap(m, 64 * PAGE) : munmap(m, 64 * PAGE)) < 0)
			main_signals += 1000;
	}
	/* A fault that no one answers keeps its reader, and the test, waiting: the timeout. */
	readers_stop = true;
	for (int t = 0; t < 3; t++)
		pthread_join(readers[t], NULL);
	if (others[0] == 0 || others[1] == 0)
		_exit(main_signals ? 1 : 0);
	for (int c = 0; c < 2; c++) {
		int status;

		cr_assert_eq(waitpid(others[c], &status, 0), others[c]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: %x", c,
			  status);
	}
	cr_assert_eq(main_signals, 0, "%d writes to a live mapping raised a signal", main_signals);
}

struct linear_read {
	volatile uint64_t *word;
	volatile pid_t tid;
	volatile bool done;
};

static void *read_word(void *arg)
{
	struct linear_read *r = arg;

	r->tid = gettid();
	(void)*r->word;
	r->done = true;
	return NULL;
}

/*
 * Clean read-only copies of every page but 0 in a nonlinear mapping, straight from the page cache
 * (no home pages), and the file's pages out of the page cache, so that reading a home page takes
 * a while. Then, page after page in another order each time (no read-ahead), a linear read fills
 * the home page from the file, and the copy is written while that read is under way: the read's
 * data is older than the copy's and must not become the home page. With again, the home page is
 * needed again at once (a second linear read, right after the write): the written copy must not
 * go home before the read lands, since the read completes over whatever the home page holds then.
 * Return: how many pages showed the file's older data anywhere.
 */
static int write_clean_copies_while_read_again(bool again)
{
	enum {
		N = 512
	};
	int fd = make_pattern_file("f", N * PAGE, NULL);
	volatile uint64_t *v, *l;
	int stale = 0;

	warm_page_cache(fd, N);
	v = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	l = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(v, MAP_FAILED);
	cr_assert_neq(l, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)v, PAGE, 0, 0, MAP_NONBLOCK), 0, "%m");
	for (size_t p = 1; p < N; p++)
		cr_assert_eq(v[p * PAGE / 8], pattern_at(p * PAGE));
	cr_assert_eq(fdatasync(fd), 0);
	cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	for (size_t k = 1; k < N; k++) {
		size_t p = k * 37 % N;
		struct linear_read r = { .word = &l[p * PAGE / 8 + 1] };
		uint64_t want = 0xc0ffee00 + p, seen = want;
		pthread_t t;

		if (p == 0)
			continue;
		cr_assert_eq(pthread_create(&t, NULL, read_word, &r), 0);
		while (!r.done && (!r.tid || !waits_on_userfaultfd(getpid(), r.tid)))
			;
		v[p * PAGE / 8 + 1] = want;
		if (again)
			seen = l[p * PAGE / 8 + 1];
		cr_assert_eq(pthread_join(t, NULL), 0);
		if (seen != want || l[p * PAGE / 8 + 1] != want || v[p * PAGE / 8 + 1] != want)
			stale++;
	}
	return stale;
}

Test(nonlinear, a_write_to_a_clean_copy_while_its_home_page_is_read_again_wins)
{
	int stale = write_clean_copies_while_read_again(false);

	cr_assert_eq(stale, 0, "%d of 511 pages hold the file's older data", stale);
}

/* The soak's reads one version behind. */
Test(nonlinear, a_written_copy_taken_home_while_its_page_is_read_again_is_not_overwritten)
{
	int stale = write_clean_copies_while_read_again(true);

	cr_assert_eq(stale, 0, "%d of 511 pages hold the file's older data", stale);
}

Test(nonlinear, a_nonblocking_populate_maps_what_a_writable_copy_holds_not_the_page_cache)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	volatile uint64_t *v, *l;

	warm_page_cache(fd, 4);
	v = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(v, MAP_FAILED);
	/* Page 1's data is in v's writable copy only; the page cache holds the file's older page. */
	cr_assert_eq(upager_remap_file_pages((void *)v, PAGE, 0, 0, MAP_NONBLOCK), 0, "%m");
	v[PAGE / 8 + 1] = 0xc0ffee;
	/* A mapping populated with what is in memory shows the copy's data, not the file's. */
	l = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE | MAP_NONBLOCK, fd, 0);
	cr_assert_neq(l, MAP_FAILED, "%m");
	cr_assert_eq(l[PAGE / 8 + 1], 0xc0ffee, "the page shows the file's word %#" PRIx64,
		     (uint64_t)l[PAGE / 8 + 1]);
	cr_assert(page_present((const void *)&l[PAGE / 8]));
}

/*
 * A populating remap that cannot start one of its reads waits for those it started before and
 * copies their pages in; the rest fault in as usual. (Once, it stopped waiting at the error and
 * freed what the reads under way would wake: a use after free, which a -Db_sanitize build reports.)
 * It remaps more pages than the populate takes from the kernel's page cache (twice
 * FILL_NOW_MAX_PAGES, daemon/fill.h), which the read-ahead of its first miss there may fill: the
 * rest goes through the daemon's reads, four pages each.
 */
Test(nonlinear, a_read_failing_to_start_midway_leaves_the_reads_before_it_populated,
     .init = harness_start_failing_read, .fini = harness_stop)
{
	int fd = make_pattern_file("f", 128 * PAGE, NULL);
	char *m = upager_mmap(NULL, 128 * PAGE, PROT_READ, MAP_SHARED, fd, 0);

#ifndef UPAGER_FAULT_INJECTION
	cr_skip_test("built without fault injection");
#endif
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(fsync(fd), 0);
	cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	cr_assert_eq(upager_remap_file_pages(m, 64 * PAGE, 0, 64, 0), 0, "%m");
	cr_assert(harness_daemon_logged("ring read 2 fails"), "the second read did not fail");
	for (int i = 0; i < 4; i++)
		cr_assert(page_present(m + i * PAGE), "remapped page %d not populated", i);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(shows(m, i), PAGE_NO(64 + i), "page %d", i);
}

/*
 * Threads that write and read their own pages of a mapping while another thread makes it
 * nonlinear: each page holds what its thread wrote last, through the change and in the file.
 */
#define CONVERT_THREADS 6
#define CONVERT_PAGES 8 /* each thread's */

struct own_pages {
	char *m;
	int t;
	volatile bool *stop;
	int wrong;
	uint64_t last[CONVERT_PAGES];
};

static volatile uint64_t *own_page(struct own_pages *a, int k)
{
	return (volatile uint64_t *)(a->m + ((size_t)a->t * CONVERT_PAGES + (size_t)k) * PAGE);
}

static void *write_own_pages(void *arg)
{
	struct own_pages *a = arg;
	uint64_t v = 0;

	while (!*a->stop) {
		for (int k = 0; k < CONVERT_PAGES; k++) {
			volatile uint64_t *w = own_page(a, k);
			uint64_t want = ((uint64_t)(a->t + 1) << 48) | ++v;

			if (*w != a->last[k])
				a->wrong++;
			*w = want;
			a->last[k] = want;
		}
	}
	return NULL;
}

Test(nonlinear, threads_writing_while_their_mapping_goes_nonlinear_lose_nothing)
{
	size_t pages = CONVERT_THREADS * CONVERT_PAGES + 2;
	int fd = make_pattern_file("f", pages * PAGE, NULL);

	for (int round = 0; round < 40; round++) {
		char *m =
			upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		struct own_pages a[CONVERT_THREADS];
		pthread_t th[CONVERT_THREADS];
		volatile bool stop = false;

		cr_assert_neq(m, MAP_FAILED);
		for (int t = 0; t < CONVERT_THREADS; t++) {
			a[t] = (struct own_pages){ .m = m, .t = t, .stop = &stop };
			for (int k = 0; k < CONVERT_PAGES; k++)
				cr_assert_eq(pread(fd, &a[t].last[k], 8,
						   (off_t)(((size_t)t * CONVERT_PAGES + (size_t)k) *
							   PAGE)),
					     8);
			cr_assert_eq(pthread_create(&th[t], NULL, write_own_pages, &a[t]), 0);
		}
		usleep(2000);
		/* The first remap of the mapping: its last two pages, no thread's, swap places. */
		cr_assert_eq(upager_remap_file_pages(m + (pages - 2) * PAGE, PAGE, 0, pages - 1, 0),
			     0, "%m");
		cr_assert_eq(upager_remap_file_pages(m + (pages - 1) * PAGE, PAGE, 0, pages - 2, 0),
			     0, "%m");
		usleep(2000);
		stop = true;
		for (int t = 0; t < CONVERT_THREADS; t++) {
			pthread_join(th[t], NULL);
			cr_assert_eq(
				a[t].wrong, 0,
				"round %d: thread %d found %d of its pages holding something else "
				"than it wrote last",
				round, t, a[t].wrong);
		}
		cr_assert_eq(upager_msync(m, pages * PAGE, MS_SYNC), 0);
		for (int t = 0; t < CONVERT_THREADS; t++)
			for (int k = 0; k < CONVERT_PAGES; k++) {
				uint64_t in_file = 0;

				cr_assert_eq(pread(fd, &in_file, 8,
						   (off_t)(((size_t)t * CONVERT_PAGES + (size_t)k) *
							   PAGE)),
					     8);
				cr_assert_eq(in_file, a[t].last[k], "round %d: a write was lost",
					     round);
			}
		cr_assert_eq(upager_munmap(m, pages * PAGE), 0);
	}
}

/*
 * The VMA of /proc/self/smaps that holds @addr: its permissions ("rw-s") into @perms and its
 * VmFlags line into @flags; false if none.
 */
static bool vma_at(const void *addr, char perms[8], char *flags, size_t size)
{
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)addr;
	bool in = false, found = false;
	char line[512], p[8];
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, p) == 3) {
			in = lo <= a && a < hi;
			if (in)
				memcpy(perms, p, 8);
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, size, "%s", line + 8);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/*
 * What pieces of a mapping had of their own (mprotect(2), MADV_DONTFORK, mlock(2)) stays with them
 * at the mapping's first remap, as with the kernel's emulation, which replaces only the range it
 * remaps: the view that upager maps over the whole mapping takes it over.
 */
Test(nonlinear, the_first_remap_keeps_the_protection_advice_and_locks_of_the_mapping)
{
	char path[512], perms[8], flags[512];
	int fd = make_pattern_file("f", 8 * PAGE, path);
	char *m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(mprotect(m, PAGE, PROT_READ), 0);
	cr_assert_eq(madvise(m + 3 * PAGE, PAGE, MADV_DONTFORK), 0);
	cr_assert_eq(mlock2(m + 5 * PAGE, 2 * PAGE, MLOCK_ONFAULT), 0);
	cr_assert_eq(upager_remap_file_pages(m + 2 * PAGE, PAGE, 0, 7, 0), 0);
	cr_assert_eq(*(volatile uint64_t *)(m + 2 * PAGE), pattern_at(7 * PAGE));
	cr_assert(vma_at(m, perms, flags, sizeof(flags)));
	cr_assert_str_eq(perms, "r--s", "the page made read-only is %s", perms);
	cr_assert(vma_at(m + PAGE, perms, flags, sizeof(flags)));
	cr_assert_str_eq(perms, "rw-s");
	cr_assert(vma_at(m + 3 * PAGE, perms, flags, sizeof(flags)));
	cr_assert(strstr(flags, " dc"), "MADV_DONTFORK is gone: %s", flags);
	cr_assert(vma_at(m + 5 * PAGE, perms, flags, sizeof(flags)));
	cr_assert(strstr(flags, " lo"), "the lock is gone: %s", flags);
	cr_assert_eq(upager_msync(m + 5 * PAGE, PAGE, MS_INVALIDATE), -1);
	cr_assert_eq(errno, EBUSY);
	cr_assert(vma_at(m + 4 * PAGE, perms, flags, sizeof(flags)));
	cr_assert_null(strstr(flags, " lo"));
	cr_assert_null(strstr(flags, " dc"));
	cr_assert_eq(munlock(m, 8 * PAGE), 0);
	cr_assert_eq(upager_munmap(m, 8 * PAGE), 0);
	close(fd);
}

/*
 * The daemon's index of the nonlinear copies of an object's pages costs what the copies do: it
 * was an array of a pointer per page of the object, made whole at the first copy, so one remap of
 * a mapping of a sparse file of 8 GiB took 16 MiB of the daemon's memory (64 GiB: enough for the
 * kernel to kill a daemon in a cgroup of 160 MiB).
 */
Test(nonlinear, one_remap_of_a_large_sparse_file_costs_the_daemon_little)
{
	size_t size = 8UL << 30;
	char path[256];
	uint64_t before, after;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "%s/sparse", harness_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	p = upager_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %s", strerror(errno));
	before = harness_status_kib(harness_daemon_pid(), "RssAnon");
	cr_assert_eq(upager_remap_file_pages(p, PAGE, 0, 1, 0), 0, "%s", strerror(errno));
	cr_assert_eq(p[0], 0);
	after = harness_status_kib(harness_daemon_pid(), "RssAnon");
	cr_assert_lt(after, before + 4096, "one remap took %llu KiB of the daemon's memory",
		     (unsigned long long)(after - before));
	cr_assert_eq(upager_munmap(p, size), 0);
	close(fd);
}

/*
 * A file's first nonlinear mapping moves the object's page states into a memfd, a byte per page
 * of the address space kept for it (1 GiB at least): they were written whole, 256 KiB of the
 * daemon's memory for a file of two pages, and a user's 1,024 caches could take 256 MiB. Only
 * the states that hold something are written.
 */
Test(nonlinear, a_small_file_s_first_view_costs_the_daemon_little)
{
	enum {
		FILES = 64
	};
	uint64_t before, after;
	char *maps[FILES];
	int fds[FILES];

	before = harness_status_kib(harness_daemon_pid(), "RssShmem");
	for (int i = 0; i < FILES; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		fds[i] = make_pattern_file(name, 2 * PAGE, NULL);
		maps[i] =
			upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		cr_assert_neq(maps[i], MAP_FAILED);
		cr_assert_eq(upager_remap_file_pages(maps[i], PAGE, 0, 1, 0), 0, "%s",
			     strerror(errno));
		cr_assert_eq(*(volatile uint64_t *)maps[i], pattern_at(PAGE));
	}
	after = harness_status_kib(harness_daemon_pid(), "RssShmem");
	cr_assert_lt(after, before + FILES * 16, "%d views took %llu KiB of the daemon's memory",
		     FILES, (unsigned long long)(after - before));
	for (int i = 0; i < FILES; i++) {
		cr_assert_eq(upager_munmap(maps[i], 2 * PAGE), 0);
		close(fds[i]);
	}
}
