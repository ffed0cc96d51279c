// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A client that keeps working while its daemon is killed and started again (restart-test.py).
 *
 * It maps a file MAP_SHARED, private and shared anonymous memory, and a nonlinear mapping of a
 * second file, then steps through their pages: each step touches fresh pages (reads the file's
 * pattern or zeroes, writes its own), checks every page it touched so far now and then, and makes
 * a request of the daemon (a small extra mapping, an msync). A second thread faults fresh pages
 * without pause, so that the daemon always has faults in hand when it dies. A child forked at the
 * start waits until the parent is done, then reads the file and the shared memory through the
 * mappings it inherited, served by whatever daemon took over its address space, and faults in
 * fresh private pages; a MAP_GROWSDOWN mapping grows by a page every few steps, before and after
 * each restart ("grown N" every 8 pages), for a while by leaps below its guard page. At the end
 * the parent syncs, unmaps and checks the file on disk. Progress goes to stdout ("step N"); any
 * wrong byte is a "FAIL" line and exit status 1.
 *
 * Usage: restart-client FILE NLFILE STEPS STEP_USEC
 * FILE holds STEPS pages of file_pattern(p, 0); NLFILE 32 pages of file_pattern(p, 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upager.h"

#define PAGE 4096UL
#define SPIN_PAGES 1024UL /* what the second thread faults in and drops, again and again */
#define NL_PAGES 32UL
#define GROW_PAGES 200UL /* what the MAP_GROWSDOWN mapping grows by, within stack_guard_gap */
#define GROW_EVERY 4UL /* steps per page grown: it grows across every restart */

static atomic_bool stop_spin;
static int failures;

#define FAIL(...)                            \
	do {                                 \
		printf("FAIL " __VA_ARGS__); \
		printf("\n");                \
		fflush(stdout);              \
		failures++;                  \
	} while (0)

/* Page p of a file as restart-test.py writes it: 8 bytes of p, then one byte repeated. */
static void file_pattern(uint8_t *buf, uint64_t p, unsigned salt)
{
	memcpy(buf, &p, 8);
	memset(buf + 8, (int)((p * 13 + 1 + salt * 101) & 0xff), PAGE - 8);
}

/* What the client writes into page p of a mapping of kind k. */
static void own_pattern(uint8_t *buf, uint64_t p, unsigned k)
{
	uint64_t head = 0xc0ffee0000000000ULL | ((uint64_t)k << 32) | p;

	memcpy(buf, &head, 8);
	memset(buf + 8, (int)((p * 7 + 3 + k * 31) & 0xff), PAGE - 8);
}

/* What page p of the shared file mapping holds: the client writes the even pages. */
static void shared_file_page(uint8_t *buf, uint64_t p)
{
	if (p % 2 == 0)
		own_pattern(buf, p, 0);
	else
		file_pattern(buf, p, 0);
}

static int same(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, PAGE) == 0;
}

/* Fault fresh pages without pause: write every page, check them, drop them, again. */
static void *spin(void *arg)
{
	uint8_t *m = arg;

	for (uint64_t round = 1; !atomic_load(&stop_spin); round++) {
		for (uint64_t p = 0; p < SPIN_PAGES; p++) {
			uint64_t *w = (uint64_t *)(m + p * PAGE);

			if (*w != 0)
				FAIL("spin page %lu not zero", (unsigned long)p);
			*w = round << 32 | p;
		}
		for (uint64_t p = 0; p < SPIN_PAGES; p++)
			if (*(uint64_t *)(m + p * PAGE) != (round << 32 | p))
				FAIL("spin page %lu changed", (unsigned long)p);
		madvise(m, SPIN_PAGES * PAGE, MADV_DONTNEED);
	}
	return NULL;
}

