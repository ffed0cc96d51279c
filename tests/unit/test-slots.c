// SPDX-License-Identifier: LGPL-2.1-or-later
/* The swap store's slot allocator: runs, next fit, merging, ENOSPC, and a model to compare with. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/latency.h"
#include "daemon/slots.h"

static uint64_t must_alloc(struct slots *s, uint64_t pages)
{
	uint64_t slot = UINT64_MAX;
	int ret = slots_alloc(s, pages, &slot);

	cr_assert_eq(ret, 0, "alloc %lu: %d", (unsigned long)pages, ret);
	return slot;
}

Test(slots, allocations_one_after_another_are_adjacent)
{
	struct slots s;

	cr_assert_eq(slots_init(&s, 4096), 0);
	cr_assert_eq(must_alloc(&s, 1), 0);
	cr_assert_eq(must_alloc(&s, 1), 1);
	cr_assert_eq(must_alloc(&s, 3), 2);
	cr_assert_eq(must_alloc(&s, 8), 5);
	cr_assert_eq(s.used, 13);
	slots_deinit(&s);
}

Test(slots, a_new_cursor_prefers_a_long_run_to_a_small_hole)
{
	struct slots s;
	uint64_t slot;

	cr_assert_eq(slots_init(&s, 2000), 0);
	cr_assert_eq(must_alloc(&s, 10), 0);
	cr_assert_eq(must_alloc(&s, 1990), 10);
	cr_assert_eq(slots_free(&s, 0, 10), 0); /* a hole of 10 */
	cr_assert_eq(slots_free(&s, 1000, 600), 0); /* a run of 600 */
	/* Best fit would take the hole; next fit takes the run and stays in it. */
	cr_assert_eq(must_alloc(&s, 1), 1000);
	cr_assert_eq(must_alloc(&s, 1), 1001);
	cr_assert_eq(must_alloc(&s, 100), 1002);
	/* The run is shorter than SLOTS_RUN now, yet the cursor stays in it. */
	cr_assert_eq(must_alloc(&s, 1), 1102);
	cr_assert_eq(slots_alloc(&s, 498, &slot), -ENOSPC);
	cr_assert_eq(must_alloc(&s, 497), 1103);
	/* Only the hole is left. */
	cr_assert_eq(must_alloc(&s, 1), 0);
	cr_assert_eq(must_alloc(&s, 9), 1);
	cr_assert_eq(slots_alloc(&s, 1, &slot), -ENOSPC);
	slots_deinit(&s);
}

