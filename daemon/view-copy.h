/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Faults and populating remaps of nonlinear mappings (view-copy.c). */
#pragma once

#include <stdint.h>

#include "populate.h"

#include <stdbool.h>

struct daemon;
struct region;
struct space;

void view_fault(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0);
bool view_serve_waits(struct daemon *d, bool force);
int view_populate(struct space *s, uint64_t addr, uint64_t count, populate_done_fn done,
		  void *userdata);
