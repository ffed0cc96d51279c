// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libupager-preload.so: the memory calls of a program that does not know upager, routed through
 * libupager (see upager-run(1)). A file mapping goes to upager_mmap(), and so does anonymous memory
 * when $UPAGER_ANONYMOUS is 1; every other call, and every call on a range upager did not map, goes
 * to the kernel after one look at the table of upager's ranges (ranges.c), which is empty until the
 * first routed mapping: a program that maps no file pays one load per call. glibc's own mappings
 * (malloc's, thread stacks, the dynamic loader's) never come here: glibc makes them through its
 * internal names, not through the symbols a preload can take.
 *
 * A thread inside a routed call marks itself, so that a signal handler that maps memory on it goes
 * to the kernel instead of waiting for a lock its own thread holds. libupager's calls of mmap() and
 * the others are linked to the kernel's (kernel.c), so they never come back here from any thread.
 * If the daemon cannot be reached, the kernel maps the file, and $UPAGER_DEBUG says so once.
 */
/* Both mmap and mmap64 are defined here: no header may rename the one into the other. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/macro.h"
#include "kernel.h"
#include "libclient/internal.h"
#include "ranges.h"
#include "vmas.h"
#include "upager.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Set while this thread is in a routed call: anything it maps meanwhile goes to the kernel. */
static __thread unsigned inside __attribute__((tls_model("initial-exec")));

static struct {
	atomic_bool read; /* the environment was read */
	bool anonymous; /* $UPAGER_ANONYMOUS=1: route anonymous memory too */
	bool debug; /* $UPAGER_DEBUG set: say once on stderr when the kernel maps instead */
	atomic_bool unreachable; /* the first routed call found no daemon: route nothing more */
	atomic_bool routed; /* a mapping went through upager */
	atomic_bool said;
} cfg;

static void configure(void)
{
	const char *debug;

	if (atomic_load_explicit(&cfg.read, memory_order_acquire))
		return;
	cfg.anonymous = getenv("UPAGER_ANONYMOUS") && !strcmp(getenv("UPAGER_ANONYMOUS"), "1");
	debug = getenv("UPAGER_DEBUG");
	cfg.debug = debug && *debug && strcmp(debug, "0");
	atomic_store_explicit(&cfg.read, true, memory_order_release);
}

__attribute__((format(printf, 1, 2))) static void say_once(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	if (!cfg.debug || atomic_exchange(&cfg.said, true))
		return;
	n = snprintf(buf, sizeof(buf), "upager-preload[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (write(STDERR_FILENO, buf, MIN((size_t)n, sizeof(buf) - 1)) < 0)
		return;
}

/* File systems whose files are not data to page: memory already, or the kernel's own. */
static bool pseudo_fs(int fd)
{
	struct statfs sfs;
	char link[32], target[16];
	ssize_t n;

	if (fstatfs(fd, &sfs) < 0)
		return true;
	switch ((unsigned long)sfs.f_type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case HUGETLBFS_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case BPF_FS_MAGIC:
	case SECRETMEM_MAGIC: /* memfd_secret(2): no one else may read its pages */
		return true;
	case TMPFS_MAGIC:
		/* A memfd: memory some process shares, maybe with one that does not run on upager. */
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target));
		return n >= 7 && !memcmp(target, "/memfd:", 7);
	default:
		return false;
	}
}

/* Whether a mapping goes to upager; *writable: whether the file's descriptor is O_RDWR. */
static bool routable(int flags, int fd, bool *writable)
{
	struct stat st;
	int fl;

	configure();
	*writable = false;
	if ((flags & MAP_HUGETLB) || atomic_load_explicit(&cfg.unreachable, memory_order_relaxed))
		return false;
	if (flags & MAP_ANONYMOUS)
		return cfg.anonymous;
	if (fd < 0 || fstat(fd, &st) < 0)
		return false;
	if (S_ISCHR(st.st_mode)) /* /dev/zero is anonymous memory */
		return cfg.anonymous && major(st.st_rdev) == 1 && minor(st.st_rdev) == 5;
	if (!S_ISREG(st.st_mode) || pseudo_fs(fd))
		return false;
	fl = fcntl(fd, F_GETFL);
	*writable = fl >= 0 && (fl & O_ACCMODE) == O_RDWR;
	return true;
}

