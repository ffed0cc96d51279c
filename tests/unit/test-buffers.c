// SPDX-License-Identifier: LGPL-2.1-or-later
/* Buffers of page-outs and page-ins: a few kept for reuse, the others given back. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/buffers.h"

/* Whether the page at @p is mapped in this process. */
static bool mapped(void *p)
{
	unsigned char v;

	return mincore(p, 1, &v) == 0;
}

Test(buffers, a_buffer_freed_is_the_next_one_given)
{
	struct buffers b = { 0 };
	char *p = buffer_get(&b), *q;

	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
	memset(p, 1, BUFFER_BYTES);
	buffer_put(&b, p);
	q = buffer_get(&b);
	cr_assert_eq(q, p, "a kept buffer was not given again");
	cr_assert_eq(q[BUFFER_BYTES - 1], 1);
	buffer_put(&b, q);
	buffers_release(&b);
	cr_assert_eq(b.n, 0);
	cr_assert_not(mapped(p), "a released buffer is still mapped");
}

Test(buffers, only_a_few_are_kept_the_others_are_unmapped)
{
	struct buffers b = { 0 };
	void *p[BUFFERS_KEPT + 3];

	for (size_t i = 0; i < BUFFERS_KEPT + 3; i++) {
		p[i] = buffer_get(&b);
		cr_assert_not_null(p[i]);
	}
	for (size_t i = 0; i < BUFFERS_KEPT + 3; i++)
		buffer_put(&b, p[i]);
	cr_assert_eq(b.n, BUFFERS_KEPT);
	for (size_t i = 0; i < BUFFERS_KEPT; i++)
		cr_assert(mapped(p[i]), "buffer %zu is not kept", i);
	for (size_t i = BUFFERS_KEPT; i < BUFFERS_KEPT + 3; i++)
		cr_assert_not(mapped(p[i]), "buffer %zu is kept beyond the few", i);
	buffer_put(&b, NULL);
	cr_assert_eq(b.n, BUFFERS_KEPT);
	buffers_release(&b);
}
