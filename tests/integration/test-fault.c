// SPDX-License-Identifier: LGPL-2.1-or-later
/* Faults are served by upagerd: counted per mapping, inside system calls too, from many threads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(fault, .init = harness_start, .fini = harness_stop, .timeout = 60);

Test(fault, every_touched_page_is_a_daemon_fault)
{
	struct region_info r;
	char *p = upager_mmap(NULL, 32 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);

	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	cr_assert(harness_region(getpid(), p, &r));
	cr_assert_eq(r.faults, 0);
	for (int i = 0; i < 32; i++)
		cr_assert_not(page_present(p + i * PAGE), "page %d present before any touch", i);

	for (int i = 0; i < 5; i++)
		cr_assert_eq(p[i * 3 * PAGE], 0);
	p[20 * PAGE] = 1;
	cr_assert(harness_region(getpid(), p, &r));
	cr_assert_eq(r.faults, 6, "faults %llu", (unsigned long long)r.faults);
	cr_assert_eq(r.resident_pages, 6);
	/* A second touch of the same pages is the kernel's business alone. */
	cr_assert_eq(p[0], 0);
	cr_assert(harness_region(getpid(), p, &r));
	cr_assert_eq(r.faults, 6);
}

Test(fault, faults_show_in_upagerctl_json)
{
	char out[8192], key[64];
	char *p = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *at;
	unsigned long long faults;

	cr_assert_neq(p, MAP_FAILED);
	for (int i = 0; i < 3; i++)
		(void)*(volatile char *)(p + i * PAGE);
	cr_assert_eq(harness_ctl_list_json(out, sizeof(out)), 0);
	snprintf(key, sizeof(key), "\"start\": %llu", (unsigned long long)(uintptr_t)p);
	at = strstr(out, key);
	cr_assert(at, "no row for %p in %s", p, out);
	at = strstr(at, "\"faults\": ");
	cr_assert(at);
	cr_assert_eq(sscanf(at, "\"faults\": %llu", &faults), 1);
	cr_assert_eq(faults, 3);
	cr_assert(strstr(out, "\"backing\": \"anon\""));
	cr_assert(strstr(out, "\"resident_pages\": 3"));
}

/*
 * A program that writes much new anonymous memory of @type in order takes one fault per window of
 * zeroed pages once its run is long, not one per page; one that writes a few pages in order, or at
 * random, has those pages in memory and no others, as with the kernel. (6 MiB: within the budget
 * of the suite run with one.)
 */
static void sequential_writer(int type)
{
	const size_t pages = 1536;
	struct region_info r;
	char *p = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS, -1,
			      0);
	char *q =
		upager_mmap(NULL, 128 * PAGE, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	cr_assert_neq(q, MAP_FAILED, "upager_mmap: %m");
	for (size_t i = 0; i < pages; i++) {
		/* The first touch writes; what it did not write reads as zeroes. */
		p[i * PAGE] = (char)(i % 251 + 1);
		for (size_t k = 8; k < PAGE; k += 512)
			cr_assert_eq(p[i * PAGE + k], 0, "page %zu not zero", i);
		memset(p + i * PAGE + 1, (int)(i % 251) + 1, PAGE - 1);
	}
	for (size_t i = 0; i < pages; i++)
		cr_assert_eq(p[i * PAGE + PAGE - 1], (char)(i % 251 + 1));
	cr_assert(harness_region(getpid(), p, &r));
	/* A fault a page for the first 256, then windows of 16, 16, 32, 64... */
	cr_assert_lt(r.faults, 256 + 16, "%llu faults for %zu pages written in order",
		     (unsigned long long)r.faults, pages);
	cr_assert_eq(r.resident_pages, pages);
	/* 100 pages in order, then every other page from the end: only those are in memory. */
	for (int i = 0; i < 100; i++)
		q[i * PAGE] = 1;
	for (int i = 127; i >= 100; i -= 2)
		q[i * PAGE] = 1;
	for (int i = 0; i < 128; i++)
		cr_assert_eq(page_present(q + i * PAGE), i < 100 || i % 2 == 1, "page %d", i);
	cr_assert(harness_region(getpid(), q, &r));
	cr_assert_eq(r.faults, 114);
	upager_munmap(p, pages * PAGE);
	upager_munmap(q, 128 * PAGE);
}

Test(fault, a_long_sequential_writer_of_new_memory_takes_a_fault_per_window)
{
	sequential_writer(MAP_PRIVATE);
}

/* The same with shared anonymous memory: the pages are made in the object a window at a time. */
Test(fault, a_long_sequential_writer_of_new_shared_memory_takes_a_fault_per_window)
{
	sequential_writer(MAP_SHARED);
}

Test(fault, anonymous_private_is_zero_filled_and_writable)
{
	size_t len = 64 * PAGE;
	unsigned char *p =
		upager_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	for (size_t i = 0; i < len; i += 512)
		cr_assert_eq(p[i], 0);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(p[i], (unsigned char)(i * 7));
	cr_assert_eq(upager_munmap(p, len), 0);
}

