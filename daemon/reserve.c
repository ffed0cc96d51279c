// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Reserving a file's blocks at the first write to a page of a shared mapping. A file that had no
 * hole when it was mapped costs nothing (object.holes is false). In one that has holes, the
 * first write to a page asks the file system in a worker thread: SEEK_DATA says whether the page
 * has blocks already (and how far the run of data goes, all of which is then known to have them);
 * else fallocate(2) with FALLOC_FL_KEEP_SIZE gives blocks to the aligned run of RESERVE_RUN_PAGES
 * around the page, or to the page alone if the run does not fit. The pages found or given blocks
 * are marked (object_backed_bits()); the kernel's own bookkeeping of them is the file's extents.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/macro.h"
#include "reserve.h"

/**
 * reserve_plan() - what to reserve for a write to page @p of @o, a page reserve_due() names
 * @o: the object
 * @p: the page written
 * @rv: filled in for reserve_run()
 */
void reserve_plan(const struct object *o, uint64_t p, struct reserve *rv)
{
	uint64_t end = ALIGN_UP(o->file_size, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT;

	*rv = (struct reserve){ .fd = o->fd_write, .may_seek = o->fd_write_own, .page = p };
	rv->first = ALIGN_DOWN(p, RESERVE_RUN_PAGES);
	rv->count = MIN(rv->first + RESERVE_RUN_PAGES, MAX(end, p + 1)) - rv->first;
}

/* Whether the file has data (blocks) at every byte of page @p; *end: where that data ends. */
static bool page_has_data(int fd, uint64_t p, uint64_t *end)
{
	off_t off = (off_t)(p << UPAGER_PAGE_SHIFT), data, hole;

	data = lseek(fd, off, SEEK_DATA);
	if (data != off)
		return false;
	hole = lseek(fd, off, SEEK_HOLE);
	if (hole < off + (off_t)UPAGER_PAGE_SIZE)
		return false;
	*end = (uint64_t)hole >> UPAGER_PAGE_SHIFT;
	return true;
}

static int allocate(int fd, uint64_t first, uint64_t count)
{
	int r;

	do
		r = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)(first << UPAGER_PAGE_SHIFT),
			      (off_t)(count << UPAGER_PAGE_SHIFT));
	while (r < 0 && errno == EINTR);
	return r < 0 ? neg_errno() : 0;
}

/**
 * reserve_run() - make the reservation @rv plans (in a worker thread: the calls may block)
 * @rv: planned by reserve_plan(); its result is set
 */
void reserve_run(struct reserve *rv)
{
	uint64_t end;

	if (rv->may_seek && page_has_data(rv->fd, rv->page, &end)) {
		rv->backed_first = rv->page;
		rv->backed_end = end;
		return;
	}
	rv->ret = allocate(rv->fd, rv->first, rv->count);
	if ((rv->ret == -ENOSPC || rv->ret == -EDQUOT) && rv->count > 1) {
		/* The last blocks of the file system: as much as the kernel would give. */
		rv->first = rv->page;
		rv->count = 1;
		rv->ret = allocate(rv->fd, rv->first, rv->count);
	}
	if (rv->ret == 0) {
		rv->backed_first = rv->first;
		rv->backed_end = rv->first + rv->count;
	}
}

/**
 * reserve_done() - what reserve_run() found or made, on the loop: the pages marked as having
 * their blocks; a file system that cannot reserve (no fallocate(2)) is not asked again
 * @o: the object
 * @rv: the reservation, run
 */
void reserve_done(struct object *o, const struct reserve *rv)
{
	uint64_t *backed = object_backed_bits(o);
	uint64_t end = MIN(rv->backed_end, object_pages(o));

	if (rv->ret == -EOPNOTSUPP || rv->ret == -ENOSYS)
		o->holes = false;
	for (uint64_t p = rv->backed_first; p < end; p++)
		object_bit_set(backed, p, true);
}
