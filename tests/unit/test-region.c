// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The region table of a space, given hold and release functions that only count references
 * (fake_ref(), fake_unref()), so every test can check that the references held match the regions in the table: each
 * object starts with one reference of the test's own and must be back to exactly that one after
 * the table is torn down with a dropping function that releases what it is handed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "daemon/object.h"
#include "daemon/region.h"
#include "daemon/view.h"

#define P UPAGER_PAGE_SIZE

static struct object objs[3];
#define A (&objs[0])
#define B (&objs[1])
#define C (&objs[2])

struct want {
	uint64_t start, length, offset;
	struct object *obj;
};

static void expect_regions(const struct region *v, size_t n, const struct want *w, size_t wn,
			   const char *what);

static struct object *fake_ref(struct object *o)
{
	cr_assert_not_null(o);
	o->refs++;
	return o;
}

static struct object *fake_unref(struct object *o)
{
	if (!o)
		return NULL;
	cr_assert_gt(o->refs, 0, "object %" PRIu64 " released more often than referenced", o->id);
	o->refs--;
	return NULL;
}

/* The ops space.c gives its tables, with the counting fakes; these regions have no views. */
static void hold(struct region *r)
{
	cr_assert_null(r->view, "no region of these tests has a view");
	if (r->obj)
		fake_ref(r->obj);
}

static void release(struct region *r)
{
	cr_assert_null(r->view, "no region of these tests has a view");
	fake_unref(r->obj);
}

static const struct region_ops ops = { .hold = hold, .release = release };

/* The i-th region of the table in address order. */
static struct region *nth(struct region_table *t, size_t i)
{
	struct region *r;

	region_for_each(r, t)
	{
		if (i-- == 0)
			return r;
	}
	cr_assert_fail("the table has no region %zu", i);
	return NULL;
}

/* The table's regions in address order, copied into v. */
static size_t table_array(const struct region_table *t, struct region *v, size_t cap)
{
	const struct region *r;
	size_t n = 0;

	region_for_each(r, t)
	{
		cr_assert_lt(n, cap);
		v[n++] = *r;
	}
	cr_assert_eq(n, t->n, "%zu regions in order, the table counts %zu", n, t->n);
	return n;
}

static void expect_table(const struct region_table *t, const struct want *w, size_t wn)
{
	struct region v[128];
	uint64_t bytes = 0;
	size_t n = table_array(t, v, ARRAY_SIZE(v));

	for (size_t i = 0; i < n; i++)
		bytes += v[i].length;
	cr_assert_eq(t->bytes, bytes,
		     "the table counts %" PRIu64 " bytes, its regions hold %" PRIu64, t->bytes,
		     bytes);
	expect_regions(v, n, w, wn, "region");
}

static void setup(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++)
		objs[i] = (struct object){ .id = i + 1, .refs = 1 };
}

TestSuite(region, .init = setup);

/* What the drop function was handed, in order; it releases the reference as space.c does. */
struct drops {
	size_t n;
	struct region v[128];
};

static void drop_record(struct region *piece, void *userdata)
{
	struct drops *d = userdata;

	cr_assert_lt(d->n, ARRAY_SIZE(d->v));
	d->v[d->n++] = *piece;
	if (piece->obj)
		fake_unref(piece->obj);
}

/* Drop without recording, for tables too big for struct drops. */
static void drop_record_quiet(struct region *piece, void *userdata)
{
	(void)userdata;
	fake_unref(piece->obj);
}

/* Insert a region whose object reference the table takes over, as space_add_region() does. */
static void add(struct region_table *t, uint64_t start, uint64_t length, uint64_t offset,
		struct object *o)
{
	struct region r = {
		.start = start,
		.length = length,
		.offset = offset,
		.prot = 3,
		.flags = 0x11,
		.obj = o,
		.shared = o != NULL,
		.may_write = o != NULL,
		.faults = start / P,
		.pages_populated = 1,
		.pages_read = 2,
		.bytes_read = 3,
		.latency_sum_ns = 4,
		.latency_max_ns = 5,
	};

	if (o)
		fake_ref(o);
	cr_assert_eq(region_insert(t, &r), 0, "insert [%#" PRIx64 ", +%#" PRIx64 ")", start,
		     length);
}

