// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What the benchmark needs from the system: a clock, test files with a known pattern, the kernel's
 * caches (dropping them, and asking which pages of a file are resident), which pages of a mapping
 * are present in our page table, CPU affinity, and helper processes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/** median() - the median of @n values (1 <= n <= MAX_REPEAT); @v is left as it was */
double median(const double *v, unsigned n)
{
	double s[MAX_REPEAT];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** now_ns() - CLOCK_MONOTONIC in nanoseconds; the same clock in every process */
uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/** sleep_ms() - sleep, resuming after signals */
void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/**
 * page_byte() - the first byte of page @page of every test file
 *
 * Every byte a figure reads is checked against this, so that a fast but wrong answer (a zero page,
 * another page) shows as wrong data instead of as a good figure.
 */
uint8_t page_byte(uint64_t page)
{
	return (uint8_t)((page * 0x9e3779b97f4a7c15ULL) >> 56);
}

/** expected_sum() - what touch_pages() returns over @pages pages from page @first_page */
uint64_t expected_sum(uint64_t first_page, uint64_t pages)
{
	uint64_t s = 0;

	for (uint64_t i = 0; i < pages; i++)
		s += page_byte(first_page + i);
	return s;
}

/**
 * file_create() - write a test file of @size bytes with large writes, then fdatasync it
 *
 * Each 8-byte word holds its offset shifted left by 8 and page_byte() of its page in the low byte.
 * Return: 0 or a negative errno.
 */
int file_create(const char *path, size_t size)
{
	const size_t chunk = 4 * MIB;
	uint64_t *buf = malloc(chunk);
	int fd, ret = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (size_t off = 0; off < size && ret == 0; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		for (size_t i = 0; i < n / 8; i++) {
			uint64_t o = off + i * 8;

			buf[i] = (o << 8) | page_byte(o / PAGE);
		}
		for (size_t done = 0; done < n;) {
			ssize_t w = pwrite(fd, (char *)buf + done, n - done, (off_t)(off + done));

			if (w <= 0) {
				ret = w < 0 ? -errno : -EIO;
				break;
			}
			done += (size_t)w;
		}
	}
	if (ret == 0 && fdatasync(fd) < 0)
		ret = -errno;
	close(fd);
	free(buf);
	return ret;
}

/** file_read_all() - read the first @length bytes of @fd with read(2), to fill the page cache */
int file_read_all(int fd, size_t length)
{
	const size_t chunk = 1 * MIB;
	char *buf = malloc(chunk);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t off = 0; off < length;) {
		ssize_t r = pread(fd, buf, length - off < chunk ? length - off : chunk, (off_t)off);

		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)r;
	}
	free(buf);
	return ret;
}

/**
 * touch_pages() - read the first byte of every page of [p, p + length), in order
 *
 * Return: the sum of the bytes read, to compare with expected_sum().
 */
uint64_t touch_pages(const void *p, size_t length)
{
	const volatile uint8_t *b = p;
	uint64_t s = 0;

	for (size_t off = 0; off < length; off += PAGE)
		s += b[off];
	return s;
}

/**
 * drop_caches() - write dirty data back and drop the kernel's clean page cache
 *
 * Return: true if the kernel took the request (it needs root).
 */
bool drop_caches(void)
{
	int fd;
	bool ok;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = write(fd, "3\n", 2) == 2;
	close(fd);
	return ok;
}

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct cachestat_range {
	uint64_t off, len;
};

struct cachestat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/**
 * file_resident_pages() - how many pages of [offset, offset + length) of @fd the page cache holds
 *
 * Asks cachestat(2), which also counts pages whose read is still in flight; on kernels without it,
 * mincore(2) on a mapping that is never touched (which misses those). Asking reads nothing.
 * Return: a page count, or a negative errno.
 */
long file_resident_pages(int fd, size_t offset, size_t length)
{
	struct cachestat_range range = { offset, length };
	struct cachestat cs;
	size_t pages = (length + PAGE - 1) / PAGE;
	unsigned char *vec;
	long n = 0;
	void *p;

	if (syscall(__NR_cachestat, fd, &range, &cs, 0) == 0)
		return (long)cs.nr_cache;
	vec = malloc(pages ? pages : 1);
	if (!vec)
		return -ENOMEM;
	p = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, (off_t)offset);
	if (p == MAP_FAILED) {
		free(vec);
		return -errno;
	}
	if (mincore(p, length, vec) < 0)
		n = -errno;
	else
		for (size_t i = 0; i < pages; i++)
			n += vec[i] & 1;
	munmap(p, length);
	free(vec);
	return n;
}

