// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A program's own writes to a file it maps through upager: write(2), pwrite(2), their vector
 * forms, ftruncate(2), fallocate(2) and copy_file_range(2) on any of its descriptors of the file.
 * The kernel's mappings share the page cache with write(2), and programs rely on reading at once
 * through the mapping what they wrote (SQLite, LMDB). After the kernel's call returns, every
 * mapping of the file shows it before the call returns to the program, in this process or another:
 * the daemon follows the file's size and drops the clean pages of the written range, named by file
 * offset with the descriptor (upager__written_file()), which the next touch reads again from the
 * file. A range that this process maps shared and writable is written
 * back first (msync(MS_SYNC)): its bytes reach the file before the call's, and the call's are the
 * last, as in the one page cache of the kernel.
 *
 * Any other descriptor costs one load while the process maps no file through upager, and one
 * fstat(2) per descriptor number after each new file mapping: what a number was found to hold is
 * kept (a small table), forgotten when the number is closed or reused by dup2(2) or dup3(2).
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "buffers.h"
#include "common/macro.h"
#include "libclient/internal.h"
#include "ranges.h"
#include "upager.h"

#define FD_SLOTS 1024
#define MAX_SPANS 8

/* Per descriptor number: 0 unknown, else ranges_files_added() << 1 | 1 when it holds no mapped
 * file as of then. */
static atomic_uint fd_seen[FD_SLOTS];

static void fd_forget(int fd)
{
	if (fd >= 0 && fd < FD_SLOTS)
		atomic_store_explicit(&fd_seen[fd], 0, memory_order_relaxed);
}

/* Where a call without an offset wrote: at the position before it, or the bytes before the
 * position after it. */
#define AT_POSITION ((off_t)-1)
#define BEFORE_POSITION ((off_t)-2)

/* The offset @off names: itself, or one of the two relative to the descriptor's position. */
static off_t resolve(int fd, off_t off, off_t len)
{
	off_t pos;

	if (off >= 0)
		return off;
	pos = lseek(fd, 0, SEEK_CUR);
	return pos < 0 ? 0 : off == AT_POSITION ? pos : MAX(pos - len, 0);
}

/*
 * Where @fd's file is mapped through upager: the spans that show [off, off+len) of it (len 0: the
 * first page of any one mapping), or -1 for a descriptor of no mapped file, known without a system
 * call once found.
 */
static ssize_t mapped_spans(int fd, off_t off, off_t len, struct span *out)
{
	unsigned added, seen;
	struct stat st;
	ssize_t n = -1;

	if (ranges_empty())
		return -1;
	added = ranges_files_added();
	seen = fd >= 0 && fd < FD_SLOTS ? atomic_load_explicit(&fd_seen[fd], memory_order_relaxed)
					: 0;
	if (seen == (added << 1 | 1))
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off = resolve(fd, off, len);
		ranges_lock();
		if (ranges_of_file(st.st_dev, st.st_ino, 0, 0, out, 1))
			n = len ? (ssize_t)ranges_of_file(st.st_dev, st.st_ino, off, len, out,
							  MAX_SPANS)
				: 1;
		ranges_unlock();
	}
	if (n < 0 && fd >= 0 && fd < FD_SLOTS)
		atomic_store_explicit(&fd_seen[fd], added << 1 | 1, memory_order_relaxed);
	return n;
}

/* Before a write of [off, off+len) of @fd's file: what this process wrote there through a shared
 * mapping goes to the file first. */
static void before(int fd, off_t off, off_t len)
{
	struct span sp[MAX_SPANS];
	ssize_t n = len > 0 ? mapped_spans(fd, off, len, sp) : -1;
	int saved = errno;

	for (ssize_t i = 0; i < n; i++)
		if (sp[i].shared_writable)
			upager_msync((void *)sp[i].start, sp[i].end - sp[i].start, MS_SYNC);
	errno = saved;
}

/*
 * After the kernel's call wrote [off, off+len) of @fd's file; @resized: it may have changed its
 * size too (len 0: only that). The daemon follows by file offset, wherever the file is mapped: in
 * this process, or only in another (SQLite's writer maps the pages it had when it mapped the
 * database, its checkpoints write others, which its readers map).
 */
static void after(int fd, off_t off, off_t len, bool resized)
{
	struct span sp[1];
	int saved = errno;

	if ((len || resized) && mapped_spans(fd, 0, 0, sp) > 0)
		upager__written_file(fd, resolve(fd, off, len), (size_t)len);
	errno = saved;
}

static size_t iov_bytes(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

static ssize_t preload_write(int fd, const void *buf, size_t count)
{
	static void *next;
	ssize_t (*f)(int, const void *, size_t) = libc_fn("write", &next);
	ssize_t n;

	count = buffer_touch(buf, count, false);
	before(fd, AT_POSITION, (off_t)count);
	n = f ? f(fd, buf, count) : syscall(SYS_write, fd, buf, count);
	if (n > 0)
		after(fd, BEFORE_POSITION, n, false);
	return n;
}
_public_ ssize_t write(int fd, const void *buf, size_t count)
	__attribute__((alias("preload_write")));

static ssize_t preload_pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	static void *next;
	ssize_t (*f)(int, const void *, size_t, off_t) = libc_fn("pwrite64", &next);
	ssize_t n;

	count = buffer_touch(buf, count, false);
	before(fd, offset, (off_t)count);
	n = f ? f(fd, buf, count, offset) : syscall(SYS_pwrite64, fd, buf, count, offset);
	if (n > 0)
		after(fd, offset, n, false);
	return n;
}
_public_ ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
	__attribute__((alias("preload_pwrite")));

