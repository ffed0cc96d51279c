// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The mmap-like calls. Arguments are checked here as mmap(2) checks them, so that errors come back
 * at once and with the kernel's errno; the daemon checks again what it relies on. A mapping is
 * made in two steps: the daemon hands over the object's memfd, the library maps it, and the daemon
 * registers the new range with the process's userfaultfd before the call returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/fdseal.h"
#include "common/macro.h"
#include "common/mman.h"
#include "internal.h"
#include "upager.h"

#define OFF_MAX ((off_t)INT64_MAX)

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_UNINITIALIZED
#define MAP_UNINITIALIZED 0x4000000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_ABOVE4G
#define MAP_ABOVE4G 0x80
#endif

/*
 * The flags Linux accepts with MAP_SHARED_VALIDATE on any file (its LEGACY_MAP_MASK; the huge page
 * size field without its top bit). MAP_SYNC is the file system's to accept (sync_refused()).
 * MAP_FIXED_NOREPLACE is not among them: Linux refuses it there with EOPNOTSUPP, and so do we.
 */
#define KNOWN_FLAGS                                                                      \
	(MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE | MAP_EXECUTABLE |         \
	 MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | \
	 MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB | MAP_32BIT | MAP_ABOVE4G |              \
	 (0x1fu << MAP_HUGE_SHIFT))

/* The user address space of x86-64 with 4-level page tables; no longer mapping can succeed. */
#define TASK_SIZE ((size_t)1 << 47)

/* Flags passed on to the kernel's mmap(2) of the memfd; the others are upager's to honour. */
#define PASSED_FLAGS (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE | MAP_32BIT | MAP_STACK)

static void *fail(int err)
{
	errno = err;
	return MAP_FAILED;
}

/* /dev/zero: Linux maps it as anonymous memory, private or shared. */
static bool is_dev_zero(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 && minor(st->st_rdev) == 5;
}

/*
 * What the kernel says of the address and length alone, asked of it with an anonymous mapping
 * that maps nothing in the end: for a fixed address (@fixed) one that replaces nothing,
 * MAP_FIXED_NOREPLACE, whose checks come in mmap(2)'s order: ENOMEM for a range past the address
 * space, EINVAL for an address not aligned, EPERM below vm.mmap_min_addr without CAP_SYS_RAWIO,
 * then EEXIST if any of it is mapped; else a length the address space cannot hold (ENOMEM) is
 * all there is to ask, and only a length of half of it or more is asked.
 * Return: 0, or the negative errno.
 */
static int address_checked(void *addr, size_t length, bool fixed)
{
	void *p;

	if (!fixed && length < TASK_SIZE / 2)
		return 0;
	p = mmap(fixed ? addr : NULL, length, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (fixed ? MAP_FIXED_NOREPLACE : 0),
		 -1, 0);
	if (p == MAP_FAILED)
		return neg_errno();
	munmap(p, length);
	/* A kernel without MAP_FIXED_NOREPLACE took it for a hint. */
	return fixed && p != addr ? -EEXIST : 0;
}

/* Whether this thread has CAP_IPC_LOCK in its effective set. */
static bool may_lock_any(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	return syscall(SYS_capget, &h, d) == 0 && (d[0].effective & (1U << CAP_IPC_LOCK));
}

/* VmLck of this process, in bytes; 0 if unknown. */
static uint64_t locked_bytes(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib << 10;
}

/* MAP_LOCKED as Linux checks it: EPERM without the right to lock memory, EAGAIN past
 * RLIMIT_MEMLOCK. */
static int lock_allowed(size_t length)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || may_lock_any())
		return 0;
	if (rl.rlim_cur == 0)
		return -EPERM;
	return locked_bytes() + ALIGN_UP(length, UPAGER_PAGE_SIZE) > rl.rlim_cur ? -EAGAIN : 0;
}

/*
 * Whether the file maps at all, asked of the kernel with a page mapped PROT_NONE: a regular file
 * of /proc or /sys without an mmap of its own fails with ENODEV (or EIO), where upager would map
 * its cache and raise SIGBUS at the first touch. Return: 0, or the kernel's negative errno.
 */
