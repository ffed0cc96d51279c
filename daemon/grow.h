/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* MAP_GROWSDOWN: growth decided here, done by the client's thread over the control channel. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct space;

bool grow_fault(struct space *s, uint64_t addr, uint64_t t0);
void grow_forget_guards(struct space *s, uint64_t start, uint64_t end);
uint64_t grow_munmap_start(struct space *s, uint64_t start, uint64_t end);