static void expect_region(const struct region *r, const struct want *w, const char *what, size_t i)
{
	cr_assert_eq(r->start, w->start, "%s %zu: start %#" PRIx64 ", expected %#" PRIx64, what, i,
		     r->start, w->start);
	cr_assert_eq(r->length, w->length, "%s %zu: length %#" PRIx64 ", expected %#" PRIx64, what,
		     i, r->length, w->length);
	cr_assert_eq(r->offset, w->offset, "%s %zu: offset %#" PRIx64 ", expected %#" PRIx64, what,
		     i, r->offset, w->offset);
	cr_assert_eq(r->obj, w->obj, "%s %zu: wrong object", what, i);
	cr_assert_eq(r->prot, 3, "%s %zu: prot lost", what, i);
	cr_assert_eq(r->flags, 0x11, "%s %zu: flags lost", what, i);
}

static void expect_regions(const struct region *v, size_t n, const struct want *w, size_t wn,
			   const char *what)
{
	cr_assert_eq(n, wn, "%zu %ss, expected %zu", n, what, wn);
	for (size_t i = 0; i < n; i++)
		expect_region(&v[i], &w[i], what, i);
}

#define WANT(...) \
	(const struct want[]){ __VA_ARGS__ }, ARRAY_SIZE(((const struct want[]){ __VA_ARGS__ }))
#define EXPECT_TABLE(t, ...) expect_table(t, WANT(__VA_ARGS__))
#define EXPECT_DROPS(d, ...) expect_regions((d)->v, (d)->n, WANT(__VA_ARGS__), "drop")

static void expect_refs(unsigned a, unsigned b, unsigned c)
{
	cr_assert_eq(A->refs, a, "A holds %u references, expected %u", A->refs, a);
	cr_assert_eq(B->refs, b, "B holds %u references, expected %u", B->refs, b);
	cr_assert_eq(C->refs, c, "C holds %u references, expected %u", C->refs, c);
}

/* Tear the table down; only the test's own reference may remain on each object. */
static void finish(struct region_table *t, size_t expect_dropped)
{
	struct drops d = { 0 };

	region_table_deinit(t, drop_record, &d);
	cr_assert_eq(d.n, expect_dropped, "deinit dropped %zu regions, expected %zu", d.n,
		     expect_dropped);
	cr_assert_eq(t->n, 0);
	cr_assert_null(t->tree.root);
	cr_assert_eq(t->bytes, 0);
	expect_refs(1, 1, 1);
}

Test(region, insert_keeps_order_and_fields)
{
	struct region_table t;

	region_table_init(&t, &ops);
	cr_assert_eq(t.n, 0);
	add(&t, 8 * P, 2 * P, 0, A);
	add(&t, 0, P, 5 * P, B);
	add(&t, 4 * P, 3 * P, 9 * P, NULL);
	EXPECT_TABLE(&t, { 0, P, 5 * P, B }, { 4 * P, 3 * P, 9 * P, NULL }, { 8 * P, 2 * P, 0, A });
	cr_assert(nth(&t, 0)->shared && nth(&t, 0)->may_write);
	cr_assert(!nth(&t, 1)->shared && !nth(&t, 1)->may_write);
	cr_assert_eq(nth(&t, 2)->faults, 8);
	expect_refs(2, 2, 1);
	finish(&t, 3);
}

Test(region, insert_grows_past_the_first_allocation)
{
	struct region_table t;

	region_table_init(&t, &ops);
	for (uint64_t i = 100; i-- > 0;)
		add(&t, 2 * i * P, P, i * P, &objs[i % 3]);
	cr_assert_eq(t.n, 100);
	for (size_t i = 0; i < t.n; i++) {
		cr_assert_eq(nth(&t, i)->start, 2 * i * P, "region %zu out of order", i);
		cr_assert_eq(nth(&t, i)->offset, i * P);
		cr_assert_eq(region_find(&t, 2 * i * P + 5), nth(&t, i));
		cr_assert_null(region_find(&t, (2 * i + 1) * P));
	}
	expect_refs(35, 34, 34);
	finish(&t, 100);
}

