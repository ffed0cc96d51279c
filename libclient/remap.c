// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager_remap_file_pages(). The first remap of a mapping makes it nonlinear: the daemon hands
 * over a view memfd, which the library maps over the mapping in place, and the view's table,
 * which the library maps too. From then on a MAP_NONBLOCK remap of pages that hold no copy is a
 * compare-and-swap per page in that table, with no round trip to the daemon, and so is a
 * populating remap of one such page: the library copies the file's page in itself, under a claim
 * the daemon takes over, when no one holds that page, and makes the page's fault otherwise.
 * Anything else (a page with a copy, a populating remap of more pages, a moved or cut mapping, a
 * forked child) asks the daemon. See docs/design.md, "Nonlinear mappings".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "internal.h"
#include "proto/claim.h"
#include "proto/upager-proto.h"
#include "proto/view-table.h"
#include "upager.h"

/* A nonlinear mapping of this process and its shared table. Under the connection lock. */
struct nonlinear {
	uintptr_t start;
	size_t length;
	pid_t pid; /* who mapped the table: a forked child shares it, and asks the daemon */
	struct upager_view_table *table;
	size_t table_size;
	uint64_t base; /* entries hold the object page XOR (base + view page) */
	/* For copying pages in alone (copy_in()); -1 when the daemon gave none. */
	int states_fd; /* the object's page states, a byte each, read-only (read, not mapped: a
			* mapping would be one more line in /proc/self/maps) */
	int file_fd; /* the file, read-only */
	int view_fd; /* the view's memfd */
};

static struct nonlinear *nonlinear;
static size_t n_nonlinear, cap_nonlinear;

static void nonlinear_drop(size_t k)
{
	struct nonlinear *n = &nonlinear[k];

	munmap(n->table, n->table_size);
	if (n->states_fd >= 0)
		close(n->states_fd);
	if (n->file_fd >= 0)
		close(n->file_fd);
	if (n->view_fd >= 0)
		close(n->view_fd);
	nonlinear[k] = nonlinear[--n_nonlinear];
}

/**
 * upager__nonlinear_forget() - forget the nonlinear mappings that meet [addr, addr+length)
 * (lock held); their remaps go to the daemon again, which then answers for them
 */
void upager__nonlinear_forget(uintptr_t addr, size_t length)
{
	for (size_t k = 0; k < n_nonlinear;) {
		struct nonlinear *n = &nonlinear[k];

		if (n->start < addr + length && addr < n->start + n->length)
			nonlinear_drop(k);
		else
			k++;
	}
}

/*
 * nonlinear_add() - map the table of a mapping just made nonlinear (lock held)
 * @start: the mapping
 * @length: its length, a multiple of the page size
 * @fds: the descriptors of the convert reply: the view's memfd, its table's, and for a shared
 *       view the object's page states and the file; -1 where none came. The ones kept are set to
 *       -1, the caller closes the others.
 * @n_fds: 4
 *
 * Return: 0, or a negative errno: remaps of the mapping then all go to the daemon.
 */
