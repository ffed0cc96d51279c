// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager_remap_file_pages(). The first remap of a mapping makes it nonlinear: the daemon hands
 * over a view memfd, which the library maps over the mapping in place, and the view's table,
 * which the library maps too. From then on a MAP_NONBLOCK remap of pages that hold no copy is a
 * compare-and-swap per page in that table, with no round trip to the daemon, and so is a
 * populating remap of one such page, which a fault then populates; anything else (a page with a
 * copy, a populating remap of more pages, a moved or cut mapping, a forked child) asks the daemon.
 * See docs/design.md, "Nonlinear mappings".
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "internal.h"
#include "proto/upager-proto.h"
#include "upager.h"

/* A nonlinear mapping of this process and its shared table. Under the connection lock. */
struct nonlinear {
	uintptr_t start;
	size_t length;
	pid_t pid; /* who mapped the table: a forked child shares it, and asks the daemon */
	struct upager_view_table *table;
	size_t table_size;
	uint64_t base; /* entries hold the object page XOR (base + view page) */
};

static struct nonlinear *nonlinear;
static size_t n_nonlinear, cap_nonlinear;

static void nonlinear_drop(size_t k)
{
	munmap(nonlinear[k].table, nonlinear[k].table_size);
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

/**
 * upager__nonlinear_add() - map the table of a mapping just made nonlinear (lock held)
 * @start: the mapping
 * @length: its length, a multiple of the page size
 * @table_fd: the table's memfd, from the daemon; the caller keeps it
 *
 * Return: 0, or a negative errno: remaps of the mapping then all go to the daemon.
 */
int upager__nonlinear_add(uintptr_t start, size_t length, int table_fd)
{
	size_t pages = length / UPAGER_PAGE_SIZE;
	struct upager_view_table *t;
	struct stat st;

	upager__nonlinear_forget(start, length);
	if (fstat(table_fd, &st) < 0)
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
	t = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, table_fd, 0);
	if (t == MAP_FAILED)
		return neg_errno();
	if (t->magic != UPAGER_VIEW_TABLE_MAGIC || t->pages != pages) {
		munmap(t, (size_t)st.st_size);
		return -EBADMSG;
	}
	nonlinear[n_nonlinear++] = (struct nonlinear){
		.start = start,
		.length = length,
		.pid = getpid(),
		.table = t,
		.table_size = (size_t)st.st_size,
		.base = t->base,
	};
	return 0;
}

/**
 * upager__remap_local() - rewrite the table for a remap without the daemon, if it can be (lock
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
int upager__remap_local(uintptr_t addr, size_t size, size_t pgoff)
{
	uintptr_t a = ALIGN_DOWN(addr, UPAGER_PAGE_SIZE);
	size_t count = size / UPAGER_PAGE_SIZE;
	struct nonlinear *n = NULL;
	uint64_t first, object_pages;

	if (count == 0 || n_nonlinear == 0)
		return 1;
	for (size_t k = 0; k < n_nonlinear; k++)
		if (a >= nonlinear[k].start && a - nonlinear[k].start < nonlinear[k].length) {
			n = &nonlinear[k];
			break;
		}
	if (!n || n->pid != getpid() ||
	    __atomic_load_n(&n->table->start, __ATOMIC_ACQUIRE) != n->start)
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

/*
 * Populate one page that upager__remap_local() has just remapped. It holds no copy, so the fault
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

/**
 * upager_remap_file_pages() - rearrange the pages of a shared file mapping; see
 * upager_remap_file_pages(3)
 *
 * Return: 0, or -1 with errno set.
 */
_public_ int upager_remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	struct upager_msg req = { .op = UPAGER_OP_REMAP }, rep;
	int ret, fds[2] = { -1, -1 };

	if (prot != 0) {
		errno = EINVAL;
		return -1;
	}
	upager__lock();
	/* One page to populate: remapped here too, and then populated by a fault; more go to the
	 * daemon, which populates up to 16 pages in one round trip. */
	if (((flags & MAP_NONBLOCK) || size / UPAGER_PAGE_SIZE == 1) &&
	    upager__remap_local((uintptr_t)addr, size, pgoff) == 0) {
		bool user_mode_only = upager__user_mode_only();

		upager__unlock();
		if (!(flags & MAP_NONBLOCK))
			populate_by_fault(ALIGN_DOWN((uintptr_t)addr, UPAGER_PAGE_SIZE),
					  user_mode_only);
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
		ret = upager__call(&req, NULL, 0, &rep, fds, 2);
	if (ret == 0 && rep.u.remap_reply.convert) {
		/* First remap of this mapping: map its view over it, in place, then go on. */
		uintptr_t start = (uintptr_t)rep.u.remap_reply.start;
		size_t length = rep.u.remap_reply.length;
		void *p = MAP_FAILED;

		if (fds[0] >= 0)
			p = mmap((void *)start, length, (int)rep.u.remap_reply.prot,
				 (int)rep.u.remap_reply.map_type | MAP_FIXED, fds[0], 0);
		ret = p == MAP_FAILED ? (fds[0] < 0 ? -EBADMSG : neg_errno()) : 0;
		if (ret == 0) {
			req.u.remap.phase = 2;
			ret = upager__call(&req, NULL, 0, &rep, NULL, 0);
		}
		/* Without the table every later remap asks the daemon, which is slower only. */
		if (ret == 0 && fds[1] >= 0)
			(void)upager__nonlinear_add(start, length, fds[1]);
	}
	for (size_t i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	upager__unlock();
	if (ret < 0) {
		errno = ret == -ECONNRESET || ret == -EPIPE ? EIO : -ret;
		return -1;
	}
	return 0;
}
