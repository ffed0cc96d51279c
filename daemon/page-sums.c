// SPDX-License-Identifier: LGPL-2.1-or-later
/* The checksums of a store's slots (page-sums.h). */
#include <errno.h>
#include <sys/mman.h>

#include "common/macro.h"
#include "crc32c.h"
#include "log.h"
#include "page-sums.h"
#include "slots.h"

#define PAGE UPAGER_PAGE_SIZE

static uint64_t crc_bytes(uint64_t pages)
{
	return ALIGN_UP(pages * sizeof(uint32_t), (uint64_t)PAGE);
}

/** page_sums_bytes() - the memory the sums of @pages slots take, whole pages */
uint64_t page_sums_bytes(uint64_t pages)
{
	return crc_bytes(pages) + ALIGN_UP((pages + 63) / 64 * sizeof(uint64_t), (uint64_t)PAGE);
}

/**
 * page_sums_place() - the sums of @pages slots in @mem (page_sums_bytes() of it): the
 * checksums, then the written bits; the caller owns @mem
 */
void page_sums_place(struct page_sums *ps, void *mem, uint64_t pages)
{
	ps->crc = mem;
	ps->written = (uint64_t *)((char *)mem + crc_bytes(pages));
}

/**
 * page_sums_new() - the sums of @pages slots in memory of their own, of which only the part
 * that slots in use touch costs memory; page_sums_free() frees it
 * Return: 0 or a negative errno.
 */
int page_sums_new(struct page_sums *ps, uint64_t pages)
{
	void *m = mmap(NULL, page_sums_bytes(pages), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED)
		return neg_errno();
	page_sums_place(ps, m, pages);
	return 0;
}

/** page_sums_free() - free the sums of page_sums_new(), if any */
void page_sums_free(struct page_sums *ps, uint64_t pages)
{
	if (ps->crc)
		munmap(ps->crc, page_sums_bytes(pages));
	ps->crc = NULL;
	ps->written = NULL;
}

/** page_sums_forget() - slots [@slot, @slot + @pages) hold nothing one may read */
void page_sums_forget(struct page_sums *ps, uint64_t slot, uint64_t pages)
{
	for (uint64_t i = slot; i < slot + pages; i++)
		ps->written[i / 64] &= ~(1ULL << (i % 64));
}

/**
 * page_sums_release() - @slot was freed: the pages of checksums that only free slots use, in the
 * run of free slots around it, go back to the system (they read zeroes when next used, and a slot
 * is written before its checksum is read). The checksums of a store of 48 GiB are 48 MiB, and a
 * daemon whose allocator went round the store kept them all in memory, slots in use or not.
 * @ps: the checksums
 * @s: the store's slots, @slot free among them
 * @slot: the slot freed
 */
void page_sums_release(struct page_sums *ps, const struct slots *s, uint64_t slot)
{
	uint64_t start, pages;
	uintptr_t from, to;

	if (!slots_free_run(s, slot, &start, &pages))
		return;
	from = ALIGN_UP((uintptr_t)(ps->crc + start), (uintptr_t)UPAGER_PAGE_SIZE);
	to = ALIGN_DOWN((uintptr_t)(ps->crc + start + pages), (uintptr_t)UPAGER_PAGE_SIZE);
	if (to <= from)
		return;
	/* A memfd's (the store's tables kept for a daemon that takes over) are punched; private
	 * memory's are dropped. */
	if (madvise((void *)from, to - from, MADV_REMOVE) < 0)
		(void)madvise((void *)from, to - from, MADV_DONTNEED);
}

/** page_sums_written() - whether every slot of [@slot, @slot + @pages) was written whole */
bool page_sums_written(const struct page_sums *ps, uint64_t slot, uint64_t pages)
{
	for (uint64_t i = slot; i < slot + pages; i++)
		if (!(ps->written[i / 64] & (1ULL << (i % 64))))
			return false;
	return true;
}

/** page_sums_commit() - the slots from @slot on hold the @pages pages of @buf, written */
void page_sums_commit(struct page_sums *ps, uint64_t slot, const void *buf, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++) {
		ps->crc[slot + i] = crc32c(0, (const char *)buf + i * PAGE, PAGE);
		ps->written[(slot + i) / 64] |= 1ULL << ((slot + i) % 64);
	}
}

/**
 * page_sums_verify() - whether the @pages pages of @buf, read from the slots from @slot on of
 * the store named @store (for the log), are what was written there
 * Return: 0, or -EIO for the first page that differs, logged.
 */
int page_sums_verify(const struct page_sums *ps, const char *store, uint64_t slot, const void *buf,
		     uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++) {
		uint32_t crc = crc32c(0, (const char *)buf + i * PAGE, PAGE);

		if (crc != ps->crc[slot + i]) {
			log_limited(LOG_ERR,
				    "%s: slot %lu came back corrupt (checksum %08x, written %08x)",
				    store, (unsigned long)(slot + i), crc, ps->crc[slot + i]);
			return -EIO;
		}
	}
	return 0;
}

/**
 * page_sums_check() - whether a transfer may be made: slots allocated in @s, a page-aligned
 * buffer (O_DIRECT wants one), and for a read, slots written whole since they were allocated
 * Return: 0 or -EINVAL.
 */
int page_sums_check(const struct page_sums *ps, const struct slots *s, bool write, uint64_t slot,
		    const void *buf, uint64_t pages)
{
	if (!IS_ALIGNED((uintptr_t)buf, PAGE) || !slots_allocated(s, slot, pages))
		return -EINVAL;
	if (!write && !page_sums_written(ps, slot, pages))
		return -EINVAL;
	return 0;
}