/* upager could not map it: the kernel does, and the process stops trying if no daemon is there. */
static void note_failure(int err)
{
	if (!atomic_load(&cfg.routed) && (err == ENOENT || err == ECONNREFUSED)) {
		atomic_store(&cfg.unreachable, true);
		say_once("no upagerd at %s (%s): the kernel maps this process's files\n",
			 getenv("UPAGER_SOCKET") ? getenv("UPAGER_SOCKET") : UPAGER_DEFAULT_SOCKET,
			 strerror(err));
		return;
	}
	say_once("upager could not map a range (%s): the kernel maps it\n", strerror(err));
}

/*
 * Whatever upager mapped in the range goes first, written back, as the kernel's call replaces it.
 * The range stays taken (a reservation, which that call replaces at once): left free, another
 * thread's mapping could come in before the call, which would replace it unseen. Return: whether
 * there was such a mapping (the range is reserved then, or unmapped if that failed).
 */
static bool drop_replaced(void *addr, size_t length)
{
	bool met;

	ranges_lock();
	met = ranges_forget((uintptr_t)addr, length);
	ranges_unlock();
	if (met && upager__munmap_reserve(addr, length) < 0)
		kernel_munmap(addr, length);
	return met;
}

/* The reservation drop_replaced() left, after the call meant to replace it failed: unmapped, as
 * a failed MAP_FIXED or MREMAP_FIXED may leave its range; errno kept. */
static void unreserve(void *addr, size_t length)
{
	int err = errno;

	kernel_munmap(addr, length);
	errno = err;
}

/*
 * The kernel's move of a range with upager's pages (@fn), under the connection lock, as
 * upager_munmap() calls munmap(2): the old addresses are free before the daemon reads the move's
 * event, and an upager mapping another thread made there meanwhile would reach the daemon first,
 * which the event would then carry away with the old one's (its pages then faulted outside every
 * region, or on the old pages' slots). Not with no daemon: the watcher needs the lock to bring the
 * next one, which reads the event.
 */
static void *remap_locked(void *(*fn)(void *, size_t, size_t, int, void *), void *old,
			  size_t old_len, size_t new_len, int flags, void *dst)
{
	bool held;
	void *p;
	int err;

	upager__lock();
	held = upager__connected();
	if (!held)
		upager__unlock();
	upager__maps_lock();
	p = fn(old, old_len, new_len, flags, dst);
	err = errno;
	upager__maps_unlock();
	if (held)
		upager__unlock();
	errno = err;
	return p;
}

/* vmas_remap() with the shape of mremap(2), for remap_locked(). */
static void *vmas_remap_same(void *old, size_t old_len, size_t new_len, int flags, void *dst)
{
	(void)new_len;
	return vmas_remap(old, old_len, flags, dst);
}

/* Map through upager and note the range; NULL if upager could not (errno set). */
static void *upager_map_noted(void *addr, size_t length, int prot, int flags, int fd, off_t offset,
			      bool writable)
{
	struct range r = { .offset = offset, .prot = prot, .writable = writable };
	void *p = upager_mmap(addr, length, prot, flags, fd, offset);
	struct stat st;
	int ret;

	if (p == MAP_FAILED)
		return NULL;
	r.start = (uintptr_t)p;
	r.end = r.start + ALIGN_UP(length, UPAGER_PAGE_SIZE);
	r.flags = flags & ~(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE);
	r.fd = flags & MAP_ANONYMOUS ? -1 : upager__fd_keep(fd);
	if (r.fd >= 0 && fstat(r.fd, &st) == 0) {
		r.dev = st.st_dev;
		r.ino = st.st_ino;
	}
	ranges_lock();
	ret = ranges_add(&r);
	ranges_unlock();
	if (ret < 0) {
		upager_munmap(p, length);
		errno = -ret;
		return NULL;
	}
	atomic_store(&cfg.routed, true);
	return p;
}

