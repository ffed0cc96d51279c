// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * MAP_GROWSDOWN: a touch of the guard page below the mapping grows it by that page, as mmap(2)
 * says, until the gap to the next lower mapping or the size limit stops it with a real SIGSEGV.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(growsdown, .init = harness_start, .fini = harness_stop, .timeout = 120);

#define GROWSDOWN (MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN)

/* The daemon's region that holds addr. */
static bool region_holding(const void *addr, struct region_info *out)
{
	static struct region_info v[64];
	int n = harness_list(getpid(), v, 64);

	for (int i = 0; i < n && i < 64; i++)
		if ((uintptr_t)addr >= v[i].start && (uintptr_t)addr < v[i].start + v[i].length) {
			*out = v[i];
			return true;
		}
	return false;
}

/* Whether the page at addr is mapped at all: msync(2) fails with ENOMEM on a hole. */
static bool mapped(const void *addr)
{
	return msync((void *)((uintptr_t)addr & ~(PAGE - 1)), PAGE, MS_ASYNC) == 0;
}

static sigjmp_buf segv_jmp;
static volatile void *segv_addr;
static volatile int segv_code, segv_sig;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	segv_sig = sig;
	segv_addr = si->si_addr;
	segv_code = si->si_code;
	siglongjmp(segv_jmp, 1);
}

static void catch_segv(void)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
}

/*
 * Write to addr, within 10 s (SIGALRM kills the process past that): the signal it raised (its
 * address in segv_addr), or 0.
 */
static int touch_signal(char *addr)
{
	segv_sig = 0;
	segv_addr = NULL;
	alarm(10);
	if (!sigsetjmp(segv_jmp, 1))
		*(volatile char *)addr = 1;
	alarm(0);
	return segv_sig;
}

/* Touch the pages below top one by one, writing a mark; return how many took it. */
static long touch_down(char *top, long max)
{
	volatile long i = 0;

	segv_addr = NULL;
	if (sigsetjmp(segv_jmp, 1))
		return i - 1;
	for (i = 1; i <= max; i++) {
		char *p = top - i * PAGE;

		cr_assert_eq(*(volatile char *)p, 0, "grown page %ld not zero", (long)i);
		*(volatile long *)p = i;
	}
	return i - 1;
}

/*
 * Connect to the daemon and start the growth thread before a test leaves a hole in the address
 * space: what they map then cannot land in it.
 */
