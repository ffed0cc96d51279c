// SPDX-License-Identifier: LGPL-2.1-or-later
/* Which ranges of a process are locked in memory (locked.c): smaps text, and this process. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/locked.h"
#include "self-mark.h"

static const char smaps[] =
	"55d0a0000000-55d0a0002000 r--p 00000000 08:01 123   /usr/bin/x\n"
	"Size:                  8 kB\n"
	"Locked:                0 kB\n"
	"VmFlags: rd mr mw me dw sd\n"
	"7f0000000000-7f0000100000 rw-s 00000000 00:01 77   /memfd:upager:anon\n"
	"Size:               1024 kB\n"
	"Locked:             1024 kB\n"
	"VmFlags: rd wr sh mr mw me ms lo sd\n"
	"7f0000200000-7f0000201000 rw-p 00000000 00:00 0 \n"
	"VmFlags: rd wr mr mw me ac sd lf\n";

Test(locked, the_mappings_with_lo_in_their_flags_are_locked)
{
	struct locked_ranges l = { 0 };
	FILE *f = fmemopen((void *)smaps, sizeof(smaps) - 1, "r");

	cr_assert_not_null(f);
	cr_assert_eq(locked_parse(f, &l), 0);
	fclose(f);
	cr_assert_eq(l.n, 1, "'lf' is not 'lo'");
	cr_assert_eq(l.r[0].start, 0x7f0000000000ULL);
	cr_assert_eq(l.r[0].end, 0x7f0000100000ULL);
	cr_assert(locked_overlaps(&l, 0x7f00000ff000ULL, 0x7f0000100000ULL));
	cr_assert_not(locked_overlaps(&l, 0x7f0000100000ULL, 0x7f0000101000ULL));
	cr_assert_not(locked_overlaps(&l, 0x55d0a0000000ULL, 0x55d0a0001000ULL));
	locked_free(&l);
}

static char *four_pages(void)
{
	char *p = mmap(NULL, 4 * (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert(p != MAP_FAILED);
	return p;
}

Test(locked, a_process_that_locks_a_range_shows_it_and_nothing_else)
{
	struct locked_ranges l = { 0 };
	struct mm_mark self = self_mark();
	long page = sysconf(_SC_PAGESIZE);
	char *p = four_pages();
	uint64_t a = (uint64_t)(uintptr_t)p;

	cr_assert_eq(locked_refresh(&l, &self, 1), 0);
	cr_assert_not(locked_overlaps(&l, a, a + 4 * page));
	if (mlock(p + page, page) < 0)
		cr_skip_test("mlock: %m");
	cr_assert_eq(locked_refresh(&l, &self, 1), 0);
	cr_assert_not(locked_overlaps(&l, a + page, a + 2 * page), "read once per clock tick");
	cr_assert_eq(locked_refresh(&l, &self, 2), 0);
	cr_assert(locked_overlaps(&l, a + page, a + 2 * page));
	cr_assert_not(locked_overlaps(&l, a, a + page));
	cr_assert_not(locked_overlaps(&l, a + 2 * page, a + 4 * page));
	munlock(p + page, page);
	munmap(p, 4 * page);
	locked_free(&l);
}

Test(locked, a_process_gone_or_not_known_yet_has_nothing_locked)
{
	struct locked_ranges l = { 0 };
	struct mm_mark gone = self_mark(), unknown = self_mark();

	gone.pid = 0x3fffffff;
	unknown.pid = 0;

	cr_assert_eq(locked_refresh(&l, &gone, 1), 0);
	cr_assert_not(locked_overlaps(&l, 0, UINT64_MAX));
	cr_assert_eq(locked_refresh(&l, &unknown, 2), 0);
	cr_assert_not(locked_overlaps(&l, 0, UINT64_MAX));
	locked_free(&l);
}

/* Between two reads of smaps a lock taken since is never missed: the process is taken for locked
 * whole until smaps is read again. */
Test(locked, a_lock_taken_since_the_last_read_is_never_missed)
{
	struct locked_ranges l = { 0 };
	struct mm_mark self = self_mark();
	long page = sysconf(_SC_PAGESIZE);
	char *p = four_pages();
	uint64_t a = (uint64_t)(uintptr_t)p;

	if (mlock(p, page) < 0)
		cr_skip_test("mlock: %m");
	cr_assert_eq(locked_refresh(&l, &self, 1), 0);
	cr_assert_not(locked_overlaps(&l, a + 2 * page, a + 3 * page));
	for (uint64_t turn = 2; turn < 2000; turn++) {
		bool on = turn % 2 == 0;

		cr_assert_eq(on ? mlock(p + 2 * page, page) : munlock(p + 2 * page, page), 0);
		cr_assert_eq(locked_refresh(&l, &self, turn), 0);
		cr_assert(locked_overlaps(&l, a, a + page), "turn %lu", (unsigned long)turn);
		if (on)
			cr_assert(locked_overlaps(&l, a + 2 * page, a + 3 * page), "turn %lu",
				  (unsigned long)turn);
	}
	munlock(p, 4 * page);
	munmap(p, 4 * page);
	locked_free(&l);
}