/** mmap() - mmap(2), through upager for the mappings it takes; see upager-run(1) */
static void *preload_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	bool writable, reserved;
	void *p;

	if (inside)
		return kernel_mmap(addr, length, prot, flags, fd, offset);
	inside++;
	reserved = (flags & MAP_FIXED) && !ranges_empty() && drop_replaced(addr, length);
	p = NULL;
	if (routable(flags, fd, &writable)) {
		p = upager_map_noted(addr, length, prot, flags, fd, offset, writable);
		if (!p)
			note_failure(errno);
	}
	if (!p)
		p = kernel_mmap(addr, length, prot, flags, fd, offset);
	if (p == MAP_FAILED && reserved)
		unreserve(addr, length);
	inside--;
	return p;
}
_public_ void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
	__attribute__((alias("preload_mmap")));

/** mmap64() - mmap(), whose offset is 64 bits wide on this architecture already */
_public_ void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
	__attribute__((alias("preload_mmap")));

/** munmap() - munmap(2); a range with upager's pages in it is written back first */
static int preload_munmap(void *addr, size_t length)
{
	bool met;
	int ret;

	if (inside || ranges_empty())
		return kernel_munmap(addr, length);
	inside++;
	ranges_lock();
	met = ranges_forget((uintptr_t)addr, length);
	ranges_unlock();
	ret = met ? upager_munmap(addr, length) : kernel_munmap(addr, length);
	inside--;
	return ret;
}
_public_ int munmap(void *addr, size_t length) __attribute__((alias("preload_munmap")));

/** msync() - msync(2), through upager_msync() on a range with upager's pages */
static int preload_msync(void *addr, size_t length, int flags)
{
	bool met;
	int ret;

	if (inside || ranges_empty())
		return kernel_msync(addr, length, flags);
	inside++;
	ranges_lock();
	met = ranges_overlap((uintptr_t)addr, length, NULL);
	ranges_unlock();
	ret = met ? upager_msync(addr, length, flags) : kernel_msync(addr, length, flags);
	inside--;
	return ret;
}
_public_ int msync(void *addr, size_t length, int flags) __attribute__((alias("preload_msync")));

/*
 * remap_file_pages() - remap_file_pages(2), through upager_remap_file_pages() on a range with
 * upager's pages: the kernel's would map the daemon's memory file at the new offset without the
 * daemon, and read a page it has sent out as zeroes
 */
static int preload_remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	bool met;
	int ret;

	if (inside || ranges_empty())
		return kernel_remap_file_pages(addr, size, prot, pgoff, flags);
	inside++;
	ranges_lock();
	met = ranges_overlap((uintptr_t)addr, size, NULL);
	ranges_unlock();
	ret = met ? upager_remap_file_pages(addr, size, prot, pgoff, flags)
		  : kernel_remap_file_pages(addr, size, prot, pgoff, flags);
	inside--;
	return ret;
}
_public_ int remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags)
	__attribute__((alias("preload_remap_file_pages")));

/*
 * The pages [lo, hi) of private anonymous memory upager serves become the kernel's, with what
 * they hold: copied into pages of the kernel's, which then move over them (the daemon reads the
 * move as an unmap). Return: whether they did; else they stay as they were.
 */
static bool give_back(uintptr_t lo, uintptr_t hi)
{
	size_t len = hi - lo;
	struct range *r;
	bool ours;
	void *copy;

	ranges_lock();
	r = ranges_find(lo);
	ours = r && hi <= r->end && r->fd < 0 && (r->flags & MAP_TYPE) == MAP_PRIVATE &&
	       (r->prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE);
	ranges_unlock();
	if (!ours)
		return false;
	copy = kernel_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED)
		return false;
	memcpy(copy, (void *)lo, len); /* faults from user mode: the daemon serves them */
	if (kernel_mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)lo) ==
	    MAP_FAILED) {
		kernel_munmap(copy, len);
		return false;
	}
	ranges_lock();
	ranges_forget(lo, len);
	ranges_unlock();
	return true;
}

/*
 * sigaltstack() - sigaltstack(2). The kernel writes a signal frame on the stack from kernel
 * mode, a fault that a userfaultfd limited to user mode (an unprivileged process's) never
 * delivers to the daemon: the signal would end in SIGSEGV. An alternate stack on memory upager
 * serves becomes the kernel's first (give_back()).
 */
