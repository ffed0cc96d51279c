// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The region table of one space: a sorted array of non-overlapping ranges. Lookups are a binary
 * search; inserts and removals move the tail, which is fine for the few hundred regions a process
 * holds. Splitting and trimming keep each piece's object offset right, and every piece that leaves
 * the table goes through the caller's drop function (write-back, object reference).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "object.h"
#include "region.h"
#include "view.h"

/* A copy of a region holds references to what the region holds. */
static void hold(struct region *r)
{
	if (r->obj)
		object_ref(r->obj);
	if (r->view)
		view_ref(r->view);
}

static void release(struct region *r)
{
	if (r->view)
		view_unref(r->view);
	if (r->obj)
		object_unref(r->obj);
}

/* Move a region's start forward by delta bytes (its head was cut off). */
static void advance(struct region *r, uint64_t delta)
{
	r->start += delta;
	r->length -= delta;
	r->offset += delta;
	r->view_index += delta >> UPAGER_PAGE_SHIFT;
	/* The guard page stays with the piece that keeps the low end. */
	if (delta)
		r->guard = r->sentinel = 0;
}

/** region_table_init() - an empty table */
void region_table_init(struct region_table *t)
{
	*t = (struct region_table){ 0 };
}

/**
 * region_table_deinit() - drop every region and free the table
 * @t: the table
 * @drop: called for each region, or NULL
 * @userdata: passed to @drop
 */
void region_table_deinit(struct region_table *t, region_drop_fn drop, void *userdata)
{
	for (size_t i = 0; i < t->n; i++)
		if (drop)
			drop(&t->v[i], userdata);
	free(t->v);
	*t = (struct region_table){ 0 };
}

