// SPDX-License-Identifier: LGPL-2.1-or-later
/* File mappings: private and shared, write-back, coherence between processes, end of file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(file, .init = harness_start, .fini = harness_stop, .timeout = 60);

static uint64_t file_word(int fd, off_t off)
{
	uint64_t v = 0;

	cr_assert_eq(pread(fd, &v, sizeof(v), off), (ssize_t)sizeof(v));
	return v;
}

Test(file, private_reads_the_file_and_keeps_writes_private)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	uint64_t *m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);

	cr_assert_neq(m, MAP_FAILED, "%m");
	for (size_t i = 0; i < 8 * PAGE / 8; i++)
		cr_assert_eq(m[i], pattern_at(i * 8));
	m[3] = 0xdead;
	m[6 * PAGE / 8] = 0xbeef; /* the first touch of page 6 is a write */
	cr_assert_eq(m[3], 0xdead);
	cr_assert_eq(upager_msync(m, 8 * PAGE, MS_SYNC), 0);
	cr_assert_eq(upager_munmap(m, 8 * PAGE), 0);
	cr_assert_eq(file_word(fd, 24), pattern_at(24));
	cr_assert_eq(file_word(fd, 6 * PAGE), pattern_at(6 * PAGE));
	/* A new mapping shows the file, not the private copy. */
	m = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(m[3], pattern_at(24));
}

Test(file, shared_writes_reach_the_file_on_msync)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	uint64_t *m = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	m[0] = 1;
	m[5 * PAGE / 8 + 1] = 2; /* first touch is a write */
	cr_assert_eq(upager_msync(m, 16 * PAGE, MS_SYNC), 0);
	cr_assert_eq(file_word(fd, 0), 1);
	cr_assert_eq(file_word(fd, 5 * PAGE + 8), 2);
	cr_assert_eq(file_word(fd, 8), pattern_at(8));
	/* MS_ASYNC and MS_INVALIDATE are accepted. */
	cr_assert_eq(upager_msync(m, PAGE, MS_ASYNC), 0);
	cr_assert_eq(upager_msync(m, PAGE, MS_INVALIDATE), 0);
}

Test(file, shared_writes_reach_the_file_on_munmap)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	uint64_t *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	m[PAGE / 8 * 3] = 77;
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	cr_assert_eq(file_word(fd, 3 * PAGE), 77);
}

struct writer {
	int fd;
	int ready; /* pipe to tell the parent the write is done */
	bool do_exit;
};

static void write_and_wait(void *p)
{
	struct writer *w = p;
	uint64_t *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);

	if (m == MAP_FAILED)
		_exit(3);
	m[2 * PAGE / 8] = 0x1234;
	m[1] = 0x5678;
	if (w->do_exit)
		_exit(0);
	(void)!write(w->ready, "x", 1);
	pause();
}

static bool file_has_writes(void *p)
{
	int fd = *(int *)p;

	return file_word(fd, 2 * PAGE) == 0x1234 && file_word(fd, 8) == 0x5678;
}

Test(file, shared_writes_reach_the_file_when_the_client_exits)
{
	struct writer w = { .fd = make_pattern_file("f", 4 * PAGE, NULL), .do_exit = true };
	int status = run_child(write_and_wait, &w);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert(wait_until(file_has_writes, &w.fd, 2000), "writes of an exited client were lost");
}

Test(file, shared_writes_reach_the_file_when_the_client_is_killed)
{
	struct writer w = { .fd = make_pattern_file("f", 4 * PAGE, NULL) };
	int pfd[2], status;
	char c;
	pid_t p;

	cr_assert_eq(pipe(pfd), 0);
	w.ready = pfd[1];
	p = harness_fork();
	if (p == 0)
		write_and_wait(&w);
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	cr_assert_eq(file_word(w.fd, 8), pattern_at(8)); /* not written back yet */
	kill(p, SIGKILL);
	waitpid(p, &status, 0);
	cr_assert(WIFSIGNALED(status));
	cr_assert(wait_until(file_has_writes, &w.fd, 2000), "writes of a killed client were lost");
}

