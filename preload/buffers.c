// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Buffers of system calls on memory upager serves, in a process whose userfaultfd takes faults from
 * user mode only (an ordinary user's; upager_mmap(3), "Unprivileged processes"). The kernel's own
 * copy to or from a page of such memory that is not in the process's page tables (never touched,
 * or sent to the swap store), or, for a copy to it, that is mapped read-only until its first write
 * (write tracking, copy-on-write), is a fault the daemon never sees: the call fails with EFAULT
 * where the kernel's memory would have served it. So before read(2), recv(2) and their kin, the
 * pages of the buffer that upager serves are written from user mode, with an atomic add of zero
 * that changes no byte, even beside another thread's writes; before write(2), send(2) and theirs,
 * they are read. At most TOUCH_MAX bytes of a call's buffers are touched: a longer call may end
 * short there, as read(2) and write(2) may. The calls that populate memory (below) have theirs
 * touched whole. A process with a full userfaultfd, or one that maps nothing through upager, pays a
 * load or two.
 */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "buffers.h"
#include "common/macro.h"
#include "libclient/internal.h"
#include "ranges.h"
#include "residency.h"
#include "upager.h"

#define TOUCH_MAX (16UL << 20)

enum touch {
	TOUCH_READ,
	TOUCH_WRITE,
	TOUCH_POPULATE, /* as the kernel populates: a write where private and writable */
};

/*
 * Where the pages of part @sp that its file has end: a touch past the end of the file would raise
 * SIGBUS, where the kernel's own access fails the call (EFAULT), as it does then here.
 */
static uintptr_t in_file(const struct span *sp)
{
	struct stat st;
	off_t end;

	if (sp->fd < 0 || fstat(sp->fd, &st) < 0)
		return sp->end;
	end = ALIGN_UP(st.st_size, (off_t)UPAGER_PAGE_SIZE);
	if (end <= sp->offset)
		return sp->start;
	return (uintptr_t)(end - sp->offset) < sp->end - sp->start
		       ? sp->start + (uintptr_t)(end - sp->offset)
		       : sp->end;
}

static void touch_part(const struct span *sp, void *arg)
{
	enum touch how = *(const enum touch *)arg;
	bool write = how == TOUCH_WRITE || (how == TOUCH_POPULATE && sp->private_writable);
	uintptr_t stop = in_file(sp);

	for (uintptr_t a = sp->start; a < stop;
	     a = ALIGN_DOWN(a, UPAGER_PAGE_SIZE) + UPAGER_PAGE_SIZE) {
		if (write)
			__atomic_fetch_add((volatile unsigned char *)a, 0, __ATOMIC_RELAXED);
		else
			(void)*(volatile const unsigned char *)a;
	}
}

/* Touch the pages of [buf, buf+len) in ranges upager serves, within their files. */
static void touch(const void *buf, size_t len, enum touch how)
{
	ranges_each_part((uintptr_t)buf, len,
			 how == TOUCH_WRITE ? PROT_READ | PROT_WRITE : PROT_READ, touch_part, &how);
}

static bool needed(void)
{
	return !ranges_empty() && upager__user_mode_only();
}

/*
 * Touch the first TOUCH_MAX bytes of [buf, buf+len) that upager serves. Return: the length to
 * hand the kernel: the touched part where upager serves pages past it, so that the call ends short
 * there, as read(2) and write(2) may, where O_DIRECT I/O, which pins its whole range first,
 * failed whole with EFAULT (mdb_copy(1) of a large environment).
 */
size_t buffer_touch(const void *buf, size_t len, bool into)
{
	bool beyond;

	if (!needed() || !len)
		return len;
	touch(buf, MIN(len, TOUCH_MAX), into ? TOUCH_WRITE : TOUCH_READ);
	if (len <= TOUCH_MAX)
		return len;
	ranges_lock();
	beyond = ranges_overlap((uintptr_t)buf + TOUCH_MAX, len - TOUCH_MAX, NULL);
	ranges_unlock();
	return beyond ? TOUCH_MAX : len;
}

void buffer_touch_iov(const struct iovec *iov, size_t cnt, bool into)
{
	size_t left = TOUCH_MAX;

	if (!needed() || !iov)
		return;
	for (size_t i = 0; i < cnt && left; i++) {
		size_t len = MIN(iov[i].iov_len, left);

		if (len)
			touch(iov[i].iov_base, len, into ? TOUCH_WRITE : TOUCH_READ);
		left -= len;
	}
}

/*
 * The C library's own function @name, which the call goes on to after the touches: a
 * cancellation point, as the program expects of read(2) and its kin, where a system call made here
 * would not be. Looked up once (@slot); NULL before the dynamic linker can say (then the system
 * call serves).
 */
