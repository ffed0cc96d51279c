// SPDX-License-Identifier: LGPL-2.1-or-later
/* fork(), plain munmap/mremap/madvise on pager memory, and clients that exit or are killed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tests/procfs.h"
#include "upager.h"

TestSuite(lifecycle, .init = harness_start, .fini = harness_stop, .timeout = 60);

Test(lifecycle, a_forked_child_keeps_correct_mappings)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	uint64_t *anon = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *file = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t *priv = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	int status;
	pid_t c;

	cr_assert_neq(anon, MAP_FAILED);
	cr_assert_neq(file, MAP_FAILED);
	cr_assert_neq(priv, MAP_FAILED);
	anon[0] = 1;
	file[0] = 2;
	priv[0] = 3;
	c = harness_fork();
	if (c == 0) {
		int bad = 0;

		bad |= anon[0] != 1; /* touched */
		bad |= (anon[3 * PAGE / 8] != 0) << 1; /* untouched */
		bad |= (file[0] != 2) << 2; /* touched */
		bad |= (file[5 * PAGE / 8] != pattern_at(5 * PAGE)) << 3; /* untouched */
		bad |= (priv[0] != 3) << 4;
		bad |= (priv[6 * PAGE / 8] != pattern_at(6 * PAGE)) << 5;
		file[4 * PAGE / 8] = 0x77; /* first touch of a shared page, by the child */
		anon[5 * PAGE / 8] = 9; /* private to the child */
		_exit(bad);
	}
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child saw wrong data: mask %#x", WEXITSTATUS(status));
	cr_assert_eq(file[4 * PAGE / 8], 0x77);
	cr_assert_eq(anon[5 * PAGE / 8], 0);
	cr_assert_eq(priv[0], 3);
}

Test(lifecycle, a_forked_child_that_calls_libupager_is_its_own_client)
{
	uint64_t *a = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int to_parent[2], to_child[2], status;
	struct region_info v[8];
	char ch;
	pid_t c;
	int n;

	cr_assert_neq(a, MAP_FAILED);
	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	c = harness_fork();
	if (c == 0) {
		void *b =
			upager_mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (b == MAP_FAILED)
			_exit(1);
		(void)*(volatile char *)b;
		(void)!write(to_parent[1], "m", 1);
		(void)!read(to_child[0], &ch, 1);
		/* Its msync and munmap act on its own space. */
		_exit(upager_munmap(b, 2 * PAGE) == 0 && upager_msync(a, PAGE, MS_SYNC) == 0 ? 0
											     : 2);
	}
	cr_assert_eq(read(to_parent[0], &ch, 1), 1);
	n = harness_list(c, v, 8);
	cr_assert_eq(n, 2, "the child has %d regions", n);
	cr_assert_eq(v[0].pid, (uint32_t)c);
	cr_assert(v[0].start == (uintptr_t)a || v[1].start == (uintptr_t)a);
	cr_assert_eq(harness_list(getpid(), v, 8), 1);
	cr_assert_eq(write(to_child[1], "go", 1), 1);
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
}

Test(lifecycle, plain_munmap_mremap_and_madvise_keep_the_view_right)
{
	int fd = make_pattern_file("f", 8 * PAGE, NULL);
	uint64_t *f = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t *a = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct region_info r;
	uint64_t *moved, *target;

	cr_assert_neq(f, MAP_FAILED);
	cr_assert_neq(a, MAP_FAILED);

	/* munmap() of the tail of a region. */
	a[0] = 5;
	cr_assert_eq(munmap(a + 6 * PAGE / 8, 2 * PAGE), 0);
	cr_assert(harness_region(getpid(), a, &r));
	cr_assert_eq(r.length, 6 * PAGE);

	/* madvise(MADV_DONTNEED): anonymous pages read zero again, file pages come back. */
	f[PAGE / 8] = 0x99;
	cr_assert_eq(madvise(a, PAGE, MADV_DONTNEED), 0);
	cr_assert_eq(madvise(f, 2 * PAGE, MADV_DONTNEED), 0);
	cr_assert_not(page_present(f + PAGE / 8));
	cr_assert_eq(a[0], 0);
	cr_assert_eq(f[PAGE / 8], 0x99);
	cr_assert_eq(f[0], pattern_at(0));

	/* mremap() to another address: the region follows, served as before. */
	target = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(target, MAP_FAILED);
	moved = mremap(f, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	cr_assert_eq(moved, target, "mremap: %m");
	cr_assert_not(harness_region(getpid(), f, &r));
	cr_assert(harness_region(getpid(), moved, &r));
	cr_assert_eq(r.length, 8 * PAGE);
	cr_assert_eq(r.offset, 0);
	cr_assert_eq(moved[PAGE / 8], 0x99);
	cr_assert_eq(moved[7 * PAGE / 8], pattern_at(7 * PAGE)); /* untouched until now */
	moved[6 * PAGE / 8] = 0x42;
	cr_assert_eq(upager_msync(moved, 8 * PAGE, MS_SYNC), 0);
	{
		uint64_t v = 0;

		cr_assert_eq(pread(fd, &v, 8, 6 * PAGE), 8);
		cr_assert_eq(v, 0x42);
		cr_assert_eq(pread(fd, &v, 8, PAGE), 8);
		cr_assert_eq(v, 0x99);
	}

	/* munmap() of the whole region: the daemon forgets it and writes it back. */
	moved[0] = 0x43;
	cr_assert_eq(munmap(moved, 8 * PAGE), 0);
	cr_assert_not(harness_region(getpid(), moved, &r));
}

static void map_and_hang(void *p)
{
	int *pfd = p;
	int fd = make_pattern_file("g", 4 * PAGE, NULL);
	char *f = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *a = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);

	if (f == MAP_FAILED || a == MAP_FAILED)
		_exit(1);
	f[0] = 1;
	a[0] = 1;
	(void)!write(pfd[1], "r", 1);
	pause();
}

