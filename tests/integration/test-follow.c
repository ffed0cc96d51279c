// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The file is the truth: live mappings follow a file that another process changes with
 * ftruncate(2), write(2), copy_file_range(2) or fallocate(2) (growth or a hole), and that
 * process's read(2) sees what was written through a shared mapping (docs/design.md, "Coherence
 * and write-back of shared mappings"). The other process is a plain child that never calls
 * libupager and opens the file by name.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(follow, .init = harness_start, .fini = harness_stop, .timeout = 60);

static char path[400];

/* What the other process does to the file, by name. */
enum change {
	GROW_TRUNCATE,
	GROW_WRITE,
	GROW_FALLOCATE,
	SHRINK,
	WRITE,
	MAP_WRITE, /* through a mapping of the kernel's, then msync(MS_SYNC) */
	COPY_RANGE,
	PUNCH,
	READ
};

struct change_arg {
	enum change how;
	off_t len; /* the new size; for WRITE and READ, where */
	const char *data; /* WRITE: what is written; READ: what must be read */
};

static void change_file(void *arg)
{
	const struct change_arg *c = arg;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		_exit(2);
	switch (c->how) {
	case GROW_TRUNCATE:
	case SHRINK:
		if (ftruncate(fd, c->len) < 0)
			_exit(3);
		break;
	case GROW_WRITE:
		if (pwrite(fd, "w", 1, c->len - 1) != 1)
			_exit(3);
		break;
	case GROW_FALLOCATE:
		if (fallocate(fd, 0, 0, c->len) < 0)
			_exit(3);
		break;
	case WRITE:
		if (pwrite(fd, c->data, strlen(c->data), c->len) != (ssize_t)strlen(c->data))
			_exit(3);
		break;
	case MAP_WRITE: {
		size_t n = strlen(c->data);
		off_t at = c->len & ~(off_t)(PAGE - 1);
		char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, at);

		if (m == MAP_FAILED)
			_exit(3);
		memcpy(m + (c->len - at), c->data, n);
		if (msync(m, PAGE, MS_SYNC) < 0)
			_exit(4);
		break;
	}
	case COPY_RANGE: {
		/* From another file of the same file system: copy_file_range(2) proper. */
		char src[sizeof(path) + 8];
		loff_t in = 0, out = c->len;
		ssize_t n = (ssize_t)strlen(c->data);
		int sfd;

		snprintf(src, sizeof(src), "%s.src", path);
		sfd = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (sfd < 0 || write(sfd, c->data, (size_t)n) != n)
			_exit(3);
		if (copy_file_range(sfd, &in, fd, &out, (size_t)n, 0) != n)
			_exit(4);
		unlink(src);
		break;
	}
	case PUNCH:
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, c->len, PAGE) < 0)
			_exit(3);
		break;
	case READ: {
		char buf[64] = { 0 };

		if (pread(fd, buf, strlen(c->data), c->len) != (ssize_t)strlen(c->data) ||
		    memcmp(buf, c->data, strlen(c->data)))
			_exit(4);
		break;
	}
	}
	_exit(0);
}

static void other_process_data(enum change how, off_t len, const char *data)
{
	struct change_arg c = { how, len, data };
	int status = run_child(change_file, &c);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

static void other_process(enum change how, off_t len)
{
	other_process_data(how, len, NULL);
}

/* A mapping of three pages of a one-page file; the file then grows by @how to @len bytes. */
static void grown_by(enum change how, int flags)
{
	int fd = make_pattern_file("f", PAGE, path);
	volatile char *m = upager_mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, flags, fd, 0);
	off_t len = 2 * PAGE;
	char c, b;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_not(harness_read_sigbus(m, &c));
	other_process(how, len);
	cr_assert_not(harness_read_sigbus(m + PAGE, &c), "the grown page raises SIGBUS");
	cr_assert_eq(c, 0);
	if (how == GROW_WRITE)
		cr_assert_eq(m[len - 1], 'w');
	cr_assert(harness_read_sigbus(m + 2 * PAGE, &c),
		  "a page past the new end does not raise SIGBUS");
	m[PAGE + 7] = 'x';
	cr_assert_eq(m[PAGE + 7], 'x');
	if (flags & MAP_SHARED) {
		/* The write reaches the file. */
		cr_assert_eq(upager_msync((void *)m, 3 * PAGE, MS_SYNC), 0);
		cr_assert_eq(pread(fd, &b, 1, PAGE + 7), 1);
		cr_assert_eq(b, 'x');
	}
	cr_assert_eq(upager_munmap((void *)m, 3 * PAGE), 0);
	close(fd);
}

