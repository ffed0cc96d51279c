/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The slots of a swap store: which of its pages are free, allocated in contiguous runs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/avl.h"

/*
 * A run of at least this many pages (2 MiB) is preferred for a new cursor over a smaller hole, so
 * that the page-outs that follow each other land next to each other, in one large write.
 */
#define SLOTS_RUN 512
/* Freed runs this long give their storage back at once (slots_trim_due()). */
#define SLOTS_TRIM_PAGES 16

struct slots {
	struct avl_tree by_start; /* the free extents in page order */
	struct avl_tree by_size; /* the same, by length, then page */
	uint64_t pages; /* slots in all */
	uint64_t used;
	uint64_t
		cursor; /* the slot after the last allocation: the next one begins here if it can */
	uint64_t full_until_ns; /* slots_out_of_room() */
};

/* How long a store whose writes found no room below it takes no page. */
#define SLOTS_FULL_NS (1000 * 1000 * 1000ULL)

int slots_init(struct slots *s, uint64_t pages);
void slots_deinit(struct slots *s);
int slots_alloc(struct slots *s, uint64_t pages, uint64_t *slot);
int slots_free(struct slots *s, uint64_t slot, uint64_t pages);
int slots_claim(struct slots *s, uint64_t slot, uint64_t pages);
bool slots_allocated(const struct slots *s, uint64_t slot, uint64_t pages);
bool slots_trim_due(const struct slots *s, uint64_t slot, uint64_t pages, uint64_t top,
		    uint64_t *start, uint64_t *count);
bool slots_free_run(const struct slots *s, uint64_t slot, uint64_t *start, uint64_t *pages);
void slots_out_of_room(struct slots *s, int error);
bool slots_full(const struct slots *s);
