// SPDX-License-Identifier: LGPL-2.1-or-later
/* The flags a fork follows, read from /proc/PID/smaps text, and from the process itself. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/vma-flags.h"
#include "self-mark.h"

struct seen {
	uint64_t start[8], end[8];
	unsigned flags[8], n;
};

static void note(void *arg, uint64_t start, uint64_t end, unsigned flags)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 8);
	s->start[s->n] = start;
	s->end[s->n] = end;
	s->flags[s->n++] = flags;
}

static struct seen scan_text(const char *text, unsigned want)
{
	struct seen s = { .n = 0 };
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	cr_assert_not_null(f);
	cr_assert_eq(vma_flags_scan(f, want, note, &s), 0);
	fclose(f);
	return s;
}

static const char smaps[] =
	"7f0000000000-7f0000004000 rw-p 00000000 00:00 0 \n"
	"Size:                 16 kB\n"
	"VmFlags: rd wr mr mw me ac wf \n"
	"7f0000004000-7f0000008000 rw-p 00000000 00:00 0 \n"
	"Size:                 16 kB\n"
	"VmFlags: rd wr mr mw me dc ac \n"
	"7f0000008000-7f000000a000 rw-s 00000000 00:01 42 /memfd:upager (deleted)\n"
	"VmFlags: rd wr sh mr mw me ms \n"
	"7f000000a000-7f000000b000 rw-p 00000000 00:00 0 \n"
	"VmFlags: rd wr mr mw me dc ac wf \n";

Test(vma_flags, each_mapping_with_a_flag_asked_for_is_named_with_its_range)
{
	struct seen s = scan_text(smaps, VMA_WIPEONFORK | VMA_DONTCOPY);

	cr_assert_eq(s.n, 3);
	cr_assert_eq(s.start[0], 0x7f0000000000);
	cr_assert_eq(s.end[0], 0x7f0000004000);
	cr_assert_eq(s.flags[0], VMA_WIPEONFORK);
	cr_assert_eq(s.start[1], 0x7f0000004000);
	cr_assert_eq(s.flags[1], VMA_DONTCOPY);
	cr_assert_eq(s.start[2], 0x7f000000a000);
	cr_assert_eq(s.end[2], 0x7f000000b000);
	cr_assert_eq(s.flags[2], VMA_WIPEONFORK | VMA_DONTCOPY);
}

Test(vma_flags, flags_not_asked_for_are_not_named)
{
	struct seen s = scan_text(smaps, VMA_DONTCOPY);

	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.flags[0], VMA_DONTCOPY);
	cr_assert_eq(s.flags[1], VMA_DONTCOPY);
}

/* A path longer than the line buffer goes on in the next read, which is no mapping of its own
 * (here it reads like one); names that only contain a flag's letters are not it. */
Test(vma_flags, a_long_path_and_longer_names_are_not_taken_for_flags)
{
	const char head[] = "1000-2000 r--p 00000000 08:01 7 /";
	char text[4096], path[1500];
	struct seen s;

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	/* Where the second read of the line starts (fgets() of 511 characters). */
	memcpy(path + 511 - (sizeof(head) - 1), "7f1-7f2 ", 8);
	snprintf(text, sizeof(text), "%s%s\nVmFlags: rd wfx xdc wf\n", head, path);
	s = scan_text(text, VMA_WIPEONFORK | VMA_DONTCOPY);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.start[0], 0x1000);
	cr_assert_eq(s.end[0], 0x2000);
	cr_assert_eq(s.flags[0], VMA_WIPEONFORK);
}

/* The process's own smaps: a mapping it advised MADV_WIPEONFORK, and one MADV_DONTFORK. */
Test(vma_flags, a_process_shows_the_advice_it_took)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *a = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct seen s = { .n = 0 };
	struct mm_mark self = self_mark(), gone = self_mark();
	bool wf = false, dc = false;

	cr_assert_neq(a, MAP_FAILED);
	cr_assert_eq(madvise(a, pg, MADV_WIPEONFORK), 0);
	cr_assert_eq(madvise(a + 2 * pg, pg, MADV_DONTFORK), 0);
	cr_assert_eq(vma_flags_of(&self, VMA_WIPEONFORK | VMA_DONTCOPY, note, &s), 0);
	for (unsigned i = 0; i < s.n; i++) {
		wf |= s.start[i] == (uintptr_t)a && s.end[i] == (uintptr_t)a + pg &&
		      s.flags[i] == VMA_WIPEONFORK;
		dc |= s.start[i] == (uintptr_t)a + 2 * pg && s.flags[i] == VMA_DONTCOPY;
	}
	cr_assert(wf && dc);
	gone.pid = 0x7ffffff;
	cr_assert_eq(vma_flags_of(&gone, VMA_WIPEONFORK, note, &s), -ENOENT);
}

static int writable_in_text(const char *text, uint64_t addr)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int ret;

	cr_assert_not_null(f);
	ret = vma_maps_writable(f, addr);
	fclose(f);
	return ret;
}

/* /proc/PID/maps text: the mapping that holds the address says, by its second letter. */
Test(vma_flags, the_mapping_that_holds_an_address_says_whether_it_is_writable)
{
	static const char maps[] = "1000-3000 rw-p 00000000 00:00 0 \n"
				   "3000-4000 r--p 00000000 00:00 0 \n"
				   "5000-6000 r-xp 00001000 08:01 7 /usr/bin/x\n";

	cr_assert_eq(writable_in_text(maps, 0x1000), 1);
	cr_assert_eq(writable_in_text(maps, 0x2fff), 1);
	cr_assert_eq(writable_in_text(maps, 0x3000), 0);
	cr_assert_eq(writable_in_text(maps, 0x5800), 0);
	cr_assert_eq(writable_in_text(maps, 0x4000), -ENOENT);
	cr_assert_eq(writable_in_text(maps, 0x6000), -ENOENT);
}

/* The process's own mapping, part of it made read-only by mprotect(), which tells no one else. */
Test(vma_flags, a_process_shows_what_mprotect_made_read_only)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *a = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mm_mark self = self_mark(), gone = self_mark();

	cr_assert_neq(a, MAP_FAILED);
	cr_assert_eq(mprotect(a + pg, pg, PROT_READ), 0);
	cr_assert_eq(vma_writable(&self, (uintptr_t)a), 1);
	cr_assert_eq(vma_writable(&self, (uintptr_t)a + pg), 0);
	cr_assert_eq(vma_writable(&self, (uintptr_t)a + 2 * pg), 1);
	cr_assert_eq(munmap(a, 3 * pg), 0);
	cr_assert_eq(vma_writable(&self, (uintptr_t)a + pg), -ENOENT);
	gone.pid = 0x7ffffff;
	cr_assert_eq(vma_writable(&gone, (uintptr_t)a), -ENOENT);
}
