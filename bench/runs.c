// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Single timed runs shared by the figures: a sequential read through upager, through the kernel's
 * mmap and through the floor; making caches cold; pinning a pair of processes to one CPU; and what
 * the daemon did during our runs (faults it served, CPU it used), for the notes that explain a row.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <upager.h>

#include "bench.h"

/** open_ro() - open a test file read-only; a test file that cannot be opened ends the run */
int open_ro(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "upager-bench: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

/**
 * make_cold() - make a cold run cold: the daemon caches nothing, the kernel drops its page cache,
 * and none of the @n files (@fds, @sizes) has a page left in it
 *
 * Return: false if that failed; a note says why, once per figure.
 */
bool make_cold(const int *fds, const size_t *sizes, int n)
{
	static int warned_figure;
	bool cold = true;
	char why[160] = "";
	int ret = daemon_wait_empty(5000);

	if (ret < 0) {
		cold = false;
		snprintf(why, sizeof(why), "the daemon still caches pages (%s)", strerror(-ret));
	}
	if (!drop_caches()) {
		cold = false;
		snprintf(why, sizeof(why), "writing /proc/sys/vm/drop_caches failed (not root?)");
	}
	for (int i = 0; i < n && cold; i++) {
		long res = file_resident_pages(fds[i], 0, sizes[i]);

		if (res != 0) {
			cold = false;
			snprintf(why, sizeof(why), "%ld pages of a file stayed in the page cache",
				 res);
		}
	}
	if (!cold && warned_figure != current_figure) {
		warned_figure = current_figure;
		note("figure %d is NOT cold: %s", (int)current_figure, why);
	}
	return cold;
}

/** pin_with() - with @cpu >= 0, run us and every thread of @other on @cpu only */
void pin_with(int cpu, pid_t other)
{
	if (cpu < 0)
		return;
	if (pin_self(cpu) < 0 || pin_process(other, cpu) < 0)
		note("figure %d: pinning to CPU %d failed", (int)current_figure, cpu);
}

/** unpin_with() - undo pin_with() */
void unpin_with(int cpu, pid_t other)
{
	if (cpu < 0)
		return;
	unpin_process(other);
	unpin_self();
}

/** daemon_use_begin() - take a snapshot of the daemon's counters into @snap, if @u */
void daemon_use_begin(struct daemon_use *u, struct daemon_use *snap)
{
	struct daemon_stats st = { 0 };

	if (!u)
		return;
	daemon_stats(&st);
	snap->faults = st.faults;
	snap->cpu_ns = process_cpu_ns(daemon_pid());
}

/** daemon_use_end() - add what the daemon did since @snap to @u, for a run of @wall_ns */
void daemon_use_end(struct daemon_use *u, const struct daemon_use *snap, uint64_t wall_ns)
{
	struct daemon_stats st = { 0 };
	uint64_t cpu;

	if (!u)
		return;
	cpu = process_cpu_ns(daemon_pid());
	if (daemon_stats(&st) < 0 || st.faults < snap->faults || cpu < snap->cpu_ns)
		return; /* the daemon did not answer: leave this run out of the note */
	u->runs++;
	u->faults += st.faults - snap->faults;
	u->cpu_ns += cpu - snap->cpu_ns;
	u->wall_ns += wall_ns;
}

/** daemon_use_note() - a note on the daemon's faults and CPU per run of @what */
void daemon_use_note(const char *what, const struct daemon_use *u, size_t bytes_per_run)
{
	double faults, cpu;
	char f[64] = "no fault";

	if (!u->runs)
		return;
	faults = (double)u->faults / (double)u->runs;
	cpu = u->wall_ns ? 100.0 * (double)u->cpu_ns / (double)u->wall_ns : 0;
	if (faults > 0)
		snprintf(f, sizeof(f), "%.0f faults (one per %.0f KiB read)", faults,
			 (double)bytes_per_run / faults / KIB);
	note("%s: per run the daemon served %s and was on a CPU %.0f%% of the time", what, f, cpu);
}

/**
 * upager_seq() - map @len bytes of @fd through upager, read a byte per page in order
 * @cpu: >= 0 to run us and the daemon on that CPU only
 * @ok: cleared if a byte read was wrong
 * @use: if not NULL, what the daemon did is added to it
 *
 * Return: the time of upager_mmap() and the reads in ns, or a negative errno.
 */
int64_t upager_seq(int fd, size_t len, int cpu, bool *ok, struct daemon_use *use)
{
	struct daemon_use snap;
	uint64_t t0, t1, sum;
	char *p;

	daemon_use_begin(use, &snap);
	pin_with(cpu, daemon_pid());
	t0 = now_ns();
	p = upager_mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int ret = -errno;

		unpin_with(cpu, daemon_pid());
		return ret;
	}
	sum = touch_pages(p, len);
	t1 = now_ns();
	unpin_with(cpu, daemon_pid());
	daemon_use_end(use, &snap, t1 - t0);
	*ok &= sum == expected_sum(0, len / PAGE);
	upager_munmap(p, len);
	return (int64_t)(t1 - t0);
}

/** kernel_seq() - upager_seq() with the kernel's own mmap(2) */
int64_t kernel_seq(int fd, size_t len, bool *ok)
{
	uint64_t t0 = now_ns(), t1, sum;
	char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	sum = touch_pages(p, len);
	t1 = now_ns();
	*ok &= sum == expected_sum(0, len / PAGE);
	munmap(p, len);
	return (int64_t)(t1 - t0);
}

/**
 * floor_seq() - start a floor handler serving @block bytes per fault from @src, time the reads of a
 * byte per page of its area (the handler's setup is not timed), stop it
 * @cpu: >= 0 to run us and the handler on that CPU only
 *
 * Return: ns, or a negative errno.
 */
int64_t floor_seq(int fd, size_t len, size_t block, int src, int cpu, bool *ok)
{
	struct floor f;
	uint64_t t0, t1, sum;
	int ret = floor_start(&f, fd, len, block, (enum floor_source)src);

	if (ret < 0)
		return ret;
	pin_with(cpu, f.pid);
	t0 = now_ns();
	sum = touch_pages(f.area, len);
	t1 = now_ns();
	unpin_with(cpu, f.pid);
	*ok &= sum == expected_sum(0, len / PAGE);
	floor_stop(&f);
	return (int64_t)(t1 - t0);
}

/**
 * upager_warm() - a mapping of @len bytes of @fd with every page touched, which keeps the daemon's
 * cache of the file warm until upager_munmap() (the cache goes with the file's last mapping)
 *
 * Return: the mapping, or MAP_FAILED with errno set.
 */
char *upager_warm(int fd, size_t len, bool *ok)
{
	char *p = upager_mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);

	if (p != MAP_FAILED)
		*ok &= touch_pages(p, len) == expected_sum(0, len / PAGE);
	return p;
}
