/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory cgroups for the benchmarks (v1's memory controller or v2's, whichever this machine has):
 * make one with a hard limit, move this process into it and back, read its peak, remove it.
 * Functions return 0 or a negative errno unless said otherwise.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct memcg {
	char dir[256]; /* empty: not made */
	bool v1;
};

int memcg_new(struct memcg *cg, const char *name, uint64_t limit);
int memcg_allow_swap(const struct memcg *cg);
int memcg_enter(const struct memcg *cg);
int memcg_leave(void);
void memcg_remove(struct memcg *cg);
uint64_t memcg_peak(const struct memcg *cg);
uint64_t memcg_stat(const struct memcg *cg, const char *key);
bool memcg_oom_killed(const struct memcg *cg);
