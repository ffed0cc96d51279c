// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * resolve.c: how a page goes into a client's mapping. The decision table whole, then the facts
 * resolve_linear() and resolve_view() gather from a space, a region, an object and a view built
 * here by hand, and the write-back marks resolve_linear() leaves on the object's pages.
 */
#include <criterion/criterion.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <string.h>

#include "common/list.h"
#include "daemon/object.h"
#include "daemon/region.h"
#include "daemon/resolve.h"
#include "daemon/space.h"
#include "daemon/view.h"

#define PAGES 8

static struct space space;
static struct region region;
static struct object object;
static uint8_t pages[PAGES];
static uint64_t maybe_dirty[1];
static struct list_head fake_view; /* a link in object.views: the object has a nonlinear mapping */

/* A shared mapping of a file the client may write, on a kernel with write-protect faults. */
static void setup(void)
{
	memset(pages, PAGE_READY, sizeof(pages));
	object = (struct object){
		.kind = OBJECT_FILE, .size = PAGES << 12, .pages = pages, .maybe_dirty = maybe_dirty
	};
	list_init(&object.views);
	space = (struct space){ .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	region = (struct region){
		.length = PAGES << 12, .obj = &object, .shared = true, .may_write = true
	};
}

TestSuite(resolve, .init = setup);

Test(resolve, the_decision_table)
{
	for (unsigned f = 0; f < 16; f++) {
		bool read_only = f & RESOLVE_READ_ONLY, tracked = f & RESOLVE_TRACKED;
		bool write = f & RESOLVE_WRITE, copies = f & RESOLVE_COPIES;
		bool want = read_only || copies || (tracked && !write);

		cr_expect_eq(resolve_protect(f), want,
			     "read-only %d tracked %d write %d copies %d: protect %d", read_only,
			     tracked, write, copies, !want);
	}
}

Test(resolve, a_tracked_mapping_gets_pages_writable_for_a_write_only)
{
	uint64_t n = 4;

	cr_assert(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n),
		  "a read mapped a page writable");
	cr_assert_eq(n, 4);
	for (int p = 0; p < PAGES; p++)
		cr_assert_eq(pages[p], PAGE_READY, "page %d marked for write-back on a read", p);
	cr_assert_not(resolve_linear(&space, &region, 2, RESOLVE_FOR_WRITE, &n));
	cr_assert_eq(n, 4, "the run was cut with no nonlinear mapping");
	for (int p = 0; p < PAGES; p++)
		cr_assert_eq(pages[p], p >= 2 && p < 6 ? PAGE_READY | PAGE_WRITABLE : PAGE_READY,
			     "page %d: %#x", p, pages[p]);
	cr_assert_eq(object.cached, 0, "the count of ready pages moved");
}

Test(resolve, without_write_protect_faults_pages_go_in_writable)
{
	uint64_t n = 2;

	space.features = 0;
	cr_assert_not(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n));
	cr_assert_eq(pages[0], PAGE_READY | PAGE_WRITABLE);
	cr_assert_eq(pages[1], PAGE_READY | PAGE_WRITABLE);
}

Test(resolve, a_mapping_made_without_prot_write_gets_every_page_protected)
{
	uint64_t n = 2;

	region.wp = true;
	cr_assert(resolve_linear(&space, &region, 0, RESOLVE_FOR_WRITE, &n));
	space.features = 0;
	cr_assert(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n));
	cr_assert_eq(pages[0], PAGE_READY, "a protected page was marked for write-back");
}

Test(resolve, a_mapping_that_may_not_write_marks_nothing_for_write_back)
{
	uint64_t n = 2;

	region.may_write = false;
	cr_assert_not(resolve_linear(&space, &region, 0, RESOLVE_FOR_WRITE, &n));
	cr_assert_not(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n),
		      "untracked pages protected");
	cr_assert_eq(pages[0], PAGE_READY);
}

Test(resolve, shared_anonymous_memory_is_not_tracked)
{
	uint64_t n = 1;

	object.kind = OBJECT_ANON;
	cr_assert_not(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n));
	cr_assert_eq(pages[0], PAGE_READY | PAGE_WRITABLE);
}

Test(resolve, an_object_with_nonlinear_mappings_goes_in_a_page_at_a_time)
{
	uint64_t n = 4;

	list_add_tail(&fake_view, &object.views);
	cr_assert_not(resolve_linear(&space, &region, 1, RESOLVE_FOR_WRITE, &n));
	cr_assert_eq(n, 1);
	cr_assert_eq(pages[1], PAGE_READY | PAGE_WRITABLE);
	cr_assert_eq(pages[2], PAGE_READY, "a page after the one decided was marked");
}

Test(resolve, every_copy_goes_in_protected_but_the_writable_one)
{
	uint8_t copy[3] = { COPY_NONE, COPY_RO, COPY_RW };
	struct view v = { .copy = copy };

	cr_assert(resolve_view(&v, 1));
	cr_assert_not(resolve_view(&v, 2));
}

/*
 * A private mapping keeps copies: a read maps its run protected, so that the first write to each
 * page is seen; a write maps its run unprotected (the caller counts the copies), marked for no
 * write-back (a copy never reaches the file). Without write-protect faults nothing is protected.
 */
Test(resolve, a_private_mapping_gets_pages_protected_but_for_a_write)
{
	uint64_t n = 4;

	region.shared = false;
	region.may_write = false;
	cr_assert(region_keeps_copies(&space, &region));
	cr_assert(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n),
		  "a read mapped a page writable");
	cr_assert_eq(n, 4);
	cr_assert_not(resolve_linear(&space, &region, 2, RESOLVE_FOR_WRITE, &n));
	cr_assert_eq(n, 4, "a write cut the run to %llu pages", (unsigned long long)n);
	for (int p = 0; p < PAGES; p++)
		cr_assert_eq(pages[p], PAGE_READY, "page %d of a private mapping marked: %#x", p,
			     pages[p]);
	space.features = 0;
	n = 4;
	cr_assert_not(region_keeps_copies(&space, &region));
	cr_assert_not(resolve_linear(&space, &region, 0, RESOLVE_FOR_READ, &n));
	cr_assert_eq(n, 4);
}
