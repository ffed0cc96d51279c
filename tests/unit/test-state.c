// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The saved state's journal: records of tagged fields, appended as they are marked or forgotten,
 * compacted into the other of two slots. The fd store is faked here (fdstore_add() keeps the
 * slots, fdstore_passed_take() hands them back), so that a second state_init() takes over what the
 * first one saved, as a restarted daemon does.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
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

#define MAX_THINGS 128

/* What the test saves: things of any kind of record, each with a few fields. */
struct thing {
	struct state_handle saved;
	enum state_rec type;
	uint64_t id, a;
	char *name;
	uint8_t bytes[8];
	uint16_t n_bytes;
};

/* A daemon and its tables: the things it made, or took over. */
struct world {
	struct daemon d;
	struct thing t[MAX_THINGS];
	size_t n;
	unsigned loaded_calls, unknown_records;
	uint64_t daemon_counter;
};

static void fields(struct state_io *io, struct thing *t)
{
	STATE_NUM(io, 1, t->id);
	STATE_NUM(io, 2, t->a);
	state_str(io, 3, &t->name);
	state_bytes(io, 4, t->bytes, &t->n_bytes, sizeof(t->bytes));
}

static void thing_save(struct state_handle *h, struct state *st)
{
	struct thing *t = container_of(h, struct thing, saved);
	struct state_io io;
	uint64_t future = 7;

	state_begin(&io, st, t->type);
	fields(&io, t);
	STATE_NUM(&io, 99, future); /* a field this loader does not know */
	state_end(&io);
}

static void save_daemon(struct state_handle *h, struct state *st)
{
	struct world *w = h->owner;
	struct state_io io;

	state_begin(&io, st, STATE_REC_DAEMON);
	STATE_NUM(&io, 1, w->daemon_counter);
	state_end(&io);
}

static struct world *world_of(struct daemon *d)
{
	return container_of(d, struct world, d);
}

static void mark(struct world *w, size_t i)
{
	state_mark(w->d.state, &w->t[i].saved, thing_save, NULL);
}

static void mark_all(struct daemon *d)
{
	struct world *w = world_of(d);

	state_mark_daemon(d);
	for (size_t i = 0; i < w->n; i++)
		mark(w, i);
}

/* A record taken back becomes a thing of the new daemon, in the order of the load. */
static void load(struct daemon *d, enum state_rec type, struct state_io *io,
		 struct fdstore_passed *p)
{
	struct world *w = world_of(d);
	struct thing *t;

	(void)p;
	if (type == STATE_REC_DAEMON) {
		STATE_NUM(io, 1, w->daemon_counter);
		return;
	}
	if (type > STATE_REC_OPEN) {
		w->unknown_records++;
		return;
	}
	cr_assert_lt(w->n, MAX_THINGS);
	t = &w->t[w->n++];
	t->type = type;
	fields(io, t);
}

static void loaded(struct daemon *d)
{
	world_of(d)->loaded_calls++;
}

static const struct state_ops ops = {
	.mark_all = mark_all,
	.save_daemon = save_daemon,
	.load = load,
	.loaded = loaded,
};

/* A daemon that takes over whatever the slots hold. */
static struct world *take_over(void)
{
	struct world *w = calloc(1, sizeof(*w));
	struct fdstore_passed none = { 0 };

	cr_assert(w);
	w->d.fdstore = true;
	cr_assert_eq(state_init(&w->d, &none, &ops), 0);
	return w;
}

/* A new thing of @w, marked. */
static size_t add(struct world *w, enum state_rec type, uint64_t id, uint64_t a)
{
	size_t i = w->n++;

	w->t[i] = (struct thing){ .type = type, .id = id, .a = a };
	mark(w, i);
	return i;
}

static const struct thing *find(const struct world *w, uint64_t id)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].id == id)
			return &w->t[i];
	return NULL;
}

static off_t slot_size(int i)
{
	struct stat sb;

	cr_assert_eq(fstat(slots[i], &sb), 0);
	return sb.st_size;
}

/* Both slots, byte for byte. */
static char *slot_bytes(int i, off_t *size)
{
	char *b;

	*size = slot_size(i);
	b = malloc((size_t)*size + 1);
	cr_assert(b);
	cr_assert_eq(pread(slots[i], b, (size_t)*size, 0), *size);
	return b;
}

TestSuite(state);