Test(file, two_processes_see_each_others_writes_at_once)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	int to_child[2], to_parent[2], status;
	volatile uint64_t *m;
	char c;
	pid_t p;

	cr_assert_eq(pipe(to_child), 0);
	cr_assert_eq(pipe(to_parent), 0);
	p = harness_fork(); /* before any upager call: two separate clients */
	if (p == 0) {
		volatile uint64_t *cm =
			upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (cm == MAP_FAILED)
			_exit(2);
		cm[100] = 0xc0ffee; /* page 0 */
		(void)!write(to_parent[1], "a", 1);
		if (read(to_child[0], &c, 1) != 1)
			_exit(3);
		_exit(cm[3 * PAGE / 8] == 0xfeed && cm[4 * PAGE / 8] == pattern_at(4 * PAGE) ? 0
											     : 4);
	}
	m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	cr_assert_eq(m[100], 0xc0ffee);
	m[3 * PAGE / 8] = 0xfeed;
	cr_assert_eq(write(to_child[1], "b", 1), 1);
	cr_assert_eq(waitpid(p, &status, 0), p);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
}

Test(file, a_new_mapping_shows_the_file_as_it_is_now)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	uint64_t v = 0xabcdef, *a, *b;

	a = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(a, MAP_FAILED);
	cr_assert_eq(a[PAGE / 8], pattern_at(PAGE)); /* served, now cached */
	cr_assert_eq(pwrite(fd, &v, sizeof(v), PAGE), (ssize_t)sizeof(v));
	b = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(b, MAP_FAILED);
	cr_assert_eq(b[PAGE / 8], 0xabcdef);
	/* The live mapping sees the refreshed cache too (documented in upager_mmap(3)). */
	cr_assert_eq(a[PAGE / 8], 0xabcdef);
}

static void touch_beyond_eof(void *p)
{
	volatile char *m = p;

	/* Under ASan its own handler would report the SIGBUS and exit: die of it as a program does. */
	signal(SIGBUS, SIG_DFL);
	(void)m[2 * PAGE];
	_exit(0);
}

Test(file, end_of_file_zeroes_then_sigbus)
{
	char path[400];
	int fd = make_pattern_file("f", 5000, path);
	char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int status;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(*(uint64_t *)(m + 4992), pattern_at(4992));
	for (int i = 5000; i < 2 * (int)PAGE; i++)
		cr_assert_eq(m[i], 0, "byte %d past end of file is %d", i, m[i]);
	m[6000] = 9; /* in the last partial page, past the end: never reaches the file */
	cr_assert_eq(upager_msync(m, 4 * PAGE, MS_SYNC), 0);
	{
		struct stat st;

		cr_assert_eq(fstat(fd, &st), 0);
		cr_assert_eq(st.st_size, 5000);
	}
	status = run_child(touch_beyond_eof, m);
	cr_assert(WIFSIGNALED(status), "status %x", status);
	cr_assert_eq(WTERMSIG(status), SIGBUS);
}

Test(file, mmap2_offset_is_in_4096_byte_units)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	uint64_t *m = upager_mmap2(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 3);
	uint64_t *n = upager_mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 3 * 4096);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(n, MAP_FAILED);
	cr_assert_eq(m[0], pattern_at(3 * 4096));
	cr_assert_eq(m[PAGE / 8 + 5], pattern_at(4 * 4096 + 40));
	cr_assert_eq(n[0], m[0]);
}

/* The lowest address a process may map (vm.mmap_min_addr, at least a page). */
static uintptr_t lowest_address(void)
{
	FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
	unsigned long v = PAGE;

	cr_assert(f);
	cr_assert_eq(fscanf(f, "%lu", &v), 1);
	fclose(f);
	return (v + PAGE - 1) / PAGE * PAGE ?: PAGE;
}

