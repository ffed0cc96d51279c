// SPDX-License-Identifier: LGPL-2.1-or-later
/* The preload's table of the ranges it mapped through libupager (preload/ranges.c). */
#include <criterion/criterion.h>
#include <sys/mman.h>

#include "preload/ranges.h"

/* The library keeps a descriptor per file range; these ranges are anonymous (-1). */
int upager__fd_keep(int fd);
void upager__fd_unkeep(int kfd);

int upager__fd_keep(int fd)
{
	return fd;
}

void upager__fd_unkeep(int kfd)
{
	(void)kfd;
}

TestSuite(ranges);

#define PAGE 4096UL
#define BASE 0x100000000UL

static void add(uintptr_t start, size_t pages, int prot)
{
	struct range r = { .start = start,
			   .end = start + pages * PAGE,
			   .fd = -1,
			   .prot = prot,
			   .flags = MAP_PRIVATE | MAP_ANONYMOUS };

	ranges_lock();
	cr_assert_eq(ranges_add(&r), 0);
	ranges_unlock();
}

/* The parts of [start, start + pages pages) whose protection allows @prot, into @out. */
static size_t parts(uintptr_t start, size_t pages, int prot, struct span *out)
{
	size_t n;

	ranges_lock();
	n = ranges_parts(start, pages * PAGE, prot, out, 8);
	ranges_unlock();
	return n;
}

/* A part of a range made PROT_NONE (a guard page) leaves the rest as it was, and is touched no more. */
Test(ranges, a_part_made_inaccessible_is_split_off)
{
	struct span sp[8];

	add(BASE, 3, PROT_READ | PROT_WRITE);
	ranges_lock();
	ranges_protect(BASE + 2 * PAGE, PAGE, PROT_NONE);
	ranges_unlock();
	cr_assert_eq(parts(BASE, 3, PROT_READ, sp), 1);
	cr_assert_eq(sp[0].start, BASE);
	cr_assert_eq(sp[0].end, BASE + 2 * PAGE, "the guard page is not a readable part");
}

/* A part of a PROT_NONE reservation made writable (a heap's commit) is, alone. */
Test(ranges, a_part_made_accessible_is_split_off)
{
	struct span sp[8];

	add(BASE, 64, PROT_NONE);
	ranges_lock();
	ranges_protect(BASE + 16 * PAGE, 16 * PAGE, PROT_READ | PROT_WRITE);
	ranges_unlock();
	cr_assert_eq(parts(BASE, 64, PROT_READ | PROT_WRITE, sp), 1);
	cr_assert_eq(sp[0].start, BASE + 16 * PAGE);
	cr_assert_eq(sp[0].end, BASE + 32 * PAGE);
	cr_assert(sp[0].private_writable);
	cr_assert_eq(parts(BASE, 64, PROT_NONE, sp), 3, "the three pieces are still upager's");
}

/* A range wholly inside takes the protection; ranges outside keep theirs. */
Test(ranges, ranges_wholly_inside_take_the_protection)
{
	struct span sp[8];

	add(BASE, 2, PROT_READ);
	add(BASE + 4 * PAGE, 2, PROT_READ);
	ranges_lock();
	ranges_protect(BASE, 3 * PAGE, PROT_READ | PROT_WRITE);
	ranges_unlock();
	cr_assert_eq(parts(BASE, 6, PROT_READ | PROT_WRITE, sp), 1);
	cr_assert_eq(sp[0].end, BASE + 2 * PAGE);
	cr_assert_eq(parts(BASE, 6, PROT_READ, sp), 2);
}