static int nonlinear_add(uintptr_t start, size_t length, int *fds, size_t n_fds)
{
	size_t pages = length / UPAGER_PAGE_SIZE;
	struct upager_view_table *t;
	struct nonlinear *n;
	struct stat st;

	upager__nonlinear_forget(start, length);
	if (n_fds < 4 || fds[1] < 0)
		return -EBADMSG;
	if (fstat(fds[1], &st) < 0)
		return neg_errno();
	if ((size_t)st.st_size < sizeof(*t) || ((size_t)st.st_size - sizeof(*t)) / 8 < pages)
		return -EBADMSG;
	if (n_nonlinear == cap_nonlinear) {
		size_t cap = cap_nonlinear ? 2 * cap_nonlinear : 8;
		struct nonlinear *v = realloc(nonlinear, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		nonlinear = v;
		cap_nonlinear = cap;
	}
	t = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (t == MAP_FAILED)
		return neg_errno();
	if (t->magic != UPAGER_VIEW_TABLE_MAGIC || t->pages != pages) {
		munmap(t, (size_t)st.st_size);
		return -EBADMSG;
	}
	n = &nonlinear[n_nonlinear++];
	*n = (struct nonlinear){
		.start = start,
		.length = length,
		.pid = getpid(),
		.table = t,
		.table_size = (size_t)st.st_size,
		.base = t->base,
		.states_fd = -1,
		.file_fd = -1,
		.view_fd = -1,
	};
	/* Without these, a populating remap of one page is populated by a fault instead. */
	if (fds[0] >= 0 && fds[2] >= 0 && fds[3] >= 0) {
		n->view_fd = fds[0];
		n->states_fd = fds[2];
		n->file_fd = fds[3];
		fds[0] = fds[2] = fds[3] = -1;
	}
	return 0;
}

/* The nonlinear mapping of this process that page a is in, if the library may remap there. */
static struct nonlinear *nonlinear_at(uintptr_t a)
{
	for (size_t k = 0; k < n_nonlinear; k++) {
		struct nonlinear *n = &nonlinear[k];

		if (a >= n->start && a - n->start < n->length)
			return n->pid == getpid() && __atomic_load_n(&n->table->start,
								     __ATOMIC_ACQUIRE) == n->start
				       ? n
				       : NULL;
	}
	return NULL;
}

/*
 * remap_local() - rewrite the table for a remap without the daemon, if it can be (lock
 * held); the caller populates what it must
 * @addr: as upager_remap_file_pages() got it
 * @size: likewise
 * @pgoff: likewise
 *
 * Every page of the range must be in one mapping this process made nonlinear, still where it was
 * (the table's start says so), and hold no copy (no UPAGER_VIEW_HELD); the daemon may set HELD at
 * any moment, hence the compare-and-swap. Pages rewritten before one turns out HELD stay rewritten:
 * the daemon is then asked for the whole range and rewrites it again.
 *
 * Return: 0 when done, 1 when the daemon must be asked (it also answers every error).
 */
static int remap_local(uintptr_t addr, size_t size, size_t pgoff)
{
	uintptr_t a = ALIGN_DOWN(addr, UPAGER_PAGE_SIZE);
	size_t count = size / UPAGER_PAGE_SIZE;
	struct nonlinear *n = NULL;
	uint64_t first, object_pages;

	if (count == 0 || n_nonlinear == 0)
		return 1;
	n = nonlinear_at(a);
	if (!n)
		return 1;
	first = (a - n->start) / UPAGER_PAGE_SIZE;
	object_pages = __atomic_load_n(&n->table->object_pages, __ATOMIC_RELAXED);
	if (count > n->length / UPAGER_PAGE_SIZE - first || pgoff > object_pages ||
	    count > object_pages - pgoff)
		return 1;
	for (uint64_t k = 0; k < count; k++) {
		__u64 *e = &n->table->entry[first + k];
		__u64 old = __atomic_load_n(e, __ATOMIC_ACQUIRE);

		do {
			if (old & UPAGER_VIEW_HELD)
				return 1;
		} while (!__atomic_compare_exchange_n(e, &old, (pgoff + k) ^ (n->base + first + k),
						      false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	}
	return 0;
}

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/*
 * Take a copy back that the daemon will not have (the claim revoked): from this process's page
 * tables and from the view, so that nothing stale is left for the next touch.
 */
static void copy_undo(struct nonlinear *n, uintptr_t page)
{
	madvise((void *)page, UPAGER_PAGE_SIZE, MADV_DONTNEED);
	fallocate(n->view_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(page - n->start),
		  UPAGER_PAGE_SIZE);
}

/*
 * copy_in() - populate one page that remap_local() has just remapped, without
 * the daemon, if it can be (lock held)
 * @page: the page
 * @pgoff: the object page it shows now
 *
 * Only while no one holds the object page (its state byte 0): the file then has its only data,
 * and the page is read from the kernel's page cache (never waiting for the disk) and put into the
 * view with UFFDIO_COPY, write-protected, as the daemon's own copy_from_page_cache() does. The
 * claim in the shared table tells the daemon, which takes the copy as its own (see struct
 * upager_view_table and docs/design.md, "Nonlinear mappings"): the claim is published before the
 * state byte is read, and the daemon makes the byte non-zero before it reads the claim.
 *
 * Return: 0 when the page is populated, or a negative errno (the caller populates it by a fault).
 */
static int copy_in(uintptr_t page, size_t pgoff)
{
	static uint8_t buf[UPAGER_PAGE_SIZE] __attribute__((aligned(UPAGER_PAGE_SIZE)));
	struct nonlinear *n = nonlinear_at(page);
	struct upager_view_table *t;
	struct upager_view_claim *c;
	uint64_t i, want;
	uint8_t state;
	__u64 entry;
	ssize_t got;
	int uffd = upager__uffd();

	if (!n || n->states_fd < 0 || uffd < 0)
		return -EAGAIN;
	t = n->table;
	c = claim_slot(t);
	if (!c)
		return -EBUSY;
	i = (page - n->start) / UPAGER_PAGE_SIZE;
	want = pgoff ^ (n->base + i);
	/* The claim is visible before the state byte is read (the daemon does the reverse). */
	claim_begin(c, i, pgoff);
	if (pread(n->states_fd, &state, 1, (off_t)pgoff) != 1 || state != 0 ||
	    __atomic_load_n(&t->entry[i], __ATOMIC_ACQUIRE) != want) {
		claim_abandon(c);
		return -EAGAIN;
	}
	got = preadv2(n->file_fd, &(struct iovec){ buf, UPAGER_PAGE_SIZE }, 1,
		      (off_t)(pgoff * UPAGER_PAGE_SIZE), RWF_NOWAIT);
	if (got <= 0) {
		claim_abandon(c);
		return got < 0 ? neg_errno() : -EAGAIN;
	}
	memset(buf + got, 0, UPAGER_PAGE_SIZE - (size_t)got); /* the end of the file */
	if (!claim_copying(c)) {
		claim_abandon(c); /* revoked: the daemon is about to change the page */
		return -EAGAIN;
	}
	if (ioctl(uffd, UFFDIO_COPY,
		  &(struct uffdio_copy){ .dst = page,
					 .src = (uintptr_t)buf,
					 .len = UPAGER_PAGE_SIZE,
					 .mode = UFFDIO_COPY_MODE_WP }) < 0) {
		int ret = neg_errno();

		claim_abandon(c);
		return ret;
	}
	/* From now on the entry is the daemon's, as for any page with a copy. */
	entry = want;
	if (!__atomic_compare_exchange_n(&t->entry[i], &entry, want | UPAGER_VIEW_HELD, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
	    !claim_done(c)) {
		copy_undo(n, page);
		claim_abandon(c);
		return -EAGAIN;
	}
	return 0;
}

/*
 * Populate one page that remap_local() has just remapped. It holds no copy, so the fault
 * of a read of it reaches the daemon, which serves it with a write-protected copy as its populate
 * would: one fault's round trip instead of a request and its reply, and no page mapped where the
 * kernel's populate would map none (the mapping made PROT_NONE by mprotect(2), or unmapped by
 * another thread meanwhile), and no signal. MADV_POPULATE_READ makes that fault from the kernel;
 * it fails with EINVAL without PROT_READ and ENOMEM without a mapping. A userfaultfd made for user
 * mode only fails a fault the kernel takes with EFAULT: then, the mapping being there and
 * readable, a read from user mode makes the fault instead.
 */
static void populate_by_fault(uintptr_t page, bool user_mode_only)
{
	if (madvise((void *)page, UPAGER_PAGE_SIZE, MADV_POPULATE_READ) < 0 && errno == EFAULT &&
	    user_mode_only)
		(void)*(volatile const char *)page;
}

/*
 * Register [at, at+length) with this process's userfaultfd @uffd as the daemon registers a view:
 * in write-protect mode too where the daemon asked the kernel for it on shmem. Return: whether it
 * is registered.
 */
static bool register_view(int uffd, void *at, size_t length)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)at, .len = length },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR |
			UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0)
		return true;
	reg.mode &= ~(uint64_t)UFFDIO_REGISTER_MODE_WP;
	return errno == EINVAL && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
}

