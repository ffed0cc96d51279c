// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The swap store on a temporary file and on a loop device, with a real loop and ring: slots,
 * round trips, checksums that catch what changed behind the store's back, holes punched on free,
 * and the files it refuses.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/ring.h"
#include "daemon/swap.h"

#define PAGE 4096UL

static uv_loop_t loop;
static struct ring *ring;
static char dir[] = "/var/tmp/upager-swap-XXXXXX";
static char path[128];

static void setup(void)
{
	strcpy(dir, "/var/tmp/upager-swap-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store", dir);
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(ring_new(&loop, 64, &ring), 0);
}

static void teardown(void)
{
	char cmd[160];

	ring_free(ring);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(swap, .init = setup, .fini = teardown);

struct done {
	int calls;
	int result;
};

static void on_done(void *userdata, int result)
{
	struct done *d = userdata;

	d->calls++;
	if (result < 0 || d->result == 0)
		d->result = result;
}

static void run_until(struct done *d, int calls)
{
	while (d->calls < calls)
		uv_run(&loop, UV_RUN_ONCE);
}

static char *pages_new(uint64_t pages, unsigned seed)
{
	char *buf = aligned_alloc(PAGE, pages * PAGE);

	cr_assert_not_null(buf);
	for (uint64_t i = 0; i < pages * PAGE; i += 8) {
		uint64_t v = (i + seed) * 0x9e3779b97f4a7c15ULL;

		memcpy(buf + i, &v, 8);
	}
	return buf;
}

/* A store on the test's file. */
static struct swap *store_new(uint64_t max_bytes)
{
	struct swap *s = NULL;
	int ret = swap_open(ring, path, max_bytes, 0, &s);

	cr_assert_eq(ret, 0, "%s: %s", path, strerror(-ret));
	return s;
}

static uint64_t must_alloc(struct swap *s, uint64_t pages)
{
	uint64_t slot = UINT64_MAX;

	cr_assert_eq(swap_alloc(s, pages, &slot), 0, "alloc of %lu", (unsigned long)pages);
	return slot;
}

/* Write @pages of @buf to @slot through the ring and wait for it. */
static int write_wait(struct swap *s, uint64_t slot, const char *buf, uint64_t pages)
{
	struct done d = { 0 };
	int ret = swap_write(s, slot, buf, pages, on_done, &d);

	if (ret < 0)
		return ret;
	run_until(&d, 1);
	return d.result;
}

static int read_wait(struct swap *s, uint64_t slot, char *buf, uint64_t pages)
{
	struct done d = { 0 };
	int ret = swap_read(s, slot, buf, pages, on_done, &d);

	if (ret < 0)
		return ret;
	run_until(&d, 1);
	return d.result;
}

static struct stat stat_of(const char *p)
{
	struct stat st;

	cr_assert_eq(stat(p, &st), 0, "%s: %m", p);
	return st;
}

Test(swap, a_new_file_is_the_daemons_alone_and_sparse)
{
	struct swap_stats st;
	struct swap *s;
	struct stat f;

	s = store_new(64 << 20);
	f = stat_of(path);
	cr_assert_eq(f.st_mode & 07777, 0600, "mode %o", f.st_mode & 07777);
	cr_assert_eq(f.st_size, PAGE, "only the header: %ld", (long)f.st_size);
	swap_stats(s, &st);
	cr_assert_eq(st.size_bytes, 64 << 20);
	cr_assert_eq(must_alloc(s, 1), 0);
	f = stat_of(path);
	cr_assert_eq(f.st_size, 257 * PAGE, "grown by 1 MiB: %ld", (long)f.st_size);
	cr_assert_lt(f.st_blocks, 64, "not preallocated: %ld blocks", (long)f.st_blocks);
	swap_close(s);
	/* Nothing outlives the store. */
	cr_assert_eq(stat_of(path).st_size, PAGE);
}

Test(swap, slots_come_in_runs_and_a_full_store_is_enospc)
{
	struct swap_stats st;
	struct swap *s;
	uint64_t slot;

	s = store_new(16 * PAGE);
	cr_assert_eq(must_alloc(s, 1), 0);
	cr_assert_eq(must_alloc(s, 2), 1);
	cr_assert_eq(must_alloc(s, 5), 3);
	cr_assert_eq(must_alloc(s, 8), 8);
	cr_assert_eq(swap_alloc(s, 1, &slot), -ENOSPC);
	cr_assert_eq(swap_free(s, 3, 5), 0); /* a range in the middle */
	cr_assert_eq(swap_free(s, 4, 1), -EINVAL); /* free already */
	cr_assert_eq(swap_alloc(s, 6, &slot), -ENOSPC);
	cr_assert_eq(must_alloc(s, 2), 3);
	cr_assert_eq(must_alloc(s, 3), 5);
	cr_assert_eq(swap_alloc(s, 1, &slot), -ENOSPC);
	swap_stats(s, &st);
	cr_assert_eq(st.used_pages, 16);
	cr_assert_eq(swap_free(s, 0, 16), 0);
	swap_stats(s, &st);
	cr_assert_eq(st.used_pages, 0);
	cr_assert_eq(st.peak_pages, 16);
	cr_assert_eq(stat_of(path).st_size, 17 * PAGE, "grown to the store's size, no more");
	swap_close(s);
}

Test(swap, many_pages_make_the_round_trip_through_the_ring)
{
	enum {
		PAGES = 3000,
		RUNS = 200
	};
	char *out = pages_new(PAGES, 1), *in = pages_new(PAGES, 2);
	uint64_t slot[RUNS], len[RUNS], at[RUNS], pos = 0;
	struct done w = { 0 }, r = { 0 };
	struct swap_stats st;
	unsigned runs = 0;
	struct swap *s;

	s = store_new(64 << 20);
	srand(3);
	while (pos < PAGES && runs < RUNS) {
		len[runs] = 1 + (uint64_t)rand() % 40;
		if (len[runs] > PAGES - pos)
			len[runs] = PAGES - pos;
		at[runs] = pos;
		slot[runs] = must_alloc(s, len[runs]);
		cr_assert_eq(swap_write(s, slot[runs], out + pos * PAGE, len[runs], on_done, &w),
			     0);
		pos += len[runs++];
	}
	cr_assert_eq(slot[1], slot[0] + len[0], "adjacent page-outs get adjacent slots");
	run_until(&w, (int)runs);
	cr_assert_eq(w.result, 0, "%s", strerror(-w.result));
	for (unsigned i = runs; i-- > 0;)
		cr_assert_eq(swap_read(s, slot[i], in + at[i] * PAGE, len[i], on_done, &r), 0);
	run_until(&r, (int)runs);
	cr_assert_eq(r.result, 0, "%s", strerror(-r.result));
	cr_assert_eq(memcmp(in, out, pos * PAGE), 0);
	swap_stats(s, &st);
	cr_assert_eq(st.pages_out, pos);
	cr_assert_eq(st.pages_in, pos);
	cr_assert_eq(st.writes, runs);
	cr_assert_eq(st.reads, runs);
	cr_assert_eq(st.errors, 0);
	swap_close(s);
	free(out);
	free(in);
}

Test(swap, a_page_changed_behind_its_back_reads_as_eio)
{
	char *out = pages_new(4, 1), *in = pages_new(4, 2), garbage[PAGE];
	struct swap_stats st;
	struct swap *s;
	uint64_t slot;
	int fd;

	s = store_new(1 << 20);
	slot = must_alloc(s, 4);
	cr_assert_eq(write_wait(s, slot, out, 4), 0);
	cr_assert_eq(read_wait(s, slot, in, 4), 0);
	cr_assert_eq(memcmp(in, out, 4 * PAGE), 0);
	/* One byte of slot 2 changes on disk. */
	fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, garbage, PAGE, (off_t)((slot + 3) * PAGE)), (ssize_t)PAGE);
	cr_assert_eq(memcmp(garbage, out + 2 * PAGE, PAGE), 0, "slot 2 is the file's page 3");
	garbage[100] ^= 1;
	cr_assert_eq(pwrite(fd, garbage, PAGE, (off_t)((slot + 3) * PAGE)), (ssize_t)PAGE);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	cr_assert_eq(read_wait(s, slot, in, 4), -EIO);
	cr_assert_eq(swap_read_now(s, slot + 2, in, 1), -EIO);
	cr_assert_eq(read_wait(s, slot, in, 2), 0, "the pages before it are intact");
	cr_assert_eq(swap_read_now(s, slot + 3, in, 1), 0);
	swap_stats(s, &st);
	cr_assert_eq(st.errors, 2);
	cr_assert_eq(st.pages_in, 4 + 2 + 1);
	swap_close(s);
	free(out);
	free(in);
}

