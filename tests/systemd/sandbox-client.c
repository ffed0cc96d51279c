// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A client of a sandboxed upagerd (sandbox-test.py): each kind of mapping once, its file in a
 * directory the daemon's sandbox hides, so that the daemon reaches it only through the
 * descriptors it is sent.
 *
 * A shared file mapping written, msynced and read back from the file; private anonymous memory;
 * MAP_POPULATE of the file (pages present before they are touched, /proc/self/pagemap); a
 * nonlinear mapping (upager_remap_file_pages) showing the file's pages in reverse; a
 * MAP_GROWSDOWN mapping grown by GROW_PAGES pages; a read(2) that sees what a shared mapping wrote
 * without msync (the daemon's fanotify pre-content events, which need CAP_SYS_ADMIN at its start).
 * A "FAIL" line for each wrong thing, "done ok"
 * and exit status 0 if none.
 *
 * Usage: sandbox-client FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "upager.h"

#define PAGE 4096UL
#define PAGES 64UL
#define GROW_PAGES 100UL

static int failures;

#define FAIL(...)                            \
	do {                                 \
		printf("FAIL " __VA_ARGS__); \
		printf("\n");                \
		failures++;                  \
	} while (0)

/* What page p of the file holds before the client writes: its number, then one byte. */
static void file_pattern(uint8_t *buf, uint64_t p)
{
	memcpy(buf, &p, 8);
	memset(buf + 8, (int)((p * 13 + 1) & 0xff), PAGE - 8);
}

static int page_present(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = (off_t)((uintptr_t)addr / PAGE * 8);

	if (fd < 0 || pread(fd, &e, 8, off) != 8) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return (int)(e >> 63);
}

static void check_shared(int fd)
{
	uint8_t want[PAGE], got[PAGE];
	uint8_t *m = upager_mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED) {
		FAIL("upager_mmap MAP_SHARED: %s", strerror(errno));
		return;
	}
	for (unsigned long p = 0; p < PAGES; p++) {
		file_pattern(want, p);
		if (memcmp(m + p * PAGE, want, PAGE))
			FAIL("shared page %lu does not hold the file's data", p);
		if (p % 2 == 0)
			memset(m + p * PAGE + 8, 0xa5, 64);
	}
	if (upager_msync(m, PAGES * PAGE, MS_SYNC) < 0)
		FAIL("upager_msync: %s", strerror(errno));
	for (unsigned long p = 0; p < PAGES; p += 2) {
		file_pattern(want, p);
		memset(want + 8, 0xa5, 64);
		if (pread(fd, got, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE ||
		    memcmp(got, want, PAGE))
			FAIL("page %lu on disk lacks what the mapping wrote", p);
	}
	if (upager_munmap(m, PAGES * PAGE) < 0)
		FAIL("upager_munmap: %s", strerror(errno));
	printf("shared file mapping ok\n");
}

static void check_anonymous(void)
{
	uint8_t *m = upager_mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED) {
		FAIL("upager_mmap anonymous: %s", strerror(errno));
		return;
	}
	for (unsigned long p = 0; p < PAGES; p++) {
		if (m[p * PAGE] || m[p * PAGE + PAGE - 1])
			FAIL("anonymous page %lu not zero", p);
		memset(m + p * PAGE, (int)p, PAGE);
	}
	for (unsigned long p = 0; p < PAGES; p++)
		if (m[p * PAGE + 100] != (uint8_t)p)
			FAIL("anonymous page %lu lost its write", p);
	upager_munmap(m, PAGES * PAGE);
	printf("private anonymous mapping ok\n");
}