/* The forked child: check what the parent left, through the inherited mappings. */
static int child(int go, uint8_t *file, uint8_t *anon, uint8_t *shanon, unsigned long steps)
{
	uint8_t want[PAGE];
	char c;

	if (read(go, &c, 1) != 1)
		return 2;
	for (unsigned long p = 0; p < steps; p++) {
		shared_file_page(want, p);
		if (!same(file + p * PAGE, want))
			FAIL("child: file page %lu has wrong data", p);
		own_pattern(want, p, 2);
		if (!same(shanon + p * PAGE, want))
			FAIL("child: shared anonymous page %lu has wrong data", p);
		memset(want, 0, PAGE);
		if (!same(anon + p * PAGE, want))
			FAIL("child: private page %lu not zero", p);
		own_pattern(want, p, 4);
		memcpy(anon + p * PAGE, want, PAGE);
		if (!same(anon + p * PAGE, want))
			FAIL("child: private page %lu lost a write", p);
	}
	if (upager_msync(file, steps * PAGE, MS_SYNC) < 0)
		FAIL("child: upager_msync: %s", strerror(errno));
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	uint8_t want[PAGE];
	uint8_t *file, *anon, *shanon, *nl, *spinmem, *gd;
	unsigned long steps, usec, grown = 0;
	int fd, nlfd, go[2], status;
	pthread_t th;
	pid_t kid;

	if (argc != 5)
		return 2;
	steps = strtoul(argv[3], NULL, 10);
	usec = strtoul(argv[4], NULL, 10);
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	nlfd = open(argv[2], O_RDWR | O_CLOEXEC);
	if (fd < 0 || nlfd < 0)
		return 2;
	file = upager_mmap(NULL, steps * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	anon = upager_mmap(NULL, steps * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	shanon = upager_mmap(NULL, steps * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			     -1, 0);
	nl = upager_mmap(NULL, NL_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, nlfd, 0);
	spinmem = upager_mmap(NULL, SPIN_PAGES * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (file == MAP_FAILED || anon == MAP_FAILED || shanon == MAP_FAILED || nl == MAP_FAILED ||
	    spinmem == MAP_FAILED) {
		printf("FAIL upager_mmap: %s\n", strerror(errno));
		return 1;
	}
	/* The first half of the nonlinear mapping shows the second half of its file, reversed. */
	for (unsigned long i = 0; i < NL_PAGES / 2; i++)
		if (upager_remap_file_pages(nl + i * PAGE, PAGE, 0, NL_PAGES - 1 - i, 0) < 0) {
			printf("FAIL upager_remap_file_pages: %s\n", strerror(errno));
			return 1;
		}
	if (pipe(go) < 0)
		return 2;
	kid = fork();
	if (kid == 0) {
		close(go[1]);
		_exit(child(go[0], file, anon, shanon, steps));
	}
	close(go[0]);
	/*
	 * A MAP_GROWSDOWN mapping that grows by a page every few steps: its growth channel must
	 * carry over to each new daemon. Mappings made later go where the kernel's stack_guard_gap below
	 * it ends, as they would below the kernel's own MAP_GROWSDOWN mapping: it grows within that.
	 */
	setrlimit(RLIMIT_STACK, &(struct rlimit){ (steps + 64) * PAGE, (steps + 64) * PAGE });
	gd = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	if (gd == MAP_FAILED) {
		printf("FAIL upager_mmap MAP_GROWSDOWN: %s\n", strerror(errno));
		return 1;
	}
	pthread_create(&th, NULL, spin, spinmem);
	printf("ready\n");
	fflush(stdout);

	for (unsigned long p = 0; p < steps; p++) {
		/* Fresh pages: the file's own data, or zeroes. */
		file_pattern(want, p, 0);
		if (!same(file + p * PAGE, want))
			FAIL("file page %lu has wrong data", p);
		if (p % 2 == 0) {
			own_pattern(want, p, 0);
			memcpy(file + p * PAGE, want, PAGE);
		}
		for (unsigned k = 1; k <= 2; k++) {
			uint8_t *m = k == 1 ? anon : shanon;

			memset(want, 0, PAGE);
			if (!same(m + p * PAGE, want))
				FAIL("anonymous (%u) page %lu not zero", k, p);
			own_pattern(want, p, k);
			memcpy(m + p * PAGE, want, PAGE);
		}
		if (p % GROW_EVERY == 0 && grown < GROW_PAGES) {
			uint8_t *page = gd - (grown + 1) * PAGE;

			/*
			 * From 16 pages grown to 47 it leaps: the sentinel, two pages down, past the
			 * guard page, is touched first, as a stack frame larger than a page does.
			 */
			if (grown >= 16 && grown < 48 && grown % 2 == 0 &&
			    *(volatile uint8_t *)(page - PAGE))
				FAIL("grown page %lu not zero", grown + 1);
			memset(want, 0, PAGE);
			if (!same(page, want))
				FAIL("grown page %lu not zero", grown);
			own_pattern(want, grown, 4);
			memcpy(page, want, PAGE);
			if (++grown % 8 == 0) {
				printf("grown %lu\n", grown);
				fflush(stdout);
			}
		}
		if (p < NL_PAGES / 2) {
			file_pattern(want, NL_PAGES - 1 - p, 1);
			if (!same(nl + p * PAGE, want))
				FAIL("nonlinear page %lu has wrong data", p);
			if (p % 4 == 0) {
				own_pattern(want, p, 3);
				memcpy(nl + p * PAGE, want, PAGE);
			}
		}
		/* Now and then: every page so far, and a request of the daemon. */
		if (p % 64 == 63) {
			for (unsigned long q = 0; q <= p; q++) {
				shared_file_page(want, q);
				if (!same(file + q * PAGE, want))
					FAIL("file page %lu changed", q);
				own_pattern(want, q, 1);
				if (!same(anon + q * PAGE, want))
					FAIL("anonymous page %lu changed", q);
				own_pattern(want, q, 2);
				if (!same(shanon + q * PAGE, want))
					FAIL("shared anonymous page %lu changed", q);
				own_pattern(want, q, 4);
				if (q < grown && !same(gd - (q + 1) * PAGE, want))
					FAIL("grown page %lu changed", q);
			}
			for (unsigned long q = 0; q < NL_PAGES / 2 && q <= p; q++) {
				if (q % 4 == 0)
					own_pattern(want, q, 3);
				else
					file_pattern(want, NL_PAGES - 1 - q, 1);
				if (!same(nl + q * PAGE, want))
					FAIL("nonlinear page %lu changed", q);
			}
			{
				/*
				 * A remap of a page of the second half, which the library does in
				 * the shared table without the daemon while the page has no copy:
				 * the table must be the one each new daemon took over. Every other
				 * one populates, and the library may copy the page in itself under
				 * a claim that the daemon, or the next one, takes over. It shows a
				 * page of the first half of the file, which nothing writes.
				 */
				unsigned long j = (p / 64) % (NL_PAGES / 2);
				unsigned long f = (p / 64 + 5) % (NL_PAGES / 2);
				uint8_t *page = nl + (NL_PAGES / 2 + j) * PAGE;
				int flags = (p / 64) % 2 ? 0 : MAP_NONBLOCK;

				if (upager_remap_file_pages(page, PAGE, 0, f, flags) < 0)
					FAIL("upager_remap_file_pages %s: %s",
					     flags ? "MAP_NONBLOCK" : "populating",
					     strerror(errno));
				file_pattern(want, f, 1);
				if (!same(page, want))
					FAIL("nonlinear page %lu remapped to %lu has wrong data",
					     NL_PAGES / 2 + j, f);
			}
			{
				uint8_t *x = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd,
							 (off_t)(p - 3) * (off_t)PAGE);

				if (x == MAP_FAILED)
					FAIL("extra upager_mmap: %s", strerror(errno));
				else if (!same(x + 3 * PAGE, file + p * PAGE))
					FAIL("extra mapping of page %lu differs", p);
				if (x != MAP_FAILED && upager_munmap(x, 4 * PAGE) < 0)
					FAIL("upager_munmap: %s", strerror(errno));
			}
			if (upager_msync(file, steps * PAGE, MS_SYNC) < 0)
				FAIL("upager_msync: %s", strerror(errno));
			printf("step %lu\n", p + 1);
			fflush(stdout);
		}
		usleep((useconds_t)usec);
	}
	atomic_store(&stop_spin, true);
	pthread_join(th, NULL);
	if (write(go[1], "g", 1) != 1 || waitpid(kid, &status, 0) != kid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		FAIL("the forked child found wrong data");

	if (upager_msync(file, steps * PAGE, MS_SYNC) < 0 ||
	    upager_msync(nl, NL_PAGES * PAGE, MS_SYNC) < 0)
		FAIL("upager_msync: %s", strerror(errno));
	if (upager_munmap(file, steps * PAGE) < 0 || upager_munmap(nl, NL_PAGES * PAGE) < 0)
		FAIL("upager_munmap: %s", strerror(errno));
	for (unsigned long p = 0; p < steps; p++) {
		uint8_t got[PAGE];

		shared_file_page(want, p);
		if (pread(fd, got, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE || !same(got, want))
			FAIL("file page %lu on disk is wrong", p);
	}
	printf(failures ? "done with %d failures\n" : "done ok\n", failures);
	return failures ? 1 : 0;
}