struct gone {
	pid_t pid;
};

static bool regions_gone(void *p)
{
	struct region_info v[4];
	struct upager_msg st;

	if (harness_list(((struct gone *)p)->pid, v, 4) != 0)
		return false;
	cr_assert_eq(harness_stats(&st), 0);
	return st.u.stats_reply.objects == 0 && st.u.stats_reply.spaces == 0;
}

Test(lifecycle, a_killed_client_vanishes_within_a_second)
{
	struct region_info v[4];
	struct upager_msg st;
	struct gone g;
	int pfd[2];
	char c;

	cr_assert_eq(pipe(pfd), 0);
	g.pid = harness_fork();
	if (g.pid == 0)
		map_and_hang(pfd);
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	cr_assert_eq(harness_list(g.pid, v, 4), 2);
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.objects, 2);
	cr_assert_geq(st.u.stats_reply.cached_pages, 2);
	kill(g.pid, SIGKILL);
	waitpid(g.pid, NULL, 0);
	cr_assert(wait_until(regions_gone, &g, 1000), "the killed client's mappings remain");
	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.cached_pages, 0);
}

struct started {
	pid_t daemon;
	char tmpdir[256];
};

/* Whether process *pid is gone: no such process, or a zombie no one reaped yet. */
static bool process_gone(void *p)
{
	char path[64], state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)*(pid_t *)p);
	f = fopen(path, "r");
	if (!f)
		return true;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = 0;
	fclose(f);
	return state == 'Z' || state == 'X';
}