static void check_populate(int fd)
{
	uint8_t want[PAGE];
	uint8_t *m = upager_mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	unsigned long absent = 0;

	if (m == MAP_FAILED) {
		FAIL("upager_mmap MAP_POPULATE: %s", strerror(errno));
		return;
	}
	for (unsigned long p = 0; p < PAGES; p++)
		if (page_present(m + p * PAGE) != 1)
			absent++;
	if (absent)
		FAIL("MAP_POPULATE left %lu of %lu pages absent", absent, PAGES);
	for (unsigned long p = 1; p < PAGES; p += 2) {
		file_pattern(want, p);
		if (memcmp(m + p * PAGE, want, PAGE))
			FAIL("populated page %lu has wrong data", p);
	}
	upager_munmap(m, PAGES * PAGE);
	printf("MAP_POPULATE ok\n");
}

static void check_nonlinear(int fd)
{
	uint8_t want[PAGE];
	uint8_t *m = upager_mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED) {
		FAIL("upager_mmap nonlinear: %s", strerror(errno));
		return;
	}
	/* Odd pages only: the even ones were written by check_shared(). */
	for (unsigned long i = 0; i < PAGES; i++)
		if (upager_remap_file_pages(m + i * PAGE, PAGE, 0, PAGES - 1 - i, 0) < 0) {
			FAIL("upager_remap_file_pages: %s", strerror(errno));
			upager_munmap(m, PAGES * PAGE);
			return;
		}
	for (unsigned long i = 0; i < PAGES; i++) {
		unsigned long p = PAGES - 1 - i;

		if (p % 2 == 0)
			continue;
		file_pattern(want, p);
		if (memcmp(m + i * PAGE, want, PAGE))
			FAIL("nonlinear page %lu does not show file page %lu", i, p);
	}
	upager_munmap(m, PAGES * PAGE);
	printf("nonlinear mapping ok\n");
}

static void check_growsdown(void)
{
	uint8_t *gd;

	setrlimit(RLIMIT_STACK, &(struct rlimit){ (GROW_PAGES + 64) * PAGE, RLIM_INFINITY });
	gd = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	if (gd == MAP_FAILED) {
		FAIL("upager_mmap MAP_GROWSDOWN: %s", strerror(errno));
		return;
	}
	for (unsigned long p = 1; p <= GROW_PAGES; p++) {
		if (gd[-(long)(p * PAGE)] != 0)
			FAIL("grown page %lu not zero", p);
		memset(gd - p * PAGE, (int)(p & 0xff), PAGE);
	}
	for (unsigned long p = 1; p <= GROW_PAGES; p++)
		if (gd[-(long)(p * PAGE) + 17] != (uint8_t)(p & 0xff))
			FAIL("grown page %lu lost its write", p);
	printf("MAP_GROWSDOWN grew by %lu pages ok\n", GROW_PAGES);
}

/* Through a descriptor opened after the mapping: the kernel asks the daemon before the read. */
static void check_read_coherent(const char *path, int fd)
{
	char got[16] = "";
	uint8_t *m = upager_mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int rfd;

	if (m == MAP_FAILED) {
		FAIL("upager_mmap MAP_SHARED: %s", strerror(errno));
		return;
	}
	memcpy(m + 3 * PAGE + 100, "coherent", 8);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0 || pread(rfd, got, 8, (off_t)(3 * PAGE + 100)) != 8)
		FAIL("reading %s: %s", path, strerror(errno));
	else if (memcmp(got, "coherent", 8))
		FAIL("read(2) does not see what the shared mapping wrote (\"%.8s\")", got);
	else
		printf("read(2) sees a shared mapping's write ok\n");
	if (rfd >= 0)
		close(rfd);
	upager_munmap(m, PAGES * PAGE);
}

int main(int argc, char **argv)
{
	uint8_t buf[PAGE];
	int fd;

	if (argc != 2)
		return 2;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return 2;
	for (unsigned long p = 0; p < PAGES; p++) {
		file_pattern(buf, p);
		if (write(fd, buf, PAGE) != (ssize_t)PAGE)
			return 2;
	}
	check_shared(fd);
	check_anonymous();
	check_populate(fd);
	check_nonlinear(fd);
	check_growsdown();
	check_read_coherent(argv[1], fd);
	printf(failures ? "done with %d failures\n" : "done ok\n", failures);
	return failures ? 1 : 0;
}
