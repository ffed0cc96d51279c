// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * No lost writes: a write that the file system has no block for raises SIGBUS at the write, as
 * with the kernel (LTP mmap16), on a small ext4 file system on a loop device that the test makes
 * and fills; a write-back that fails is reported by the next msync, shown by upagerctl and kept
 * until then.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

/* A file system of a few MiB on a loop device, mounted at mnt (torn down by fs_stop()). */
struct smallfs {
	char img[400], mnt[400];
	bool mounted;
};

static struct smallfs fs;

static void fs_stop(void);

static void writes_fini(void)
{
	fs_stop();
	harness_stop();
}

TestSuite(writes, .init = harness_start, .fini = writes_fini, .timeout = 120);

static void fs_stop(void)
{
	char cmd[1000];

	if (fs.mounted) {
		/* A lazy unmount: a daemon that still holds the file does not keep the loop busy. */
		umount2(fs.mnt, MNT_DETACH);
		fs.mounted = false;
	}
	if (fs.img[0]) {
		snprintf(cmd, sizeof(cmd), "rm -f '%s'", fs.img);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", fs.img);
	}
}

static void fs_start(void)
{
	char cmd[1400];
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root to mount a loop device");
	snprintf(fs.img, sizeof(fs.img), "%s/fs.img", harness_tmpdir());
	snprintf(fs.mnt, sizeof(fs.mnt), "%s/mnt", harness_tmpdir());
	cr_assert_eq(mkdir(fs.mnt, 0755), 0);
	fd = open(fs.img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, 8 << 20), 0); /* sparse */
	close(fd);
	/* No blocks kept for root (-m 0): the daemon runs as root and would use them. */
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -m 0 -b 4096 -O ^has_journal '%s' >/dev/null 2>&1 && "
		 "mount -o loop '%s' '%s'",
		 fs.img, fs.img, fs.mnt);
	if (system(cmd) != 0)
		cr_skip_test("cannot make and loop-mount an ext4 file system here");
	fs.mounted = true;
}

/*
 * Fill the file system: a file written until no block is left, again after each fsync, which
 * gives back what delayed allocation held for the worst case.
 */
static void fs_fill(void)
{
	static char buf[1 << 16];
	char path[500];
	bool wrote = true;
	int fd;

	snprintf(path, sizeof(path), "%s/filler", fs.mnt);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	memset(buf, 'f', sizeof(buf));
	while (wrote) {
		wrote = false;
		for (size_t len = sizeof(buf); len >= PAGE;) {
			ssize_t n = write(fd, buf, len);

			if (n < 0 && (errno == ENOSPC || errno == EDQUOT)) {
				len /= 2;
				continue;
			}
			cr_assert(n > 0, "write: %s", strerror(errno));
			wrote = true;
		}
		fsync(fd);
	}
	close(fd);
}

/* A file of @pages pages on the small file system, all hole. */
static int fs_sparse_file(const char *name, uint64_t pages)
{
	char path[500];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fs.mnt, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, (off_t)(pages * PAGE)), 0);
	return fd;
}

struct write_at {
	volatile char *m;
	uint64_t off;
	bool read_first;
};

static void write_in_child(void *arg)
{
	struct write_at *w = arg;

	signal(SIGBUS, SIG_DFL);
	if (w->read_first)
		(void)w->m[w->off];
	w->m[w->off] = 'x';
	_exit(0);
}

/* The wait status of a child that writes a byte at @off of @m (reading it first if asked). */
static int child_writes(char *m, uint64_t off, bool read_first)
{
	struct write_at w = { .m = m, .off = off, .read_first = read_first };

	return run_child(write_in_child, &w);
}

static void assert_sigbus(int status, const char *what)
{
	cr_assert(WIFSIGNALED(status), "%s: no signal, status %#x", what, status);
	cr_assert_eq(WTERMSIG(status), SIGBUS, "%s: signal %d", what, WTERMSIG(status));
}

Test(writes, a_write_with_no_block_left_is_sigbus_at_the_write)
{
	const uint64_t pages = 4096;
	int kfd, ufd;
	char *k, *u;
	char buf[PAGE];

	fs_start();
	kfd = fs_sparse_file("kernel", pages);
	ufd = fs_sparse_file("upager", pages);
	k = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, kfd, 0);
	u = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ufd, 0);
	cr_assert_neq(k, MAP_FAILED);
	cr_assert_neq(u, MAP_FAILED);
	/* With room: the writes go, and reserve what is around them. */
	k[PAGE] = 'a';
	u[PAGE] = 'a';
	fs_fill();

	/* The kernel's own mapping: SIGBUS at a write to a hole (the file system is full). */
	assert_sigbus(child_writes(k, 2000 * PAGE, false), "kernel mapping");
	/* upager's: the same, for a page never touched and for one read first (mapped
	 * write-protected, so that its first write reaches the daemon). */
	assert_sigbus(child_writes(u, 2000 * PAGE, false), "untouched page");
	assert_sigbus(child_writes(u, 3000 * PAGE, true), "page read first");
	/* The refused page reads as the hole it still is. */
	cr_assert_eq(u[3000 * PAGE], 0);

	/* A page whose blocks the first write reserved takes writes still, and they reach the file. */
	u[2 * PAGE] = 'b';
	cr_assert_eq(upager_msync(u, pages * PAGE, MS_SYNC), 0, "msync: %s", strerror(errno));
	cr_assert_eq(pread(ufd, buf, PAGE, PAGE), (ssize_t)PAGE);
	cr_assert_eq(buf[0], 'a');
	cr_assert_eq(pread(ufd, buf, PAGE, 2 * PAGE), (ssize_t)PAGE);
	cr_assert_eq(buf[0], 'b');
	cr_assert(harness_daemon_logged("No space left on device"));
	cr_assert_eq(upager_munmap(u, pages * PAGE), 0);
	munmap(k, pages * PAGE);
	close(kfd);
	close(ufd);
}