/**
 * mapped_pages() - how many pages of [p, p + length) are present in this process's page table
 *
 * Read from /proc/self/pagemap (bit 63): a page that a populate mapped counts, a page that would
 * still fault does not.
 * Return: a page count, or a negative errno.
 */
long mapped_pages(const void *p, size_t length)
{
	size_t pages = length / PAGE, batch = 65536;
	uint64_t *e = malloc(batch * sizeof(*e));
	long n = 0;
	int fd;

	if (!e)
		return -ENOMEM;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(e);
		return -errno;
	}
	for (size_t i = 0; i < pages && n >= 0; i += batch) {
		size_t k = pages - i < batch ? pages - i : batch;
		off_t at = (off_t)(((uintptr_t)p / PAGE + i) * sizeof(*e));

		if (pread(fd, e, k * sizeof(*e), at) != (ssize_t)(k * sizeof(*e))) {
			n = -EIO;
			break;
		}
		for (size_t j = 0; j < k; j++)
			n += (long)(e[j] >> 63);
	}
	close(fd);
	free(e);
	return n;
}

static cpu_set_t all_cpus;
static bool all_cpus_known;

static void learn_cpus(void)
{
	if (all_cpus_known)
		return;
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus) < 0) {
		CPU_ZERO(&all_cpus);
		CPU_SET(0, &all_cpus);
	}
	all_cpus_known = true;
}

/** cpu_pick() - the CPU the pinned figures use: the last one we may run on */
int cpu_pick(void)
{
	learn_cpus();
	for (int c = CPU_SETSIZE - 1; c > 0; c--)
		if (CPU_ISSET(c, &all_cpus))
			return c;
	return 0;
}

/* Set the affinity of every thread of @pid; threads that refuse (io_uring workers) are skipped. */
static int set_process_affinity(pid_t pid, const cpu_set_t *set)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return sched_setaffinity(pid, sizeof(*set), set) < 0 ? -errno : 0;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' &&
		    sched_setaffinity((pid_t)atoi(de->d_name), sizeof(*set), set) == 0)
			n++;
	closedir(dir);
	return n > 0 ? 0 : -ESRCH;
}

/** pin_process() - run every thread of @pid on @cpu only */
int pin_process(pid_t pid, int cpu)
{
	cpu_set_t set;

	learn_cpus();
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return set_process_affinity(pid, &set);
}

/** unpin_process() - give every thread of @pid back every CPU we were started with */
void unpin_process(pid_t pid)
{
	learn_cpus();
	set_process_affinity(pid, &all_cpus);
}

/** pin_self() - run this (single-threaded) process on @cpu only */
int pin_self(int cpu)
{
	cpu_set_t set;

	learn_cpus();
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/**
 * pin_pair() - run this thread (and the threads it starts from now on) and process @other's
 * main thread on @cpu only: a wake-up across vCPUs costs about 100 us on these machines and lands
 * on either side from run to run; on one CPU the small benchmarks measure the work itself
 */
void pin_pair(int cpu, pid_t other)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	sched_setaffinity(other, sizeof(set), &set);
}

/** unpin_self() - back to the CPUs we were started with */
void unpin_self(void)
{
	learn_cpus();
	sched_setaffinity(0, sizeof(all_cpus), &all_cpus);
}

/** self_exe() - the absolute path of this program, to start helpers from */
const char *self_exe(void)
{
	static char path[PATH_MAX];
	ssize_t n;

	if (path[0])
		return path;
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		return NULL;
	path[n] = '\0';
	return path;
}

/**
 * spawn_helper() - run this program again as a helper: "upager-bench @mode FD [@arg]"
 * @mode: which helper
 * @fd: a descriptor without FD_CLOEXEC that the helper talks over
 * @arg: an extra argument or NULL
 *
 * posix_spawn() shares our address space until the exec (vfork), so no fork() of a process with
 * userfaultfd registrations is involved: the daemon never sees a fork event from us.
 * Return: the helper's pid, or a negative errno.
 */
pid_t spawn_helper(const char *mode, int fd, const char *arg)
{
	const char *exe = self_exe();
	char fdarg[16];
	char *argv[] = { (char *)"upager-bench", (char *)mode, fdarg, (char *)arg, NULL };
	pid_t pid;
	int ret;

	if (!exe)
		return -ENOENT;
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	ret = posix_spawn(&pid, exe, NULL, NULL, argv, environ);
	return ret ? -ret : pid;
}

/**
 * wait_helper() - reap a helper, killing it if it is not done within @timeout_ms
 *
 * Return: its wait status, or -ETIMEDOUT (it has then been killed and reaped).
 */
int wait_helper(pid_t pid, int timeout_ms)
{
	int status;

	for (int t = 0;; t += 5) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -errno;
		if (t >= timeout_ms)
			break;
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -ETIMEDOUT;
}