/* What a piece of a mapping had of its own (mprotect(2), madvise(2), mlock(2)), which the view
 * that replaces the mapping takes over. */
struct piece {
	uintptr_t start, end;
	int prot;
	bool locked, on_fault, dontfork, dontdump;
};

struct pieces {
	struct piece *p;
	size_t n;
};

static int prot_of(const char *perms)
{
	return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
	       (perms[2] == 'x' ? PROT_EXEC : 0);
}

static bool has_flag(const char *vmflags, const char *flag)
{
	for (const char *f = strstr(vmflags, flag); f; f = strstr(f + 1, flag))
		if (f[-1] == ' ' && (f[2] == ' ' || f[2] == '\n' || f[2] == 0))
			return true;
	return false;
}

/* The pieces of [start, end) in /proc/self/smaps; none if it cannot be read. */
static struct pieces pieces_read(uintptr_t start, uintptr_t end)
{
	struct pieces ps = { NULL, 0 };
	unsigned long lo = 0, hi = 0;
	char line[512], perms[8] = "";
	bool line_start = true;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return ps;
	while (fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') != NULL;
		unsigned long a, b;
		char pm[8];

		if (line_start && sscanf(line, "%lx-%lx %7s", &a, &b, pm) == 3) {
			/* a mapping's first line ("Anonymous:" starts with a hex digit too) */
			lo = a;
			hi = b;
			memcpy(perms, pm, sizeof(perms));
		} else if (line_start && !strncmp(line, "VmFlags:", 8) && lo < end && start < hi) {
			struct piece *n = realloc(ps.p, (ps.n + 1) * sizeof(*n));

			if (!n)
				break;
			ps.p = n;
			n[ps.n++] =
				(struct piece){ MAX(lo, start),		  MIN(hi, end),
						prot_of(perms),		  has_flag(line + 7, "lo"),
						has_flag(line + 7, "lf"), has_flag(line + 7, "dc"),
						has_flag(line + 7, "dd") };
		}
		line_start = whole;
	}
	fclose(f);
	return ps;
}