Test(region, insert_rejects_overlap_and_empty)
{
	static const struct {
		uint64_t start, length;
	} bad[] = {
		{ P, 2 * P }, /* over the head */
		{ 3 * P, 2 * P }, /* over the tail */
		{ 2 * P, 2 * P }, /* the same range */
		{ 0, 8 * P }, /* around it */
		{ 2 * P + 1, 1 }, /* inside it */
		{ 4 * P - 1, 2 * P } /* its last byte */
	};
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 2 * P, 2 * P, 0, A);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct region r = { .start = bad[i].start, .length = bad[i].length, .obj = B };

		cr_assert_eq(region_insert(&t, &r), -EEXIST, "case %zu", i);
	}
	{
		struct region r = { .start = 10 * P, .length = 0 };

		cr_assert_eq(region_insert(&t, &r), -EINVAL, "empty region");
	}
	EXPECT_TABLE(&t, { 2 * P, 2 * P, 0, A });

	/* Touching either edge is not an overlap. */
	add(&t, 0, 2 * P, 0, B);
	add(&t, 4 * P, 2 * P, 0, C);
	cr_assert_eq(t.n, 3);
	finish(&t, 3);
}

Test(region, find_hits_misses_and_boundaries)
{
	struct region_table t;

	region_table_init(&t, &ops);
	cr_assert_null(region_find(&t, 0), "empty table");
	add(&t, 2 * P, 2 * P, 0, A);
	add(&t, 4 * P, P, 0, B); /* adjacent to the first */
	add(&t, 8 * P, P, 0, C);

	cr_assert_eq(region_find(&t, 2 * P), nth(&t, 0), "first byte");
	cr_assert_eq(region_find(&t, 3 * P + 17), nth(&t, 0), "middle");
	cr_assert_eq(region_find(&t, 4 * P - 1), nth(&t, 0), "last byte");
	cr_assert_eq(region_find(&t, 4 * P), nth(&t, 1), "end of one is the start of the next");
	cr_assert_eq(region_find(&t, 5 * P - 1), nth(&t, 1));
	cr_assert_eq(region_find(&t, 8 * P), nth(&t, 2));
	cr_assert_null(region_find(&t, 0), "below the first");
	cr_assert_null(region_find(&t, 2 * P - 1), "just below the first");
	cr_assert_null(region_find(&t, 5 * P), "in the gap, at the end of the second");
	cr_assert_null(region_find(&t, 8 * P - 1), "end of the gap");
	cr_assert_null(region_find(&t, 9 * P), "end of the last");
	cr_assert_null(region_find(&t, UINT64_MAX), "top of the address space");
	finish(&t, 3);
}

Test(region, remove_whole_regions)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	add(&t, 0, 2 * P, 0, A);
	add(&t, 2 * P, 2 * P, 3 * P, B);
	add(&t, 6 * P, 2 * P, 7 * P, B);
	expect_refs(2, 3, 1);

	cr_assert_eq(region_remove_range(&t, 2 * P, 8 * P, drop_record, &d), 2);
	EXPECT_TABLE(&t, { 0, 2 * P, 0, A });
	EXPECT_DROPS(&d, { 2 * P, 2 * P, 3 * P, B }, { 6 * P, 2 * P, 7 * P, B });
	expect_refs(2, 1, 1);
	finish(&t, 1);
}

Test(region, remove_nothing)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	cr_assert_eq(region_remove_range(&t, 0, 8 * P, drop_record, &d), 0, "empty table");
	add(&t, 0, 2 * P, 0, A);
	add(&t, 6 * P, 2 * P, 0, B);
	cr_assert_eq(region_remove_range(&t, 2 * P, 6 * P, drop_record, &d), 0, "the gap");
	cr_assert_eq(region_remove_range(&t, P, P, drop_record, &d), 0, "an empty range");
	cr_assert_eq(region_remove_range(&t, 7 * P, P, drop_record, &d), 0, "end below start");
	cr_assert_eq(d.n, 0);
	EXPECT_TABLE(&t, { 0, 2 * P, 0, A }, { 6 * P, 2 * P, 0, B });
	expect_refs(2, 2, 1);
	finish(&t, 2);
}

Test(region, trim_keeps_the_head)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	add(&t, 0, 4 * P, 10 * P, A);
	cr_assert_eq(region_remove_range(&t, 3 * P, 5 * P, drop_record, &d), 1);
	EXPECT_TABLE(&t, { 0, 3 * P, 10 * P, A });
	EXPECT_DROPS(&d, { 3 * P, P, 13 * P, A });
	expect_refs(2, 1, 1);
	finish(&t, 1);
}

