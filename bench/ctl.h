/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The paging benchmarks' look at their daemon through `upagerctl stats --json`. */
#pragma once

#include <stdint.h>

const char *ctl_find(const char *upagerd);
int ctl_stat(const char *upagerctl, const char *key, uint64_t *out);
