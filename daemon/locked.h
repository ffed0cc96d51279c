/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which address ranges of a client are locked in memory (locked.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mm.h"

struct locked_range {
	uint64_t start, end;
};

struct locked_ranges {
	struct locked_range *r;
	size_t n, cap;
	bool read; /* read at least once */
	uint64_t when; /* the clock when last read */
	int error; /* of the last read: everything is taken for locked */
	/* The last read of smaps (locked.c): VmLck then (0: none to go by), when, and its cost. */
	uint64_t smaps_kib, smaps_ns, smaps_cost_ns;
};

int locked_parse(FILE *smaps, struct locked_ranges *l);
int locked_refresh(struct locked_ranges *l, const struct mm_mark *m, uint64_t now);
void locked_moved(struct locked_ranges *l);
bool locked_overlaps(const struct locked_ranges *l, uint64_t start, uint64_t end);
void locked_free(struct locked_ranges *l);