Test(state, records_come_back_field_by_field)
{
	struct world *w1 = take_over(), *w2;
	size_t i;

	cr_assert_eq(w1->loaded_calls, 0, "nothing saved yet: a fresh start");
	i = add(w1, STATE_REC_OBJECT, 1, UINT64_MAX);
	w1->t[i].name = "/some/file";
	w1->t[i].n_bytes = 3;
	memcpy(w1->t[i].bytes, "abc", 3);
	state_flush(&w1->d);
	w2 = take_over();
	cr_assert_eq(w2->loaded_calls, 1);
	cr_assert_eq(w2->n, 1);
	cr_assert_eq(w2->t[0].type, STATE_REC_OBJECT);
	cr_assert_eq(w2->t[0].a, UINT64_MAX);
	cr_assert_str_eq(w2->t[0].name, "/some/file");
	cr_assert_eq(w2->t[0].n_bytes, 3);
	cr_assert_eq(memcmp(w2->t[0].bytes, "abc", 3), 0);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, a_kind_of_record_from_a_newer_daemon_is_handed_on)
{
	struct world *w1 = take_over(), *w2;

	add(w1, (enum state_rec)42, 1, 5);
	add(w1, STATE_REC_SPACE, 2, 6);
	state_flush(&w1->d);
	w2 = take_over();
	cr_assert_eq(w2->unknown_records, 1);
	cr_assert_eq(w2->n, 1);
	cr_assert_eq(w2->t[0].a, 6);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, a_flush_appends_only_what_was_marked)
{
	struct world *w1 = take_over(), *w2;
	off_t before[2], grew;

	for (uint64_t id = 1; id <= 100; id++)
		add(w1, STATE_REC_REGION, id, id);
	state_flush(&w1->d);
	before[0] = slot_size(0);
	before[1] = slot_size(1);
	cr_assert_gt(before[1], 100 * 40, "the hundred records are in the current slot");
	w1->t[41].a = 4242;
	mark(w1, 41);
	state_flush(&w1->d);
	grew = slot_size(1) - before[1];
	cr_assert_gt(grew, 0);
	cr_assert_lt(grew, 120, "one record of a hundred is appended, not %lld bytes",
		     (long long)grew);
	cr_assert_eq(slot_size(0), before[0], "the other slot is left alone");
	w2 = take_over();
	cr_assert_eq(w2->n, 100);
	cr_assert_eq(find(w2, 42)->a, 4242);
	cr_assert_eq(find(w2, 43)->a, 43);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, a_flush_with_nothing_marked_writes_nothing)
{
	struct world *w1 = take_over(), *w2;
	char *b0, *b1, *a0, *a1;
	off_t s0, s1, t0, t1;

	add(w1, STATE_REC_OBJECT, 1, 8);
	state_flush(&w1->d);
	b0 = slot_bytes(0, &s0);
	b1 = slot_bytes(1, &s1);
	w1->t[0].a = 9; /* not marked: not saved */
	state_flush(&w1->d);
	state_flush(&w1->d);
	a0 = slot_bytes(0, &t0);
	a1 = slot_bytes(1, &t1);
	cr_assert_eq(t0, s0);
	cr_assert_eq(t1, s1);
	cr_assert_eq(memcmp(a0, b0, (size_t)s0), 0);
	cr_assert_eq(memcmp(a1, b1, (size_t)s1), 0);
	w2 = take_over();
	cr_assert_eq(find(w2, 1)->a, 8);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, a_forgotten_record_does_not_come_back)
{
	struct world *w1 = take_over(), *w2;

	add(w1, STATE_REC_SESSION, 1, 10);
	add(w1, STATE_REC_SESSION, 2, 20);
	add(w1, STATE_REC_SESSION, 3, 30);
	state_flush(&w1->d);
	state_forget(w1->d.state, &w1->t[1].saved);
	state_flush(&w1->d);
	/* Made and gone between two flushes: never written. */
	add(w1, STATE_REC_SESSION, 4, 40);
	state_forget(w1->d.state, &w1->t[3].saved);
	state_flush(&w1->d);
	w2 = take_over();
	cr_assert_eq(w2->n, 2);
	cr_assert(find(w2, 1) && find(w2, 3));
	cr_assert_null(find(w2, 2));
	cr_assert_null(find(w2, 4));
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, the_last_put_of_a_record_wins)
{
	struct world *w1 = take_over(), *w2;

	add(w1, STATE_REC_VIEW, 1, 0);
	add(w1, STATE_REC_VIEW, 2, 0);
	for (uint64_t a = 20; a < 25; a++) {
		w1->t[0].a = a;
		mark(w1, 0);
		state_flush(&w1->d);
	}
	w2 = take_over();
	cr_assert_eq(w2->n, 2, "one record per key, however often it was put");
	cr_assert_eq(find(w2, 1)->a, 24);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, records_load_kind_by_kind_in_the_order_they_were_made)
{
	static const enum state_rec made[] = { STATE_REC_OPEN,	STATE_REC_SESSION, STATE_REC_REGION,
					       STATE_REC_SPACE, STATE_REC_OBJECT,  STATE_REC_VIEW,
					       STATE_REC_SPACE };
	struct world *w1 = take_over(), *w2;

	w1->daemon_counter = 77;
	state_mark_daemon(&w1->d);
	for (size_t i = 0; i < ARRAY_SIZE(made); i++)
		add(w1, made[i], i + 1, 0);
	state_flush(&w1->d);
	/* The first space changes last: it is still loaded before the second. */
	mark(w1, 3);
	state_flush(&w1->d);
	w2 = take_over();
	cr_assert_eq(w2->daemon_counter, 77);
	cr_assert_eq(w2->n, ARRAY_SIZE(made));
	for (size_t i = 1; i < w2->n; i++)
		cr_assert_leq(w2->t[i - 1].type, w2->t[i].type, "record %zu of kind %d before %d",
			      i, w2->t[i - 1].type, w2->t[i].type);
	cr_assert_eq(w2->t[0].id, 4, "the first space made");
	cr_assert_eq(w2->t[1].id, 7);
	state_free(&w2->d);
	state_free(&w1->d);
}