Test(file, a_mapping_at_the_lowest_address_keeps_its_data)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	void *want = (void *)lowest_address();
	const uint64_t *m;
	uint64_t v = 0;

	m = upager_mmap(want, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
			fd, 0);
	if (m == MAP_FAILED && errno == EEXIST)
		cr_skip_test("something is mapped at %p already", want);
	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert_eq((void *)m, want);
	/* The daemon checks that each client lives, every 200 ms and for every list of its
	 * mappings: never by writing into them. */
	cr_assert_geq(harness_list(getpid(), NULL, 0), 1);
	for (int p = 0; p < 4; p++)
		cr_assert_eq(m[p * PAGE / 8 + 1], pattern_at(p * PAGE + 8), "page %d", p);
	cr_assert_eq(upager_msync((void *)m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(pread(fd, &v, 8, 8), 8);
	cr_assert_eq(v, pattern_at(8));
	cr_assert_eq(upager_munmap((void *)m, 4 * PAGE), 0);
}

/* Whether a write to page `page` of a fresh shared mapping of fd, made with map, moves the file's
 * modification and change times on from a day in 2000, without msync. */
static bool write_moves_times(void *(*map)(void *, size_t, int, int, int, off_t), int fd, int page)
{
	const struct timespec old[2] = { { 946684800, 0 }, { 946684800, 0 } };
	struct stat st;
	char *m;

	cr_assert_eq(futimens(fd, old), 0);
	m = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	if (page > 0)
		(void)*(volatile char *)(m + page * PAGE - 1); /* a read first, on another page */
	m[page * PAGE] = 'w';
	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_mtim.tv_sec > old[1].tv_sec && st.st_ctim.tv_sec > old[1].tv_sec;
}

Test(file, a_write_through_a_shared_mapping_updates_the_file_times)
{
	int kfd = make_pattern_file("k", 4 * PAGE, NULL),
	    ufd = make_pattern_file("u", 4 * PAGE, NULL);

	/* mmap(2): "updated after a write to the mapped region". */
	cr_assert(write_moves_times(mmap, kfd, 0));
	cr_assert(write_moves_times(upager_mmap, ufd, 0), "the first write did not");
	cr_assert(write_moves_times(upager_mmap, ufd, 2), "a write after a read did not");
}

Test(file, pages_read_first_and_written_later_all_reach_the_file)
{
	enum {
		N = 256
	};
	int fd = make_pattern_file("f", N * PAGE, NULL);
	volatile char *m = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct region_info r;
	uint64_t faults;
	long sum = 0;

	cr_assert_neq(m, MAP_FAILED);
	for (int p = 0; p < N; p++)
		sum += m[p * PAGE];
	cr_assert(harness_region(getpid(), (void *)m, &r));
	faults = r.faults;
	/* In order: the pages after a written one become writable in a growing window. */
	for (int p = 0; p < N / 2; p++)
		m[p * PAGE + 1] = 'a';
	cr_assert(harness_region(getpid(), (void *)m, &r));
	cr_assert_lt(r.faults - faults, N / 8, "%llu write faults for %d pages written in order",
		     (unsigned long long)(r.faults - faults), N / 2);
	/* Out of order: a fault each, and every page written reaches the file. */
	for (int k = 0; k < N / 2; k++)
		m[(N / 2 + (k * 37) % (N / 2)) * PAGE + 1] = 'b';
	cr_assert_eq(upager_msync((void *)m, N * PAGE, MS_SYNC), 0);
	for (int p = 0; p < N; p++) {
		char c = 0;

		cr_assert_eq(pread(fd, &c, 1, (off_t)(p * PAGE + 1)), 1);
		cr_assert_eq(c, p < N / 2 ? 'a' : 'b', "page %d", p);
	}
	(void)sum;
}

/* Bytes the daemon wrote back during an msync of [m, m + len). */
static uint64_t msync_written(void *m, size_t len)
{
	uint64_t before = harness_bytes_written();

	cr_assert_eq(upager_msync(m, len, MS_SYNC), 0);
	return harness_bytes_written() - before;
}

Test(file, msync_writes_back_only_the_pages_written_since_their_last_write_back)
{
	enum {
		N = 16
	};
	int fd = make_pattern_file("f", N * PAGE, NULL);
	char *m = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *m2 = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	volatile char sum = 0;
	char c;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(m2, MAP_FAILED);
	for (int p = 0; p < N; p++) {
		if (p % 2) /* read first, then written */
			sum += m[p * PAGE];
		m[p * PAGE] = 'a';
	}
	cr_assert_eq(msync_written(m, N * PAGE), N * PAGE);
	cr_assert_eq(msync_written(m, N * PAGE), 0, "a second msync with no write in between");
	/* A write after the write-back faults again, through any mapping, and is written once. */
	m[3 * PAGE] = 'b';
	m2[7 * PAGE] = 'c';
	cr_assert_eq(msync_written(m, N * PAGE), 2 * PAGE);
	m2[7 * PAGE] = 'd'; /* mapped writable in m2 before that write-back */
	m[3 * PAGE] = 'e';
	cr_assert_eq(msync_written(m2, N * PAGE), 2 * PAGE);
	cr_assert_eq(msync_written(m2, N * PAGE), 0);
	cr_assert_eq(pread(fd, &c, 1, 7 * PAGE), 1);
	cr_assert_eq(c, 'd');
	cr_assert_eq(pread(fd, &c, 1, 3 * PAGE), 1);
	cr_assert_eq(c, 'e');
	/* munmap writes back what is dirty only, too. */
	m[5 * PAGE] = 'f';
	{
		uint64_t before = harness_bytes_written();

		cr_assert_eq(upager_munmap(m, N * PAGE), 0);
		cr_assert_eq(harness_bytes_written() - before, PAGE);
	}
	(void)sum;
}

static void touch_and_report(void *p)
{
	signal(SIGBUS, SIG_DFL);
	alarm(5); /* a fault no one answers: SIGALRM */
	(void)*(volatile char *)p;
	_exit(0);
}

/* A page past a shrunk end of file that was write-protected before it was ever touched (msync
 * protects every page of the mapping) holds the kernel's write-protect marker: UFFDIO_POISON
 * refuses such an entry (EEXIST), and a fault there must still get its SIGBUS, not wait for
 * ever. */
Test(file, a_page_past_a_shrunk_end_of_file_that_was_write_protected_raises_sigbus)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *again;
	int status;

	cr_assert_neq(m, MAP_FAILED);
	m[0] = 1;
	cr_assert_eq(upager_msync(m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(ftruncate(fd, PAGE), 0);
	/* A new mapping of the file makes the daemon see that it shrank. */
	again = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(again, MAP_FAILED);
	status = run_child(touch_and_report, m + 2 * PAGE);
	cr_assert(WIFSIGNALED(status), "status %x", status);
	cr_assert_eq(WTERMSIG(status), SIGBUS, "signal %d", WTERMSIG(status));
}

/* A client of its own that maps fd shared and holds it until killed; returns its pid once it
 * has touched the first page. */
static pid_t hold_mapping(int fd)
{
	int pfd[2];
	char c;
	pid_t p;

	cr_assert_eq(pipe(pfd), 0);
	p = harness_fork();
	cr_assert(p >= 0);
	if (p == 0) {
		volatile char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);

		if (m == MAP_FAILED)
			_exit(2);
		(void)m[0];
		(void)!write(pfd[1], "x", 1);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	close(pfd[1]);
	return p;
}

Test(file, munmap_writes_back_while_another_mapping_of_the_file_stays)
{
	enum {
		N = 4096 /* 16 MiB to write back: the call must wait for it */
	};
	int fd = make_pattern_file("f", N * PAGE, NULL);
	pid_t other = hold_mapping(fd); /* forked before this process is a client */
	uint64_t *a, *b, *c;

	a = upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(a, MAP_FAILED);
	cr_assert_neq(b, MAP_FAILED);
	for (size_t p = 0; p < N; p++)
		a[p * PAGE / 8] = 11 + p;
	(void)b[2 * PAGE / 8];
	cr_assert_eq(upager_munmap(a, N * PAGE), 0);
	cr_assert_eq(file_word(fd, (N - 1) * PAGE), 10 + N, "a mapping of this process stays");
	cr_assert_eq(file_word(fd, PAGE), 12);
	b[2 * PAGE / 8] = 22;
	cr_assert_eq(upager_munmap(b, 4 * PAGE), 0);
	cr_assert_eq(file_word(fd, 2 * PAGE), 22, "another process's mapping stays");
	c = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(c, MAP_FAILED);
	cr_assert_eq(c[PAGE / 8], 12);
	cr_assert_eq(c[2 * PAGE / 8], 22);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
}

/* A client that writes through a plain shared mapping and then exits, or is killed, while
 * another process maps the file: its writes reach the file within a second. */
static void writer_leaves_while_another_maps(bool killed)
{
	struct writer w = { .fd = make_pattern_file("f", 4 * PAGE, NULL), .do_exit = !killed };
	pid_t other = hold_mapping(w.fd), p;
	int pfd[2], status;
	char c;

	cr_assert_eq(pipe(pfd), 0);
	w.ready = pfd[1];
	p = harness_fork();
	if (p == 0)
		write_and_wait(&w);
	if (killed) {
		cr_assert_eq(read(pfd[0], &c, 1), 1);
		kill(p, SIGKILL);
	}
	cr_assert_eq(waitpid(p, &status, 0), p);
	cr_assert(killed ? WIFSIGNALED(status) : WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "status %x", status);
	cr_assert(wait_until(file_has_writes, &w.fd, 1000), "the writes of a client that %s",
		  killed ? "was killed were lost" : "exited were lost");
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
}

Test(file, shared_writes_of_a_client_that_exits_reach_the_file_while_others_map_it)
{
	writer_leaves_while_another_maps(false);
}

Test(file, shared_writes_of_a_killed_client_reach_the_file_while_others_map_it)
{
	writer_leaves_while_another_maps(true);
}

/* The file's modification time, in nanoseconds. */
static int64_t mtime_ns(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

Test(file, the_first_write_to_a_page_read_before_reaches_the_daemon)
{
	const struct timespec old[2] = { { 946684800, 0 }, { 946684800, 0 } };
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	volatile uint64_t *m;
	int64_t t0;

	cr_assert_eq(futimens(fd, old), 0);
	t0 = mtime_ns(fd);
	m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(m[2 * PAGE / 8], pattern_at(2 * PAGE));
	cr_assert_eq(mtime_ns(fd), t0, "a read changed the file's times");
	m[2 * PAGE / 8] = 0xfeed; /* the same page */
	cr_assert_gt(mtime_ns(fd), t0, "the write did not change the file's times");
	cr_assert_eq(upager_msync((void *)m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(file_word(fd, 2 * PAGE), 0xfeed);
}

Test(file, a_page_only_read_is_never_written_over_a_later_write_to_the_file)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	volatile uint64_t *m =
		upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t v = 0xabcd;

	cr_assert_neq(m, MAP_FAILED);
	for (int p = 0; p < 4; p++)
		cr_assert_eq(m[p * PAGE / 8 + 1], pattern_at(p * PAGE + 8));
	m[3 * PAGE / 8] = 1; /* another page is written */
	cr_assert_eq(pwrite(fd, &v, sizeof(v), PAGE + 8), (ssize_t)sizeof(v));
	cr_assert_eq(upager_msync((void *)m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(file_word(fd, PAGE + 8), 0xabcd, "msync wrote a page only read");
	cr_assert_eq(upager_munmap((void *)m, 4 * PAGE), 0);
	cr_assert_eq(file_word(fd, PAGE + 8), 0xabcd, "munmap wrote a page only read");
	cr_assert_eq(file_word(fd, 3 * PAGE), 1);
}

static void sees_the_write(void *p)
{
	int fd = *(int *)p;
	volatile uint64_t *m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);

	_exit(m != MAP_FAILED && m[PAGE / 8] == 0x1111 && m[2 * PAGE / 8] == 0x2222 ? 0 : 1);
}

Test(file, a_shared_mapping_made_writable_by_mprotect_writes_the_file)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL), status;
	uint64_t *m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(m[PAGE / 8], pattern_at(PAGE)); /* read before; page 2 never */
	cr_assert_eq(mprotect(m, 4 * PAGE, PROT_READ | PROT_WRITE), 0, "%m");
	m[PAGE / 8] = 0x1111;
	m[2 * PAGE / 8] = 0x2222;
	status = run_child(sees_the_write, &fd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process: status %x",
		  status);
	cr_assert_eq(upager_msync(m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(file_word(fd, PAGE), 0x1111);
	cr_assert_eq(file_word(fd, 2 * PAGE), 0x2222);
}

/*
 * mmap(2) holds no descriptor of what it maps, so a process may map one file many more times
 * than it may have descriptors open; the library keeps one pair per file and access for a new
 * daemon (resume.c), not one per mapping. Out of descriptors, a mapping of a new file fails with
 * EMFILE and the process goes on: it once took the lost descriptors for a broken connection, and
 * reconnected and declared every mapping again, for ever.
 */
static void many_mappings_child(void *arg)
{
	const char *path = arg;
	struct rlimit rl = { 64, 64 };
	int fd = open(path, O_RDWR), t, files = 0, err = 0, fds[200];
	volatile char *m0;
	char name[600];

	if (fd < 0 || setrlimit(RLIMIT_NOFILE, &rl) < 0)
		_exit(20);
	for (int i = 0; i < 600; i++) {
		volatile char *m = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);

		if (m == MAP_FAILED || *m != (char)pattern_at(0))
			_exit(21);
	}
	t = open("/dev/null", O_RDONLY);
	if (t < 0)
		_exit(22); /* the mappings took the descriptors */
	close(t);
	/* New files until the descriptors run out: then EMFILE, at once. */
	for (; files < 200; files++) {
		void *m;

		snprintf(name, sizeof(name), "%s.%d", path, files);
		fds[files] = open(name, O_RDWR | O_CREAT, 0600);
		if (fds[files] < 0) {
			err = errno;
			break;
		}
		if (ftruncate(fds[files], PAGE) < 0)
			_exit(23);
		m = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fds[files], 0);
		if (m == MAP_FAILED) {
			err = errno;
			files++;
			break;
		}
	}
	if (err != EMFILE)
		_exit(24);
	/* The connection is whole: with descriptors free again, a mapping works. */
	while (files > 0)
		if (fds[--files] >= 0)
			close(fds[files]);
	m0 = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (m0 == MAP_FAILED || *m0 != (char)pattern_at(0))
		_exit(25);
	_exit(0);
}

Test(file, a_process_maps_one_file_more_times_than_it_has_descriptors)
{
	char path[400];
	int fd = make_pattern_file("f", PAGE, path);
	int status = run_child(many_mappings_child, path);

	cr_assert(WIFEXITED(status), "status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
	close(fd);
}

/*
 * F_SEAL_WRITE on a memfd fails with EBUSY while a shared mapping of it could write (fcntl(2),
 * memfd_create(2)), for upager's mappings as for the kernel's, though upager's pages are the
 * daemon's cache; a private mapping does not stand in the way, nor a mapping gone.
 */
Test(file, a_memfd_with_a_shared_mapping_is_not_sealed_against_writes)
{
	int fd = memfd_create("sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	char *k, *m, *pv;

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4 * PAGE), 0);
	k = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(k, MAP_FAILED);
	errno = 0;
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	cr_assert_eq(errno, EBUSY, "the kernel: %s", strerror(errno));
	munmap(k, 4 * PAGE);

	m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	pv = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(pv, MAP_FAILED);
	m[0] = 'w';
	errno = 0;
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1, "sealed under a shared mapping");
	cr_assert_eq(errno, EBUSY, "%s", strerror(errno));
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0, "%s", strerror(errno));
	cr_assert_eq(upager_munmap(pv, 4 * PAGE), 0);
	close(fd);
}

/* Whether another process finds byte 0 of @fd's file locked (F_GETLK: someone holds it). */
static bool locked_for_others(int fd)
{
	pid_t child = harness_fork();
	int status;

	if (child == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };

		_exit(fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 0 : 1);
	}
	cr_assert_gt(child, 0);
	cr_assert_eq(waitpid(child, &status, 0), child);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * A POSIX record lock survives upager_mmap() and upager_munmap() of its file, as it survives
 * mmap(2) and munmap(2): the library closed its duplicate of the descriptor at the unmap, and
 * closing any descriptor of a file drops the process's locks on it.
 */
Test(file, a_record_lock_outlives_a_mapping_of_its_file)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
	int fd = make_pattern_file("locked", 4 * PAGE, NULL);
	char *p;

	cr_assert_eq(fcntl(fd, F_SETLK, &fl), 0);
	for (int round = 0; round < 2; round++) {
		p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		cr_assert_neq(p, MAP_FAILED);
		p[0] = 'l';
		cr_assert(locked_for_others(fd), "round %d: lost at the mapping", round);
		cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);
		cr_assert(locked_for_others(fd), "round %d: lost at the unmapping", round);
	}
	close(fd);
}

