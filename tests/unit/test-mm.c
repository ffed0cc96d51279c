// SPDX-License-Identifier: LGPL-2.1-or-later
/* The mark of a client's memory (daemon/mm.c): put through a userfaultfd, seen through a pid. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/mm.h"
#include "self-mark.h"

/* A userfaultfd of this process with @page registered for missing faults, or -1. */
static int uffd_on(void *page)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)page, 4096 },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0 || ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
		return -1;
	return fd;
}

Test(mm, a_mark_is_the_same_page_for_the_same_seed_and_another_for_another)
{
	static uint64_t a[512], b[512];
	struct mm_mark m = { 1, 4096, { 5, 6 } };

	mm_mark_page(&m, a);
	mm_mark_page(&m, b);
	cr_assert(!memcmp(a, b, sizeof(a)));
	cr_assert(mm_mark_check(&m, a));
	m.seed[0]++;
	cr_assert_not(mm_mark_check(&m, a));
	m.seed[0] = m.seed[1] = 0;
	cr_assert_not(mm_mark_check(&m, a), "no seed is no mark");
}

Test(mm, a_mark_put_through_the_userfaultfd_shows_through_the_pid_only)
{
	char *token = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mm_mark m = { getpid(), (uintptr_t)token, { 0, 0 } };
	int uffd = uffd_on(token), status;
	bool seen;
	pid_t child;

	cr_assert_neq(token, MAP_FAILED);
	if (uffd < 0)
		cr_skip_test("userfaultfd: %m");
	cr_assert_not(mm_mark_seen(&m, getpid()), "no mark put yet");
	cr_assert_eq(mm_mark_put(&m, uffd, true), 0);
	cr_assert(m.seed[0] || m.seed[1]);
	cr_assert(mm_mark_seen(&m, getpid()));
	cr_assert(mm_mark_check(&m, token), "the page holds the mark");
	cr_assert_eq(mm_mark_put(&m, uffd, true), -EEXIST, "a page mapped is not marked again");
	/* A child, with the page wiped at the fork as the library has it, does not show it. */
	cr_assert_eq(madvise(token, 4096, MADV_WIPEONFORK), 0);
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	cr_assert_gt(child, 0);
	seen = mm_mark_seen(&m, child);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	cr_assert_not(seen, "a child shows the mark of its parent's memory");
	cr_assert_not(mm_mark_seen(&m, 0));
	close(uffd);
}

Test(mm, a_proc_file_opens_only_for_a_pid_that_shows_the_mark)
{
	struct mm_mark m = self_mark();
	int fd = mm_open(&m, "maps");

	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	close(fd);
	m.seed[1] ^= 1;
	cr_assert_eq(mm_open(&m, "maps"), -ESRCH);
	m.pid = 0;
	cr_assert_eq(mm_open(&m, "maps"), -ESRCH);
}

Test(mm, present_pages_are_counted_from_the_pagemap_and_holes_are_not)
{
	char *p =
		mmap(NULL, 1024 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < 1024; i += 3)
		p[i * 4096] = 1;
	/* Every third page written: 342 of 1,024, over two reads of 512 entries. */
	cr_assert_eq(mm_present_pages(fd, (uintptr_t)p, 1024), 342);
	cr_assert_eq(mm_present_pages(fd, (uintptr_t)p + 4096, 2), 0);
	cr_assert_eq(madvise(p, 512 * 4096, MADV_DONTNEED), 0);
	cr_assert_eq(mm_present_pages(fd, (uintptr_t)p, 1024), 171);
	cr_assert_eq(mm_present_pages(-1, (uintptr_t)p, 1024), 0, "what cannot be read counts not");
	close(fd);
	munmap(p, 1024 * 4096);
}

static void *open_pagemaps(void *arg)
{
	const struct mm_mark *m = arg;
	intptr_t failed = 0;

	for (int i = 0; i < 200; i++) {
		int fd = mm_open_waiting(m, "pagemap");

		failed += fd < 0;
		if (fd >= 0)
			close(fd);
	}
	return (void *)failed;
}

/*
 * Worker threads open a process's files while the loop reads marks: each reads the mark itself
 * (the loop's reader thread takes one read at a time: threads that shared it took each other's
 * reads, which then timed out and counted the user's marks as stalled for ten seconds).
 */
Test(mm, marks_read_from_threads_and_the_loop_at_once_are_all_seen)
{
	struct mm_mark m = self_mark();
	pthread_t t[4];
	int unseen = 0;

	for (int k = 0; k < 4; k++)
		cr_assert_eq(pthread_create(&t[k], NULL, open_pagemaps, &m), 0);
	for (int i = 0; i < 200; i++)
		unseen += !mm_mark_seen(&m, m.pid);
	for (int k = 0; k < 4; k++) {
		void *failed;

		cr_assert_eq(pthread_join(t[k], &failed), 0);
		cr_assert_eq((intptr_t)failed, 0, "a thread's open failed %ld times",
			     (long)(intptr_t)failed);
	}
	cr_assert_eq(unseen, 0, "the loop's mark was not seen %d times", unseen);
}