Test(lifecycle, a_daemon_dies_with_the_test_that_started_it)
{
	struct started s = { 0 };
	int pfd[2];
	char cmd[300];
	bool gone;
	pid_t test;

	cr_assert_eq(pipe(pfd), 0);
	test = harness_fork(); /* a test of its own, with its own daemon */
	if (test == 0) {
		harness_start();
		s.daemon = harness_daemon_pid();
		snprintf(s.tmpdir, sizeof(s.tmpdir), "%s", harness_tmpdir());
		(void)!write(pfd[1], &s, sizeof(s));
		pause();
		_exit(0);
	}
	cr_assert_eq(read(pfd[0], &s, sizeof(s)), (ssize_t)sizeof(s));
	cr_assert_gt(s.daemon, 0);
	/* A daemon that would not stop on SIGTERM (a stalled write-back) must go all the same. */
	cr_assert_eq(kill(s.daemon, SIGSTOP), 0);
	kill(test, SIGKILL); /* as meson's timeout kills a test */
	cr_assert_eq(waitpid(test, NULL, 0), test);
	gone = wait_until(process_gone, &s.daemon, 1000);
	if (!gone) /* it holds meson's output pipe: meson would wait for it */
		kill(s.daemon, SIGKILL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", s.tmpdir);
	(void)!system(cmd);
	cr_assert(gone, "upagerd %d outlived the test that started it", (int)s.daemon);
}

Test(lifecycle, mremap_that_grows_a_mapping_in_place)
{
	int fd = make_pattern_file("f", 16 * PAGE, NULL);
	uint64_t *f, *g, *a, *b;
	struct region_info r;

	/* Keep room after each mapping so that it can grow where it stands: reserved until the
	 * mremap, so that nothing the library maps meanwhile (its threads' stacks) lands there. */
	f = mmap(NULL, 32 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(f, MAP_FAILED);
	f = upager_mmap(f, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
	cr_assert_neq(f, MAP_FAILED);
	cr_assert_eq(f[0], pattern_at(0));
	munmap(f + 4 * PAGE / 8, 28 * PAGE);
	g = mremap(f, 4 * PAGE, 12 * PAGE, 0);
	cr_assert_eq(g, f, "mremap: %m");
	cr_assert_eq(g[9 * PAGE / 8], pattern_at(9 * PAGE));
	cr_assert(harness_region(getpid(), g, &r));
	cr_assert_eq(r.length, 12 * PAGE);

	a = mmap(NULL, 32 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a = upager_mmap(a, 2 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_neq(a, MAP_FAILED);
	a[0] = 3;
	munmap(a + 2 * PAGE / 8, 30 * PAGE);
	b = mremap(a, 2 * PAGE, 6 * PAGE, 0);
	cr_assert_eq(b, a, "mremap: %m");
	cr_assert_eq(b[5 * PAGE / 8], 0);
	b[5 * PAGE / 8] = 4;
	cr_assert_eq(b[0], 3);
	cr_assert_eq(b[5 * PAGE / 8], 4);
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/*
 * A private anonymous mapping moved with MREMAP_DONTUNMAP, made read-only, grown by the kernel's
 * mremap(), which moves it (its event names the old length only), and its new page made writable
 * alone, a mapping of its own: the new page reads zeroes and takes a write, the old keeps its
 * data. (SIGBUS before: no region started where the new page's mapping did.)
 */
Test(lifecycle, a_growth_split_off_by_mprotect_before_its_first_touch_is_served)
{
	uint64_t *p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				  -1, 0),
		 *q, *g;
	char c;

	cr_assert_neq(p, MAP_FAILED);
	p[0] = 7;
	q = mremap(p, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	cr_assert_neq(q, MAP_FAILED, "%m");
	cr_assert_eq(mprotect(q, PAGE, PROT_READ), 0);
	g = mremap(q, PAGE, 3 * PAGE, MREMAP_MAYMOVE);
	cr_assert_neq(g, MAP_FAILED, "%m");
	cr_assert_eq(mprotect(g + PAGE / 8, PAGE, PROT_READ | PROT_WRITE), 0);
	cr_assert_not(harness_read_sigbus((char *)(g + PAGE / 8), &c),
		      "the new page raised SIGBUS");
	cr_assert_eq(g[PAGE / 8], 0);
	g[PAGE / 8] = 9;
	cr_assert_not(harness_read_sigbus((char *)(g + 2 * PAGE / 8), &c),
		      "the last page raised SIGBUS");
	cr_assert_eq(g[0], 7);
	cr_assert_eq(g[PAGE / 8], 9);
	munmap(p, PAGE);
	munmap(g, 3 * PAGE);
}

/* What the old and new range of a mapping read after mremap(MREMAP_DONTUNMAP), and writes after. */
struct dontunmap_seen {
	uint64_t old[4], new[4], old_after_new_write, new_after_old_write;
};

static struct dontunmap_seen dontunmap(void *(*map)(void *, size_t, int, int, int, off_t),
				       int flags, int fd)
{
	struct dontunmap_seen seen;
	uint64_t *p = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, flags, fd, 0), *q;

	cr_assert_neq(p, MAP_FAILED, "%m");
	p[PAGE / 8] = 0x1111;
	p[2 * PAGE / 8] = 0x1112;
	q = mremap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	cr_assert_neq(q, MAP_FAILED, "flags %#x: mremap: %m", flags);
	for (int i = 0; i < 4; i++) {
		seen.old[i] = p[i * PAGE / 8];
		seen.new[i] = q[i * PAGE / 8];
	}
	q[2 * PAGE / 8] = 0x2222;
	seen.old_after_new_write = p[2 * PAGE / 8];
	p[3 * PAGE / 8] = 0x3333;
	seen.new_after_old_write = q[3 * PAGE / 8];
	munmap(p, 4 * PAGE);
	munmap(q, 4 * PAGE);
	return seen;
}

static void *kernel_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
	return mmap(a, l, p, f, fd, o);
}

/*
 * After mremap(MREMAP_DONTUNMAP) the old range reads what it reads with the kernel: zeroes for
 * private anonymous memory (the pages moved), the same pages as the new range for shared memory,
 * the file for a private file mapping. Before, its faults found no region: SIGBUS.
 */
Test(lifecycle, mremap_dontunmap_leaves_the_old_range_as_the_kernel_does)
{
	const int kinds[] = { MAP_PRIVATE | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS, MAP_SHARED,
			      MAP_PRIVATE };

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		bool anon = kinds[k] & MAP_ANONYMOUS;
		char kname[32], uname[32];
		int kfd, ufd;

		/* A file of its own for each: the cache does not follow write(2) yet. */
		snprintf(kname, sizeof(kname), "dontunmap-kernel-%zu", k);
		snprintf(uname, sizeof(uname), "dontunmap-upager-%zu", k);
		kfd = anon ? -1 : make_pattern_file(kname, 4 * PAGE, NULL);
		ufd = anon ? -1 : make_pattern_file(uname, 4 * PAGE, NULL);
		struct dontunmap_seen want = dontunmap(kernel_mmap, kinds[k], kfd),
				      got = dontunmap(upager_mmap, kinds[k], ufd);

		for (int i = 0; i < 4; i++) {
			cr_assert_eq(got.old[i], want.old[i],
				     "flags %#x: old page %d: %#llx, not %#llx", kinds[k], i,
				     (unsigned long long)got.old[i],
				     (unsigned long long)want.old[i]);
			cr_assert_eq(got.new[i], want.new[i], "flags %#x: new page %d", kinds[k],
				     i);
		}
		cr_assert_eq(got.old_after_new_write, want.old_after_new_write, "flags %#x",
			     kinds[k]);
		cr_assert_eq(got.new_after_old_write, want.new_after_old_write, "flags %#x",
			     kinds[k]);
		if (!anon) {
			close(kfd);
			close(ufd);
		}
	}
}

#define THREADS 8

struct remounter {
	int fd;
	unsigned id;
	int failures;
};

/* Map the file, write and check bytes of its pages with msyncs between, unmap it; for 5 s. */
static void *remount_loop(void *arg)
{
	enum {
		PAGES = 4096
	};
	struct remounter *w = arg;
	time_t end = time(NULL) + 5;
	unsigned seed = w->id;

	for (unsigned i = 1; time(NULL) < end; i++) {
		volatile char *m = upager_mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
					       MAP_SHARED, w->fd, 0);

		if (m == MAP_FAILED) {
			w->failures++;
			continue;
		}
		for (unsigned k = 0; k < 64; k++) {
			unsigned p = (unsigned)rand_r(&seed) % PAGES;

			m[p * PAGE + w->id] = (char)i;
			w->failures += m[p * PAGE + w->id] != (char)i;
			if (k % 4 == 0)
				w->failures += upager_msync((void *)m, PAGES * PAGE, MS_SYNC) < 0;
		}
		w->failures += upager_munmap((void *)m, PAGES * PAGE) < 0;
	}
	return NULL;
}

static void remount_threads(void *arg)
{
	struct remounter w[THREADS];
	pthread_t t[THREADS];

	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct remounter){ .fd = *(int *)arg, .id = i };
		pthread_create(&t[i], NULL, remount_loop, &w[i]);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].failures)
			_exit(1);
	}
}

