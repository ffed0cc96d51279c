/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The memory budget: which pages leave memory, and when (evict.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct cache;
struct users_over;

uint64_t cache_slack(const struct cache *c);
uint64_t slack_pages(uint64_t budget_pages);
uint64_t cache_low_mark(const struct cache *c);
bool cache_must_page_out(const struct cache *c);
bool cache_balance(struct cache *c, struct users_over *over);