/*
 * In a process that locked all its memory (mlockall(2) with MCL_FUTURE), before its first call or
 * after it: the kernel populates every new mapping at once, and upager's file mappings read the
 * file and keep their writes, as the kernel's. Before, the first call failed with EINVAL (the
 * token page was populated), and a file mapped after read zeroes and lost its writes (the cache
 * was populated from its holes before the daemon served it).
 */
static void locked_all_child(void *arg)
{
	const char *path = arg;
	int fd = open(path, O_RDWR);
	const int types[] = { MAP_SHARED, MAP_PRIVATE };
	uint64_t *p;

	/* The system call: a sanitizer's mlockall() does nothing. */
	if (fd < 0 || syscall(SYS_mlockall, MCL_CURRENT | MCL_FUTURE) < 0)
		_exit(2);
	for (int i = 0; i < 2; i++) {
		p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, types[i], fd, 0);
		if (p == MAP_FAILED)
			_exit(3 + i);
		for (uint64_t k = 0; k < 4; k++)
			if (p[k * PAGE / 8] != pattern_at(k * PAGE))
				_exit(5 + i);
		if (types[i] == MAP_SHARED) {
			p[1] = 0x1234;
			if (upager_msync(p, 4 * PAGE, MS_SYNC) < 0)
				_exit(7);
		}
		if (upager_munmap(p, 4 * PAGE) < 0)
			_exit(8);
	}
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || p[0] != 0)
		_exit(9);
	_exit(0);
}

Test(file, a_process_that_locked_all_its_memory_maps_files_as_the_kernel)
{
	char path[512];
	int fd, status;
	uint64_t word;

	/* Locking a sanitizer's shadow memory, terabytes of it, takes longer than the test. */
	if (RUNNING_UNDER_SANITIZER)
		cr_skip_test("mlockall() under a sanitizer");
	fd = make_pattern_file("locked", 4 * PAGE, path);
	status = run_child(locked_all_child, path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_eq(pread(fd, &word, 8, 8), 8);
	cr_assert_eq(word, 0x1234, "the write reached the file");
	close(fd);
}
