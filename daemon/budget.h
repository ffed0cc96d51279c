/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The default memory budget, and the caps of clients limited below the daemon (budget.c). */
#pragma once

#include <stdint.h>

#define BUDGET_MIN (1ULL << 20) /* the smallest budget upagerd takes: 1 MiB */

uint64_t budget_cgroup_limit(const char *proc_cgroup, const char *root);
uint64_t budget_client_cap(const char *proc_cgroup, const char *root, uint64_t own_limit,
			   uint64_t *id);
uint64_t budget_default(uint64_t phys, uint64_t limit);
uint64_t budget_fit(uint64_t asked, uint64_t limit);
uint64_t budget_mapped_default(uint64_t phys, uint64_t limit);
uint64_t budget_mappings_default(uint64_t most, uint64_t limit);