static int preload_sigaltstack(const stack_t *ss, stack_t *old)
{
	uintptr_t lo, hi;

	if (inside || ranges_empty() || !ss || (ss->ss_flags & SS_DISABLE) || !ss->ss_size)
		return kernel_sigaltstack(ss, old);
	inside++;
	lo = ALIGN_DOWN((uintptr_t)ss->ss_sp, UPAGER_PAGE_SIZE);
	hi = ALIGN_UP((uintptr_t)ss->ss_sp + ss->ss_size, UPAGER_PAGE_SIZE);
	if (hi > lo)
		give_back(lo, hi);
	inside--;
	return kernel_sigaltstack(ss, old);
}
_public_ int sigaltstack(const stack_t *ss, stack_t *old)
	__attribute__((alias("preload_sigaltstack")));

static void give_back_part(const struct span *sp, void *arg)
{
	bool *given = arg;

	if (sp->fd < 0 && sp->private_writable)
		*given |= give_back(sp->start, sp->end);
}

/*
 * ioctl() - ioctl(2). A program's own userfaultfd cannot register memory upager serves: a range
 * has one userfaultfd, and UFFDIO_REGISTER fails with EBUSY. The private anonymous memory upager
 * serves in the range becomes the kernel's (give_back()), and the call is made again.
 */
static int preload_ioctl(int fd, unsigned long request, ...)
{
	const struct uffdio_register *reg;
	bool given = false;
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	ret = kernel_ioctl(fd, request, arg);
	if (ret == 0 || request != UFFDIO_REGISTER || errno != EBUSY || inside || !arg ||
	    ranges_empty())
		return ret;
	inside++;
	reg = arg;
	ranges_each_part(reg->range.start, reg->range.len, PROT_READ | PROT_WRITE, give_back_part,
			 &given);
	inside--;
	if (!given) {
		errno = EBUSY;
		return ret;
	}
	return kernel_ioctl(fd, request, arg);
}
_public_ int ioctl(int fd, unsigned long request, ...) __attribute__((alias("preload_ioctl")));

/*
 * A shared mapping of a file opened read-only: the kernel refuses to make it writable. upager maps
 * such a mapping private (see docs/design.md), where mprotect(2) would allow it.
 */
static bool shared_read_only(const struct range *r)
{
	return r->fd >= 0 && (r->flags & MAP_TYPE) != MAP_PRIVATE && !r->writable;
}

/** mprotect() - mprotect(2), which refuses PROT_WRITE where the kernel's mapping would */
static int preload_mprotect(void *addr, size_t length, int prot)
{
	bool denied;
	int ret;

	if (inside || ranges_empty())
		return kernel_mprotect(addr, length, prot);
	inside++;
	ranges_lock();
	denied = (prot & PROT_WRITE) && ranges_overlap((uintptr_t)addr, length, shared_read_only);
	ranges_unlock();
	if (denied) {
		inside--;
		errno = EACCES;
		return -1;
	}
	ret = kernel_mprotect(addr, length, prot);
	if (ret == 0) {
		ranges_lock();
		ranges_protect((uintptr_t)addr, length, prot);
		ranges_unlock();
	}
	inside--;
	return ret;
}
_public_ int mprotect(void *addr, size_t length, int prot)
	__attribute__((alias("preload_mprotect")));

/* The part of r from a on, as its own range with a descriptor of its own. */
static struct range piece(const struct range *r, uintptr_t a, size_t length, uintptr_t at)
{
	struct range p = *r;

	p.offset += (off_t)(a - r->start);
	p.start = at;
	p.end = at + length;
	p.fd = r->fd >= 0 ? upager__fd_keep(r->fd) : -1;
	return p;
}

static void *fail(int err)
{
	errno = err;
	return MAP_FAILED;
}

/*
 * A shared mapping of a file shows the file's cache wherever it is: a new mapping of the whole,
 * then the old one unmapped, moves it, whatever number of the kernel's mappings it is made of.
 */
static void *remap_shared(const struct range *r, uintptr_t o, size_t old_len, size_t new_len,
			  void *dst)
{
	void *p;

	if (dst)
		drop_replaced(dst, new_len);
	p = upager_map_noted(dst, new_len, r->prot, r->flags | (dst ? MAP_FIXED : 0), r->fd,
			     r->offset + (off_t)(o - r->start), r->writable);
	if (!p)
		return MAP_FAILED;
	ranges_lock();
	ranges_forget(o, old_len);
	ranges_unlock();
	upager_munmap((void *)o, old_len);
	return p;
}