Test(region, trim_keeps_the_tail)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	add(&t, 2 * P, 4 * P, 10 * P, A);
	cr_assert_eq(region_remove_range(&t, P, 3 * P, drop_record, &d), 1);
	/* The tail's offset advances with its start. */
	EXPECT_TABLE(&t, { 3 * P, 3 * P, 11 * P, A });
	EXPECT_DROPS(&d, { 2 * P, P, 10 * P, A });
	expect_refs(2, 1, 1);
	cr_assert_eq(region_find(&t, 3 * P)->offset, 11 * P);
	cr_assert_null(region_find(&t, 3 * P - 1));
	finish(&t, 1);
}

Test(region, split_in_the_middle)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	add(&t, 0, 8 * P, 100 * P, A);
	add(&t, 8 * P, P, 0, B);
	cr_assert_eq(region_remove_range(&t, 2 * P, 5 * P, drop_record, &d), 1);
	EXPECT_TABLE(&t, { 0, 2 * P, 100 * P, A }, { 5 * P, 3 * P, 105 * P, A },
		     { 8 * P, P, 0, B });
	EXPECT_DROPS(&d, { 2 * P, 3 * P, 102 * P, A });
	/* Two pieces in the table now: one reference more than before, the dropped piece's
	 * reference taken and released. */
	expect_refs(3, 2, 1);
	finish(&t, 3);
}

Test(region, split_of_an_anonymous_region)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	add(&t, 0, 4 * P, 0, NULL);
	cr_assert_eq(region_remove_range(&t, P, 2 * P, drop_record, &d), 1);
	EXPECT_TABLE(&t, { 0, P, 0, NULL }, { 2 * P, 2 * P, 2 * P, NULL });
	EXPECT_DROPS(&d, { P, P, P, NULL });
	finish(&t, 2);
}

Test(region, remove_spanning_several)
{
	struct region_table t;
	struct drops d = { 0 };

	region_table_init(&t, &ops);
	add(&t, 0, 2 * P, 20 * P, A);
	add(&t, 3 * P, 2 * P, 0, B);
	add(&t, 5 * P, 2 * P, 2 * P, B);
	add(&t, 8 * P, 2 * P, 40 * P, C);
	add(&t, 10 * P, P, 0, A);
	expect_refs(3, 3, 2);

	cr_assert_eq(region_remove_range(&t, P, 9 * P, drop_record, &d), 4);
	EXPECT_TABLE(&t, { 0, P, 20 * P, A }, { 9 * P, P, 41 * P, C }, { 10 * P, P, 0, A });
	EXPECT_DROPS(&d, { P, P, 21 * P, A }, { 3 * P, 2 * P, 0, B }, { 5 * P, 2 * P, 2 * P, B },
		     { 8 * P, P, 40 * P, C });
	expect_refs(3, 1, 2);
	finish(&t, 3);
}

Test(region, move_a_whole_region)
{
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 2 * P, 2 * P, 7 * P, A);
	add(&t, 4 * P, P, 0, B);
	cr_assert_eq(region_move(&t, 2 * P, 20 * P, 2 * P), 0);
	EXPECT_TABLE(&t, { 4 * P, P, 0, B }, { 20 * P, 2 * P, 7 * P, A });
	cr_assert_null(region_find(&t, 2 * P));
	cr_assert_eq(region_find(&t, 21 * P)->obj, A);
	expect_refs(2, 2, 1);
	finish(&t, 2);
}

Test(region, move_the_middle_of_a_region)
{
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 0, 8 * P, 50 * P, A);
	cr_assert_eq(region_move(&t, 2 * P, 20 * P, 2 * P), 0);
	EXPECT_TABLE(&t, { 0, 2 * P, 50 * P, A }, { 4 * P, 4 * P, 54 * P, A },
		     { 20 * P, 2 * P, 52 * P, A });
	expect_refs(4, 1, 1);
	finish(&t, 3);
}

Test(region, move_the_head_or_tail_of_a_region)
{
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 0, 4 * P, 0, A);
	add(&t, 8 * P, 4 * P, 8 * P, B);
	cr_assert_eq(region_move(&t, 0, 20 * P, P), 0);
	cr_assert_eq(region_move(&t, 11 * P, 30 * P, P), 0);
	EXPECT_TABLE(&t, { P, 3 * P, P, A }, { 8 * P, 3 * P, 8 * P, B }, { 20 * P, P, 0, A },
		     { 30 * P, P, 11 * P, B });
	expect_refs(3, 3, 1);
	finish(&t, 4);
}

