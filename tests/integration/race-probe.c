// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A program that knows nothing of upager, run by test-preload under upager-run -a: threads that
 * change the mappings while other threads use theirs, each mode for SECONDS, each page checked.
 * With the kernel alone none of them ever sees a wrong word.
 *
 *   race-probe fixed SECONDS   the main thread maps over reservations of its own (MAP_FIXED), a
 *                              second thread maps, fills and checks memory of its own with the
 *                              kernel's call (syscall(2)), never through the preload
 *   race-probe remap SECONDS   the same, the main thread moving memory over its reservations
 *                              (mremap(MREMAP_FIXED))
 *   race-probe move SECONDS    the main thread moves memory of upager's into reservations made
 *                              with the kernel's call, the second thread maps, fills and checks
 *                              memory of upager's
 *   race-probe copies FILE SECONDS  eight private mappings of FILE (made, 16 MiB) in a ring: each
 *                              round one is unmapped and another made (at the same address, most
 *                              often), each of its pages written (a copy), and every page of
 *                              every mapping checked; spinning threads hold the CPUs
 *
 * Output: "MODE: rounds=N bad=B", exit status 0 if B is 0. A signal in a checking thread is a failure too (exit status 3).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define PAGES 16 /* of each mapping of the fixed, remap and move modes */
#define KEPT 32 /* mappings the second thread keeps at a time */

static atomic_bool stop;
static atomic_ulong bad;
static bool raw; /* the second thread maps with the kernel's call */

static uint64_t tag_of(const uint64_t *w)
{
	return 0x5a5a000000000000ULL | (uintptr_t)w;
}

