// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Figures 5 to 7: the time of an upager_mmap() with MAP_POPULATE, next to the kernel's mmap(2)
 * with MAP_POPULATE. Figure 5 with the daemon's cache warm (a first mapping keeps it), figure 6
 * with every cache cold, figure 7 with MAP_NONBLOCK and only the first half of the file in the
 * page cache, where the call should map that half and read nothing from disk. After each timed
 * call the benchmark counts the pages the call mapped (a call that maps nothing is fast but is no
 * populate) and checks the data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <upager.h>

#include "bench.h"

struct populate_run {
	double ns;
	long mapped; /* pages present in our page table after the call */
	long mapped_low; /* of the first half */
	int err;
};

/* Time one upager_mmap(@flags) of @len bytes; then count what it mapped and check the data. */
static struct populate_run upager_populate(int fd, size_t len, int flags, bool *ok,
					   struct daemon_use *use)
{
	struct populate_run run = { 0 };
	struct daemon_use snap;
	uint64_t t0;
	char *p;

	daemon_use_begin(use, &snap);
	t0 = now_ns();
	p = upager_mmap(NULL, len, PROT_READ, MAP_SHARED | flags, fd, 0);
	run.ns = (double)(now_ns() - t0);
	if (p == MAP_FAILED) {
		run.err = -errno;
		return run;
	}
	daemon_use_end(use, &snap, (uint64_t)run.ns);
	run.mapped = mapped_pages(p, len);
	run.mapped_low = mapped_pages(p, len / 2);
	*ok &= touch_pages(p, len) == expected_sum(0, len / PAGE);
	upager_munmap(p, len);
	return run;
}

static struct populate_run kernel_populate(int fd, size_t len, bool *ok)
{
	struct populate_run run = { 0 };
	uint64_t t0 = now_ns();
	char *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);

	run.ns = (double)(now_ns() - t0);
	if (p == MAP_FAILED) {
		run.err = -errno;
		return run;
	}
	run.mapped = mapped_pages(p, len);
	*ok &= touch_pages(p, len) == expected_sum(0, len / PAGE);
	munmap(p, len);
	return run;
}

static void populate_row(const char *name, const double *ours, const double *ref, char op, double x,
			 bool ok, bool cold, long least_mapped, size_t want_mapped)
{
	char o[48], r[64], t[32];
	double ma = median(ours, cfg.repeat), mb = median(ref, cfg.repeat);

	fmt_time(o, sizeof(o), ma);
	snprintf(r, sizeof(r), "%s kernel", fmt_time(t, sizeof(t), mb));
	add_row(name, o, r, ma / mb, op, x, ok, cold, least_mapped >= (long)(want_mapped / PAGE));
	if (least_mapped < (long)(want_mapped / PAGE))
		note("%s: the call mapped only %ld of %zu pages (%.0f%%); not met until it maps "
		     "them all, else later faults pay what the call skipped",
		     name, least_mapped, want_mapped / PAGE,
		     100.0 * (double)least_mapped / (double)(want_mapped / PAGE));
}

