// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The saved state's framing: records of tagged fields in two slots written in turn. The fd store
 * is faked here (fdstore_add() keeps the slots, fdstore_passed_take() hands them back), so that a
 * second state_init() takes over what the first one saved, as a restarted daemon does.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/context.h"
#include "daemon/fdstore.h"
#include "daemon/state.h"

static int slots[2] = { -1, -1 };

int fdstore_add(struct daemon *d, int fd, const char *kind, uint64_t id)
{
	(void)d;
	cr_assert_str_eq(kind, "st");
	cr_assert_lt(id, 2);
	slots[id] = fd;
	return 0;
}

int fdstore_passed_take(struct fdstore_passed *p, const char *kind, uint64_t id)
{
	(void)p;
	if (strcmp(kind, "st") || id > 1 || slots[id] < 0)
		return -1;
	return dup(slots[id]);
}

/* What the test saves: one record of each kind it knows, and one of a kind from the future. */
struct saved {
	uint64_t a, b;
	char *name;
	uint8_t bytes[8];
	uint16_t n_bytes;
};

static struct saved out, in;
static unsigned loaded_records, unknown_records, loaded_calls;

static void fields(struct state_io *io, struct saved *s)
{
	STATE_NUM(io, 1, s->a);
	STATE_NUM(io, 2, s->b);
	state_str(io, 3, &s->name);
	state_bytes(io, 4, s->bytes, &s->n_bytes, sizeof(s->bytes));
}

static void save(struct daemon *d, struct state *st)
{
	struct state_io io;
	uint64_t future = 7;

	(void)d;
	state_begin(&io, st, STATE_REC_OBJECT);
	fields(&io, &out);
	STATE_NUM(&io, 99, future); /* a field this loader does not know */
	state_end(&io);
	state_begin(&io, st, (enum state_rec)42);
	STATE_NUM(&io, 1, future);
	state_end(&io);
}

static void load(struct daemon *d, enum state_rec type, struct state_io *io,
		 struct fdstore_passed *p)
{
	(void)d;
	(void)p;
	if (type != STATE_REC_OBJECT) {
		unknown_records++;
		return;
	}
	fields(io, &in);
	loaded_records++;
}

static void loaded(struct daemon *d)
{
	(void)d;
	loaded_calls++;
}

static const struct state_ops ops = { .save = save, .load = load, .loaded = loaded };

/* A daemon that takes over whatever the slots hold. */
static void take_over(struct daemon *d)
{
	struct fdstore_passed none = { 0 };

	*d = (struct daemon){ .fdstore = true };
	free(in.name);
	in = (struct saved){ 0 };
	loaded_records = unknown_records = loaded_calls = 0;
	cr_assert_eq(state_init(d, &none, &ops), 0);
}

static void setup(void)
{
	out = (struct saved){ .a = 1, .b = UINT64_MAX, .name = "/some/file", .n_bytes = 3 };
	memcpy(out.bytes, "abc", 3);
}

TestSuite(state, .init = setup);

Test(state, records_come_back_field_by_field)
{
	struct daemon d1, d2;

	take_over(&d1); /* nothing saved yet: a fresh start */
	cr_assert_eq(loaded_calls, 0);
	out.a = 5;
	daemon_touch(&d1);
	state_flush(&d1);
	take_over(&d2);
	cr_assert_eq(loaded_records, 1);
	cr_assert_eq(unknown_records, 1, "a kind of record from a newer daemon is handed on");
	cr_assert_eq(loaded_calls, 1);
	cr_assert_eq(in.a, 5);
	cr_assert_eq(in.b, UINT64_MAX);
	cr_assert_str_eq(in.name, "/some/file");
	cr_assert_eq(in.n_bytes, 3);
	cr_assert_eq(memcmp(in.bytes, "abc", 3), 0);
	state_free(&d2);
	state_free(&d1);
}

Test(state, the_newest_generation_wins)
{
	struct daemon d1, d2;

	take_over(&d1);
	for (uint64_t a = 20; a < 25; a++) {
		out.a = a;
		daemon_touch(&d1);
		state_flush(&d1);
	}
	take_over(&d2);
	cr_assert_eq(in.a, 24);
	state_free(&d2);
	state_free(&d1);
}

Test(state, nothing_is_written_until_the_tables_change)
{
	struct daemon d1, d2;

	take_over(&d1);
	out.a = 8;
	daemon_touch(&d1);
	state_flush(&d1);
	out.a = 9; /* not touched: not saved */
	state_flush(&d1);
	take_over(&d2);
	cr_assert_eq(in.a, 8);
	state_free(&d2);
	state_free(&d1);
}

Test(state, a_torn_slot_leaves_the_one_before)
{
	struct daemon d1, d2;
	uint64_t garbage = 0x5a5a5a5a5a5a5a5aULL;

	take_over(&d1);
	out.a = 10;
	daemon_touch(&d1);
	state_flush(&d1); /* generation 2 after init's 1: slot 0 */
	out.a = 11;
	daemon_touch(&d1);
	state_flush(&d1); /* generation 3: slot 1 */
	/* A crash in the middle of the newest write: its checksum fails. */
	cr_assert_eq(pwrite(slots[1], &garbage, sizeof(garbage), 48), (ssize_t)sizeof(garbage));
	take_over(&d2);
	cr_assert_eq(in.a, 10, "the slot before the torn one is taken");
	state_free(&d2);
	state_free(&d1);
}
