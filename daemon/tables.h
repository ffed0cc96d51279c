/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's tables as records of the saved state (tables.c). */
#pragma once

#include "state.h"

extern const struct state_ops tables_ops;
