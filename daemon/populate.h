/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* MAP_POPULATE and MAP_POPULATE|MAP_NONBLOCK, done by the daemon for a new region. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct space;

typedef void (*populate_done_fn)(void *userdata);

int populate_region(struct space *s, uint64_t start, bool nonblock, populate_done_fn done,
		    void *userdata);