Test(swap, a_short_read_is_eio_never_accepted)
{
	char *out = pages_new(8, 1), *in = pages_new(8, 2);
	struct swap *s;
	uint64_t slot;

	s = store_new(1 << 20);
	slot = must_alloc(s, 8);
	cr_assert_eq(write_wait(s, slot, out, 8), 0);
	/* The file ends in the middle of slot 4. */
	cr_assert_eq(truncate(path, (off_t)((slot + 5) * PAGE + 100)), 0);
	/* The buffer holds the right data already: only the byte counts can tell. */
	memcpy(in, out, 8 * PAGE);
	cr_assert_eq(read_wait(s, slot, in, 8), -EIO);
	memcpy(in, out, 8 * PAGE);
	cr_assert_eq(swap_read_now(s, slot, in, 8), -EIO);
	cr_assert_eq(truncate(path, (off_t)((slot + 5) * PAGE)), 0);
	memcpy(in, out + 4 * PAGE, 4 * PAGE);
	cr_assert_eq(read_wait(s, slot + 4, in, 4), -EIO, "nothing at all past the end");
	cr_assert_eq(read_wait(s, slot, in, 4), 0);
	swap_close(s);
	free(out);
	free(in);
}

Test(swap, freed_slots_give_their_blocks_back)
{
	char *out = pages_new(512, 1);
	struct stat before, after;
	struct swap *s;
	uint64_t slot;

	s = store_new(64 << 20);
	slot = must_alloc(s, 512);
	cr_assert_eq(write_wait(s, slot, out, 512), 0);
	before = stat_of(path);
	cr_assert_geq(before.st_blocks, 512 * 8, "%ld blocks for 2 MiB", (long)before.st_blocks);
	cr_assert_eq(swap_free(s, slot + 128, 256), 0);
	after = stat_of(path);
	cr_assert_leq(after.st_blocks, before.st_blocks - 256 * 8, "%ld blocks, %ld before",
		      (long)after.st_blocks, (long)before.st_blocks);
	cr_assert_eq(after.st_size, before.st_size);
	cr_assert_eq(swap_free(s, slot, 128), 0);
	cr_assert_eq(swap_free(s, slot + 384, 128), 0);
	cr_assert_lt(stat_of(path).st_blocks, 64);
	swap_close(s);
	free(out);
}