/** fig_populate_warm() - figure 5 */
void fig_populate_warm(void)
{
	const char *name = "5 MAP_POPULATE, daemon cache warm";
	int fd = open_ro(cfg.big_path);
	double ours[MAX_REPEAT], ref[MAX_REPEAT];
	long least = (long)(cfg.big / PAGE);
	struct daemon_use use = { 0 };
	bool ok = true;
	char *warm;

	progress("figure 5: MAP_POPULATE of %zu MiB, daemon cache warm", cfg.big / MIB);
	warm = upager_warm(fd, cfg.big, &ok);
	if (warm == MAP_FAILED) {
		add_error_row(name, "upager_mmap", -errno);
		goto out;
	}
	/*
	 * The kernel maps its page cache with as few entries as its folios allow, so its time depends
	 * on how the pages came in (written, read ahead, faulted): always the same way, read(2) into a
	 * dropped page cache. The daemon's cache is its memfd, which drop_caches leaves alone.
	 */
	drop_caches();
	file_read_all(fd, cfg.big);
	for (unsigned i = 0; i < cfg.repeat; i++) {
		struct populate_run a = upager_populate(fd, cfg.big, MAP_POPULATE, &ok, &use);
		struct populate_run b = kernel_populate(fd, cfg.big, &ok);

		if (a.err || b.err) {
			add_error_row(name, a.err ? "upager_mmap" : "mmap", a.err ? a.err : b.err);
			goto unmap;
		}
		ours[i] = a.ns;
		ref[i] = b.ns;
		least = a.mapped < least ? a.mapped : least;
	}
	populate_row(name, ours, ref, '<', 4.0, ok, true, least, cfg.big);
	daemon_use_note("figure 5", &use, cfg.big);
unmap:
	upager_munmap(warm, cfg.big);
out:
	close(fd);
}

/** fig_populate_cold() - figure 6 */
void fig_populate_cold(void)
{
	const char *name = "6 MAP_POPULATE, cold";
	int fd = open_ro(cfg.big_path);
	double ours[MAX_REPEAT], ref[MAX_REPEAT];
	long least = (long)(cfg.big / PAGE);
	struct daemon_use use = { 0 };
	bool ok = true, cold = true;

	progress("figure 6: MAP_POPULATE of %zu MiB, cold caches", cfg.big / MIB);
	for (unsigned i = 0; i < cfg.repeat; i++) {
		struct populate_run a, b;

		cold &= make_cold(&fd, &cfg.big, 1);
		a = upager_populate(fd, cfg.big, MAP_POPULATE, &ok, &use);
		cold &= make_cold(&fd, &cfg.big, 1);
		b = kernel_populate(fd, cfg.big, &ok);
		if (a.err || b.err) {
			add_error_row(name, a.err ? "upager_mmap" : "mmap", a.err ? a.err : b.err);
			goto out;
		}
		ours[i] = a.ns;
		ref[i] = b.ns;
		least = a.mapped < least ? a.mapped : least;
	}
	populate_row(name, ours, ref, '<', 1.0, ok, cold, least, cfg.big);
	daemon_use_note("figure 6", &use, cfg.big);
out:
	close(fd);
}

/*
 * Drop the caches and read the first half of the file with read(2), as a sequential reader does
 * (the kernel then holds it in large folios, which its MAP_POPULATE maps fast); then drop what its
 * read-ahead brought in past the half, once that I/O is over (file_resident_pages() counts pages
 * still being read). Return false if the second half does not end up out of the page cache, or if
 * the caches were not cold to begin with.
 */
static bool half_warm(int fd)
{
	size_t half = cfg.big / 2;
	bool cold = make_cold(&fd, &cfg.big, 1);

	file_read_all(fd, half);
	for (int t = 0; t < 2000; t += 10) {
		posix_fadvise(fd, (off_t)half, (off_t)(cfg.big - half), POSIX_FADV_DONTNEED);
		if (file_resident_pages(fd, half, cfg.big - half) == 0)
			return cold;
		sleep_ms(10);
	}
	note("figure 7: read-ahead pages of the second half stayed in the page cache");
	return false;
}

/*
 * One MAP_POPULATE|MAP_NONBLOCK call with the first half of the file in the page cache: its time,
 * what the daemon read during it, how many pages of the second half entered the page cache (read
 * from disk) and how many of the first half it mapped. The data is checked after all that.
 */
static struct populate_run upager_nonblock(int fd, uint64_t *bytes_read, long *new_pages, bool *ok)
{
	size_t half = cfg.big / 2;
	struct daemon_stats s0 = { 0 }, s1 = { 0 };
	long before = file_resident_pages(fd, half, cfg.big - half), after;
	struct populate_run run = { 0 };
	uint64_t t0;
	char *p;