Test(region, move_across_a_gap_keeps_each_piece)
{
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 0, P, 3 * P, A);
	add(&t, 2 * P, 2 * P, 6 * P, B);
	cr_assert_eq(region_move(&t, 0, 10 * P, 3 * P), 0);
	EXPECT_TABLE(&t, { 3 * P, P, 7 * P, B }, { 10 * P, P, 3 * P, A }, { 12 * P, P, 6 * P, B });
	expect_refs(2, 3, 1);
	finish(&t, 3);
}

Test(region, move_onto_an_occupied_range)
{
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 0, 2 * P, 0, A);
	add(&t, 10 * P, 4 * P, 30 * P, B);
	add(&t, 20 * P, 2 * P, 0, C);

	/* Half of B was unmapped by the kernel under the destination: it goes, B's rest stays. */
	cr_assert_eq(region_move(&t, 0, 10 * P, 2 * P), 0);
	EXPECT_TABLE(&t, { 10 * P, 2 * P, 0, A }, { 12 * P, 2 * P, 32 * P, B },
		     { 20 * P, 2 * P, 0, C });
	expect_refs(2, 2, 2);

	/* All of C is under the destination: its reference goes with it. */
	cr_assert_eq(region_move(&t, 12 * P, 20 * P, 2 * P), 0);
	EXPECT_TABLE(&t, { 10 * P, 2 * P, 0, A }, { 20 * P, 2 * P, 32 * P, B });
	expect_refs(2, 2, 1);
	finish(&t, 2);
}

Test(region, move_of_nothing_is_enoent)
{
	struct region_table t;

	region_table_init(&t, &ops);
	cr_assert_eq(region_move(&t, 0, 10 * P, P), -ENOENT, "empty table");
	add(&t, 0, P, 0, A);
	add(&t, 4 * P, P, 0, B);
	cr_assert_eq(region_move(&t, P, 10 * P, 3 * P), -ENOENT, "the gap");
	cr_assert_eq(region_move(&t, 4 * P, 10 * P, 0), -ENOENT, "zero length");
	EXPECT_TABLE(&t, { 0, P, 0, A }, { 4 * P, P, 0, B });
	expect_refs(2, 2, 1);
	finish(&t, 2);
}

Test(region, copy_takes_references)
{
	struct region_table src, dst;

	region_table_init(&src, &ops);
	add(&src, 0, P, 0, A);
	add(&src, 2 * P, 2 * P, 4 * P, A);
	add(&src, 4 * P, P, 0, B);
	add(&src, 6 * P, P, 0, NULL);
	expect_refs(3, 2, 1);

	cr_assert_eq(region_table_copy(&dst, &src), 0);
	cr_assert_neq(dst.tree.root, src.tree.root, "the copy shares the tree");
	EXPECT_TABLE(&dst, { 0, P, 0, A }, { 2 * P, 2 * P, 4 * P, A }, { 4 * P, P, 0, B },
		     { 6 * P, P, 0, NULL });
	expect_refs(5, 3, 1);
	for (size_t i = 0; i < dst.n; i++) {
		const struct region *r = nth(&dst, i);

		cr_assert_eq(r->faults, 0, "a child starts without faults");
		cr_assert_eq(r->pages_populated + r->pages_read + r->bytes_read, 0);
		cr_assert_eq(r->latency_sum_ns + r->latency_max_ns, 0);
	}
	cr_assert_eq(nth(&src, 1)->faults, 2, "the parent keeps its counters");

	/* The copy lives on its own: tearing it down leaves the parent's regions and references. */
	{
		struct drops d = { 0 };

		region_table_deinit(&dst, drop_record, &d);
		cr_assert_eq(d.n, 4);
	}
	EXPECT_TABLE(&src, { 0, P, 0, A }, { 2 * P, 2 * P, 4 * P, A }, { 4 * P, P, 0, B },
		     { 6 * P, P, 0, NULL });
	expect_refs(3, 2, 1);
	finish(&src, 4);
}

Test(region, copy_of_an_empty_table)
{
	struct region_table src, dst;

	region_table_init(&src, &ops);
	memset(&dst, 0x5a, sizeof(dst));
	cr_assert_eq(region_table_copy(&dst, &src), 0);
	cr_assert_eq(dst.n, 0);
	cr_assert_null(dst.tree.root);
	finish(&dst, 0);
}