static bool page_readable(void *arg)
{
	char c;

	return !harness_read_sigbus(arg, &c);
}

/*
 * A page past the end raised SIGBUS; the file grows over it: it reads as any other then, once
 * the daemon has seen the growth (it is told of it as of a truncation, "within a second").
 */
static void sigbus_then_grown(int flags)
{
	int fd = make_pattern_file("f", PAGE, path);
	volatile char *m = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, flags, fd, 0);
	char c;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert(harness_read_sigbus(m + PAGE, &c), "a page past the end does not raise SIGBUS");
	other_process(GROW_TRUNCATE, 2 * PAGE);
	cr_assert(wait_until(page_readable, (void *)(m + PAGE), 1000),
		  "the page still raises SIGBUS after the growth");
	cr_assert_not(harness_read_sigbus(m + PAGE, &c));
	cr_assert_eq(c, 0);
	m[PAGE + 1] = 'y';
	cr_assert_eq(m[PAGE + 1], 'y');
	cr_assert_eq(upager_munmap((void *)m, 2 * PAGE), 0);
	close(fd);
}

Test(follow, a_shared_page_that_raised_sigbus_reads_once_the_file_grows)
{
	sigbus_then_grown(MAP_SHARED);
}

Test(follow, a_private_page_that_raised_sigbus_reads_once_the_file_grows)
{
	sigbus_then_grown(MAP_PRIVATE);
}

Test(follow, a_shared_mapping_sees_the_file_grown_by_ftruncate)
{
	grown_by(GROW_TRUNCATE, MAP_SHARED);
}

Test(follow, a_shared_mapping_sees_the_file_grown_by_a_write_past_the_end)
{
	grown_by(GROW_WRITE, MAP_SHARED);
}

Test(follow, a_shared_mapping_sees_the_file_grown_by_fallocate)
{
	grown_by(GROW_FALLOCATE, MAP_SHARED);
}

Test(follow, a_private_mapping_sees_the_file_grown_by_ftruncate)
{
	grown_by(GROW_TRUNCATE, MAP_PRIVATE);
}

/* Whether the page at @arg raises SIGBUS now. */
static bool page_gone(void *arg)
{
	char c;

	return harness_read_sigbus(arg, &c);
}

/*
 * A mapping of a two-page file, read; the file then shrinks to a page and a bit. With @barrier,
 * upager_msync(MS_INVALIDATE) comes first, after which the mapping shows the file as it is; else
 * the mapping follows within a bound (the time the daemon takes to read inotify's event).
 */
static void truncated(int flags, bool barrier)
{
	int fd = make_pattern_file("f", 2 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 2 * PAGE, PROT_READ, flags, fd, 0);
	uint64_t word, t0;
	char c;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(*(volatile uint64_t *)(m + PAGE), pattern_at(PAGE));
	other_process(SHRINK, PAGE + 100);
	if (barrier)
		cr_assert_eq(upager_msync((void *)m, 2 * PAGE, MS_INVALIDATE), 0);
	word = *(volatile uint64_t *)(m + PAGE);
	cr_assert_eq(word, pattern_at(PAGE), "the bytes below the new end changed");
	t0 = harness_now_ms();
	for (int i = 0; !barrier && i < 1000 && m[PAGE + 200] != 0; i++)
		usleep(1000);
	cr_assert_eq(m[PAGE + 200], 0, "the last page past the new end is not zero");
	other_process(SHRINK, 0);
	if (barrier)
		cr_assert_eq(upager_msync((void *)m, 2 * PAGE, MS_INVALIDATE), 0);
	cr_assert(wait_until(page_gone, (void *)m, barrier ? 0 : 1000),
		  "a page past the new end does not raise SIGBUS");
	/* Each page past the end within the same bound: the daemon's unmapping is not one step. */
	cr_assert(wait_until(page_gone, (void *)(m + PAGE), barrier ? 0 : 1000));
	cr_assert(harness_read_sigbus(m + PAGE, &c));
	if (!barrier)
		cr_log_info("followed within %" PRIu64 " ms", harness_now_ms() - t0);
	cr_assert_eq(upager_munmap((void *)m, 2 * PAGE), 0);
	close(fd);
}