void *libc_fn(const char *name, void **slot)
{
	void *p = __atomic_load_n(slot, __ATOMIC_RELAXED);

	if (!p) {
		p = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, p, __ATOMIC_RELAXED);
	}
	return p;
}

static ssize_t preload_read(int fd, void *buf, size_t count)
{
	static void *next;
	ssize_t (*f)(int, void *, size_t) = libc_fn("read", &next);

	count = buffer_touch(buf, count, true);
	return f ? f(fd, buf, count) : syscall(SYS_read, fd, buf, count);
}
_public_ ssize_t read(int fd, void *buf, size_t count) __attribute__((alias("preload_read")));

static ssize_t preload_pread(int fd, void *buf, size_t count, off_t offset)
{
	static void *next;
	ssize_t (*f)(int, void *, size_t, off_t) = libc_fn("pread64", &next);

	count = buffer_touch(buf, count, true);
	return f ? f(fd, buf, count, offset) : syscall(SYS_pread64, fd, buf, count, offset);
}
_public_ ssize_t pread(int fd, void *buf, size_t count, off_t offset)
	__attribute__((alias("preload_pread")));
_public_ ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
	__attribute__((alias("preload_pread")));

static ssize_t preload_readv(int fd, const struct iovec *iov, int cnt)
{
	static void *next;
	ssize_t (*f)(int, const struct iovec *, int) = libc_fn("readv", &next);

	if (cnt > 0)
		buffer_touch_iov(iov, (size_t)cnt, true);
	return f ? f(fd, iov, cnt) : syscall(SYS_readv, fd, iov, cnt);
}
_public_ ssize_t readv(int fd, const struct iovec *iov, int cnt)
	__attribute__((alias("preload_readv")));

static ssize_t preload_preadv2(int fd, const struct iovec *iov, int cnt, off_t offset, int flags)
{
	static void *next;
	ssize_t (*f)(int, const struct iovec *, int, off_t, int) = libc_fn("preadv64v2", &next);

	if (cnt > 0)
		buffer_touch_iov(iov, (size_t)cnt, true);
	/* The offset in two halves; on a 64-bit kernel the high one is not used. */
	return f ? f(fd, iov, cnt, offset, flags)
		 : syscall(SYS_preadv2, fd, iov, cnt, offset, 0L, flags);
}
_public_ ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t offset, int flags)
	__attribute__((alias("preload_preadv2")));
_public_ ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t offset, int flags)
	__attribute__((alias("preload_preadv2")));

static ssize_t preload_preadv(int fd, const struct iovec *iov, int cnt, off_t offset)
{
	static void *next;
	ssize_t (*f)(int, const struct iovec *, int, off_t) = libc_fn("preadv64", &next);

	if (cnt > 0)
		buffer_touch_iov(iov, (size_t)cnt, true);
	return f ? f(fd, iov, cnt, offset) : syscall(SYS_preadv, fd, iov, cnt, offset, 0L);
}
_public_ ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t offset)
	__attribute__((alias("preload_preadv")));
_public_ ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t offset)
	__attribute__((alias("preload_preadv")));

static ssize_t preload_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
				socklen_t *fromlen)
{
	static void *next;
	ssize_t (*f)(int, void *, size_t, int, struct sockaddr *, socklen_t *) =
		libc_fn("recvfrom", &next);

	(void)buffer_touch(buf, len, true); /* a datagram cut short would be lost */
	return f ? f(fd, buf, len, flags, from, fromlen)
		 : syscall(SYS_recvfrom, fd, buf, len, flags, from, fromlen);
}
_public_ ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
			  socklen_t *fromlen) __attribute__((alias("preload_recvfrom")));

static ssize_t preload_recv(int fd, void *buf, size_t len, int flags)
{
	return preload_recvfrom(fd, buf, len, flags, NULL, NULL);
}
_public_ ssize_t recv(int fd, void *buf, size_t len, int flags)
	__attribute__((alias("preload_recv")));

static ssize_t preload_recvmsg(int fd, struct msghdr *msg, int flags)
{
	static void *next;
	ssize_t (*f)(int, struct msghdr *, int) = libc_fn("recvmsg", &next);

	if (msg)
		buffer_touch_iov(msg->msg_iov, msg->msg_iovlen, true);
	return f ? f(fd, msg, flags) : syscall(SYS_recvmsg, fd, msg, flags);
}
_public_ ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
	__attribute__((alias("preload_recvmsg")));

static ssize_t preload_sendto(int fd, const void *buf, size_t len, int flags,
			      const struct sockaddr *to, socklen_t tolen)
{
	static void *next;
	ssize_t (*f)(int, const void *, size_t, int, const struct sockaddr *, socklen_t) =
		libc_fn("sendto", &next);

	(void)buffer_touch(buf, len, false);
	return f ? f(fd, buf, len, flags, to, tolen)
		 : syscall(SYS_sendto, fd, buf, len, flags, to, tolen);
}
_public_ ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
			socklen_t tolen) __attribute__((alias("preload_sendto")));

