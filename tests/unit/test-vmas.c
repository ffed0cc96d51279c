// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * preload/vmas.c: a range of several of the kernel's mappings moves as one, or not at all.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preload/vmas.h"

#define PG 4096UL

/* Three pages, each its own mapping of the kernel's (the middle one read-only: no merge). */
static unsigned char *three_mappings(void)
{
	unsigned char *p =
		mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	for (int i = 0; i < 3; i++)
		p[i * PG] = (unsigned char)(i + 1);
	cr_assert_eq(mprotect(p + PG, PG, PROT_READ), 0);
	return p;
}

static void *spare(size_t len)
{
	void *d = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(d, MAP_FAILED);
	return d;
}

Test(vmas, the_mappings_of_a_range_are_found_in_order_and_a_hole_is_efault)
{
	unsigned char *p = three_mappings();
	uintptr_t a = (uintptr_t)p;
	struct vma v[VMAS_MAX];

	cr_assert_eq(vmas_find(a + PG / 2, a + 3 * PG, v), 3);
	cr_assert_eq(v[0].start, a + PG / 2, "clipped to the range");
	cr_assert_eq(v[0].end, a + PG);
	cr_assert_eq(v[1].start, a + PG);
	cr_assert_eq(v[2].end, a + 3 * PG);
	cr_assert_eq(vmas_find(a + PG, a + 2 * PG, v), 1);
	cr_assert_eq(munmap(p + PG, PG), 0);
	cr_assert_eq(vmas_find(a, a + 3 * PG, v), -EFAULT);
	cr_assert_eq(vmas_find(a, a + 4 * PG, v), -EFAULT, "past the end");
	munmap(p, 3 * PG);
}

Test(vmas, a_range_of_three_mappings_moves_whole)
{
	unsigned char *p = three_mappings(), *d = spare(3 * PG);
	unsigned char vec;

	cr_assert_eq(vmas_remap(p, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d), d);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(d[i * PG], i + 1, "page %d", i);
	/* The old range is gone: mincore(2) fails on unmapped memory. */
	cr_assert_eq(mincore(p, PG, &vec), -1);
	cr_assert_eq(errno, ENOMEM);
	munmap(d, 3 * PG);
}

/* Where a page of the range is not mapped: EFAULT, the range as it was (Linux 6.17 and later move
 * such a range themselves, the hole with it). */
Test(vmas, a_range_with_a_hole_moves_as_the_kernel_moves_it_or_stays)
{
	unsigned char *p = three_mappings(), *d = spare(3 * PG), *at;

	cr_assert_eq(munmap(p + PG, PG), 0);
	at = vmas_remap(p, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	if (at == MAP_FAILED) {
		cr_assert_eq(errno, EFAULT);
		at = p;
	}
	cr_assert_eq(at[0], 1);
	cr_assert_eq(at[2 * PG], 3);
	munmap(p, 3 * PG);
	munmap(d, 3 * PG);
}

Test(vmas, dontunmap_leaves_the_old_range_mapped)
{
	unsigned char *p = three_mappings(), *d = spare(3 * PG);

	cr_assert_eq(mprotect(p + PG, PG, PROT_READ | PROT_WRITE | PROT_EXEC), 0);
	cr_assert_eq(vmas_remap(p, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, d), d);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(d[i * PG], i + 1, "page %d", i);
		cr_assert_eq(p[i * PG], 0, "old page %d still holds its data", i);
	}
	munmap(p, 3 * PG);
	munmap(d, 3 * PG);
}
