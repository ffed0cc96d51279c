/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The swap store as a page store of the cache (swap-store.c). */
#pragma once

#include "store.h"

struct swap;

struct store *swap_store_new(struct swap *swap, const char *path);
void swap_store_free(struct store *st);