/*
 * The view takes over what the pieces of the mapping had (as the kernel's emulation leaves the
 * pieces it does not remap): protection, MADV_DONTFORK, MADV_DONTDUMP, and locks, taken on fault
 * (@populate false: the view's faults wait until the daemon adopts it), or, for an mlock(2) that
 * is not MLOCK_ONFAULT, populated (@populate true, once adopted).
 */
static void pieces_apply(const struct pieces *ps, int prot, bool populate)
{
	for (size_t i = 0; i < ps->n; i++) {
		const struct piece *p = &ps->p[i];
		void *a = (void *)p->start;
		size_t len = p->end - p->start;

		if (populate) {
			if (p->locked && !p->on_fault)
				(void)mlock2(a, len, 0);
			continue;
		}
		if (p->prot != prot)
			(void)mprotect(a, len, p->prot);
		if (p->dontfork)
			(void)madvise(a, len, MADV_DONTFORK);
		if (p->dontdump)
			(void)madvise(a, len, MADV_DONTDUMP);
		if (p->locked)
			(void)mlock2(a, len, MLOCK_ONFAULT);
	}
}

/*
 * Map the view memfd @fd over the mapping at @start, at once for the other threads: mapped
 * elsewhere, registered with this process's userfaultfd there, then moved over the mapping by
 * mremap(2), which keeps the registration. Mapped in place instead, the view would be there
 * unregistered until the daemon registers it: a thread touching it meanwhile would get a page the
 * kernel makes itself, zeroes, and a write there would be lost. In place still where the move
 * cannot be made (no userfaultfd here: a process made by vfork(2); a registration refused).
 */