Test(swap, slots_freed_one_by_one_keep_their_blocks_until_their_run_is_long)
{
	char *out = pages_new(1024, 2);
	struct stat before;
	struct swap *s;
	uint64_t slot;

	s = store_new(64 << 20);
	slot = must_alloc(s, 1024);
	cr_assert_eq(write_wait(s, slot, out, 1024), 0);
	before = stat_of(path);
	/* Pages faulted back one at a time: no punch each. */
	for (uint64_t i = 0; i < 511; i++)
		cr_assert_eq(swap_free(s, slot + i, 1), 0);
	cr_assert_geq(stat_of(path).st_blocks, before.st_blocks - 8, "%ld blocks, %ld before",
		      (long)stat_of(path).st_blocks, (long)before.st_blocks);
	/* The 512th makes a free run of 2 MiB: given back whole. */
	cr_assert_eq(swap_free(s, slot + 511, 1), 0);
	cr_assert_leq(stat_of(path).st_blocks, before.st_blocks - 512 * 8, "%ld blocks, %ld before",
		      (long)stat_of(path).st_blocks, (long)before.st_blocks);
	/* The store empty: nothing kept. */
	cr_assert_eq(swap_free(s, slot + 512, 512), 0);
	cr_assert_lt(stat_of(path).st_blocks, 64);
	swap_close(s);
	free(out);
}