static void *map_anon(size_t length)
{
	if (raw)
		return (void *)syscall(SYS_mmap, NULL, length, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void unmap_anon(void *p, size_t length)
{
	if (raw)
		syscall(SYS_munmap, p, length);
	else
		munmap(p, length);
}

/* The second thread: mappings of its own, each page tagged with its address and checked. */
static void *keeper(void *arg)
{
	uint64_t *kept[KEPT] = { 0 };

	(void)arg;
	for (unsigned long n = 0; !atomic_load(&stop); n++) {
		uint64_t **k = &kept[n % KEPT];

		for (size_t i = 0; *k && i < PAGES * PAGE / 8; i += 512)
			if ((*k)[i] != tag_of(&(*k)[i])) {
				if (atomic_fetch_add(&bad, 1) < 3)
					fprintf(stderr, "page %p holds %#llx\n", (void *)&(*k)[i],
						(unsigned long long)(*k)[i]);
				break;
			}
		if (*k)
			unmap_anon(*k, PAGES * PAGE);
		*k = map_anon(PAGES * PAGE);
		if (*k == MAP_FAILED)
			exit(2);
		for (size_t i = 0; i < PAGES * PAGE / 8; i += 512)
			(*k)[i] = tag_of(&(*k)[i]);
	}
	return NULL;
}

static void on_signal(int sig)
{
	static const char msg[] = "a signal: a mapping went away under its thread\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

/* fixed, remap, move: @round once a round of the main thread while the keeper runs. */
static int race(const char *mode, int seconds, bool (*round)(void))
{
	time_t end = time(NULL) + seconds;
	unsigned long rounds = 0;
	pthread_t t;
	bool ok = true;

	signal(SIGSEGV, on_signal);
	signal(SIGBUS, on_signal);
	if (pthread_create(&t, NULL, keeper, NULL) != 0)
		return 2;
	while (ok && time(NULL) < end) {
		ok = round();
		rounds++;
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	printf("%s: rounds=%lu bad=%lu\n", mode, rounds, (unsigned long)atomic_load(&bad));
	return !ok ? 2 : atomic_load(&bad) ? 1 : 0;
}

/* A reservation replaced by a new mapping (MAP_FIXED), written, unmapped. */
static bool fixed_round(void)
{
	char *r = mmap(NULL, PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *p;

	if (r == MAP_FAILED)
		return false;
	p = mmap(r, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0);
	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	return munmap(p, PAGES * PAGE) == 0;
}

/* A reservation replaced by memory moved there (MREMAP_FIXED), written, unmapped. */
static bool remap_round(void)
{
	char *r = mmap(NULL, PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *s = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	char *p;

	if (r == MAP_FAILED || s == MAP_FAILED)
		return false;
	s[0] = 1;
	p = mremap(s, PAGES * PAGE, PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r);
	if (p == MAP_FAILED)
		return false;
	p[0] = 2;
	return munmap(p, PAGES * PAGE) == 0;
}

/* Memory of upager's written, moved into a reservation the kernel made, checked, unmapped. */
static bool move_round(void)
{
	uint64_t *s = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	void *r = (void *)syscall(SYS_mmap, NULL, PAGES * PAGE, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t *p;

	if (s == MAP_FAILED || r == MAP_FAILED)
		return false;
	for (size_t i = 0; i < PAGES * PAGE / 8; i += 512)
		s[i] = i + 1;
	p = mremap(s, PAGES * PAGE, PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r);
	if (p == MAP_FAILED)
		return false;
	for (size_t i = 0; i < PAGES * PAGE / 8; i += 512)
		if (p[i] != i + 1) {
			atomic_fetch_add(&bad, 1);
			break;
		}
	return munmap(p, PAGES * PAGE) == 0;
}

#define RING 8
#define RING_PAGES 256
#define FILE_PAGES 4096

static uint64_t file_word(uint64_t page)
{
	return 0xf11e000000000000ULL | page;
}

static void *spin(void *arg)
{
	volatile unsigned long x = 0;

	(void)arg;
	while (!atomic_load(&stop))
		x++;
	return NULL;
}

/* A file of FILE_PAGES pages, word 0 and 1 of each its page number's word. */
static int make_file(const char *path)
{
	static uint64_t page[PAGE / 8];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	for (uint64_t p = 0; fd >= 0 && p < FILE_PAGES; p++) {
		for (size_t w = 0; w < PAGE / 8; w++)
			page[w] = file_word(p);
		if (pwrite(fd, page, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE)
			return -1;
	}
	return fd;
}

static int copies(const char *path, int seconds)
{
	struct {
		uint64_t *p, off, tag;
	} m[RING] = { 0 };
	time_t end = time(NULL) + seconds;
	unsigned long round = 0;
	int fd = make_file(path);
	pthread_t spinner[2];

	if (fd < 0)
		return 2;
	for (int i = 0; i < 2; i++)
		pthread_create(&spinner[i], NULL, spin, NULL);
	for (; !atomic_load(&bad) && time(NULL) < end; round++) {
		int k = (int)(round % RING);

		if (m[k].p)
			munmap(m[k].p, RING_PAGES * PAGE);
		m[k].off = round * 37 % (FILE_PAGES - RING_PAGES);
		m[k].tag = 0xc0b1000000000000ULL | round << 16;
		m[k].p = mmap(NULL, RING_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
			      (off_t)(m[k].off * PAGE));
		if (m[k].p == MAP_FAILED)
			return 2;
		for (size_t i = 0; i < RING_PAGES; i++)
			m[k].p[i * 512] = m[k].tag | i;
		for (int j = 0; j < RING; j++)
			for (size_t i = 0; m[j].p && i < RING_PAGES; i++) {
				const uint64_t *q = m[j].p + i * 512;

				if (q[0] != (m[j].tag | i) || q[1] != file_word(m[j].off + i)) {
					fprintf(stderr,
						"round %lu: page %zu of a mapping holds %#llx\n",
						round, i, (unsigned long long)q[0]);
					atomic_fetch_add(&bad, 1);
					break;
				}
			}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(spinner[i], NULL);
	unlink(path);
	printf("copies: rounds=%lu bad=%lu\n", round, (unsigned long)atomic_load(&bad));
	return atomic_load(&bad) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "fixed")) {
		raw = true;
		return race("fixed", atoi(argv[2]), fixed_round);
	}
	if (argc == 3 && !strcmp(argv[1], "remap")) {
		raw = true;
		return race("remap", atoi(argv[2]), remap_round);
	}
	if (argc == 3 && !strcmp(argv[1], "move"))
		return race("move", atoi(argv[2]), move_round);
	if (argc == 4 && !strcmp(argv[1], "copies"))
		return copies(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: race-probe fixed|remap|move SECONDS | copies FILE SECONDS\n");
	return 2;
}