/*
 * A thread's munmap(2) removes the mapping before the daemon reads its unmap event; another
 * thread's mapping may take the same addresses meanwhile, and that event must not take the new
 * mapping out of the daemon's table (its next touch would be "outside every region": SIGBUS).
 * The msyncs keep the daemon busy, so that a request and an event wait for it together, and it
 * may take either first; 8 threads for 5 s met it in every run before the fix.
 */
Test(lifecycle, threads_that_unmap_and_map_again_keep_each_others_mappings)
{
	int fd = make_pattern_file("f", 4096 * PAGE, NULL);
	int status = run_child(remount_threads, &fd);

	cr_assert(WIFEXITED(status), "killed by signal %d", WTERMSIG(status));
	cr_assert_eq(WEXITSTATUS(status), 0);
}

struct last_words {
	uint64_t *mem;
	int pipe;
};

/* A thread that outlives the main thread: it writes pager memory, then says so on the pipe. */
static void *outliving(void *arg)
{
	struct last_words *w = arg;

	usleep(200 * 1000);
	w->mem[PAGE / 8] = 42;
	if (write(w->pipe, &w->mem[PAGE / 8], 1) != 1)
		_exit(3);
	return NULL;
}

Test(lifecycle, a_process_whose_own_threads_all_ended_exits_with_zero)
{
	int fds[2], status;
	char said = 0;
	pid_t c;

	cr_assert_eq(pipe(fds), 0);
	c = harness_fork();
	if (c == 0) {
		static struct last_words w;
		pthread_t t;

		/* Private anonymous memory: the library's control thread, and its watcher. */
		w.mem = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		w.pipe = fds[1];
		if (w.mem == MAP_FAILED)
			_exit(1);
		w.mem[0] = 1;
		if (pthread_create(&t, NULL, outliving, &w) != 0)
			_exit(2);
		/* The C library ends the process, with 0, when the last thread ends. */
		pthread_exit(NULL);
	}
	close(fds[1]);
	cr_assert(harness_ended_within(c, 10 * 1000, &status),
		  "the process lived on with the library's threads alone");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_eq(read(fds[0], &said, 1), 1);
	cr_assert_eq(said, 42);
	close(fds[0]);
}

