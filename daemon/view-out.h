/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Copies of nonlinear mappings leaving memory under the budget (view-out.c). */
#pragma once

struct daemon;

#include <stdint.h>

uint64_t views_balance(struct daemon *d, uint64_t *spared);
