/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault path: from a userfaultfd message to a mapped page. */
#pragma once

#include <stdint.h>

struct region;
struct space;

void fault_handle(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0);
void fault_past_end_grown(struct space *s);
void fault_unpark(struct space *s);