Test(slots, freed_neighbours_merge_into_one_run)
{
	struct slots s;
	uint64_t slot;

	cr_assert_eq(slots_init(&s, 100), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(must_alloc(&s, 10), (uint64_t)i * 10);
	cr_assert_eq(slots_free(&s, 10, 10), 0);
	cr_assert_eq(slots_free(&s, 30, 10), 0);
	cr_assert_eq(slots_alloc(&s, 11, &slot), -ENOSPC);
	cr_assert_eq(slots_free(&s, 20, 10), 0); /* both sides */
	cr_assert_eq(slots_free(&s, 50, 10), 0);
	cr_assert_eq(slots_free(&s, 40, 10), 0); /* the left only */
	cr_assert_eq(must_alloc(&s, 50), 10);
	cr_assert_eq(slots_free(&s, 80, 10), 0);
	cr_assert_eq(slots_free(&s, 70, 10), 0); /* the right only */
	cr_assert_eq(must_alloc(&s, 20), 70);
	cr_assert_eq(s.used, 100);
	slots_deinit(&s);
}

Test(slots, full_is_enospc_and_a_free_in_the_middle_makes_room)
{
	struct slots s;
	uint64_t slot;

	cr_assert_eq(slots_init(&s, 64), 0);
	cr_assert_eq(slots_alloc(&s, 65, &slot), -ENOSPC);
	cr_assert_eq(slots_alloc(&s, 0, &slot), -EINVAL);
	cr_assert_eq(must_alloc(&s, 64), 0);
	cr_assert_eq(slots_alloc(&s, 1, &slot), -ENOSPC);
	cr_assert_eq(slots_free(&s, 20, 4), 0);
	cr_assert_eq(s.used, 60);
	cr_assert_eq(slots_alloc(&s, 5, &slot), -ENOSPC);
	cr_assert_eq(must_alloc(&s, 4), 20);
	cr_assert_eq(slots_alloc(&s, 1, &slot), -ENOSPC);
	slots_deinit(&s);
}

Test(slots, a_double_free_or_one_past_the_end_is_refused)
{
	struct slots s;

	cr_assert_eq(slots_init(&s, 64), 0);
	cr_assert_eq(slots_free(&s, 0, 1), -EINVAL);
	cr_assert_eq(must_alloc(&s, 32), 0);
	cr_assert(slots_allocated(&s, 0, 32));
	cr_assert_not(slots_allocated(&s, 0, 33));
	cr_assert_not(slots_allocated(&s, 31, 0));
	cr_assert_eq(slots_free(&s, 8, 8), 0);
	cr_assert_not(slots_allocated(&s, 4, 8));
	cr_assert_eq(slots_free(&s, 8, 8), -EINVAL);
	cr_assert_eq(slots_free(&s, 4, 5), -EINVAL); /* its last page is free */
	cr_assert_eq(slots_free(&s, 15, 2), -EINVAL); /* its first page is free */
	cr_assert_eq(slots_free(&s, 30, 4), -EINVAL); /* past what was allocated */
	cr_assert_eq(slots_free(&s, 60, 8), -EINVAL); /* past the end */
	cr_assert_eq(slots_free(&s, UINT64_MAX, 2), -EINVAL);
	cr_assert_eq(s.used, 24);
	cr_assert_eq(slots_free(&s, 0, 8), 0);
	cr_assert_eq(slots_free(&s, 16, 16), 0);
	cr_assert_eq(s.used, 0);
	cr_assert_eq(must_alloc(&s, 64), 0); /* all merged again */
	slots_deinit(&s);
}

/* The longest run of free pages in the model. */
static uint64_t longest_free(const bool *used, uint64_t pages)
{
	uint64_t best = 0, run = 0;

	for (uint64_t i = 0; i < pages; i++) {
		run = used[i] ? 0 : run + 1;
		if (run > best)
			best = run;
	}
	return best;
}

Test(slots, random_work_agrees_with_a_model)
{
	enum {
		PAGES = 3000,
		LIVE = 400
	};
	struct {
		uint64_t slot, pages;
	} live[LIVE];
	bool used[PAGES] = { false };
	unsigned nlive = 0;
	uint64_t in_use = 0;
	struct slots s;

	srand(42);
	cr_assert_eq(slots_init(&s, PAGES), 0);
	for (int step = 0; step < 20000; step++) {
		if (nlive < LIVE && (nlive == 0 || rand() % 3 != 0)) {
			uint64_t pages =
				1 + (uint64_t)(rand() % 4 == 0 ? rand() % 200 : rand() % 8);
			uint64_t slot;
			int ret = slots_alloc(&s, pages, &slot);

			if (ret == -ENOSPC) {
				cr_assert_lt(longest_free(used, PAGES), pages,
					     "ENOSPC for %lu with a free run long enough",
					     (unsigned long)pages);
				continue;
			}
			cr_assert_eq(ret, 0);
			cr_assert_leq(slot + pages, PAGES);
			for (uint64_t i = slot; i < slot + pages; i++) {
				cr_assert_not(used[i], "slot %lu given twice", (unsigned long)i);
				used[i] = true;
			}
			live[nlive].slot = slot;
			live[nlive++].pages = pages;
			in_use += pages;
		} else {
			unsigned k = (unsigned)rand() % nlive;
			uint64_t slot = live[k].slot, pages = live[k].pages;

			cr_assert_eq(slots_free(&s, slot, pages), 0);
			for (uint64_t i = slot; i < slot + pages; i++)
				used[i] = false;
			live[k] = live[--nlive];
			in_use -= pages;
			cr_assert_eq(slots_free(&s, slot, pages), -EINVAL);
		}
		cr_assert_eq(s.used, in_use);
	}
	slots_deinit(&s);
}

/* A fragmented store still allocates in O(log n): a scan per call would take minutes here. */
Test(slots, a_fragmented_store_allocates_quickly)
{
	enum {
		PAGES = 1 << 20
	};
	struct timespec t0, t1;
	struct slots s;
	double secs;

	cr_assert_eq(slots_init(&s, PAGES), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < PAGES; i++)
		cr_assert_eq(must_alloc(&s, 1), i);
	for (uint64_t i = 0; i < PAGES; i += 2)
		cr_assert_eq(slots_free(&s, i, 1), 0);
	for (uint64_t i = 0; i < PAGES / 2; i++)
		must_alloc(&s, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(s.used, PAGES);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(secs, 10.0, "%.1f s for 2.5 million calls", secs);
	slots_deinit(&s);
}

Test(slots, a_claimed_run_is_allocated_where_it_is)
{
	struct slots s;
	uint64_t slot;

	cr_assert_eq(slots_init(&s, 64), 0);
	cr_assert_eq(slots_claim(&s, 8, 4), 0); /* in the middle: the free extent splits */
	cr_assert_eq(slots_claim(&s, 0, 2), 0); /* at the start of one */
	cr_assert_eq(slots_claim(&s, 60, 4), 0); /* at the end of the store */
	cr_assert_eq(slots_claim(&s, 7, 1), 0); /* at the end of one */
	cr_assert_eq(s.used, 11);
	cr_assert(slots_allocated(&s, 7, 5));
	cr_assert_not(slots_allocated(&s, 2, 1));
	cr_assert_eq(slots_claim(&s, 10, 4), -EINVAL, "in part claimed already");
	cr_assert_eq(slots_claim(&s, 62, 4), -EINVAL, "past the end");
	cr_assert_eq(slots_claim(&s, 20, 0), -EINVAL);
	cr_assert_eq(s.used, 11);
	/* What is free is what was not claimed: 2..6, 12..59. */
	cr_assert_eq(slots_alloc(&s, 6, &slot), 0);
	cr_assert_eq(slot, 12);
	cr_assert_eq(slots_alloc(&s, 5, &slot), 0);
	cr_assert_geq(slot, 18);
	cr_assert_eq(slots_free(&s, slot, 5), 0);
	cr_assert_eq(slots_alloc(&s, 5, &slot), 0);
	cr_assert(slot == 2 || slot >= 18, "slot %lu", (unsigned long)slot);
	cr_assert_eq(slots_free(&s, slot, 5), 0);
	cr_assert_eq(slots_free(&s, 12, 6), 0);
	/* Freed, claimed runs merge with their neighbours again. */
	cr_assert_eq(slots_free(&s, 0, 2), 0);
	cr_assert_eq(slots_free(&s, 7, 5), 0);
	cr_assert_eq(slots_free(&s, 60, 4), 0);
	cr_assert_eq(s.used, 0);
	cr_assert_eq(slots_alloc(&s, 64, &slot), 0);
	cr_assert_eq(slot, 0);
	slots_deinit(&s);
}

/* A write that found no room below the store (ENOSPC, EDQUOT) makes it full for a while: no slot,
 * whatever is free; other errors do not. */
Test(slots, a_store_out_of_room_below_allocates_nothing_for_a_while)
{
	struct slots s;
	uint64_t slot;

	cr_assert_eq(slots_init(&s, 64), 0);
	slots_out_of_room(&s, -EIO);
	cr_assert_not(slots_full(&s));
	cr_assert_eq(slots_alloc(&s, 4, &slot), 0);
	slots_out_of_room(&s, -ENOSPC);
	cr_assert(slots_full(&s));
	cr_assert_eq(slots_alloc(&s, 1, &slot), -ENOSPC, "60 slots free, but no room below");
	s.full_until_ns = now_ns() - 1; /* its second is over */
	cr_assert_not(slots_full(&s));
	cr_assert_eq(slots_alloc(&s, 1, &slot), 0);
	slots_out_of_room(&s, -EDQUOT);
	cr_assert(slots_full(&s));
	slots_deinit(&s);
}