/* The height of the tree under n, checking the AVL balance and the order on the way. */
static int checked_height(const struct avl_node *n, uint64_t lo, uint64_t hi)
{
	const struct region *r;
	int hl, hr;

	if (!n)
		return 0;
	r = container_of(n, const struct region, node);
	cr_assert(r->start >= lo && region_end(r) <= hi, "region %#" PRIx64 " out of order",
		  r->start);
	hl = checked_height(n->left, lo, r->start);
	hr = checked_height(n->right, region_end(r), hi);
	cr_assert(hl - hr <= 1 && hr - hl <= 1, "unbalanced at %#" PRIx64, r->start);
	cr_assert_eq(n->height, 1 + MAX(hl, hr), "stale height at %#" PRIx64, r->start);
	return 1 + MAX(hl, hr);
}

Test(region, many_regions_in_any_order_stay_ordered_and_balanced)
{
	enum {
		N = 20000
	};
	static uint32_t order[N];
	struct region_table t;
	struct region *r;
	uint64_t seed = 12345;
	size_t n, i;
	int h;

	region_table_init(&t, &ops);
	for (i = 0; i < N; i++)
		order[i] = (uint32_t)i;
	for (i = N - 1; i > 0; i--) {
		size_t j;
		uint32_t x;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		j = (size_t)(seed >> 33) % (i + 1);
		x = order[i];
		order[i] = order[j];
		order[j] = x;
	}
	/* Region k is pages [3k, 3k+2): a free page between each two. */
	for (i = 0; i < N; i++)
		add(&t, 3 * (uint64_t)order[i] * P, 2 * P, 0, (order[i] & 1) ? A : NULL);
	cr_assert_eq(t.n, N);
	cr_assert_eq(t.bytes, 2 * (uint64_t)N * P);
	h = checked_height(t.tree.root, 0, UINT64_MAX);
	cr_assert_leq(h, 21, "height %d for %d regions", h, N); /* 1.44 log2(N) + 2 */
	for (i = 0; i < N; i += 97) {
		cr_assert_eq(region_find(&t, 3 * i * P + P + 5)->start, 3 * i * P);
		cr_assert_null(region_find(&t, 3 * i * P + 2 * P), "the free page after %zu", i);
		cr_assert_eq(region_lower(&t, 3 * i * P + 2 * P)->start, 3 * (i + 1) * P);
	}
	/* Take out every region whose number is a multiple of 3, each with a piece of its
	 * neighbours: the middle page of each range [3k-1, 3k+4) of pages. */
	for (i = 0; i < N; i += 3) {
		struct drops d = { 0 };

		region_remove_range(&t, (3 * i + 1) * P, (3 * i + 2) * P, drop_record, &d);
		cr_assert_eq(d.n, 1);
		region_remove_range(&t, 3 * i * P, (3 * i + 2) * P, drop_record, &d);
		cr_assert_eq(d.n, 2);
	}
	checked_height(t.tree.root, 0, UINT64_MAX);
	n = 0;
	region_for_each(r, &t)
	{
		cr_assert_neq((r->start / P / 3) % 3, 0, "region %" PRIu64 " is back",
			      r->start / P);
		n++;
	}
	cr_assert_eq(n, t.n);
	cr_assert_eq(n, N - (N + 2) / 3);
	cr_assert_eq(t.bytes, 2 * (uint64_t)n * P);
	region_table_deinit(&t, drop_record_quiet, NULL);
	expect_refs(1, 1, 1);
}

/* mremap(MREMAP_DONTUNMAP): the moved pieces are copied back to the old range, a reference each. */
Test(region, copy_back_after_a_move_that_left_the_old_range)
{
	struct region_table t;

	region_table_init(&t, &ops);
	add(&t, 0, 4 * P, 8 * P, A);
	add(&t, 6 * P, 2 * P, 0, B);
	cr_assert_eq(region_move(&t, 2 * P, 20 * P, 6 * P), 0);
	cr_assert_eq(region_copy(&t, 20 * P, 2 * P, 6 * P), 0);
	EXPECT_TABLE(&t, { 0, 2 * P, 8 * P, A }, { 2 * P, 2 * P, 10 * P, A },
		     { 6 * P, 2 * P, 0, B }, { 20 * P, 2 * P, 10 * P, A }, { 24 * P, 2 * P, 0, B });
	expect_refs(4, 3, 1);
	cr_assert_eq(region_copy(&t, 40 * P, 50 * P, P), -ENOENT);
	finish(&t, 5);
}
