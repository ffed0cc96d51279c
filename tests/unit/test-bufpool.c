// SPDX-License-Identifier: LGPL-2.1-or-later
/* Buffers of page-outs and page-ins: a few kept for reuse, the others given back. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/bufpool.h"

/* Whether the page at @p is mapped in this process. */
static bool mapped(void *p)
{
	unsigned char v;

	return mincore(p, 1, &v) == 0;
}

Test(bufpool, a_buffer_freed_is_the_next_one_given)
{
	struct bufpool b = { 0 };
	char *p = bufpool_get(&b), *q;

	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
	memset(p, 1, BUFPOOL_BYTES);
	bufpool_put(&b, p);
	q = bufpool_get(&b);
	cr_assert_eq(q, p, "a kept buffer was not given again");
	cr_assert_eq(q[BUFPOOL_BYTES - 1], 1);
	bufpool_put(&b, q);
	bufpool_release(&b);
	cr_assert_eq(b.n, 0);
	cr_assert_not(mapped(p), "a released buffer is still mapped");
}

Test(bufpool, only_a_few_are_kept_the_others_are_unmapped)
{
	struct bufpool b = { 0 };
	void *p[BUFPOOL_KEPT + 3];

	for (size_t i = 0; i < BUFPOOL_KEPT + 3; i++) {
		p[i] = bufpool_get(&b);
		cr_assert_not_null(p[i]);
	}
	for (size_t i = 0; i < BUFPOOL_KEPT + 3; i++)
		bufpool_put(&b, p[i]);
	cr_assert_eq(b.n, BUFPOOL_KEPT);
	for (size_t i = 0; i < BUFPOOL_KEPT; i++)
		cr_assert(mapped(p[i]), "buffer %zu is not kept", i);
	for (size_t i = BUFPOOL_KEPT; i < BUFPOOL_KEPT + 3; i++)
		cr_assert_not(mapped(p[i]), "buffer %zu is kept beyond the few", i);
	bufpool_put(&b, NULL);
	cr_assert_eq(b.n, BUFPOOL_KEPT);
	bufpool_release(&b);
}
