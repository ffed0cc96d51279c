/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's tables, saved in memfds of the fd store so that a new daemon can take them over.
 * This file keeps the journal: two slots, each a snapshot of every record followed by the records
 * that changed since, entry by entry, each checksummed. What a record holds is the business of the
 * module that owns its struct (space.c, region.c, object.c, view.c, session.c); that module marks
 * it when it changes. The order in which records are taken back is that of their kinds.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "state-handle.h"

struct daemon;
struct fdstore_passed;
struct state;

/*
 * The kinds of record, in the order they are taken back (a record names only records of kinds
 * before its own). A new kind is a new number; a loader skips the kinds it does not know.
 */
enum state_rec {
	STATE_REC_DAEMON = 1,
	STATE_REC_SPACE = 2,
	STATE_REC_OBJECT = 3,
	STATE_REC_VIEW = 4,
	STATE_REC_REGION = 5,
	STATE_REC_SESSION = 6,
	STATE_REC_OPEN = 7,
	STATE_REC_PRIVATE = 8, /* a chunk of a space's private pages with slots (private.c) */
};

struct state_field {
	uint16_t key, len;
	const uint8_t *data;
};

/*
 * One record being saved (out set) or loaded (in set). A module lists each field of its record
 * once, in one function used both ways: a field is a key that is never reused, so a daemon reads
 * what an older one wrote, and a field a loader does not find keeps its zero value.
 */
struct state_io {
	struct state *out;
	size_t at; /* where the record's header is in out */
	const struct state_field *in;
	size_t n_in;
};

void state_u64(struct state_io *io, uint16_t key, uint64_t *v);
void state_str(struct state_io *io, uint16_t key, char **s);
void state_bytes(struct state_io *io, uint16_t key, uint8_t *buf, uint16_t *len, size_t cap);

/* Any integer or bool lvalue, through a u64. */
#define STATE_NUM(io, key, lv)                \
	do {                                  \
		uint64_t v_ = (uint64_t)(lv); \
		state_u64(io, key, &v_);      \
		(lv) = (__typeof__(lv))v_;    \
	} while (0)

void state_begin(struct state_io *io, struct state *st, enum state_rec type);
void state_end(struct state_io *io);

void state_mark(struct state *st, struct state_handle *h, state_save_fn *save, void *owner);
void state_forget(struct state *st, struct state_handle *h);

/* What the owner of the tables gives: how every record is marked, and how each is taken back. */
struct state_ops {
	void (*mark_all)(struct daemon *d); /* after a load, or on a fresh start */
	state_save_fn *save_daemon; /* the daemon's own record (struct daemon.saved) */
	void (*load)(struct daemon *d, enum state_rec type, struct state_io *io,
		     struct fdstore_passed *p);
	void (*loaded)(struct daemon *d); /* after the last record */
};

int state_init(struct daemon *d, struct fdstore_passed *passed, const struct state_ops *ops);
void state_mark_daemon(struct daemon *d);
void state_flush(struct daemon *d);
void state_free(struct daemon *d);