static void *map_view(uintptr_t start, size_t length, int prot, int type, int fd)
{
	int uffd = upager__uffd();
	void *at = uffd < 0 ? MAP_FAILED : mmap(NULL, length, prot, type, fd, 0);

	if (at != MAP_FAILED) {
		void *p = register_view(uffd, at, length)
				  ? mremap(at, length, length, MREMAP_MAYMOVE | MREMAP_FIXED,
					   (void *)start)
				  : MAP_FAILED;

		if (p != MAP_FAILED)
			return p;
		munmap(at, length);
	}
	return mmap((void *)start, length, prot, type | MAP_FIXED, fd, 0);
}

static int remap_any(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	struct upager_msg req = { .op = UPAGER_OP_REMAP }, rep;
	int ret, fds[4] = { -1, -1, -1, -1 };

	if (prot != 0) {
		errno = EINVAL;
		return -1;
	}
	upager__lock();
	/* One page to populate: remapped here too, and then populated by a fault; more go to the
	 * daemon, which populates up to 16 pages in one round trip. */
	if (((flags & MAP_NONBLOCK) || size / UPAGER_PAGE_SIZE == 1) &&
	    remap_local((uintptr_t)addr, size, pgoff) == 0) {
		uintptr_t page = ALIGN_DOWN((uintptr_t)addr, UPAGER_PAGE_SIZE);
		bool user_mode_only = upager__user_mode_only();
		bool populated = (flags & MAP_NONBLOCK) || copy_in(page, pgoff) == 0;

		upager__unlock();
		if (!populated)
			populate_by_fault(page, user_mode_only);
		return 0;
	}
	req.u.remap.addr = (uintptr_t)addr;
	req.u.remap.size = size;
	req.u.remap.pgoff = pgoff;
	req.u.remap.flags = (uint32_t)(flags & MAP_NONBLOCK);
	req.u.remap.phase = 1;
	ret = upager__reconnect_if_mapped();
	if (ret > 0)
		ret = -EINVAL; /* no pager mapping in this process */
	if (ret == 0)
		ret = upager__call(&req, NULL, 0, &rep, fds, 4);
	if (ret == 0 && rep.u.remap_reply.convert) {
		/* First remap of this mapping: map its view over it, in place, then go on. */
		uintptr_t start = (uintptr_t)rep.u.remap_reply.start;
		size_t length = rep.u.remap_reply.length;
		struct pieces pieces = pieces_read(start, start + length);
		int vprot = (int)rep.u.remap_reply.prot;
		void *p = MAP_FAILED;

		if (fds[0] >= 0)
			p = map_view(start, length, vprot, (int)rep.u.remap_reply.map_type, fds[0]);
		ret = p == MAP_FAILED ? (fds[0] < 0 ? -EBADMSG : neg_errno()) : 0;
		if (ret == 0)
			pieces_apply(&pieces, vprot, false);
		/* A view is not resumed after a crash of a daemon without an fd store. */
		if (ret == 0)
			upager__resume_forget(start, length);
		if (ret == 0) {
			req.u.remap.phase = 2;
			ret = upager__call(&req, NULL, 0, &rep, NULL, 0);
		}
		if (ret == 0)
			pieces_apply(&pieces, vprot, true);
		free(pieces.p);
		/* Without the table every later remap asks the daemon, which is slower only. */
		if (ret == 0)
			(void)nonlinear_add(start, length, fds, 4);
	}
	for (size_t i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	upager__unlock();
	if (ret < 0) {
		errno = ret == -ECONNRESET || ret == -EPIPE ? EIO : -ret;
		return -1;
	}
	return 0;
}

/**
 * upager_remap_file_pages() - rearrange the pages of a shared file mapping; see
 * upager_remap_file_pages(3)
 *
 * Return: 0, or -1 with errno set.
 */
_public_ int upager_remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	int saved = errno, ret = remap_any(addr, size, prot, pgoff, flags);

	if (ret == 0)
		errno = saved; /* as the system call */
	return ret;
}