_public_ ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
	__attribute__((alias("preload_pwrite")));

static ssize_t preload_writev(int fd, const struct iovec *iov, int cnt)
{
	static void *next;
	ssize_t (*f)(int, const struct iovec *, int) = libc_fn("writev", &next);
	ssize_t n;

	if (cnt > 0)
		buffer_touch_iov(iov, (size_t)cnt, false);
	before(fd, AT_POSITION, (off_t)iov_bytes(iov, cnt));
	n = f ? f(fd, iov, cnt) : syscall(SYS_writev, fd, iov, cnt);
	if (n > 0)
		after(fd, BEFORE_POSITION, n, false);
	return n;
}
_public_ ssize_t writev(int fd, const struct iovec *iov, int cnt)
	__attribute__((alias("preload_writev")));

static ssize_t preload_pwritev2(int fd, const struct iovec *iov, int cnt, off_t offset, int flags)
{
	static void *next;
	ssize_t (*f)(int, const struct iovec *, int, off_t, int) = libc_fn("pwritev64v2", &next);
	bool here = offset == -1;
	ssize_t n;

	if (cnt > 0)
		buffer_touch_iov(iov, (size_t)cnt, false);
	before(fd, here ? AT_POSITION : offset, (off_t)iov_bytes(iov, cnt));
	/* The offset in two halves; on a 64-bit kernel the high one is not used. */
	n = f ? f(fd, iov, cnt, offset, flags)
	      : syscall(SYS_pwritev2, fd, iov, cnt, offset, 0L, flags);
	if (n > 0)
		after(fd, here ? BEFORE_POSITION : offset, n, false);
	return n;
}
_public_ ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t offset, int flags)
	__attribute__((alias("preload_pwritev2")));

static ssize_t preload_pwritev(int fd, const struct iovec *iov, int cnt, off_t offset)
{
	return preload_pwritev2(fd, iov, cnt, offset, 0);
}
_public_ ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t offset)
	__attribute__((alias("preload_pwritev")));

_public_ ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t offset)
	__attribute__((alias("preload_pwritev")));
_public_ ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t offset, int flags)
	__attribute__((alias("preload_pwritev2")));

static int preload_ftruncate(int fd, off_t length)
{
	int ret = (int)syscall(SYS_ftruncate, fd, length);

	if (ret == 0)
		after(fd, 0, 0, true);
	return ret;
}
_public_ int ftruncate(int fd, off_t length) __attribute__((alias("preload_ftruncate")));

_public_ int ftruncate64(int fd, off_t length) __attribute__((alias("preload_ftruncate")));

static int preload_fallocate(int fd, int mode, off_t offset, off_t len)
{
	int ret;

	before(fd, offset, len);
	ret = (int)syscall(SYS_fallocate, fd, mode, offset, len);
	if (ret == 0)
		after(fd, offset, len, true);
	return ret;
}
_public_ int fallocate(int fd, int mode, off_t offset, off_t len)
	__attribute__((alias("preload_fallocate")));

_public_ int fallocate64(int fd, int mode, off_t offset, off_t len)
	__attribute__((alias("preload_fallocate")));

static ssize_t preload_copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out,
				       size_t len, unsigned flags)
{
	off_t at = off_out ? *off_out : AT_POSITION;
	ssize_t n;

	before(fd_out, at, (off_t)len);
	n = syscall(SYS_copy_file_range, fd_in, off_in, fd_out, off_out, len, flags);
	/* The kernel moved the offset it was given, or the position. */
	if (n > 0)
		after(fd_out, off_out ? *off_out - n : BEFORE_POSITION, n, false);
	return n;
}
_public_ ssize_t copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
				 unsigned flags) __attribute__((alias("preload_copy_file_range")));

static int preload_close(int fd)
{
	struct stat st;
	bool file = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	int ret;

	fd_forget(fd);
	ret = (int)syscall(SYS_close, fd);
	/* The process's locks on the file went with it: so may the library's idle duplicates. */
	if (file)
		upager__fd_file_closed(st.st_dev, st.st_ino);
	return ret;
}
_public_ int close(int fd) __attribute__((alias("preload_close")));

static int preload_dup2(int old, int new)
{
	struct stat st;
	bool file = old != new &&fstat(new, &st) == 0 && S_ISREG(st.st_mode);
	int ret;

	fd_forget(new);
	ret = (int)syscall(SYS_dup2, old, new);
	if (file && ret >= 0) /* closed @new, and the locks on its file */
		upager__fd_file_closed(st.st_dev, st.st_ino);
	return ret;
}
_public_ int dup2(int old, int new) __attribute__((alias("preload_dup2")));

static int preload_dup3(int old, int new, int flags)
{
	fd_forget(new);
	return (int)syscall(SYS_dup3, old, new, flags);
}
_public_ int dup3(int old, int new, int flags) __attribute__((alias("preload_dup3")));
