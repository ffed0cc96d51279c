// SPDX-License-Identifier: LGPL-2.1-or-later
/* The touches of a view's pages: the second chance the sweep of copies gives (view-out.c). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "daemon/view.h"

Test(view, a_touched_page_is_taken_once)
{
	struct view v = { .pages = 130 };

	cr_assert_not(view_take_touch(&v, 5), "nothing was touched");
	view_touch(&v, 5);
	view_touch(&v, 129);
	view_touch(&v, 130); /* past the end: nothing */
	cr_assert(view_take_touch(&v, 5));
	cr_assert_not(view_take_touch(&v, 5), "the touch went when taken");
	cr_assert_not(view_take_touch(&v, 4));
	cr_assert_not(view_take_touch(&v, 6));
	cr_assert(view_take_touch(&v, 129));
	cr_assert_not(view_take_touch(&v, 130));
	free(v.touched);
}

Test(view, touches_of_every_page_of_a_word_are_kept_apart)
{
	struct view v = { .pages = 64 };

	for (uint64_t i = 0; i < 64; i += 2)
		view_touch(&v, i);
	for (uint64_t i = 0; i < 64; i++)
		cr_assert_eq(view_take_touch(&v, i), i % 2 == 0, "page %llu",
			     (unsigned long long)i);
	free(v.touched);
}
