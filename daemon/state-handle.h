/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handle of a saved record, embedded in the struct it saves (state.c keeps the journal). Apart
 * from state.h so that a struct can embed one without its owner depending on the journal's code.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"

struct state;
struct state_handle;

/* Saves the one record of what @h is embedded in: state_begin(), its fields, state_end(). */
typedef void state_save_fn(struct state_handle *h, struct state *st);

/*
 * A saved record's place in the journal, embedded in the struct it saves (all zero: not saved
 * yet). The module that owns the struct marks it when the record changes and forgets it when the
 * struct goes; a copy of a struct must not keep the original's handle.
 */
struct state_handle {
	uint64_t key; /* the record's name in the journal while it lives; 0: none yet */
	struct list_head live; /* state.live, in key order */
	struct list_head dirty; /* state.dirty while marked */
	state_save_fn *save;
	void *owner; /* for save, if the struct alone does not say enough */
	uint32_t len; /* bytes of its last entry, 0 if none was written */
	bool marked;
};
