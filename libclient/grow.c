// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The growth of MAP_GROWSDOWN mappings. The daemon decides every growth, but only the process
 * itself can change its address space; so the control thread (control.c) does what the daemon
 * asks: map a new guard page below a mapping that grows, or unmap the guard page of one that may
 * not, so that the faulting access, retried, meets no mapping and gets the SIGSEGV the kernel
 * gives.
 *
 * A daemon that takes over after another died may know less than the thread did: it asks again for
 * a growth whose answer the dead daemon never took, or for one it made and did not save. The
 * thread then finds the guard page and sentinel it mapped already, and takes them as they are.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/macro.h"
#include "internal.h"

/* Map [addr, addr+len) where nothing is mapped; false if anything is. */
static bool map_free(uintptr_t addr, size_t len, int prot, int flags)
{
	void *p = mmap((void *)addr, len, prot,
		       flags | MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != MAP_FAILED && (uintptr_t)p != addr) {
		/* A kernel that takes MAP_FIXED_NOREPLACE for a hint put it elsewhere. */
		munmap(p, len);
		return false;
	}
	return p != MAP_FAILED;
}

/* Whether nothing is mapped in [addr, addr+len): it is mapped for a moment to find out. */
static bool room(uint64_t addr, uint64_t len)
{
	if (len == 0)
		return true;
	if (!map_free((uintptr_t)addr, len, PROT_NONE, MAP_NORESERVE))
		return false;
	munmap((void *)(uintptr_t)addr, len);
	return true;
}

/*
 * Whether the page at addr is in a MAP_GROWSDOWN mapping: a sentinel, since this process has no
 * other such mapping near a mapping that grows. mprotect(2) with PROT_GROWSDOWN fails on any other
 * mapping (EINVAL) and where nothing is mapped (ENOMEM); on a sentinel it sets the sentinel's own
 * prot again, from the sentinel's start up to the page.
 */
static bool sentinel_at(uint64_t addr, int prot)
{
	return mprotect((void *)(uintptr_t)addr, UPAGER_PAGE_SIZE, prot | PROT_GROWSDOWN) == 0;
}

/* The growth is refused: the guard page and the sentinel go. */
static void refuse(uint64_t guard, uint64_t sentinel)
{
	munmap((void *)(uintptr_t)guard, UPAGER_PAGE_SIZE);
	if (sentinel)
		munmap((void *)(uintptr_t)sentinel, UPAGER_PAGE_SIZE);
}

/*
 * Whether the gap bytes below low, the mapping's new lowest page, hold nothing but the page right
 * below it (where the new guard page goes); or, for a growth asked again (see map_guard()),
 * nothing but that and the sentinel mapped below it the first time.
 */
static bool gap_free(uint64_t low, uint64_t gap, int prot)
{
	if (gap < UPAGER_PAGE_SIZE || gap > low - UPAGER_PAGE_SIZE ||
	    !IS_ALIGNED(gap, UPAGER_PAGE_SIZE))
		return false;
	if (room(low - gap, gap - UPAGER_PAGE_SIZE))
		return true;
	return gap >= 2 * UPAGER_PAGE_SIZE && sentinel_at(low - 2 * UPAGER_PAGE_SIZE, prot) &&
	       room(low - gap, gap - 2 * UPAGER_PAGE_SIZE);
}

/*
 * A new sentinel right below the new guard page, if its page is free, or the sentinel mapped
 * there already by a growth asked again: 1 if there is one, else 0.
 */
static int map_sentinel(uint64_t guard, int prot)
{
	uint64_t at = guard - UPAGER_PAGE_SIZE;

	if (guard < 2 * UPAGER_PAGE_SIZE)
		return 0;
	return map_free((uintptr_t)at, UPAGER_PAGE_SIZE, prot, MAP_GROWSDOWN) ||
	       sentinel_at(at, prot);
}

/*
 * The new guard page at guard, where the page is free or holds the sentinel, and a sentinel below
 * it. A daemon that took over from one that died after asking for this very growth asks again,
 * with the tables of before: the guard page is then mapped already, with our sentinel right below,
 * and both stay. Returns 1 with a sentinel, 0 without, or -EEXIST if the page is another mapping's.
 */
static int map_guard(uint64_t guard, int prot)
{
	if (map_free((uintptr_t)guard, UPAGER_PAGE_SIZE, prot, 0))
		return map_sentinel(guard, prot);
	if (sentinel_at(guard, prot))
		return mmap((void *)(uintptr_t)guard, UPAGER_PAGE_SIZE, prot,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED
			       ? -EEXIST
			       : map_sentinel(guard, prot);
	/* Asked again. */
	if (guard >= 2 * UPAGER_PAGE_SIZE && sentinel_at(guard - UPAGER_PAGE_SIZE, prot))
		return 1;
	return -EEXIST;
}

/*
 * The guard page at guard joins its mapping, if the gap below it holds nothing but our sentinel:
 * the sentinel's page becomes the new guard page, and a new sentinel goes below it if there is
 * room. Otherwise the growth is refused. Returns 1 with a new sentinel, 0 without, or -EEXIST.
 */
static int extend(uint64_t guard, uint64_t sentinel, uint64_t gap, int prot)
{
	int ret = gap_free(guard, gap, prot) ? map_guard(guard - UPAGER_PAGE_SIZE, prot) : -EEXIST;

	if (ret < 0)
		refuse(guard, sentinel);
	return ret;
}

/*
 * A touch below the guard page, at guard + a page: the mapping grows down to it if the gap below
 * allows a new guard page at guard (and a sentinel below it, if there is room). If not, what lies
 * between that page and top, the mapping's start (its guard page, its sentinel, and what the kernel
 * grew the sentinel by) goes, and the touch gets SIGSEGV. Returns 1 with a sentinel, 0 without, or
 * -EEXIST.
 */
static int place(uint64_t guard, uint64_t top, uint64_t gap, int prot)
{
	uint64_t low = guard + UPAGER_PAGE_SIZE;
	int ret;

	if (top <= low || !IS_ALIGNED(top, UPAGER_PAGE_SIZE))
		return -EINVAL;
	ret = gap_free(low, gap, prot) ? map_guard(guard, prot) : -EEXIST;
	if (ret < 0)
		munmap((void *)(uintptr_t)low, top - low);
	return ret;
}

/**
 * upager__grow_act() - do what a GROW request of the daemon asks (control.c's thread)
 *
 * Return: 1 with a new sentinel, 0 without, or a negative errno.
 */
int upager__grow_act(const struct upager_msg *m)
{
	uint64_t guard = m->u.grow.guard_addr, sentinel = m->u.grow.sentinel_addr;

	if (!IS_ALIGNED(guard, UPAGER_PAGE_SIZE) || guard < UPAGER_PAGE_SIZE ||
	    !IS_ALIGNED(sentinel, UPAGER_PAGE_SIZE))
		return -EINVAL;
	if (m->u.grow.action == UPAGER_GROW_EXTEND)
		return extend(guard, sentinel, m->u.grow.gap, (int)m->u.grow.prot);
	if (m->u.grow.action == UPAGER_GROW_GUARD)
		return place(guard, sentinel, m->u.grow.gap, (int)m->u.grow.prot);
	refuse(guard, sentinel);
	return 0;
}