/* Index of the first region whose end is above addr. */
static size_t lower_bound(const struct region_table *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (region_end(&t->v[mid]) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/**
 * region_find() - the region holding an address
 * Return: the region, or NULL. Valid until the table changes.
 */
struct region *region_find(struct region_table *t, uint64_t addr)
{
	size_t i = lower_bound(t, addr);

	if (i < t->n && t->v[i].start <= addr)
		return &t->v[i];
	return NULL;
}

static int reserve(struct region_table *t, size_t extra)
{
	struct region *v;
	size_t cap;

	if (t->n + extra <= t->cap)
		return 0;
	cap = MAX(t->cap * 2, t->n + extra);
	cap = MAX(cap, (size_t)8);
	v = realloc(t->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	t->cap = cap;
	return 0;
}

/**
 * region_insert() - add a region that overlaps none in the table
 * @t: the table
 * @r: copied in; the table takes over the object reference it holds
 *
 * Return: 0, -EEXIST if it overlaps, -ENOMEM.
 */
int region_insert(struct region_table *t, const struct region *r)
{
	size_t i = lower_bound(t, r->start);
	int ret;

	if (r->length == 0)
		return -EINVAL;
	if (i < t->n && t->v[i].start < region_end(r))
		return -EEXIST;
	ret = reserve(t, 1);
	if (ret < 0)
		return ret;
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->v[i] = *r;
	t->n++;
	return 0;
}

/**
 * region_remove_range() - take [start, end) out of the table
 * @t: the table
 * @start: first byte
 * @end: one past the last byte
 * @drop: called with each piece that leaves, a temporary copy whose object reference the callee
 *        must release; may be NULL
 * @userdata: for @drop
 *
 * Regions that straddle an edge are trimmed or split. Every piece handed to @drop carries a
 * reference of its own; a split also takes one for the new tail.
 *
 * Return: the number of pieces dropped, or -ENOMEM (the table is then unchanged).
 */
int region_remove_range(struct region_table *t, uint64_t start, uint64_t end, region_drop_fn drop,
			void *userdata)
{
	size_t i = lower_bound(t, start);
	int dropped = 0;

	if (end <= start)
		return 0;
	/* A region that holds the whole range on both sides splits into two. */
	if (i < t->n && t->v[i].start < start && region_end(&t->v[i]) > end) {
		struct region *r, piece, tail;

		if (reserve(t, 1) < 0)
			return -ENOMEM;
		r = &t->v[i];
		piece = *r;
		advance(&piece, start - r->start);
		piece.length = end - start;
		tail = *r;
		advance(&tail, end - r->start);
		r->length = start - r->start;
		memmove(&t->v[i + 2], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
		t->v[i + 1] = tail;
		t->n++;
		/* The tail and the piece handed out each need a reference of their own. */
		hold(&tail);
		hold(&piece);
		if (drop)
			drop(&piece, userdata);
		return 1;
	}

	while (i < t->n && t->v[i].start < end) {
		struct region *r = &t->v[i];
		struct region piece = *r;

		if (r->start < start) {
			/* Keep the head, drop the rest of this region. */
			advance(&piece, start - r->start);
			r->length = start - r->start;
			hold(&piece);
			i++;
		} else if (region_end(r) > end) {
			/* Drop the head, keep the tail. */
			piece.length = end - r->start;
			advance(r, end - r->start);
			hold(&piece);
			i++;
		} else {
			memmove(r, r + 1, (t->n - i - 1) * sizeof(*t->v));
			t->n--;
		}
		if (drop)
			drop(&piece, userdata);
		dropped++;
	}
	return dropped;
}

static void drop_unref(struct region *piece, void *userdata)
{
	(void)userdata;
	release(piece);
}

/**
 * region_move() - follow an mremap() that moved [from, from+len) to to
 * @t: the table
 * @from: old start
 * @to: new start
 * @len: bytes moved
 *
 * The pieces of the old range keep their objects and offsets at the new address. Whatever the
 * table held at the destination was unmapped by the kernel first (an UNMAP event).
 *
 * Return: 0, -ENOENT if nothing of the old range is in the table, -ENOMEM.
 */
int region_move(struct region_table *t, uint64_t from, uint64_t to, uint64_t len)
{
	struct region_table moved;
	int ret;

	region_table_init(&moved);
	ret = reserve(&moved, t->n + 1);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < t->n; i++) {
		struct region *r = &t->v[i];
		uint64_t s = MAX(r->start, from), e = MIN(region_end(r), from + len);

		if (s >= e)
			continue;
		moved.v[moved.n] = *r;
		advance(&moved.v[moved.n], s - r->start);
		moved.v[moved.n].start = s - from + to;
		moved.v[moved.n].length = e - s;
		moved.v[moved.n].guard = moved.v[moved.n].sentinel = 0; /* they did not move */
		moved.v[moved.n].base = moved.v[moved.n].start;
		moved.n++;
	}
	if (moved.n == 0) {
		free(moved.v);
		return -ENOENT;
	}
	/* Without a drop function, the reference of each removed piece passes to its copy here. */
	ret = region_remove_range(t, from, from + len, NULL, NULL);
	if (ret < 0) {
		free(moved.v);
		return ret;
	}
	region_remove_range(t, to, to + len, drop_unref, NULL);
	for (size_t i = 0; i < moved.n; i++)
		if (region_insert(t, &moved.v[i]) < 0)
			release(&moved.v[i]);
	free(moved.v);
	return 0;
}

/**
 * region_table_copy() - duplicate a table for a forked child, taking object references
 * Return: 0 or -ENOMEM.
 */
int region_table_copy(struct region_table *dst, const struct region_table *src)
{
	region_table_init(dst);
	if (src->n == 0)
		return 0;
	dst->v = malloc(src->n * sizeof(*src->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*src->v));
	dst->n = dst->cap = src->n;
	for (size_t i = 0; i < dst->n; i++) {
		struct region *r = &dst->v[i];

		r->faults = r->pages_populated = r->pages_read = r->bytes_read = 0;
		r->latency_sum_ns = r->latency_max_ns = 0;
		hold(r);
	}
	return 0;
}