static void warm_up(void)
{
	void *p = upager_mmap(NULL, PAGE, PROT_READ, GROWSDOWN, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	cr_assert_eq(upager_munmap(p, PAGE), 0);
}

static void set_stack_limit(rlim_t bytes)
{
	struct rlimit rl = { bytes, bytes };

	cr_assert_eq(setrlimit(RLIMIT_STACK, &rl), 0, "setrlimit: %m");
}

/* A MAP_GROWSDOWN mapping of four pages, RLIMIT_STACK well above what a test grows it by. */
static char *four_pages(void)
{
	char *p;

	set_stack_limit(64 << 20);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	return p;
}

Test(growsdown, touching_the_guard_page_grows_the_mapping_page_by_page)
{
	const long grow = 5000;
	struct region_info r;
	char *p;

	p = four_pages();
	memset(p, 0x5a, 4 * PAGE);
	cr_assert(region_holding(p, &r));
	cr_assert_eq(r.start, (uintptr_t)p);
	cr_assert_eq(r.length, 4 * PAGE);
	cr_assert_eq(r.max_length, 64 << 20, "the limit is RLIMIT_STACK");

	/* Each page below, read first (zero), then written. */
	cr_assert_eq(touch_down(p, grow), grow);
	for (long i = 1; i <= grow; i++)
		cr_assert_eq(*(long *)(p - i * PAGE), i, "grown page %ld lost its data", i);
	for (long i = 0; i < 4 * (long)PAGE; i++)
		cr_assert_eq(p[i], 0x5a);
	cr_assert(region_holding(p - grow * PAGE, &r));
	cr_assert_eq(r.start, (uintptr_t)(p - grow * PAGE));
	cr_assert_eq(r.length, (grow + 4) * PAGE);
	cr_assert_eq(r.grown_pages, grow);
	/* Grown pages are private anonymous memory like the rest: read/write. */
	p[-grow * (long)PAGE + 8] = 1;
}

Test(growsdown, stops_one_page_above_the_next_lower_mapping_with_sigsegv)
{
	const long gap = 32;
	char *area, *lower, *p;
	long grown;

	/* A sanitizer's runtime maps memory of its own at any time, in any free gap. */
	if (RUNNING_UNDER_SANITIZER)
		cr_skip_test("a gap of free pages cannot be kept free under a sanitizer");
	/* A lower mapping of 8 pages, then `gap` free pages, then the growsdown mapping. */
	warm_up();
	area = mmap(NULL, (8 + gap + 4) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(area, MAP_FAILED);
	cr_assert_eq(munmap(area + 8 * PAGE, (gap + 4) * PAGE), 0);
	lower = mmap(area, 8 * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(lower, area);
	memset(lower, 0x77, 8 * PAGE);
	p = upager_mmap(area + (8 + gap) * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE,
			GROWSDOWN | MAP_FIXED, -1, 0);
	cr_assert_eq(p, area + (8 + gap) * PAGE, "upager_mmap: %m");

	catch_segv();
	grown = touch_down(p, gap + 1);
	cr_assert_eq(grown, gap - 1, "grew %ld pages into a gap of %ld", grown, gap);
	cr_assert_eq(segv_addr, p - gap * PAGE, "SIGSEGV at %p", segv_addr);
	cr_assert_eq(segv_code, SEGV_MAPERR);
	for (long i = 0; i < 8 * (long)PAGE; i++)
		cr_assert_eq(lower[i], 0x77, "lower mapping changed at %ld", i);
	cr_assert_not(mapped(p - gap * PAGE), "the last free page stays free");
	/* Touching it again faults again, for good. */
	cr_assert_eq(touch_down(p - (gap - 1) * PAGE, 1), 0);
}

Test(growsdown, a_mapping_placed_below_later_stops_the_growth)
{
	struct region_info r;
	char *p, *lower;

	p = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	/* Four free pages below the mapping, then another mapping, placed without replacing. */
	lower = mmap(p - 6 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	cr_assert_eq(lower, p - 6 * PAGE, "mmap: %m");
	lower[0] = 9;
	catch_segv();
	cr_assert_eq(touch_down(p, 5), 3);
	cr_assert_eq(segv_addr, p - 4 * PAGE);
	cr_assert_eq(lower[0], 9);
	cr_assert(region_holding(p, &r));
	cr_assert_eq(r.start, (uintptr_t)(p - 3 * PAGE));
}

Test(growsdown, rlimit_stack_is_the_default_limit)
{
	struct region_info r;
	char *p;

	set_stack_limit(16 * PAGE);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	catch_segv();
	cr_assert_eq(touch_down(p, 20), 12, "grows to RLIMIT_STACK and no further");
	cr_assert_eq(segv_addr, p - 13 * PAGE);
	cr_assert(region_holding(p, &r));
	cr_assert_eq(r.length, 16 * PAGE);
	cr_assert_eq(r.max_length, 16 * PAGE);
}

Test(growsdown, the_limit_is_settable_per_mapping)
{
	struct region_info r;
	char *p, *q;

	set_stack_limit(64 << 20);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	q = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_neq(q, MAP_FAILED);
	cr_assert_eq(upager_set_growth_limit(p + PAGE, 10 * PAGE), 0, "%m");
	catch_segv();
	cr_assert_eq(touch_down(p, 8), 6);
	cr_assert_eq(segv_addr, p - 7 * PAGE);
	cr_assert(region_holding(p, &r));
	cr_assert_eq(r.max_length, 10 * PAGE);
	/* The other mapping keeps RLIMIT_STACK. */
	cr_assert_eq(touch_down(q, 8), 8);
	/* Not a growsdown mapping, or nothing mapped: EINVAL. */
	cr_assert_eq(upager_set_growth_limit(&r, PAGE), -1);
	cr_assert_eq(errno, EINVAL);
}

static sem_t at_depth, go_on;
static volatile int stop_depths[2] = { 300, 600 };

static int recurse(int depth, int max)
{
	volatile char frame[1000];
	int ret;

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	if (depth == stop_depths[0] || depth == stop_depths[1]) {
		sem_post(&at_depth);
		sem_wait(&go_on);
	}
	if (depth == max)
		return depth;
	ret = recurse(depth + 1, max);
	return ret + frame[0] - frame[sizeof(frame) - 1];
}

static void *deep_thread(void *arg)
{
	return (void *)(intptr_t)recurse(0, (int)(intptr_t)arg);
}

/* The length upagerctl list --json shows for the mapping that holds addr. */
static unsigned long long ctl_length(const void *addr)
{
	char out[65536];
	unsigned long long start, length, best = 0;
	char *at;

	cr_assert_eq(harness_ctl_list_json(out, sizeof(out)), 0, "%s", out);
	for (at = out; (at = strstr(at, "\"start\":")); at++) {
		char *l = strstr(at, "\"length\":");

		if (!l || sscanf(at, "\"start\":%llu", &start) != 1 ||
		    sscanf(l, "\"length\":%llu", &length) != 1)
			continue;
		if ((uintptr_t)addr >= start && (uintptr_t)addr < start + length)
			best = length;
	}
	return best;
}

/* A thread running fn(arg) on a new MAP_GROWSDOWN mapping of len bytes as its stack. */
static char *start_on_growsdown_stack(size_t len, void *(*fn)(void *), void *arg, pthread_t *t)
{
	pthread_attr_t attr;
	char *p;

	set_stack_limit(64 << 20);
	p = upager_mmap(NULL, len, PROT_READ | PROT_WRITE, GROWSDOWN | MAP_STACK, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	pthread_attr_init(&attr);
	cr_assert_eq(pthread_attr_setstack(&attr, p, len), 0);
	cr_assert_eq(pthread_create(t, &attr, fn, arg), 0);
	pthread_attr_destroy(&attr);
	return p;
}

Test(growsdown, works_as_a_thread_stack_and_upagerctl_shows_it_grow)
{
	const size_t len = 64 * 1024;
	unsigned long long l1, l2;
	struct region_info r;
	pthread_t t;
	void *ret;
	char *p;

	sem_init(&at_depth, 0, 0);
	sem_init(&go_on, 0, 0);
	/* 1300 frames of more than 1000 bytes: well over 1 MiB below the 64 KiB given. */
	p = start_on_growsdown_stack(len, deep_thread, (void *)(intptr_t)1300, &t);

	sem_wait(&at_depth);
	l1 = ctl_length(p);
	sem_post(&go_on);
	sem_wait(&at_depth);
	l2 = ctl_length(p);
	sem_post(&go_on);
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_eq((intptr_t)ret, 1300);

	cr_assert_gt(l1, len, "grown at depth 300: %llu", l1);
	cr_assert_gt(l2, l1 + 256 * 1024, "grown on at depth 600: %llu then %llu", l1, l2);
	cr_assert(region_holding(p, &r));
	cr_assert_geq(r.length, len + (1 << 20), "length %llu", (unsigned long long)r.length);
	cr_assert_eq(ctl_length(p), r.length);
}

Test(growsdown, munmap_releases_the_whole_grown_range)
{
	struct region_info r;
	char *p;

	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(touch_down(p, 100), 100);
	cr_assert(mapped(p - 101 * PAGE), "the guard page is there");
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0, "%m");
	for (long i = -101; i < 4; i++)
		cr_assert_not(mapped(p + i * (long)PAGE), "page %ld still mapped", i);
	cr_assert_not(region_holding(p - 50 * PAGE, &r));
	cr_assert_not(region_holding(p, &r));
}

Test(growsdown, partial_munmap_of_the_low_end_stops_growth_cleanly)
{
	char *p;

	p = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(touch_down(p, 4), 4);
	/* The low 6 pages go, and the guard page with them: nothing below can grow any more. */
	cr_assert_eq(upager_munmap(p - 4 * PAGE, 6 * PAGE), 0);
	cr_assert_not(mapped(p - 5 * PAGE));
	cr_assert(mapped(p + 2 * PAGE));
	cr_assert_eq(p[2 * PAGE], 0);
	cr_assert_eq(upager_munmap(p + 2 * PAGE, 6 * PAGE), 0);
}

/* Where Linux refuses MAP_GROWSDOWN, upager_mmap refuses it with the same errno. */
Test(growsdown, shared_and_file_mappings_fail_as_the_kernel_fails_them)
{
	char path[512];
	int fd = make_pattern_file("f", 16 * PAGE, path);
	int wronly = open(path, O_WRONLY);
	int rdonly = open(path, O_RDONLY);
	struct {
		int flags, fd, prot;
	} cases[] = {
		{ MAP_SHARED | MAP_ANONYMOUS, -1, PROT_READ | PROT_WRITE },
		{ MAP_SHARED, fd, PROT_READ | PROT_WRITE },
		{ MAP_PRIVATE, fd, PROT_READ },
		{ MAP_SHARED_VALIDATE, fd, PROT_READ },
		{ MAP_SHARED, rdonly, PROT_READ | PROT_WRITE },
		{ MAP_PRIVATE, wronly, PROT_READ },
	};

	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int kerr, uerr;
		void *k = mmap(NULL, 4 * PAGE, cases[i].prot, cases[i].flags | MAP_GROWSDOWN,
			       cases[i].fd, 0);
		void *u;

		kerr = errno;
		u = upager_mmap(NULL, 4 * PAGE, cases[i].prot, cases[i].flags | MAP_GROWSDOWN,
				cases[i].fd, 0);
		uerr = errno;
		cr_assert_eq(k, MAP_FAILED, "case %zu: the kernel took it", i);
		cr_assert_eq(u, MAP_FAILED, "case %zu: upager_mmap took it", i);
		cr_assert_eq(uerr, kerr, "case %zu: errno %d, the kernel's %d", i, uerr, kerr);
	}
}

Test(growsdown, a_touch_below_the_guard_page_grows_the_mapping_down_to_it)
{
	struct region_info r;
	char *p;

	p = four_pages();
	/* Two pages down, past the guard page: both join the mapping. */
	cr_assert_eq(*(volatile char *)(p - 2 * PAGE), 0);
	p[-2 * (long)PAGE] = 2;
	cr_assert(region_holding(p - 2 * PAGE, &r));
	cr_assert_eq(r.start, (uintptr_t)(p - 2 * PAGE));
	cr_assert_eq(r.grown_pages, 2);
	/* Forty pages further down, as a large stack frame touches its low end first. */
	cr_assert_eq(*(volatile char *)(p - 42 * PAGE), 0);
	p[-42 * (long)PAGE] = 42;
	cr_assert(region_holding(p - 42 * PAGE, &r));
	cr_assert_eq(r.start, (uintptr_t)(p - 42 * PAGE));
	cr_assert_eq(r.length, 46 * PAGE);
	for (long i = 1; i <= 42; i++)
		cr_assert_eq(p[-i * (long)PAGE], i == 2 ? 2 : i == 42 ? 42 : 0, "page %ld", i);
	/* And on page by page below that. */
	cr_assert_eq(touch_down(p - 42 * PAGE, 10), 10);
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);
	cr_assert_not(mapped(p - 20 * PAGE));
}

Test(growsdown, a_touch_below_the_guard_page_past_the_limit_gets_sigbus)
{
	struct region_info r;
	char *p;

	p = four_pages();
	cr_assert_eq(upager_set_growth_limit(p, 8 * PAGE), 0, "%m");
	catch_segv();
	/* Within the kernel's stack_guard_gap of the sentinel, which it grows down to the touch. */
	cr_assert_eq(touch_signal(p - 20 * PAGE), SIGBUS);
	cr_assert_eq((uintptr_t)segv_addr & ~(PAGE - 1), (uintptr_t)(p - 20 * PAGE));
	cr_assert(region_holding(p, &r));
	cr_assert_eq(r.length, 4 * PAGE, "the mapping did not grow");
}

/* A forked child starts a growth thread of its own in fork(): it grows as its parent does, and
 * past the limit the thread refuses (SIGSEGV), where without one the fault could only get SIGBUS. */
Test(growsdown, a_forked_child_grows_as_its_parent_up_to_the_limit)
{
	int status;
	pid_t kid;
	char *p;

	p = four_pages();
	cr_assert_eq(upager_set_growth_limit(p, 10 * PAGE), 0, "%m");
	kid = harness_fork();
	cr_assert_geq(kid, 0);
	if (kid == 0) {
		long grown;

		catch_segv();
		grown = touch_down(p, 8);
		_exit(grown == 6 && segv_addr == p - 7 * PAGE && segv_sig == SIGSEGV ? 0 : 1);
	}
	cr_assert_eq(waitpid(kid, &status, 0), kid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

/* Through a volatile pointer: the compiler can neither drop the frame nor reorder its writes. */
static void *(*volatile fill)(void *, int, size_t) = memset;

Test(growsdown, a_touch_below_the_guard_page_next_to_another_mapping_gets_sigsegv)
{
	char *area, *lower, *p;

	/* A lower mapping, two free pages, the growsdown mapping. */
	warm_up();
	area = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(area, MAP_FAILED);
	cr_assert_eq(munmap(area + 2 * PAGE, 6 * PAGE), 0);
	lower = mmap(area, 2 * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(lower, area);
	memset(lower, 0x33, 2 * PAGE);
	p = upager_mmap(area + 4 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN | MAP_FIXED,
			-1, 0);
	cr_assert_eq(p, area + 4 * PAGE, "upager_mmap: %m");
	/* Two pages down would leave no gap above the lower mapping. */
	catch_segv();
	cr_assert_eq(touch_down(p - PAGE, 1), 0);
	cr_assert_eq(segv_addr, p - 2 * PAGE);
	for (long i = 0; i < 2 * (long)PAGE; i++)
		cr_assert_eq(lower[i], 0x33);
}

static int big_frames(int depth)
{
	char frame[8192];
	volatile char *f = frame;
	int ret;

	/* The frame is written from its low end first, as memset() does: far below the last touch. */
	fill(frame, depth, sizeof(frame));
	if (depth == 0)
		return 0;
	ret = big_frames(depth - 1);
	return ret + f[sizeof(frame) - 1] - f[0];
}

static void *big_frames_thread(void *arg)
{
	return (void *)(intptr_t)big_frames((int)(intptr_t)arg);
}

Test(growsdown, a_thread_stack_with_frames_larger_than_a_page_grows)
{
	const size_t len = 64 * 1024;
	struct region_info r;
	pthread_t t;
	void *ret;
	char *p;

	/* 200 frames of 8 KiB: more than 1.5 MiB below the 64 KiB given. */
	p = start_on_growsdown_stack(len, big_frames_thread, (void *)(intptr_t)200, &t);
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_eq((intptr_t)ret, 0);
	cr_assert(region_holding(p, &r));
	cr_assert_geq(r.length, len + (3 << 19), "length %llu", (unsigned long long)r.length);
}

static void *toucher(void *arg)
{
	*(volatile char *)arg = 1;
	return NULL;
}

Test(growsdown, two_threads_on_the_same_guard_page_both_go_on)
{
	pthread_t t[4];
	char *p;

	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, GROWSDOWN, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	for (int round = 1; round <= 50; round++) {
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, toucher, p - round * PAGE + i * 8);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	for (int round = 1; round <= 50; round++)
		cr_assert_eq(p[-round * (long)PAGE], 1);
}
