// SPDX-License-Identifier: LGPL-2.1-or-later
/* The checksums of a store's slots (page-sums.c): what they cost in memory follows the slots used. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>

#include "daemon/page-sums.h"
#include "daemon/slots.h"

TestSuite(page_sums);

#define SLOTS 8192 /* 32 KiB of checksums: 8 pages of 1024 slots */

/* How many of the checksums' pages are in memory. */
static unsigned resident(const struct page_sums *ps)
{
	unsigned char v[SLOTS * 4 / 4096];
	unsigned n = 0;

	cr_assert_eq(mincore(ps->crc, SLOTS * 4, v), 0);
	for (size_t i = 0; i < sizeof(v); i++)
		n += v[i] & 1;
	return n;
}

/*
 * Slots freed give back the pages of checksums that only free slots use, and no other: a daemon
 * whose allocator went round a store kept every page of them, slots in use or not.
 */
Test(page_sums, the_checksums_of_free_slots_leave_memory_by_whole_pages)
{
	static char page[4096];
	struct page_sums ps;
	struct slots s;
	uint64_t slot;

	cr_assert_eq(slots_init(&s, SLOTS), 0);
	cr_assert_eq(page_sums_new(&ps, SLOTS), 0);
	cr_assert(((uintptr_t)ps.crc & 4095) == 0);
	for (uint64_t k = 0; k < SLOTS; k += 512) {
		cr_assert_eq(slots_alloc(&s, 512, &slot), 0);
		for (uint64_t i = 0; i < 512; i++)
			page_sums_commit(&ps, slot + i, page, 1);
	}
	cr_assert_eq(resident(&ps), 8);
	/* Slots 0 to 2047 and 2048 to 2559: pages 0 and 1 are free, page 2 is half used. */
	cr_assert_eq(slots_free(&s, 0, 2048 + 512), 0);
	page_sums_forget(&ps, 0, 2048 + 512);
	page_sums_release(&ps, &s, 0);
	cr_assert_eq(resident(&ps), 6, "%u pages in memory", resident(&ps));
	cr_assert(page_sums_written(&ps, 4096, 1), "the sums of slots in use stay");
	slots_deinit(&s);
	page_sums_free(&ps, SLOTS);
}