/*
 * The pages a writer of new private memory in order gets ahead of it are its own, zeroed (pagemap
 * bit 56: mapped by this process alone), so that its writes to them fault no more: with the zero
 * page there (no page of its own, bit 56 clear) each write would fault again, into the kernel's
 * copy-on-write and a TLB flush. A page read first is the zero page, as with the kernel.
 */
Test(fault, pages_ahead_of_a_writer_in_order_are_its_own)
{
	const size_t pages = 512, written = 300;
	struct region_info r;
	size_t ahead = 0;
	uint64_t faults;
	char *p = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "upager_mmap: %m");
	for (size_t i = 0; i < written; i++)
		p[i * PAGE] = 1;
	for (size_t i = written; i < pages && page_present(p + i * PAGE); i++, ahead++)
		cr_assert(pagemap_entry(p + i * PAGE) >> 56 & 1,
			  "page %zu ahead of the writer is not its own: %#llx", i,
			  (unsigned long long)pagemap_entry(p + i * PAGE));
	cr_assert_gt(ahead, 0, "no window ahead of %zu pages written in order", written);
	cr_assert(harness_region(getpid(), p, &r));
	faults = r.faults;
	for (size_t i = written; i < written + ahead; i++) {
		cr_assert_eq(p[i * PAGE + 100], 0);
		p[i * PAGE + 100] = 2;
	}
	cr_assert(harness_region(getpid(), p, &r));
	cr_assert_eq(r.faults, faults, "the daemon saw writes to pages ahead");
	cr_assert_eq(p[(pages - 1) * PAGE], 0);
	cr_assert_not(pagemap_entry(p + (pages - 1) * PAGE) >> 56 & 1,
		      "a page read is not the zero page");
	upager_munmap(p, pages * PAGE);
}

Test(fault, anonymous_shared_is_shared_with_children)
{
	int *p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			     0);
	int status;
	pid_t c;

	cr_assert_neq(p, MAP_FAILED);
	p[0] = 11; /* touched before the fork */
	c = harness_fork();
	if (c == 0) {
		/* p[PAGE/4 * 2] was never touched by anyone: the child's first touch */
		p[2 * PAGE / sizeof(int)] = 22;
		_exit(p[0] == 11 ? 0 : 1);
	}
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(p[2 * PAGE / sizeof(int)], 22);
	p[PAGE / sizeof(int)] = 33;
	c = harness_fork();
	if (c == 0)
		_exit(p[PAGE / sizeof(int)] == 33 ? 0 : 1);
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(fault, dev_zero_maps_as_anonymous_memory)
{
	int z = open("/dev/zero", O_RDWR);
	char *priv, *shared;
	struct region_info r;
	int status;
	pid_t c;

	cr_assert(z >= 0);
	/* As Linux: private, it is zero-filled private memory; shared, memory shared with
	 * children. Both are the daemon's, as anonymous mappings are. */
	priv = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0);
	shared = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, z, 8 * PAGE);
	cr_assert_neq(priv, MAP_FAILED, "%m");
	cr_assert_neq(shared, MAP_FAILED, "%m");
	cr_assert(harness_region(getpid(), priv, &r));
	cr_assert(harness_region(getpid(), shared, &r));
	cr_assert_eq(priv[PAGE + 7], 0);
	priv[PAGE + 7] = 'p';
	c = harness_fork();
	if (c == 0) {
		shared[2 * PAGE] = 's';
		priv[PAGE + 7] = 'c';
		_exit(0);
	}
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(shared[2 * PAGE], 's');
	cr_assert_eq(priv[PAGE + 7], 'p');
	cr_assert_eq(upager_munmap(priv, 4 * PAGE), 0);
	cr_assert_eq(upager_munmap(shared, 4 * PAGE), 0);
	close(z);
}

Test(fault, read_and_write_syscalls_on_untouched_pages)
{
	char path[400], path2[400];
	int fd = make_pattern_file("src", 16 * PAGE, path);
	int out = open(strcat(strcpy(path2, harness_tmpdir()), "/dst"), O_RDWR | O_CREAT, 0644);
	uint64_t *m = upager_mmap(NULL, 16 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	uint64_t *a = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t back[2 * PAGE / 8];

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(a, MAP_FAILED);
	cr_assert(out >= 0);
	/* write(2) from an untouched pager mapping: the kernel faults on our behalf. */
	cr_assert_eq(pwrite(out, (char *)m + 4 * PAGE, 2 * PAGE, 0), (ssize_t)(2 * PAGE), "%m");
	cr_assert_eq(pread(out, back, sizeof(back), 0), (ssize_t)sizeof(back));
	for (size_t i = 0; i < 2 * PAGE / 8; i++)
		cr_assert_eq(back[i], pattern_at(4 * PAGE + i * 8));
	/* read(2) into an untouched pager mapping. */
	cr_assert_eq(pread(fd, (char *)a + 8 * PAGE, 3 * PAGE, PAGE), (ssize_t)(3 * PAGE), "%m");
	for (size_t i = 0; i < 3 * PAGE / 8; i++)
		cr_assert_eq(a[8 * PAGE / 8 + i], pattern_at(PAGE + i * 8));
	cr_assert_eq(a[0], 0);
}

struct thread_arg {
	const uint64_t *base;
	size_t len;
	unsigned seed;
	int errors;
};

static void *reader(void *p)
{
	struct thread_arg *t = p;

	for (int i = 0; i < 4000; i++) {
		size_t off =
			((size_t)rand_r(&t->seed) * 4096 + (size_t)rand_r(&t->seed) % 512 * 8) %
			t->len;

		if (t->base[off / 8] != pattern_at(off))
			t->errors++;
	}
	return NULL;
}

Test(fault, many_threads_read_a_large_file_concurrently)
{
	size_t len = 256UL << 20;
	int fd = make_pattern_file("big", len, NULL);
	const uint64_t *m = upager_mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	struct thread_arg args[4];
	pthread_t th[4];

	cr_assert_neq(m, MAP_FAILED);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .base = m,
					       .len = len,
					       .seed = (unsigned)i * 7919 + 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].errors, 0, "thread %d read %d wrong words", i, args[i].errors);
	}
}