static int file_maps(int fd, off_t offset)
{
	void *p = mmap(NULL, UPAGER_PAGE_SIZE, PROT_NONE, MAP_PRIVATE, fd, offset);

	if (p == MAP_FAILED)
		return errno == ENODEV || errno == EIO ? neg_errno() : 0;
	munmap(p, UPAGER_PAGE_SIZE);
	return 0;
}

/* MAP_SYNC with mapping @type: the file system decides (ext4 and xfs without DAX refuse it with
 * EOPNOTSUPP, whatever the type; tmpfs with MAP_SHARED_VALIDATE only). Asked of the kernel with a
 * page. */
static int sync_refused(int fd, off_t offset, int type)
{
	void *p = mmap(NULL, UPAGER_PAGE_SIZE, PROT_READ, type | MAP_SYNC, fd, offset);

	if (p == MAP_FAILED)
		return errno == EOPNOTSUPP ? -EOPNOTSUPP : 0;
	munmap(p, UPAGER_PAGE_SIZE);
	return 0;
}

/*
 * Checked in the order Linux checks them (the system call, ksys_mmap_pgoff(), then do_mmap():
 * the length, the address, MAP_FIXED_NOREPLACE, MAP_LOCKED, then what the descriptor and the file
 * allow), so that a call with several faults fails the same way.
 */
static int check_args(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	int type = flags & MAP_TYPE;
	bool anon = flags & MAP_ANONYMOUS;
	bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	struct statvfs vfs;
	struct stat st;
	int fl = 0, ret;

	if (offset & (off_t)(UPAGER_PAGE_SIZE - 1))
		return -EINVAL;
	if (!anon) {
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || (fl & O_PATH))
			return -EBADF;
	}
	if (flags & MAP_HUGETLB)
		return -EINVAL; /* upager serves base pages only */
	if (length == 0)
		return -EINVAL;
	/* A range taken is MAP_FIXED_NOREPLACE's fault only: MAP_FIXED replaces it. */
	ret = address_checked(addr, length, fixed);
	if (ret < 0 && (ret != -EEXIST || (flags & MAP_FIXED_NOREPLACE)))
		return ret;
	if (flags & MAP_LOCKED) {
		ret = lock_allowed(length);
		if (ret < 0)
			return ret;
	}
	if (anon) {
		/* Linux knows MAP_SHARED_VALIDATE for files only, MAP_DROPPABLE for anonymous
		 * memory; droppable pages are neither locked nor a stack, and only private memory
		 * grows down. */
		if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_DROPPABLE)
			return -EINVAL;
		if (type == MAP_DROPPABLE && (flags & (MAP_LOCKED | MAP_GROWSDOWN)))
			return -EINVAL;
		return (flags & MAP_GROWSDOWN) && type != MAP_PRIVATE ? -EINVAL : 0;
	}

	if (fstat(fd, &st) < 0)
		return neg_errno();
	/* A file's offset stops at the largest file size; a character device's (/dev/zero) goes
	 * on to the largest unsigned one (file_mmap_size_max()), where the page offset wraps. */
	if (is_dev_zero(&st) ? (uint64_t)offset + length < (uint64_t)offset
			     : offset < 0 || (uint64_t)offset > (uint64_t)OFF_MAX - length)
		return -EOVERFLOW;
	if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE)
		return -EINVAL;
	if (type == MAP_SHARED_VALIDATE &&
	    ((unsigned)flags & ~(unsigned)(KNOWN_FLAGS | (S_ISREG(st.st_mode) ? MAP_SYNC : 0))))
		return -EOPNOTSUPP;
	/* The access the descriptor gives, then what its file system and the file allow. */
	if (type != MAP_PRIVATE && (prot & PROT_WRITE) && (fl & O_ACCMODE) != O_RDWR)
		return -EACCES;
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if ((prot & PROT_EXEC) && fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC))
		return -EPERM;
	/* Directories, FIFOs and sockets map nothing, nor, through upager, devices but /dev/zero. */
	if (!S_ISREG(st.st_mode) && !is_dev_zero(&st))
		return -ENODEV;
	/* Linux grows anonymous private mappings only. */
	if (flags & MAP_GROWSDOWN)
		return -EINVAL;
	/* A file sealed against writing (a memfd, see fcntl(2)) is mapped shared writable no more. */
	if (type != MAP_PRIVATE && (prot & PROT_WRITE) && fd_write_sealed(fd))
		return -EPERM;
	if ((flags & MAP_SYNC) && S_ISREG(st.st_mode)) {
		ret = sync_refused(fd, offset, type);
		if (ret < 0)
			return ret;
	}
	return S_ISREG(st.st_mode) ? file_maps(fd, offset) : 0;
}