Test(follow, a_shared_mapping_follows_truncation_by_another_process_at_ms_invalidate)
{
	truncated(MAP_SHARED, true);
}

Test(follow, a_private_mapping_follows_truncation_by_another_process_at_ms_invalidate)
{
	truncated(MAP_PRIVATE, true);
}

Test(follow, a_shared_mapping_follows_truncation_by_another_process_within_a_second)
{
	truncated(MAP_SHARED, false);
}

Test(follow, a_private_mapping_follows_truncation_by_another_process_within_a_second)
{
	truncated(MAP_PRIVATE, false);
}

/*
 * A private mapping's own copies past the new end go too, as the kernel's truncation unmaps them
 * (even_cows): a touch there raises SIGBUS, not the copy. The copies below the end, of the page
 * across it too, stay.
 */
Test(follow, a_private_mapping_loses_its_copies_past_the_end_at_truncation)
{
	int fd = make_pattern_file("f", 4 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	char c;

	cr_assert_neq(m, MAP_FAILED);
	for (int i = 0; i < 4; i++)
		m[i * PAGE] = 'X';
	other_process(SHRINK, PAGE + 100);
	cr_assert(wait_until(page_gone, (void *)(m + 2 * PAGE), 1000),
		  "a copy past the new end does not raise SIGBUS");
	cr_assert(harness_read_sigbus(m + 3 * PAGE, &c),
		  "a copy past the new end does not raise SIGBUS");
	for (int i = 0; i < 2; i++) {
		cr_assert_not(harness_read_sigbus(m + i * PAGE, &c), "page %d raises SIGBUS", i);
		cr_assert_eq(c, 'X', "page %d lost its copy", i);
	}
	cr_assert_eq(upager_munmap((void *)m, 4 * PAGE), 0);
	close(fd);
}

/* Whether the mapping at @arg shows "hello" at page 1. */
static bool shows_hello(void *arg)
{
	return !memcmp((const char *)arg + PAGE, "hello", 5);
}

static void written_by(enum change how, bool barrier, int ms)
{
	int fd = make_pattern_file("f", 2 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(*(volatile uint64_t *)(m + PAGE), pattern_at(PAGE));
	other_process_data(how, PAGE, "hello");
	if (barrier) {
		cr_assert_eq(upager_msync((void *)m, 2 * PAGE, MS_INVALIDATE), 0);
		cr_assert(shows_hello((void *)m), "the mapping does not show the write(2)");
	} else {
		cr_assert(wait_until(shows_hello, (void *)m, ms),
			  "the mapping does not show the write");
	}
	cr_assert_eq(upager_munmap((void *)m, 2 * PAGE), 0);
	close(fd);
}

Test(follow, a_live_mapping_shows_a_write_by_another_process_at_ms_invalidate)
{
	written_by(WRITE, true, 0);
}

Test(follow, a_live_mapping_shows_a_write_by_another_process_within_a_second)
{
	written_by(WRITE, false, 1000);
}

/*
 * A write through another process's own mapping (the kernel's) sends no inotify event: the daemon
 * sees the file's times move at its status read of every second.
 */
Test(follow, a_live_mapping_shows_a_write_through_another_process_s_mapping_within_two_seconds)
{
	written_by(MAP_WRITE, false, 2500);
}

Test(follow, a_live_mapping_shows_a_copy_file_range_by_another_process_within_a_second)
{
	written_by(COPY_RANGE, false, 1000);
}

/* A file like make_pattern_file()'s in /dev/shm, named in path. */
static int shm_pattern_file(size_t size)
{
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/upager-test-follow-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	for (size_t off = 0; off < size; off += 8) {
		uint64_t w = pattern_at(off);

		cr_assert_eq(pwrite(fd, &w, 8, (off_t)off), 8);
	}
	return fd;
}

/*
 * A writer in order gets the pages after the one it writes made writable at once: page 1 here,
 * never written through the mapping. A write(2) there, by this process (through a descriptor
 * opened before the daemon watched the file: no fanotify event) or by another, is the file's: the
 * mapping shows it, and the write-back at munmap leaves it (it put the page's old bytes back).
 */
static void write_next_to_a_written_page(bool own)
{
	/* For another process's write, tmpfs: no fanotify pre-content events there, so the daemon
	 * hears of the write only after it is done. */
	int fd = own ? make_pattern_file("f", 4 * PAGE, path) : shm_pattern_file(4 * PAGE);
	volatile char *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char got[5];

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(*(volatile uint64_t *)m, pattern_at(0));
	m[0] = 'a';
	if (own)
		cr_assert_eq(pwrite(fd, "hello", 5, PAGE), 5);
	else
		other_process_data(WRITE, PAGE, "hello");
	cr_assert(wait_until(shows_hello, (void *)m, 1000),
		  "the mapping does not show the write(2)");
	cr_assert_eq(upager_munmap((void *)m, 4 * PAGE), 0);
	cr_assert_eq(pread(fd, got, 5, PAGE), 5);
	cr_assert_arr_eq(got, "hello", 5, "the write-back undid the write(2)");
	cr_assert_eq(pread(fd, got, 1, 0), 1);
	cr_assert_eq(got[0], 'a', "the mapping's own write is lost");
	close(fd);
	if (!own)
		unlink(path);
}

Test(follow, a_write_of_this_process_next_to_a_page_it_wrote_through_a_mapping_is_kept)
{
	write_next_to_a_written_page(true);
}

Test(follow, a_write_of_another_process_next_to_a_page_written_through_a_mapping_is_kept)
{
	write_next_to_a_written_page(false);
}

/* Whether page 1 of the mapping at @arg reads as zeroes. */
static bool shows_hole(void *arg)
{
	const volatile uint64_t *q = (const volatile uint64_t *)((const char *)arg + PAGE);

	for (size_t i = 0; i < PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

Test(follow, a_live_mapping_shows_a_hole_punched_by_another_process_within_a_second)
{
	int fd = make_pattern_file("f", 2 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(*(volatile uint64_t *)(m + PAGE), pattern_at(PAGE));
	other_process(PUNCH, PAGE);
	cr_assert(wait_until(shows_hole, (void *)m, 1000), "the mapping does not show the hole");
	cr_assert_eq(*(volatile uint64_t *)m, pattern_at(0), "the page before the hole changed");
	cr_assert_eq(upager_munmap((void *)m, 2 * PAGE), 0);
	close(fd);
}

Test(follow, a_read_by_another_process_sees_what_a_shared_mapping_wrote)
{
	int fd = make_pattern_file("f", 2 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	memcpy((char *)m + PAGE + 10, "mapped", 6);
	/* No msync: the daemon writes the page back before the read goes ahead. */
	other_process_data(READ, PAGE + 10, "mapped");
	/* Now clean: the kernel lets reads go ahead unheard, until the mapping writes again. */
	other_process_data(READ, PAGE + 10, "mapped");
	memcpy((char *)m + 20, "second", 6);
	other_process_data(READ, 20, "second");
	cr_assert_eq(upager_munmap((void *)m, 2 * PAGE), 0);
	close(fd);
}

/*
 * Each first write to a clean page of a shared mapping sets the file's times, a change the watch
 * sees too: the daemon's own, after which every page cached stays (a cache that took it for
 * someone else's would drop its clean pages and read them again, and a write fault waiting on a
 * page it dropped would set the times again, round and round).
 */
Test(follow, a_mapping_s_own_writes_are_no_change_behind_the_cache)
{
	enum {
		N = 64
	};
	int fd = make_pattern_file("f", N * PAGE, path);
	volatile uint64_t *m =
		upager_mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct region_info ri;
	uint64_t read;

	cr_assert_neq(m, MAP_FAILED);
	for (size_t p = 0; p < N; p++)
		cr_assert_eq(m[p * PAGE / 8], pattern_at(p * PAGE));
	cr_assert(harness_region(getpid(), (void *)m, &ri));
	read = ri.pages_read;
	for (size_t p = 0; p < N; p += 2) {
		m[p * PAGE / 8] = p;
		usleep(10000); /* the watch's event is read meanwhile */
	}
	for (size_t p = 1; p < N; p += 2)
		cr_assert_eq(m[p * PAGE / 8], pattern_at(p * PAGE));
	cr_assert(harness_region(getpid(), (void *)m, &ri));
	cr_assert_eq(ri.pages_read, read, "pages read again: %" PRIu64, ri.pages_read - read);
	cr_assert_eq(upager_munmap((void *)m, N * PAGE), 0);
	close(fd);
}

/*
 * upager_msync(MS_INVALIDATE) while write-backs of the same file are under way: a thread writes
 * its own pages of the mapping and asks for their write-back (MS_ASYNC) over and over, and
 * write(2) changes the other pages, each followed by MS_INVALIDATE and a read through the
 * mapping, which must show it. The cache could not follow while a write-back ran (its own writes
 * look like anyone's) and left it for later, after the msync had returned.
 */
#define OWN_PAGES 16
#define CHANGED_PAGES 16

struct async_writer {
	volatile uint64_t *m;
	volatile bool stop;
	int failed;
};

static void *write_and_sync(void *arg)
{
	struct async_writer *w = arg;

	for (uint64_t n = 1; !w->stop; n++) {
		for (int i = 0; i < OWN_PAGES; i++)
			w->m[(CHANGED_PAGES + i) * PAGE / 8] = n;
		if (upager_msync((void *)(w->m + CHANGED_PAGES * PAGE / 8), OWN_PAGES * PAGE,
				 MS_ASYNC) < 0)
			w->failed++;
	}
	return NULL;
}

Test(follow, ms_invalidate_while_write_backs_run_shows_what_was_written)
{
	int fd = make_pattern_file("f", (CHANGED_PAGES + OWN_PAGES) * PAGE, path);
	int wfd = open(path, O_RDWR | O_CLOEXEC);
	struct async_writer w = { 0 };
	pthread_t t;
	int stale = 0;

	w.m = upager_mmap(NULL, (CHANGED_PAGES + OWN_PAGES) * PAGE, PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
	cr_assert_neq(w.m, MAP_FAILED);
	cr_assert_geq(wfd, 0);
	cr_assert_eq(pthread_create(&t, NULL, write_and_sync, &w), 0);
	for (uint64_t k = 1; k <= 3000; k++) {
		uint64_t p = k % CHANGED_PAGES, word = k << 20 | p;

		cr_assert_eq(pwrite(wfd, &word, 8, (off_t)(p * PAGE)), 8);
		cr_assert_eq(upager_msync((void *)w.m, CHANGED_PAGES * PAGE, MS_INVALIDATE), 0);
		if (w.m[p * PAGE / 8] != word)
			stale++;
	}
	w.stop = true;
	pthread_join(t, NULL);
	cr_assert_eq(w.failed, 0);
	cr_assert_eq(stale, 0,
		     "%d of 3000 reads after MS_INVALIDATE showed the page before write(2)", stale);
	cr_assert_eq(upager_munmap((void *)w.m, (CHANGED_PAGES + OWN_PAGES) * PAGE), 0);
	close(wfd);
	close(fd);
}

/*
 * A nonlinear page shows what write(2) put in the file, as the kernel's nonlinear mapping of the
 * page cache did: the copies a view holds of a file page are dropped with the page. @linear_first:
 * the page was read through the linear mapping first (the copy is then one of a valid home page;
 * else it may be read straight from the page cache). Checked at MS_INVALIDATE: without it, the
 * daemon's sweep of idle copies may drop a stale one before the check.
 */
static void nonlinear_written_by_another(bool linear_first)
{
	int fd = make_pattern_file("f", 8 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	if (linear_first)
		cr_assert_eq(*(volatile uint64_t *)(m + 2 * PAGE), pattern_at(2 * PAGE));
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, 2, 0), 0);
	cr_assert_eq(*(volatile uint64_t *)m, pattern_at(2 * PAGE));
	other_process_data(WRITE, 2 * PAGE, "hello");
	cr_assert_eq(upager_msync((void *)m, 8 * PAGE, MS_INVALIDATE), 0);
	cr_assert(!memcmp((const char *)m, "hello", 5),
		  "the nonlinear page does not show the write(2)");
	cr_assert(!memcmp((const char *)m + 2 * PAGE, "hello", 5),
		  "the linear page does not show the write(2)");
	cr_assert_eq(upager_munmap((void *)m, 8 * PAGE), 0);
	close(fd);
}

Test(follow, a_nonlinear_page_shows_a_write_by_another_process_at_ms_invalidate)
{
	nonlinear_written_by_another(false);
}

Test(follow, a_nonlinear_copy_of_a_cached_page_shows_a_write_by_another_process_at_ms_invalidate)
{
	nonlinear_written_by_another(true);
}

/*
 * A nonlinear page of a file page past the new end raises SIGBUS after truncation, as every
 * mapping of it does, whether its copy was read (@written false) or written through the view;
 * and the page across the new end reads zeroes past it.
 */
static void nonlinear_truncated(bool written)
{
	int fd = make_pattern_file("f", 8 * PAGE, path);
	volatile char *m = upager_mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char c;

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, 7, 0), 0);
	cr_assert_eq(upager_remap_file_pages((void *)(m + PAGE), PAGE, 0, 3, 0), 0);
	cr_assert_eq(*(volatile uint64_t *)m, pattern_at(7 * PAGE));
	cr_assert_eq(*(volatile uint64_t *)(m + PAGE + 200), pattern_at(3 * PAGE + 200));
	if (written) {
		m[0] = 'W';
		m[PAGE + 200] = 'W';
	}
	other_process(SHRINK, 3 * PAGE + 100);
	cr_assert_eq(upager_msync((void *)m, 8 * PAGE, MS_INVALIDATE), 0);
	cr_assert(harness_read_sigbus(m, &c), "the nonlinear page past the new end reads '%c'", c);
	cr_assert_not(harness_read_sigbus(m + PAGE + 200, &c));
	cr_assert_eq(c, 0, "the nonlinear page across the new end reads '%c' past it", c);
	cr_assert_eq(upager_munmap((void *)m, 8 * PAGE), 0);
	close(fd);
}

Test(follow, a_nonlinear_page_past_the_new_end_raises_sigbus)
{
	nonlinear_truncated(false);
}

Test(follow, a_written_nonlinear_page_past_the_new_end_raises_sigbus)
{
	nonlinear_truncated(true);
}

/*
 * A change of the file clears the daemon's bits of which blocks the file has, one per page of
 * the address space it keeps for the object (twice the file): they were written over whole, 4 MiB
 * of the daemon's memory at each change of a sparse file of 64 GiB, and a few such files of a
 * user's changed by turns kept that much each. They are given back instead.
 */
Test(follow, a_change_of_a_large_sparse_file_costs_the_daemon_little)
{
	size_t size = 64UL << 30;
	volatile char *m;
	uint64_t before, after;
	int fd = make_pattern_file("f", 2 * PAGE, path);

	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	m = upager_mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(*(volatile uint64_t *)(m + PAGE), pattern_at(PAGE));
	before = harness_status_kib(harness_daemon_pid(), "RssAnon");
	other_process_data(WRITE, PAGE, "hello");
	cr_assert(wait_until(shows_hello, (void *)m, 1000), "the mapping does not show the write");
	after = harness_status_kib(harness_daemon_pid(), "RssAnon");
	cr_assert_lt(after, before + 2048, "the change took %llu KiB of the daemon's memory",
		     (unsigned long long)(after - before));
	cr_assert_eq(upager_munmap((void *)m, size), 0);
	close(fd);
}