Test(swap, io_only_on_slots_allocated_and_written)
{
	char *buf = pages_new(4, 1);
	struct done d = { 0 };
	struct swap *s;
	uint64_t slot;

	s = store_new(1 << 20);
	slot = must_alloc(s, 2);
	cr_assert_eq(swap_read(s, slot, buf, 1, on_done, &d), -EINVAL, "never written");
	cr_assert_eq(swap_write(s, slot, buf + 1, 1, on_done, &d), -EINVAL, "not aligned");
	cr_assert_eq(swap_write(s, slot, buf, 3, on_done, &d), -EINVAL, "past the run");
	cr_assert_eq(swap_write(s, slot + 2, buf, 1, on_done, &d), -EINVAL, "not allocated");
	cr_assert_eq(swap_write_now(s, slot, buf, 2), 0);
	cr_assert_eq(swap_read_now(s, slot, buf, 2), 0);
	cr_assert_eq(swap_free(s, slot + 1, 1), 0);
	cr_assert_eq(swap_read(s, slot, buf, 2, on_done, &d), -EINVAL, "freed");
	cr_assert_eq(must_alloc(s, 1), slot + 1);
	cr_assert_eq(swap_read_now(s, slot + 1, buf, 1), -EINVAL, "not written since");
	cr_assert_eq(d.calls, 0);
	swap_close(s);
	free(buf);
}

Test(swap, close_with_io_in_flight_completes_it_first)
{
	char *buf = pages_new(16, 1);
	struct done d = { 0 };
	struct swap *s;

	s = store_new(1 << 20);
	cr_assert_eq(swap_write(s, must_alloc(s, 16), buf, 16, on_done, &d), 0);
	swap_close(s);
	run_until(&d, 1);
	cr_assert_eq(d.result, 0);
	cr_assert_eq(stat_of(path).st_size, PAGE, "closed: cut back to its header");
	free(buf);
}

static void write_file(const char *p, mode_t mode, const char *data)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	cr_assert_geq(fd, 0, "%s: %m", p);
	cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void write_file_at(const char *p, off_t offset, const char *data)
{
	int fd = open(p, O_WRONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "%s: %m", p);
	cr_assert_eq(pwrite(fd, data, strlen(data), offset), (ssize_t)strlen(data));
	close(fd);
}

static void assert_refused(const char *p, uint64_t max_bytes, int err)
{
	struct swap *s = NULL;

	cr_assert_eq(swap_open(ring, p, max_bytes, 0, &s), err, "%s", p);
	cr_assert_null(s);
}

Test(swap, what_another_may_write_or_holds_data_is_refused)
{
	char other[160];
	struct swap *s;

	write_file(path, 0620, "");
	assert_refused(path, 1 << 20, -EPERM);
	cr_assert_eq(chmod(path, 0602), 0);
	assert_refused(path, 1 << 20, -EPERM);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(chown(path, 65534, 0), 0);
	assert_refused(path, 1 << 20, -EPERM);
	cr_assert_eq(chown(path, 0, 65534), 0);
	cr_assert_eq(chmod(path, 0640), 0); /* its group may read the pages of every user */
	assert_refused(path, 1 << 20, -EPERM);
	cr_assert_eq(chmod(path, 0604), 0);
	assert_refused(path, 1 << 20, -EPERM);
	cr_assert_eq(chmod(path, 0600), 0);
	/* A link another user made, in a directory all may write, to a file of the daemon's. */
	snprintf(other, sizeof(other), "%s/link", dir);
	cr_assert_eq(symlink(path, other), 0);
	cr_assert_eq(lchown(other, 65534, 65534), 0);
	assert_refused(other, 1 << 20, -EPERM);
	cr_assert_eq(lchown(other, 0, 0), 0);
	s = store_new(1 << 20);
	assert_refused(path, 1 << 20, -EBUSY); /* one store at a time */
	swap_close(s);
	cr_assert_eq(swap_open(ring, path, 1 << 20, 0, &s), 0, "a store of its own is reopened");
	swap_close(s);

	snprintf(other, sizeof(other), "%s/data", dir);
	write_file(other, 0600, "someone's data");
	assert_refused(other, 1 << 20, -EEXIST);
	cr_assert_eq(stat_of(other).st_size, 14, "left as it was");
	/* Zeroes first, data further on (a file system's signature may sit at 64 KiB). */
	cr_assert_eq(truncate(other, 0), 0);
	cr_assert_eq(truncate(other, 65536), 0);
	write_file_at(other, 65536, "data");
	assert_refused(other, 1 << 20, -EEXIST);
	cr_assert_eq(stat_of(other).st_size, 65540, "left as it was");
	/* Made with truncate(1) or fallocate(1) beforehand: zeroes are free to take. */
	cr_assert_eq(truncate(other, 0), 0);
	cr_assert_eq(truncate(other, 4 << 20), 0);
	cr_assert_eq(swap_open(ring, other, 1 << 20, 0, &s), 0);
	swap_close(s);
	snprintf(other, sizeof(other), "%s/fifo", dir);
	cr_assert_eq(mkfifo(other, 0600), 0);
	assert_refused(other, 1 << 20, -EINVAL);
	assert_refused(dir, 1 << 20, -EINVAL);
	assert_refused("/dev/null", 1 << 20, -EINVAL);
	assert_refused(path, 0, -EINVAL); /* a file needs a size */
}