static void unprivileged_client(void *arg)
{
	char *p;
	int pfd[2], status;
	pid_t c;

	(void)arg;
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(20);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(21);
	p[0] = 1; /* a user-mode fault: served */
	if (p[PAGE] != 0)
		_exit(22);
	/* A kernel-mode fault on an untouched page fails with EFAULT (UFFD_USER_MODE_ONLY). */
	if (pipe(pfd) < 0 || write(pfd[1], "abc", 3) != 3)
		_exit(23);
	errno = 0;
	if (read(pfd[0], p + 2 * PAGE, 3) != -1 || errno != EFAULT)
		_exit(24);
	/* Its children are still followed (the daemon asks for fork events, not the client). */
	c = harness_fork();
	if (c == 0)
		_exit(p[0] == 1 && p[3 * PAGE] == 0 ? 0 : 1);
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		_exit(25);
	_exit(0);
}

Test(fault, unprivileged_clients_fall_back_to_user_mode_only)
{
	int status;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	status = run_child(unprivileged_client, NULL);
	cr_assert(WIFEXITED(status), "status %x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
}

/* mincore(2) of 64 pages of shared anonymous memory after writes to pages 0 to 3, then 10. */
static void touched_shared_anon(void *(*map)(void *, size_t, int, int, int, off_t),
				unsigned char vec[64])
{
	char *p = map(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "%m");
	for (int i = 0; i < 4; i++)
		p[i * PAGE] = 1;
	p[10 * PAGE] = 1;
	cr_assert_eq(mincore(p, 64 * PAGE, vec), 0);
	munmap(p, 64 * PAGE);
}

static void *kernel_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
	return mmap(a, l, p, f, fd, o);
}

/*
 * Shared anonymous memory has the pages a program touched and no others, as with the kernel, also
 * for a sequential toucher (LTP mlock201 counts them with mincore(2)).
 */
Test(fault, shared_anonymous_memory_has_only_the_pages_touched)
{
	unsigned char want[64], got[64];

	touched_shared_anon(kernel_mmap, want);
	touched_shared_anon(upager_mmap, got);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(want[i] & 1, i < 4 || i == 10, "the kernel's page %d", i);
		cr_assert_eq(got[i] & 1, want[i] & 1, "page %d: %d, the kernel's %d", i, got[i] & 1,
			     want[i] & 1);
	}
}

/* A second mapping of @p's two pages by mremap(p, 0, ...): each shows what the other writes. */
static void dup_shows_both_ways(char *p, const char *what)
{
	char *d = mremap(p, 0, 2 * PAGE, MREMAP_MAYMOVE);

	cr_assert_neq(d, MAP_FAILED, "%s: mremap: %s", what, strerror(errno));
	cr_assert_eq(d[0], 'P', "%s: the copy shows the page written before", what);
	d[PAGE] = 'D';
	cr_assert_eq(p[PAGE], 'D', "%s: the mapping shows the copy's write", what);
	p[PAGE + 1] = 'Q';
	cr_assert_eq(d[PAGE + 1], 'Q', "%s: the copy shows the mapping's write", what);
	cr_assert_eq(munmap(d, 2 * PAGE), 0);
}

/*
 * mremap(2) with an old size of 0 maps the pages of a shared mapping a second time, as Linux
 * does: the daemon serves the new mapping too (the event names no length: it reads the new
 * mapping's). Its every touch raised SIGBUS, a fault outside every region.
 */
Test(fault, a_second_mapping_of_shared_pages_by_mremap_is_served)
{
	char path[512];
	int fd = make_pattern_file("dup", 2 * PAGE, path);
	char *f = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *a = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);

	cr_assert(f != MAP_FAILED && a != MAP_FAILED);
	f[0] = 'P';
	a[0] = 'P';
	dup_shows_both_ways(f, "a shared file mapping");
	dup_shows_both_ways(a, "shared anonymous memory");
	cr_assert_eq(upager_msync(f, 2 * PAGE, MS_SYNC), 0);
	cr_assert_eq(upager_munmap(f, 2 * PAGE), 0);
	cr_assert_eq(upager_munmap(a, 2 * PAGE), 0);
	close(fd);
}