static ssize_t preload_send(int fd, const void *buf, size_t len, int flags)
{
	return preload_sendto(fd, buf, len, flags, NULL, 0);
}
_public_ ssize_t send(int fd, const void *buf, size_t len, int flags)
	__attribute__((alias("preload_send")));

static ssize_t preload_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static void *next;
	ssize_t (*f)(int, const struct msghdr *, int) = libc_fn("sendmsg", &next);

	if (msg)
		buffer_touch_iov(msg->msg_iov, msg->msg_iovlen, false);
	return f ? f(fd, msg, flags) : syscall(SYS_sendmsg, fd, msg, flags);
}
_public_ ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
	__attribute__((alias("preload_sendmsg")));

/*
 * mlock(2), mlock2(2) without MLOCK_ONFAULT, mlockall(2) with MCL_CURRENT and madvise(2) with
 * MADV_POPULATE_READ or MADV_POPULATE_WRITE fault the pages in from the kernel: they fail with
 * ENOMEM or EFAULT on pages not mapped yet. The pages upager serves in the range (in all of its
 * ranges for mlockall()) are touched first as the kernel would fault them, all of them.
 */
static void touch_to_populate(const void *addr, size_t len, enum touch how)
{
	if (needed() && len)
		touch(addr, len, how);
}

static int preload_mlock(const void *addr, size_t len)
{
	touch_to_populate(addr, len, TOUCH_POPULATE);
	return (int)syscall(SYS_mlock, addr, len);
}
_public_ int mlock(const void *addr, size_t len) __attribute__((alias("preload_mlock")));

static int preload_mlock2(const void *addr, size_t len, unsigned int flags)
{
	if (!(flags & MLOCK_ONFAULT))
		touch_to_populate(addr, len, TOUCH_POPULATE);
	return (int)syscall(SYS_mlock2, addr, len, flags);
}
_public_ int mlock2(const void *addr, size_t len, unsigned int flags)
	__attribute__((alias("preload_mlock2")));

static int preload_mlockall(int flags)
{
	if ((flags & MCL_CURRENT) && !(flags & MCL_ONFAULT))
		touch_to_populate(NULL, UINTPTR_MAX, TOUCH_POPULATE);
	return (int)syscall(SYS_mlockall, flags);
}
_public_ int mlockall(int flags) __attribute__((alias("preload_mlockall")));

/*
 * Past the end of a file the daemon answers SIGBUS with UFFDIO_POISON, whose marker the kernel's
 * populate reports as a memory error: where the kernel's own mapping would raise SIGBUS, its
 * populate fails with EFAULT.
 */
static int populate(void *addr, size_t len, int advice)
{
	int ret;
	bool ours;

	touch_to_populate(addr, len, advice == MADV_POPULATE_WRITE ? TOUCH_WRITE : TOUCH_READ);
	ret = (int)syscall(SYS_madvise, addr, len, advice);
	if (ret < 0 && errno == EHWPOISON && !ranges_empty()) {
		ranges_lock();
		ours = ranges_overlap((uintptr_t)addr, len, NULL);
		ranges_unlock();
		if (ours)
			errno = EFAULT;
	}
	return ret;
}

static int preload_madvise(void *addr, size_t len, int advice)
{
	int ret, err;

	switch (advice) {
	case MADV_POPULATE_READ:
	case MADV_POPULATE_WRITE:
		return populate(addr, len, advice);
	case MADV_WILLNEED:
		if (!ranges_empty())
			residency_will_need(addr, len);
		break;
	case MADV_DONTNEED:
	case MADV_DONTNEED_LOCKED:
	case MADV_FREE:
		/* Pages emptied: not while a DROP acts on what it read of them (conn.c). */
		if (ranges_empty())
			break;
		upager__maps_lock();
		ret = (int)syscall(SYS_madvise, addr, len, advice);
		err = errno;
		upager__maps_unlock();
		errno = err;
		return ret;
	case MADV_REMOVE:
		if (!ranges_empty())
			upager__maps_lock();
		ret = (int)syscall(SYS_madvise, addr, len, advice);
		err = errno;
		if (!ranges_empty())
			upager__maps_unlock();
		errno = err;
		if (ret < 0 || ranges_empty())
			return ret;
		err = residency_remove(addr, len);
		if (err) {
			errno = err;
			return -1;
		}
		return 0;
	}
	return (int)syscall(SYS_madvise, addr, len, advice);
}
_public_ int madvise(void *addr, size_t len, int advice) __attribute__((alias("preload_madvise")));