static void exit_now(void)
{
	_exit(0);
}

/* In the child it forks, this thread is the main thread, and its return ends the child. */
static void *forking(void *arg)
{
	uint64_t *mem = arg;
	pid_t c = harness_fork();

	if (c == 0) {
		/* The exit the C library makes then (exit(0)) ends here: a sanitizer's leak check
		 * would take the other threads' memory for leaks of this one. */
		atexit(exit_now);
		mem[0] = 7; /* the child's own copy */
		return NULL;
	}
	return (void *)(intptr_t)c;
}

Test(lifecycle, a_child_forked_by_another_thread_ends_when_that_thread_returns)
{
	uint64_t *mem = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t;
	void *ret;
	int status;
	pid_t c;

	cr_assert_neq(mem, MAP_FAILED);
	mem[0] = 1; /* the parent's control thread: the child starts its own at fork */
	cr_assert_eq(pthread_create(&t, NULL, forking, mem), 0);
	cr_assert_eq(pthread_join(t, &ret), 0);
	c = (pid_t)(intptr_t)ret;
	cr_assert_gt(c, 0);
	cr_assert(harness_ended_within(c, 10 * 1000, &status),
		  "the child lived on with the library's threads alone");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_eq(mem[0], 1);
	upager_munmap(mem, 4 * PAGE);
}

Test(lifecycle, the_librarys_descriptors_leave_the_low_numbers_free)
{
	int fd = make_pattern_file("low", 4 * PAGE, NULL), status;
	pid_t c = harness_fork();

	if (c == 0) {
		struct stat st;
		uint64_t *anon, *file;
		int low, bad = 0;

		/* Started with its standard input closed, the child maps both kinds. */
		close(0);
		anon = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		file = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
		if (anon == MAP_FAILED || file == MAP_FAILED)
			_exit(1);
		anon[0] = 1;
		bad |= (file[0] != pattern_at(0)) << 1;
		/* 0 is free still, and the lowest number free next to the program's own. */
		bad |= !(fstat(0, &st) < 0 && errno == EBADF) << 2;
		low = open("/dev/null", O_RDONLY);
		bad |= (low != 0) << 3;
		low = open("/dev/null", O_RDONLY);
		bad |= (low > fd + 1) << 4;
		_exit(bad);
	}
	cr_assert(harness_ended_within(c, 10 * 1000, &status));
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "mask %#x", WEXITSTATUS(status));
	close(fd);
}

/* Whether process @pid has CAP_SYS_RESOURCE in its effective set. */
static bool has_sys_resource(pid_t pid)
{
	unsigned long long eff = 0;

	return procfs_status(pid, "CapEff: %llx", &eff) && (eff >> 24 & 1); /* CAP_SYS_RESOURCE */
}

/*
 * The daemon asks the OOM killer to take a client before it (every client waits for it, and its
 * cache memfds make it look the largest): its oom_score_adj, 0 when started, is -900; without
 * CAP_SYS_RESOURCE (some containers' root) it cannot lower it, and says so.
 */
Test(lifecycle, the_daemon_asks_the_oom_killer_to_take_clients_first)
{
	char path[64], buf[16] = "";
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)harness_daemon_pid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	if (has_sys_resource(harness_daemon_pid()))
		cr_assert_eq(atoi(buf), -900, "oom_score_adj %s", buf);
	else
		cr_assert(harness_daemon_logged("leaving oom_score_adj at 0"),
			  "oom_score_adj %s, and no word of why", buf);
}
