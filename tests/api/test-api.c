// SPDX-License-Identifier: LGPL-2.1-or-later
/* Links the installed-form shared library and calls every symbol it exports. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "integration/harness.h"
#include "upager.h"

TestSuite(api, .init = harness_start, .fini = harness_stop, .timeout = 30);

Test(api, every_exported_function)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	uint64_t *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t *m2 = upager_mmap2(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 2);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(m2, MAP_FAILED);
	cr_assert_eq(m2[0], pattern_at(2 * PAGE));
	m[1] = 7;
	cr_assert_eq(upager_msync(m, 4 * PAGE, MS_SYNC), 0);
	errno = 0;
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 1, 0, 0), -1);
	cr_assert_eq(errno, EINVAL); /* prot must be 0 */
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	cr_assert_eq(upager_munmap(m2, PAGE), 0);
}

Test(api, growth_limit_of_a_growsdown_mapping)
{
	char *g = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	char *m = upager_mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(g, MAP_FAILED, "%m");
	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert_eq(upager_set_growth_limit(g, 4 * PAGE), 0, "%m");
	*(volatile char *)(g - PAGE) = 1; /* the guard page: grows by a page */
	cr_assert_eq(g[-(long)PAGE], 1);
	errno = 0;
	cr_assert_eq(upager_set_growth_limit(m, 4 * PAGE), -1);
	cr_assert_eq(errno, EINVAL); /* not a MAP_GROWSDOWN mapping */
	cr_assert_eq(upager_munmap(g - PAGE, 3 * PAGE), 0);
	cr_assert_eq(upager_munmap(m, PAGE), 0);
}

/*
 * Every MAP_ flag of Linux 6.18 on x86-64 (include/uapi/linux/mman.h, asm-generic/mman*.h,
 * arch/x86/include/uapi/asm/mman.h), with the huge page size field: the bits of NetBSD's flags in
 * upager.h must not meet any of them.
 */
#define LINUX_MAP_FLAGS                                                                            \
	(0x0fu /* MAP_TYPE, MAP_DROPPABLE */ | 0x10u /* MAP_FIXED */ | 0x20u /* MAP_ANONYMOUS */ | \
	 0x40u /* MAP_32BIT */ | 0x80u /* MAP_ABOVE4G */ | 0x100u /* MAP_GROWSDOWN */ |            \
	 0x800u /* MAP_DENYWRITE */ | 0x1000u /* MAP_EXECUTABLE */ | 0x2000u /* MAP_LOCKED */ |    \
	 0x4000u /* MAP_NORESERVE */ | 0x8000u /* MAP_POPULATE */ | 0x10000u /* MAP_NONBLOCK */ |  \
	 0x20000u /* MAP_STACK */ | 0x40000u /* MAP_HUGETLB */ | 0x80000u /* MAP_SYNC */ |         \
	 0x100000u /* MAP_FIXED_NOREPLACE */ | 0x4000000u /* MAP_UNINITIALIZED */ |                \
	 (0x3fu << 26) /* MAP_HUGE_* */)
#define NETBSD_BITS                                                           \
	((unsigned int)UPAGER_MAP_TRYFIXED | (unsigned int)UPAGER_MAP_WIRED | \
	 (unsigned int)UPAGER_MAP_ALIGNMENT_MASK)
_Static_assert((NETBSD_BITS & LINUX_MAP_FLAGS) == 0, "a NetBSD flag meets a Linux MAP_ flag");
_Static_assert(((unsigned int)UPAGER_MAP_ALIGNED(41) & ~(unsigned int)UPAGER_MAP_ALIGNMENT_MASK) ==
		       0,
	       "MAP_ALIGNED(n) spills out of its field");

Test(api, netbsd_flags_meet_no_linux_flag)
{
	cr_assert_eq(NETBSD_BITS & LINUX_MAP_FLAGS, 0);
	cr_assert_eq(UPAGER_MAP_ALIGNED(0), 0);
	cr_assert_eq(UPAGER_MAP_ALIGNED(12) & ~UPAGER_MAP_ALIGNMENT_MASK, 0);
	cr_assert_neq(UPAGER_MAP_ALIGNED(12), UPAGER_MAP_ALIGNED(41));
	cr_assert_eq(UPAGER_MAP_ALIGNED(42), UPAGER_MAP_ALIGNMENT_MASK); /* refused: EINVAL */
}