	daemon_stats(&s0);
	t0 = now_ns();
	p = upager_mmap(NULL, cfg.big, PROT_READ, MAP_SHARED | MAP_POPULATE | MAP_NONBLOCK, fd, 0);
	run.ns = (double)(now_ns() - t0);
	if (p == MAP_FAILED) {
		run.err = -errno;
		return run;
	}
	daemon_stats(&s1);
	after = file_resident_pages(fd, half, cfg.big - half);
	run.mapped_low = mapped_pages(p, half);
	*bytes_read = s1.bytes_read - s0.bytes_read;
	*new_pages = after - before;
	*ok &= touch_pages(p, cfg.big) == expected_sum(0, cfg.big / PAGE);
	upager_munmap(p, cfg.big);
	return run;
}

/** fig_populate_nonblock() - figure 7 */
void fig_populate_nonblock(void)
{
	const char *name = "7 POPULATE|NONBLOCK, half in RAM";
	size_t half = cfg.big / 2;
	int fd = open_ro(cfg.big_path);
	double ours[MAX_REPEAT], ref[MAX_REPEAT], ma, mb;
	long least = (long)(half / PAGE), worst_new = 0;
	uint64_t most_read = 0;
	bool ok = true, cold = true, no_disk, mapped;
	char o[48], r[64], t[32];

	progress("figure 7: MAP_POPULATE|MAP_NONBLOCK of %zu MiB, first half in the page cache",
		 cfg.big / MIB);
	for (unsigned i = 0; i < cfg.repeat; i++) {
		struct populate_run a, b;
		uint64_t bytes = 0;
		long new_pages = 0;

		cold &= half_warm(fd);
		a = upager_nonblock(fd, &bytes, &new_pages, &ok);
		cold &= half_warm(fd);
		b = kernel_populate(fd, half, &ok);
		if (a.err || b.err) {
			add_error_row(name, a.err ? "upager_mmap" : "mmap", a.err ? a.err : b.err);
			goto out;
		}
		ours[i] = a.ns;
		ref[i] = b.ns;
		least = a.mapped_low < least ? a.mapped_low : least;
		worst_new = new_pages > worst_new ? new_pages : worst_new;
		most_read = bytes > most_read ? bytes : most_read;
	}
	ma = median(ours, cfg.repeat);
	mb = median(ref, cfg.repeat);
	no_disk = worst_new == 0 && most_read <= half;
	mapped = least >= (long)(half / PAGE);
	fmt_time(o, sizeof(o), ma);
	snprintf(r, sizeof(r), "%s kernel, half", fmt_time(t, sizeof(t), mb));
	add_row(name, o, r, ma / mb, '<', 2.0, ok, cold, no_disk && mapped);
	snprintf(o, sizeof(o), "%.1f MiB", (double)most_read / MIB);
	snprintf(r, sizeof(r), "<= %.1f MiB (the half)", (double)half / MIB);
	add_row("7  daemon bytes_read in the call", o, r, -1, 0, 0, ok, cold, true);
	snprintf(o, sizeof(o), "%ld pages", worst_new);
	add_row("7  2nd-half pages read from disk", o, "0 pages", -1, 0, 0, ok, cold, true);
	snprintf(o, sizeof(o), "%ld of %zu", least, half / PAGE);
	snprintf(r, sizeof(r), "%zu of %zu kernel", half / PAGE, half / PAGE);
	add_row("7  1st-half pages mapped by the call", o, r, -1, 0, 0, ok, cold, true);
	if (!no_disk)
		note("%s: the call read the disk (%ld pages of the second half entered the page "
		     "cache; the daemon read %.1f MiB for a %.1f MiB first half): not met",
		     name, worst_new, (double)most_read / MIB, (double)half / MIB);
	if (!mapped)
		note("%s: the call mapped only %ld of the %zu pages of the first half (%.0f%%): "
		     "not met until it maps what is in memory",
		     name, least, half / PAGE, 100.0 * (double)least / (double)(half / PAGE));
out:
	close(fd);
}