/*
 * Grow the upager mapping r (a copy of its range, [o, o + old_len) in it) to new_len, or move it
 * to dst. The daemon follows a move (it reads the kernel's remap event) but not a growth, whose
 * pages it would not serve: the new pages are a mapping of their own, made by upager, in place
 * after the old ones when they are free, else after the old ones moved by the kernel.
 */
static void *grow_or_move(const struct range *r, uintptr_t o, size_t old_len, size_t new_len,
			  int flags, void *dst)
{
	size_t tail = new_len > old_len ? new_len - old_len : 0;
	int mflags = r->flags;
	off_t tail_off = r->offset + (off_t)(o - r->start + old_len);
	struct range moved;
	bool reserved = false;
	void *p, *q;
	int ret;

	if (new_len < old_len) {
		ranges_lock();
		ranges_forget(o + new_len, old_len - new_len);
		ranges_unlock();
		if (upager_munmap((void *)(o + new_len), old_len - new_len) < 0)
			return MAP_FAILED;
		old_len = new_len;
		if (!(flags & MREMAP_FIXED))
			return (void *)o;
	}
	if (tail && r->fd < 0 && !(mflags & MAP_ANONYMOUS))
		return fail(ENOMEM); /* no descriptor left to map the file's next pages with */
	if (tail && !(flags & MREMAP_FIXED)) {
		q = upager_map_noted((void *)(o + old_len), tail, r->prot,
				     mflags | MAP_FIXED_NOREPLACE, r->fd, tail_off, r->writable);
		if (q)
			return (void *)o;
	}
	if (!tail && !(flags & MREMAP_FIXED))
		return (void *)o;
	if (!(flags & MREMAP_MAYMOVE))
		return fail(ENOMEM);
	if ((mflags & MAP_TYPE) != MAP_PRIVATE && !(mflags & MAP_ANONYMOUS))
		return remap_shared(r, o, old_len, new_len, dst);
	if (!dst) {
		dst = kernel_mmap(NULL, new_len, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (dst == MAP_FAILED)
			return MAP_FAILED;
		reserved = true;
	} else {
		drop_replaced(dst, new_len);
	}
	p = remap_locked(vmas_remap_same, (void *)o, old_len, old_len,
			 MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (p == MAP_FAILED) {
		ret = errno;
		if (reserved)
			kernel_munmap(dst, new_len);
		return fail(ret);
	}
	moved = piece(r, o, old_len, (uintptr_t)p);
	ranges_lock();
	ranges_forget(o, old_len);
	ret = ranges_add(&moved);
	ranges_unlock();
	if (tail && !upager_map_noted((char *)p + old_len, tail, r->prot, mflags | MAP_FIXED, r->fd,
				      tail_off, r->writable)) {
		ret = errno;
		if (reserved)
			kernel_munmap((char *)p + old_len, tail);
		/* Back where it was, as a failed mremap(2) leaves it. */
		if (remap_locked(vmas_remap_same, p, old_len, old_len,
				 MREMAP_MAYMOVE | MREMAP_FIXED, (void *)o) != MAP_FAILED) {
			moved = piece(r, o, old_len, o);
			ranges_lock();
			ranges_forget((uintptr_t)p, old_len);
			ranges_add(&moved);
			ranges_unlock();
		}
		return fail(ret);
	}
	return p;
}

/* grow_or_move() with a descriptor of its own: the range's goes with the range when it moves. */
static void *remap_ours(const struct range *r, uintptr_t o, size_t old_len, size_t new_len,
			int flags, void *dst)
{
	struct range own = *r;
	void *p;
	int err;

	own.fd = r->fd >= 0 ? upager__fd_keep(r->fd) : -1;
	p = grow_or_move(&own, o, old_len, new_len, flags, dst);
	err = errno;
	upager__fd_unkeep(own.fd);
	errno = err;
	return p;
}

/* Whether range @b, right after @a, is more of the same mapping (a growth of it, grow_or_move()). */
static bool joins(const struct range *a, const struct range *b)
{
	return b->start == a->end && a->prot == b->prot && a->flags == b->flags &&
	       a->writable == b->writable && (a->fd < 0) == (b->fd < 0) &&
	       (a->fd < 0 || (a->dev == b->dev && a->ino == b->ino &&
			      b->offset == a->offset + (off_t)(a->end - a->start)));
}

/* The end of the mapping range @r begins: @r and the ranges that join it. */
static uintptr_t joined_end(const struct range *r)
{
	const struct range *n;

	while ((n = ranges_find(r->end)) && joins(r, n))
		r = n;
	return r->end;
}

/*
 * The kernel's mremap(2), and across the several mappings of the kernel's that a range of upager's
 * may be made of (vmas_remap()): a move that keeps the length, MREMAP_DONTUNMAP's too.
 */
static void *kernel_remap_joined(void *old, size_t old_len, size_t new_len, int flags, void *dst)
{
	void *p = kernel_mremap(old, old_len, new_len, flags, dst), *at;
	int err;

	if (p != MAP_FAILED || errno != EFAULT || old_len != new_len || !(flags & MREMAP_MAYMOVE))
		return p;
	if (flags & MREMAP_FIXED)
		return vmas_remap(old, old_len, flags, dst);
	at = kernel_mmap(NULL, old_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			 0);
	if (at == MAP_FAILED)
		return MAP_FAILED;
	p = vmas_remap(old, old_len, flags | MREMAP_FIXED, at);
	if (p == MAP_FAILED) {
		err = errno;
		kernel_munmap(at, old_len);
		errno = err;
	}
	return p;
}

/** mremap() - mremap(2); an upager mapping grows with pages upager serves */
static void *preload_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	uintptr_t o = (uintptr_t)old;
	void *dst = NULL, *p;
	struct range *found, r;
	bool ours, met;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		dst = va_arg(ap, void *);
		va_end(ap);
	}
	if (inside || ranges_empty())
		return kernel_mremap(old, old_len, new_len, flags, dst);
	inside++;
	ranges_lock();
	found = ranges_find(o);
	ours = found && IS_ALIGNED(o, UPAGER_PAGE_SIZE) && old_len && new_len &&
	       o + ALIGN_UP(old_len, UPAGER_PAGE_SIZE) <= joined_end(found) &&
	       !(flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED));
	if (ours)
		r = *found;
	met = !ours && ranges_overlap(o, old_len, NULL);
	ranges_unlock();
	if (ours) {
		p = remap_ours(&r, o, ALIGN_UP(old_len, UPAGER_PAGE_SIZE),
			       ALIGN_UP(new_len, UPAGER_PAGE_SIZE), flags, dst);
	} else {
		size_t moved_len = ALIGN_UP(new_len, UPAGER_PAGE_SIZE);
		bool reserved = false;

		/* A move over upager's memory replaces it, as a MAP_FIXED does: its ranges go first
		 * (a reservation keeps the place), else one stayed noted with the replaced mapping's
		 * protection, and a later growth of the moved mapping took it (PROT_NONE). */
		if ((flags & (MREMAP_FIXED | MREMAP_MAYMOVE)) == (MREMAP_FIXED | MREMAP_MAYMOVE) &&
		    new_len && IS_ALIGNED((uintptr_t)dst, UPAGER_PAGE_SIZE) &&
		    ((uintptr_t)dst >= o + ALIGN_UP(old_len, UPAGER_PAGE_SIZE) ||
		     (uintptr_t)dst + moved_len <= o))
			reserved = drop_replaced(dst, moved_len);
		/* MREMAP_DONTUNMAP and the like on upager's pages: the daemon follows the move. */
		p = met ? remap_locked(kernel_remap_joined, old, old_len, new_len, flags, dst)
			: kernel_mremap(old, old_len, new_len, flags, dst);
		if (p == MAP_FAILED && reserved)
			unreserve(dst, moved_len);
		/* MREMAP_DONTUNMAP leaves the old range mapped, and registered still. */
		if (p != MAP_FAILED && met && p != old && !(flags & MREMAP_DONTUNMAP)) {
			ranges_lock();
			ranges_forget(o, old_len);
			ranges_unlock();
		}
	}
	inside--;
	return p;
}
_public_ void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
	__attribute__((alias("preload_mremap")));