/* The errno of a reply that lacks the descriptor it carries: EMFILE (or ENFILE) if this process
 * had no room for it, else EBADMSG. */
static int descriptor_missing(void)
{
	int t = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (t < 0)
		return errno == EMFILE || errno == ENFILE ? errno : EBADMSG;
	close(t);
	return EBADMSG;
}

static int object_open(size_t length, int prot, int flags, int fd, off_t offset,
		       struct upager_msg *rep, int *memfd)
{
	struct upager_msg req = { .op = UPAGER_OP_OBJECT_OPEN };
	bool anon = flags & MAP_ANONYMOUS;

	req.u.object_open.kind = anon ? UPAGER_OBJECT_ANON_SHARED : UPAGER_OBJECT_FILE;
	req.u.object_open.prot = (uint32_t)prot;
	req.u.object_open.flags = (uint32_t)flags;
	req.u.object_open.offset = (uint64_t)offset;
	req.u.object_open.length = length;
	return upager__call(&req, &fd, anon ? 0 : 1, rep, memfd, 1);
}

static int region_add(uint64_t object_id, void *p, size_t length, int prot, int flags, off_t offset,
		      void *guard, void *sentinel, uint64_t max_length)
{
	struct upager_msg req = { .op = UPAGER_OP_REGION_ADD }, rep;

	req.u.region_add.guard_addr = (uintptr_t)guard;
	req.u.region_add.sentinel_addr = (uintptr_t)sentinel;
	req.u.region_add.max_length = max_length;
	req.u.region_add.object_id = object_id;
	req.u.region_add.addr = (uintptr_t)p;
	req.u.region_add.length = length;
	req.u.region_add.offset = (uint64_t)offset;
	req.u.region_add.prot = (uint32_t)prot;
	req.u.region_add.flags = (uint32_t)flags;
	return upager__call(&req, NULL, 0, &rep, NULL, 0);
}

/* The most a MAP_GROWSDOWN mapping may grow to: RLIMIT_STACK, as for the kernel's; 0 for none. */
static uint64_t growth_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_STACK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return MAX((uint64_t)rl.rlim_cur, UPAGER_PAGE_SIZE);
}

/*
 * Free room looked for below a MAP_GROWSDOWN mapping placed by the kernel: what it may grow by,
 * at least Linux's stack_guard_gap, at most 1 GiB.
 */
#define GROWSDOWN_ROOM_MIN ((size_t)1 << 20)
#define GROWSDOWN_ROOM_MAX ((size_t)1 << 30)

