/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which users are above their share of the budget, and by how much (share.c). */
#pragma once

#include <stddef.h>

#include "cache.h" /* struct users_over */

struct daemon;

int users_over_sum(struct user_over *pages, size_t n, uint64_t share, struct users_over *out);
int users_swap_full(struct user_over *held, size_t n, uint64_t most, struct users_over *out);
int shares_over(struct daemon *d, struct users_over *out);
void users_over_free(struct users_over *o);