/* A loop device on a sparse file of @bytes, or a skip. */
static int loop_new(const char *backing, uint64_t bytes, char *dev, size_t size)
{
	struct loop_config cfg = { .info.lo_flags = LO_FLAGS_AUTOCLEAR };
	int ctl, fd, bfd, n;

	bfd = open(backing, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(bfd, 0);
	cr_assert_eq(ftruncate(bfd, (off_t)bytes), 0);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		cr_skip_test("no loop device here: /dev/loop-control: %m");
	for (int tries = 0;; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			cr_skip_test("no loop device free: %m");
		snprintf(dev, size, "/dev/loop%d", n);
		fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			cr_skip_test("no loop device here: %s: %m", dev);
		cfg.fd = (uint32_t)bfd;
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
			break;
		close(fd);
		if (errno != EBUSY || tries == 10)
			cr_skip_test("cannot set up a loop device: %m");
	}
	close(ctl);
	close(bfd);
	return fd; /* the device goes away with its last descriptor */
}

Test(swap, a_block_device_is_a_store_too)
{
	char backing[160], dev[32], *out = pages_new(300, 1), *in = pages_new(300, 2);
	struct swap_stats st;
	struct swap *s;
	uint64_t slot;
	int lfd;

	snprintf(backing, sizeof(backing), "%s/disk", dir);
	lfd = loop_new(backing, 8 << 20, dev, sizeof(dev));
	cr_assert_eq(swap_open(ring, dev, 1 << 20, 0, &s), 0);
	swap_stats(s, &st);
	cr_assert_eq(st.size_bytes, 1 << 20, "as large as asked");
	swap_close(s);
	cr_assert_eq(swap_open(ring, dev, 0, 0, &s), 0);
	swap_stats(s, &st);
	cr_assert_eq(st.size_bytes, (8 << 20) - PAGE, "the whole device but its header");
	slot = must_alloc(s, 300);
	cr_assert_eq(write_wait(s, slot, out, 300), 0);
	cr_assert_eq(read_wait(s, slot, in, 300), 0);
	cr_assert_eq(memcmp(in, out, 300 * PAGE), 0);
	cr_assert_eq(fsync(lfd), 0);
	cr_assert_geq(stat_of(backing).st_blocks, 300 * 8);
	cr_assert_eq(swap_free(s, slot, 300), 0);
	/* The loop device turns the discard into holes in its file. */
	cr_assert_lt(stat_of(backing).st_blocks, 100, "%ld blocks after discard",
		     (long)stat_of(backing).st_blocks);
	swap_close(s);

	/* A device that holds data is left alone. */
	cr_assert_eq(pwrite(lfd, "data", 4, 0), 4);
	cr_assert_eq(fsync(lfd), 0);
	assert_refused(dev, 0, -EEXIST);
	close(lfd);
	free(out);
	free(in);
}

/* The descriptors a daemon hands to the fd store, duplicated: the store itself stays open, as a
 * daemon killed with SIGKILL leaves it. */
static void kept_fds(struct swap *s, int *fd, int *tables_fd)
{
	*fd = dup(swap_fd(s));
	*tables_fd = dup(swap_tables_fd(s));
	cr_assert_geq(*fd, 0);
	cr_assert_geq(*tables_fd, 0);
}

Test(swap, a_kept_store_is_taken_over_as_it_was)
{
	char *out = pages_new(64, 3), *in = pages_new(64, 0);
	struct swap *s = NULL, *t = NULL;
	struct swap_stats st;
	struct stat before;
	int fd, tfd;
	uint64_t slot;

	cr_assert_eq(swap_open(ring, path, 8 << 20, SWAP_KEPT, &s), 0);
	cr_assert_geq(swap_tables_fd(s), 0);
	cr_assert_eq(must_alloc(s, 64), 0);
	cr_assert_eq(write_wait(s, 0, out, 64), 0);
	cr_assert_eq(swap_free(s, 16, 16), 0);
	/* A page-out in flight when the daemon dies: allocated, never written. */
	slot = must_alloc(s, 8);
	kept_fds(s, &fd, &tfd);
	before = stat_of(path);

	cr_assert_eq(swap_adopt(ring, fd, tfd, &t), 0);
	cr_assert_eq(stat_of(path).st_size, before.st_size, "not cut back");
	swap_stats(t, &st);
	cr_assert_eq(st.used_pages, 0, "every slot is free until claimed");
	cr_assert_eq(st.size_bytes, 8 << 20);
	cr_assert_eq(swap_claim(t, 0, 16), 0);
	cr_assert_eq(swap_claim(t, 32, 32), 0);
	cr_assert_eq(swap_claim(t, 40, 1), -EINVAL, "claimed twice");
	cr_assert_eq(swap_claim(t, 2048, 1), -EINVAL, "past the end");
	swap_stats(t, &st);
	cr_assert_eq(st.used_pages, 48);
	cr_assert_eq(read_wait(t, 0, in, 16), 0);
	cr_assert_eq(memcmp(in, out, 16 * PAGE), 0, "the data and checksums survive");
	cr_assert_eq(read_wait(t, 32, in + 32 * PAGE, 32), 0);
	cr_assert_eq(memcmp(in + 32 * PAGE, out + 32 * PAGE, 32 * PAGE), 0);
	cr_assert_eq(swap_read_now(t, 16, in, 1), -EINVAL, "freed before: not claimed");
	/* The slots claimed are not handed out again; the others are, and work. */
	for (int i = 0; i < 4; i++) {
		uint64_t got = must_alloc(t, 8);

		cr_assert(got >= 64 || (got >= 16 && got + 8 <= 32), "slot %lu",
			  (unsigned long)got);
		if (got == slot)
			cr_assert_eq(swap_read_now(t, got, in, 8), -EINVAL, "never written");
		cr_assert_eq(swap_write_now(t, got, out, 8), 0);
		cr_assert_eq(swap_read_now(t, got, in, 8), 0);
	}
	swap_close(t);
	cr_assert_eq(stat_of(path).st_size, PAGE, "closed: cut back to its header");
	swap_close(s);
	free(out);
	free(in);
}

Test(swap, what_is_not_a_kept_store_is_not_taken_over)
{
	struct swap *s = NULL, *t = NULL;
	int fd, tfd, other;

	cr_assert_eq(swap_open(ring, path, 1 << 20, 0, &s), 0);
	cr_assert_eq(swap_tables_fd(s), -1, "tables in memory only");
	swap_close(s);
	cr_assert_eq(swap_open(ring, path, 1 << 20, SWAP_KEPT, &s), 0);
	kept_fds(s, &fd, &tfd);
	cr_assert_eq(swap_adopt(ring, dup(fd), -1, &t), -EBADF);
	cr_assert_eq(swap_adopt(ring, -1, dup(tfd), &t), -EBADF);
	cr_assert_eq(swap_adopt(ring, dup(tfd), dup(tfd), &t), -EINVAL, "tables for a store");
	cr_assert_eq(swap_adopt(ring, dup(fd), dup(fd), &t), -EINVAL, "a store for tables");
	other = memfd_create("empty", MFD_CLOEXEC);
	cr_assert_eq(ftruncate(other, 1 << 20), 0);
	cr_assert_eq(swap_adopt(ring, dup(other), dup(tfd), &t), -EINVAL, "no header");
	cr_assert_eq(swap_adopt(ring, dup(fd), dup(other), &t), -EINVAL, "no tables");
	cr_assert_null(t);
	close(other);
	cr_assert_eq(swap_adopt(ring, fd, tfd, &t), 0);
	swap_close(t);
	swap_close(s);
}