/* A page mapped at exactly addr without replacing anything, or NULL. */
static void *map_page_at(void *addr, int prot, int flags)
{
	void *p = mmap(addr, UPAGER_PAGE_SIZE, prot,
		       flags | MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (p != addr) {
		munmap(p, UPAGER_PAGE_SIZE);
		return NULL;
	}
	return p;
}

/*
 * A MAP_GROWSDOWN mapping is an anonymous private mapping with one guard page right below it,
 * mapped and registered like the mapping itself, so that a touch of it reaches the daemon, and a
 * sentinel page below that, mapped with the kernel's MAP_GROWSDOWN, for which the kernel keeps its
 * stack_guard_gap free when it places other mappings; see grow.c. Without room for the guard page
 * (a fixed address right above another mapping), the mapping is made and cannot grow, as the
 * kernel's could not either. One placed by the kernel goes where the room it may grow into is free
 * at the time.
 */
static void *map_growsdown(void *addr, size_t length, int prot, int flags, uint64_t limit)
{
	int kflags = (flags & PASSED_FLAGS) | MAP_PRIVATE | MAP_ANONYMOUS;
	void *p, *guard = NULL, *sentinel = NULL;
	int ret;

	ret = upager__control_start();
	if (ret < 0)
		return fail(-ret);
	if (length > SIZE_MAX - UPAGER_PAGE_SIZE - GROWSDOWN_ROOM_MAX)
		return fail(ENOMEM);
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		p = mmap(addr, length, prot, kflags, -1, 0);
		if (p == MAP_FAILED)
			return MAP_FAILED;
		if ((uintptr_t)p >= 2 * UPAGER_PAGE_SIZE) {
			guard = map_page_at((char *)p - UPAGER_PAGE_SIZE, prot, 0);
			if (guard)
				sentinel = map_page_at((char *)guard - UPAGER_PAGE_SIZE, prot,
						       MAP_GROWSDOWN);
		}
	} else {
		size_t want = limit > length ? (size_t)limit - length : 0;
		size_t room = ALIGN_UP(MIN(MAX(want, GROWSDOWN_ROOM_MIN), GROWSDOWN_ROOM_MAX),
				       UPAGER_PAGE_SIZE);
		size_t below = room + 2 * UPAGER_PAGE_SIZE;
		char *hint = addr && (uintptr_t)addr >= below ? (char *)addr - below : addr;
		char *area;

		/* Find the place without committing memory, then map the mapping and its guard. */
		area = mmap(hint, length + below, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (flags & MAP_32BIT), -1,
			    0);
		if (area == MAP_FAILED)
			return MAP_FAILED;
		sentinel = mmap(area + room, UPAGER_PAGE_SIZE, prot,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
		guard = mmap(area + room + UPAGER_PAGE_SIZE, length + UPAGER_PAGE_SIZE, prot,
			     kflags | MAP_FIXED, -1, 0);
		if (guard == MAP_FAILED || sentinel == MAP_FAILED) {
			ret = errno;
			munmap(area, length + below);
			return fail(ret);
		}
		munmap(area, room);
		p = (char *)guard + UPAGER_PAGE_SIZE;
	}
	ret = region_add(0, p, length, prot, flags, 0, guard, sentinel, limit);
	if (ret < 0) {
		munmap(p, length);
		if (guard)
			munmap(guard, UPAGER_PAGE_SIZE);
		if (sentinel)
			munmap(sentinel, UPAGER_PAGE_SIZE);
		return fail(-ret);
	}
	return p;
}

static void *map_locked(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	struct upager_msg rep = { 0 };
	_cleanup_close_ int memfd = -1;
	uint64_t object_id = 0;
	off_t map_offset = 0;
	int kflags = flags & PASSED_FLAGS;
	void *p;
	int ret;

	ret = upager__connect();
	if (ret < 0)
		return fail(-ret);
	if (flags & MAP_GROWSDOWN)
		return map_growsdown(addr, length, prot, flags, growth_limit());

	if (map_private_anon(flags)) {
		kflags |= MAP_PRIVATE | MAP_ANONYMOUS;
		offset = 0;
		/* The thread that drops the pages the daemon pages out; without it they stay. */
		(void)upager__control_start();
	} else {
		if (flags & MAP_ANONYMOUS)
			offset = 0;
		ret = object_open(length, prot, flags, fd, offset, &rep, &memfd);
		if (ret < 0)
			return fail(-ret);
		/* The pages a private mapping writes are the process's own copies, which the daemon
		 * pages out as it does private anonymous pages, through the same thread. */
		if ((flags & MAP_TYPE) == MAP_PRIVATE)
			(void)upager__control_start();
		if (memfd < 0)
			return fail(descriptor_missing());
		object_id = rep.u.object_open_reply.object_id;
		kflags |= (int)rep.u.object_open_reply.map_type;
		map_offset = offset;
	}

	/* Inaccessible until registered: after mlockall(MCL_FUTURE) the kernel populates every
	 * new mapping at once, from the memfd's holes (zeroes) before the daemon could serve it. */
	upager__maps_lock(); /* a MAP_FIXED replaces what was there */
	p = mmap(addr, length, PROT_NONE, kflags, memfd, map_offset);
	upager__maps_unlock();
	if (p == MAP_FAILED)
		return MAP_FAILED;
	/* As Linux's MAP_DROPPABLE: a child gets zeroes, a core dump none of it. */
	if ((flags & MAP_TYPE) == MAP_DROPPABLE)
		(void)(madvise(p, length, MADV_WIPEONFORK) + madvise(p, length, MADV_DONTDUMP));
	ret = region_add(object_id, p, length, prot, flags, offset, NULL, NULL, 0);
	if (ret == 0 && prot != PROT_NONE && mprotect(p, length, prot) < 0)
		ret = neg_errno();
	if (ret < 0) {
		munmap(p, length);
		return fail(-ret);
	}
	/* Without a record, a daemon that takes over after a crash does not serve it: SIGBUS. */
	(void)upager__resume_record(p, length, prot, flags, offset, fd, memfd);
	return p;
}

/* A mapping with Linux's flags only. */
static void *map(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	void *p;
	int ret;

	struct stat st;

	ret = check_args(addr, length, prot, flags, fd, offset);
	if (ret < 0)
		return fail(-ret);
	if (!(flags & MAP_ANONYMOUS) && fstat(fd, &st) == 0 && is_dev_zero(&st)) {
		/* As Linux: a mapping of /dev/zero is anonymous memory, shared or private. */
		flags = (flags & ~MAP_TYPE) |
			((flags & MAP_TYPE) == MAP_PRIVATE ? MAP_PRIVATE : MAP_SHARED) |
			MAP_ANONYMOUS;
		fd = -1;
		offset = 0;
	}
	upager__lock();
	p = map_locked(addr, length, prot, flags, fd, offset);
	ret = errno;
	upager__unlock();
	/*
	 * As Linux, whose populate of a private writable mapping faults for writing: each page gets
	 * its private copy now, and later writes to the file do not show through. What cannot be
	 * had (past end of file) stays unmapped, as the daemon left it.
	 */
	if (p != MAP_FAILED && !(flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	    (prot & PROT_WRITE) &&
	    ((flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE || (flags & MAP_LOCKED)))
		(void)madvise(p, length, MADV_POPULATE_WRITE);
	if (p != MAP_FAILED && (flags & MAP_LOCKED) && mlock2(p, length, MLOCK_ONFAULT) < 0) {
		/* As Linux: EPERM without the right to lock memory, EAGAIN past RLIMIT_MEMLOCK. */
		ret = errno == ENOMEM ? EAGAIN : errno;
		upager_munmap(p, length);
		p = MAP_FAILED;
	}
	errno = ret;
	return p;
}

/* Where MAP_32BIT's mappings end: the first 2 GiB (x86-64; the flag is 0 elsewhere). */
#define MAP_32BIT_END (1ULL << 31)

/* The flags of NetBSD's mmap(2) that upager.h offers. */
#define NETBSD_FLAGS (UPAGER_MAP_TRYFIXED | UPAGER_MAP_WIRED | UPAGER_MAP_ALIGNMENT_MASK)

/*
 * MAP_ALIGNED(n) of NetBSD, placed by the kernel: a reservation large enough to hold an aligned
 * range of length bytes, the mapping made over that range, the rest given back.
 */
static void *map_aligned(void *addr, size_t length, int prot, int flags, int fd, off_t offset,
			 size_t align)
{
	size_t span;
	char *area, *p, *end;
	int err;

	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
		return IS_ALIGNED((uintptr_t)addr, align)
			       ? map(addr, length, prot, flags, fd, offset)
			       : fail(EINVAL);
	if (length == 0 || length > TASK_SIZE)
		return map(addr, length, prot, flags, fd, offset); /* its errno */
	span = ALIGN_UP(length, UPAGER_PAGE_SIZE) + align - UPAGER_PAGE_SIZE;
	area = mmap(addr, span, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (flags & MAP_32BIT), -1, 0);
	if (area == MAP_FAILED)
		return MAP_FAILED;
	p = (char *)ALIGN_UP((uintptr_t)area, align);
	if (map(p, length, prot, flags | MAP_FIXED, fd, offset) == MAP_FAILED) {
		err = errno;
		munmap(area, span);
		return fail(err);
	}
	end = p + ALIGN_UP(length, UPAGER_PAGE_SIZE);
	if (p > area)
		munmap(area, (size_t)(p - area));
	if (end < area + span)
		munmap(end, (size_t)(area + span - end));
	return p;
}

static void *mmap_any(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	unsigned int n =
		((unsigned int)flags & UPAGER_MAP_ALIGNMENT_MASK) >> UPAGER_MAP_ALIGNMENT_SHIFT;
	bool tryfixed = flags & UPAGER_MAP_TRYFIXED;
	void *p;

	/* MAP_SHARED_VALIDATE knows Linux's flags only, and refuses others (EOPNOTSUPP). */
	if (!(flags & NETBSD_FLAGS) || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE)
		return map(addr, length, prot, flags, fd, offset);
	if (flags & UPAGER_MAP_WIRED)
		flags |= MAP_LOCKED; /* locked and populated */
	flags &= ~NETBSD_FLAGS;
	if (n == UPAGER_MAP_ALIGNMENT_MASK >> UPAGER_MAP_ALIGNMENT_SHIFT)
		return fail(EINVAL);
	/* A hint taken only if all of it is free and may be mapped (not past the address space's
	 * end, nor below vm.mmap_min_addr, nor past the first 2 GiB with MAP_32BIT, which a fixed
	 * mapping would ignore), else the kernel's choice: never a clobber. */
	if (tryfixed && addr && IS_ALIGNED((uintptr_t)addr, UPAGER_PAGE_SIZE) &&
	    (!(flags & MAP_32BIT) || (uintptr_t)addr + length <= MAP_32BIT_END) &&
	    (!n || IS_ALIGNED((uintptr_t)addr, (size_t)1 << (n + 11))) &&
	    !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && length &&
	    address_checked(addr, length, true) == 0) {
		p = map(addr, length, prot, flags | MAP_FIXED_NOREPLACE, fd, offset);
		if (p != MAP_FAILED || errno != EEXIST)
			return p;
	}
	if (n)
		return map_aligned(addr, length, prot, flags, fd, offset, (size_t)1 << (n + 11));
	return map(addr, length, prot, flags, fd, offset);
}

/**
 * upager_mmap() - map a file or anonymous memory, served by upagerd; see upager_mmap(3)
 *
 * Return: the address of the mapping, or MAP_FAILED with errno set.
 */
_public_ void *upager_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	int saved = errno;
	void *p = mmap_any(addr, length, prot, flags, fd, offset);

	/* As the system call: errno untouched on success (programs read it after, LMDB does). */
	if (p != MAP_FAILED)
		errno = saved;
	return p;
}

/**
 * upager_mmap2() - upager_mmap() with the offset in 4096-byte units; see upager_mmap(3)
 *
 * Return: the address of the mapping, or MAP_FAILED with errno set.
 */
_public_ void *upager_mmap2(void *addr, size_t length, int prot, int flags, int fd, off_t pgoffset)
{
	if (pgoffset < 0 || pgoffset > (off_t)(OFF_MAX >> 12))
		return fail(EINVAL);
	return upager_mmap(addr, length, prot, flags, fd, pgoffset * 4096);
}

/*
 * Whether munmap(2) would take [addr, addr+length): whether the range lies in the user address
 * space. Past the 47 bits of 4-level page tables the kernel is asked (a range of 5-level tables
 * is free or mapped; one past the address space cannot be mapped, ENOMEM), so that a call the
 * kernel would refuse tells the daemon nothing.
 */
static bool in_address_space(void *addr, size_t length)
{
	void *p;

	if ((uintptr_t)addr + length < (uintptr_t)addr)
		return false;
	if ((uintptr_t)addr + length <= TASK_SIZE)
		return true;
	p = mmap(addr, length, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return errno == EEXIST;
	munmap(p, length); /* all of it was free */
	return p == addr;
}

/* With @reserve, the range is replaced by a reservation (PROT_NONE, no memory) instead of unmapped. */
static int munmap_any(void *addr, size_t length, bool reserve)
{
	struct upager_msg req = { .op = UPAGER_OP_MUNMAP }, rep = { 0 };
	bool reached = false;
	int ret, err;

	if (!IS_ALIGNED((uintptr_t)addr, UPAGER_PAGE_SIZE) || length == 0 ||
	    length > SIZE_MAX - UPAGER_PAGE_SIZE ||
	    !in_address_space(addr, ALIGN_UP(length, UPAGER_PAGE_SIZE))) {
		errno = EINVAL;
		return -1;
	}
	upager__lock();
	upager__nonlinear_forget((uintptr_t)addr, length);
	upager__resume_forget((uintptr_t)addr, length);
	if (upager__reconnect_if_mapped() == 0) {
		req.u.range.addr = (uintptr_t)addr;
		req.u.range.length = length;
		reached = upager__call(&req, NULL, 0, &rep, NULL, 0) >= 0 || upager__connected();
		if (!reached)
			rep.u.range.addr = 0;
	}
	/* A grown MAP_GROWSDOWN mapping goes whole: its grown pages and guard page too. */
	upager__maps_lock();
	if (rep.u.range.addr && rep.u.range.addr < (uintptr_t)addr &&
	    IS_ALIGNED(rep.u.range.addr, UPAGER_PAGE_SIZE))
		munmap((void *)(uintptr_t)rep.u.range.addr, (uintptr_t)addr - rep.u.range.addr);
	/*
	 * Still under the lock: munmap(2) frees the addresses before the daemon reads its unmap
	 * event, and returns only once it has (the daemon handles each event as it reads it). A
	 * mapping another thread makes at these addresses must reach the daemon after that event,
	 * which would otherwise take it out of the daemon's table: its faults would get SIGBUS.
	 * With no daemon, munmap(2) waits for the next one to read the event, and the watcher
	 * thread needs the lock to bring it in (resume.c).
	 */
	if (!reached)
		upager__unlock();
	/* A reservation, for a caller about to map over the range with MAP_FIXED or
	 * MREMAP_FIXED: the kernel replaces it at once, as it would have replaced the mapping,
	 * where a hole would let another thread's mapping in first, which that call would then
	 * replace unseen (its own munmap(2) waits for the daemon to read the event too). */
	if (reserve)
		ret = mmap(addr, length, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
			   0) == MAP_FAILED
			      ? -1
			      : 0;
	else
		ret = munmap(addr, length);
	err = errno;
	upager__maps_unlock();
	if (reached)
		upager__unlock();
	errno = err;
	return ret;
}

/**
 * upager_munmap() - write back and remove a mapping; see upager_mmap(3)
 *
 * Return: 0, or -1 with errno set.
 */
_public_ int upager_munmap(void *addr, size_t length)
{
	int saved = errno, ret = munmap_any(addr, length, false);

	if (ret == 0)
		errno = saved; /* as the system call */
	return ret;
}

/**
 * upager__munmap_reserve() - as upager_munmap(), but the range stays taken by a reservation
 * (PROT_NONE, anonymous, no memory) for the caller's MAP_FIXED or MREMAP_FIXED to replace
 *
 * Return: 0, or -1 with errno set.
 */
int upager__munmap_reserve(void *addr, size_t length)
{
	int saved = errno, ret = munmap_any(addr, length, true);

	if (ret == 0)
		errno = saved;
	return ret;
}

/**
 * upager_set_growth_limit() - set how far a MAP_GROWSDOWN mapping may grow; see upager_mmap(3)
 *
 * Return: 0, or -1 with errno set.
 */
_public_ int upager_set_growth_limit(void *addr, size_t max_length)
{
	struct upager_msg req = { .op = UPAGER_OP_GROWTH_LIMIT }, rep;
	int ret;

	upager__lock();
	ret = upager__reconnect_if_mapped();
	if (ret > 0)
		ret = -EINVAL; /* no pager mapping in this process */
	if (ret == 0) {
		req.u.growth_limit.addr = (uintptr_t)addr;
		req.u.growth_limit.max_length = max_length;
		ret = upager__call(&req, NULL, 0, &rep, NULL, 0);
	}
	upager__unlock();
	if (ret < 0) {
		errno = ret == -ECONNRESET || ret == -EPIPE ? EIO : -ret;
		return -1;
	}
	return 0;
}

/* MSYNC of [addr, addr+length) with @flags, and descriptor @fd if not -1; 0, or -1 with errno
 * set. */
static int msync_call(uint64_t addr, size_t length, uint32_t flags, int fd)
{
	struct upager_msg req = { .op = UPAGER_OP_MSYNC }, rep;
	int ret;

	upager__lock();
	ret = upager__reconnect_if_mapped();
	/* A mapping a new daemon refused after a crash: its writes since are lost. */
	if (ret >= 0 && fd < 0 && upager__resume_lost((uintptr_t)addr, length))
		ret = -EIO;
	else if (ret == 0) {
		req.u.msync.addr = addr;
		req.u.msync.length = length;
		req.u.msync.flags = flags;
		ret = upager__call(&req, &fd, fd >= 0, &rep, NULL, 0);
	} else if (ret > 0) {
		ret = 0;
	}
	upager__unlock();
	if (ret < 0) {
		errno = ret == -ECONNRESET || ret == -EPIPE ? EIO : -ret;
		return -1;
	}
	return 0;
}

static int msync_any(void *addr, size_t length, int flags)
{
	if ((flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) ||
	    ((flags & MS_ASYNC) && (flags & MS_SYNC)) ||
	    !IS_ALIGNED((uintptr_t)addr, UPAGER_PAGE_SIZE)) {
		errno = EINVAL;
		return -1;
	}
	/* The kernel checks that the range is mapped (ENOMEM) and what it may lock (EBUSY). */
	if (msync(addr, length, flags) < 0)
		return -1;
	/* As Linux: a length that rounds up to 0 pages (past SIZE_MAX) syncs nothing. */
	if (ALIGN_UP(length, UPAGER_PAGE_SIZE) == 0)
		return 0;
	return msync_call((uintptr_t)addr, length, (uint32_t)flags, -1);
}

/**
 * upager_msync() - write a mapping's changes back to its file; see upager_msync(3)
 *
 * Return: 0, or -1 with errno set.
 */
_public_ int upager_msync(void *addr, size_t length, int flags)
{
	int saved = errno, ret = msync_any(addr, length, flags);

	if (ret == 0)
		errno = saved; /* as the system call */
	return ret;
}

/**
 * upager__written_file() - the caller wrote bytes [offset, offset+length) of the file of @fd (open
 * for writing) with write(2) or the like (length 0: changed its size), and the call returned:
 * return once every mapping of the file, this process's or another's, shows it
 * (UPAGER_MSYNC_WRITTEN_FILE)
 *
 * Return: 0, or -1 with errno set.
 */
int upager__written_file(int fd, off_t offset, size_t length)
{
	const struct timespec pause = { .tv_nsec = 100000 };
	int ret;

	/* The daemon is writing pages of the file back: they are not in the file yet. */
	for (int tries = 0;
	     (ret = msync_call((uint64_t)offset, length, UPAGER_MSYNC_WRITTEN_FILE, fd)) < 0 &&
	     errno == EBUSY && tries < 10000;
	     tries++)
		nanosleep(&pause, NULL);
	return ret;
}