/* Things 1 and 2 saved, then thing 1 put twice more: 11, then 12 in the last entry. */
static struct world *three_puts(off_t *last)
{
	struct world *w = take_over();

	add(w, STATE_REC_OBJECT, 1, 10);
	add(w, STATE_REC_OBJECT, 2, 20);
	state_flush(&w->d);
	w->t[0].a = 11;
	mark(w, 0);
	state_flush(&w->d);
	*last = slot_size(1);
	w->t[0].a = 12;
	mark(w, 0);
	state_flush(&w->d);
	return w;
}

Test(state, a_torn_tail_is_ignored)
{
	struct world *w1, *w2;
	off_t last;

	w1 = three_puts(&last);
	/* A crash in the middle of the last append: half of it made it. */
	cr_assert_eq(ftruncate(slots[1], last + (slot_size(1) - last) / 2), 0);
	w2 = take_over();
	cr_assert_eq(w2->n, 2);
	cr_assert_eq(find(w2, 1)->a, 11, "the entry before the torn one holds");
	cr_assert_eq(find(w2, 2)->a, 20);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, an_entry_whose_bytes_are_wrong_ends_the_journal)
{
	struct world *w1, *w2;
	uint64_t garbage = 0x5a5a5a5a5a5a5a5aULL;
	off_t last;

	w1 = three_puts(&last);
	cr_assert_eq(pwrite(slots[1], &garbage, sizeof(garbage), last + 8),
		     (ssize_t)sizeof(garbage));
	w2 = take_over();
	cr_assert_eq(w2->n, 2);
	cr_assert_eq(find(w2, 1)->a, 11);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, a_long_journal_is_compacted_into_the_other_slot)
{
	struct world *w1 = take_over(), *w2;
	off_t biggest = 0, other;
	unsigned flushes = 0;

	for (uint64_t id = 1; id <= 50; id++)
		add(w1, STATE_REC_REGION, id, id);
	state_flush(&w1->d);
	cr_assert_eq(slot_size(0), 0, "a fresh start writes its snapshot into slot 1");
	while (slot_size(0) == 0 && flushes < 100000) {
		w1->t[flushes % 50].a++;
		mark(w1, flushes % 50);
		state_flush(&w1->d);
		flushes++;
		biggest = MAX(biggest, slot_size(1));
	}
	cr_assert_gt(flushes, 100, "not every flush writes a snapshot (%u did)", flushes);
	cr_assert_lt(flushes, 5000, "the journal is compacted");
	cr_assert_lt(slot_size(0), biggest / 4, "the snapshot holds the live records only");
	/* Appends go to the new slot now; the old one stays as it was. */
	other = slot_size(1);
	w1->t[7].a = 4242;
	mark(w1, 7);
	state_flush(&w1->d);
	cr_assert_eq(slot_size(1), other);
	/* However long it runs, the slots stay bounded. */
	for (unsigned i = 0; i < 20000; i++) {
		mark(w1, i % 50);
		state_flush(&w1->d);
		biggest = MAX(biggest, MAX(slot_size(0), slot_size(1)));
	}
	cr_assert_lt(biggest, 128 << 10);
	w2 = take_over();
	cr_assert_eq(w2->n, 50);
	for (size_t i = 0; i < 50; i++)
		cr_assert_eq(find(w2, i + 1)->a, w1->t[i].a, "record %zu", i + 1);
	state_free(&w2->d);
	state_free(&w1->d);
}

Test(state, a_torn_snapshot_leaves_the_slot_before)
{
	struct world *w1 = take_over(), *w2;
	uint64_t garbage = 0x5a5a5a5a5a5a5a5aULL;

	for (uint64_t id = 1; id <= 50; id++)
		add(w1, STATE_REC_REGION, id, id);
	state_flush(&w1->d);
	w1->t[0].a = 100;
	mark(w1, 0);
	state_flush(&w1->d);
	while (slot_size(0) == 0) {
		w1->t[1].a++;
		mark(w1, 1);
		state_flush(&w1->d);
	}
	/* A snapshot whose bytes went wrong in its middle. */
	cr_assert_eq(pwrite(slots[0], &garbage, sizeof(garbage), slot_size(0) / 2),
		     (ssize_t)sizeof(garbage));
	w2 = take_over();
	cr_assert_eq(w2->n, 50);
	cr_assert_eq(find(w2, 1)->a, 100, "the journal in slot 1 is taken");
	state_free(&w2->d);
	state_free(&w1->d);
}
