/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's tables, saved in memfds of the fd store so that a new daemon can take them over.
 * This file keeps the framing: two slots written in turn, each with a generation and a checksum,
 * holding records of tagged fields. What a record holds is the business of the module that owns
 * its struct (space.c, region.c, object.c, view.c, session.c), and the order of the records that
 * of tables.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct daemon;
struct fdstore_passed;
struct state;

/* The kinds of record. A new kind is a new number; a loader skips the kinds it does not know. */
enum state_rec {
	STATE_REC_DAEMON = 1,
	STATE_REC_SPACE = 2,
	STATE_REC_OBJECT = 3,
	STATE_REC_VIEW = 4,
	STATE_REC_REGION = 5,
	STATE_REC_SESSION = 6,
	STATE_REC_OPEN = 7,
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

/* What the owner of the tables gives: how they are saved, and how each record is taken back. */
struct state_ops {
	void (*save)(struct daemon *d, struct state *st);
	void (*load)(struct daemon *d, enum state_rec type, struct state_io *io,
		     struct fdstore_passed *p);
	void (*loaded)(struct daemon *d); /* after the last record */
};

int state_init(struct daemon *d, struct fdstore_passed *passed, const struct state_ops *ops);
void state_flush(struct daemon *d);
void state_free(struct daemon *d);
