/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* MAP_POPULATE and MAP_POPULATE|MAP_NONBLOCK, done by the daemon for a new region. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct object;
struct region;
struct space;

typedef void (*populate_done_fn)(void *userdata);
/* Maps what is ready of [addr, addr + count pages) in a space once a populate's reads are over. */
typedef void (*populate_install_fn)(struct space *s, uint64_t addr, uint64_t count);

int populate_region(struct space *s, uint64_t start, bool nonblock, populate_done_fn done,
		    void *userdata);
int populate_read(struct space *s, struct region *r, struct object *o, uint64_t first,
		  uint64_t count, populate_install_fn install, uint64_t addr, uint64_t pages,
		  populate_done_fn done, void *userdata);
