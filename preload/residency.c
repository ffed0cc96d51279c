// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What is in memory of the files upager maps. A page of a file that a range of upager's shows is
 * in the daemon's cache (the memfd the kernel's mapping is of), or in the file's page cache, from
 * which its first touch copies it without a disk read: mincore(2) says resident for both, as the
 * kernel's does for a page in the page cache that the process never touched. MADV_WILLNEED reads
 * the range of the file ahead into the page cache (POSIX_FADV_WILLNEED), as the kernel's does, and
 * MADV_REMOVE frees the file's range as well as the cache's pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "libclient/internal.h"
#include "kernel.h"
#include "ranges.h"
#include "residency.h"
#include "upager.h"

#define CHUNK_PAGES 4096 /* looked at in one mincore(2) of a mapping of the file */

struct file_part {
	void (*fn)(const struct span *, void *);
	void *arg;
};

static void if_file(const struct span *sp, void *arg)
{
	const struct file_part *f = arg;

	if (sp->fd >= 0)
		f->fn(sp, f->arg);
}

/* The parts of [addr, addr+len) in ranges of files, in turn, to @fn. */
static void each_file_part(void *addr, size_t len, void (*fn)(const struct span *, void *),
			   void *arg)
{
	struct file_part f = { fn, arg };

	ranges_each_part((uintptr_t)addr, len, 0, if_file, &f);
}

struct add_arg {
	uintptr_t base;
	unsigned char *vec;
};

/* OR the page cache of the part's file into the caller's vector: a mapping of the file that
 * allows nothing, whose mincore(2) tells what the page cache holds. */
static void add_part(const struct span *sp, void *arg)
{
	const struct add_arg *a = arg;
	unsigned char got[CHUNK_PAGES];

	for (uintptr_t at = ALIGN_DOWN(sp->start, UPAGER_PAGE_SIZE); at < sp->end;
	     at += (uintptr_t)CHUNK_PAGES * UPAGER_PAGE_SIZE) {
		size_t len = MIN(sp->end - at, (uintptr_t)CHUNK_PAGES * UPAGER_PAGE_SIZE);
		off_t off = sp->offset + ((off_t)at - (off_t)sp->start);
		void *m = kernel_mmap(NULL, len, PROT_NONE, MAP_SHARED, sp->fd, off);
		size_t first = (at - a->base) >> UPAGER_PAGE_SHIFT;

		if (m == MAP_FAILED)
			return;
		if (syscall(SYS_mincore, m, len, got) == 0)
			for (size_t i = 0; i < (len + UPAGER_PAGE_SIZE - 1) >> UPAGER_PAGE_SHIFT;
			     i++)
				a->vec[first + i] |= got[i] & 1;
		kernel_munmap(m, len);
	}
}

/** mincore() - mincore(2); a page of a file upager maps is resident in the file's page cache too */
static int preload_mincore(void *addr, size_t len, unsigned char *vec)
{
	struct add_arg a = { (uintptr_t)addr, vec };
	int ret = (int)syscall(SYS_mincore, addr, len, vec);

	if (ret == 0 && !ranges_empty())
		each_file_part(addr, len, add_part, &a);
	return ret;
}
_public_ int mincore(void *addr, size_t len, unsigned char *vec)
	__attribute__((alias("preload_mincore")));

static void will_need_part(const struct span *sp, void *arg)
{
	(void)arg;
	(void)posix_fadvise(sp->fd, sp->offset, (off_t)(sp->end - sp->start), POSIX_FADV_WILLNEED);
}

struct remove_arg {
	int err; /* the first punch's errno, or 0 */
};

static void remove_part(const struct span *sp, void *arg)
{
	struct remove_arg *a = arg;

	if (!sp->shared_writable || a->err)
		return;
	if (fallocate(sp->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sp->offset,
		      (off_t)(sp->end - sp->start)) < 0)
		a->err = errno;
}

/**
 * residency_remove() - MADV_REMOVE, done on the daemon's cache already: the range of the files
 * upager maps shared there is punched too, as the kernel's MADV_REMOVE frees the file's blocks.
 * Until the daemon hears of the punch, a touch may read the old bytes again.
 *
 * Return: 0, or the errno of the punch that failed (EOPNOTSUPP where the file system has none).
 */
int residency_remove(void *addr, size_t len)
{
	struct remove_arg a = { 0 };

	each_file_part(addr, len, remove_part, &a);
	return a.err;
}

/** residency_will_need() - MADV_WILLNEED: read the files upager maps in the range ahead */
void residency_will_need(void *addr, size_t len)
{
	each_file_part(addr, len, will_need_part, NULL);
}
