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
