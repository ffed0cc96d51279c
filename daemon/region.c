// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The region table of one space: non-overlapping ranges in an AVL tree keyed by start address, so
 * that a lookup, an insert and a removal cost O(log n) whatever the number of mappings a client
 * holds. Splitting and trimming keep each piece's object offset right, and every piece that leaves
 * the table goes through the caller's drop function (write-back, object reference). What a region
 * refers to is held and released only through the table's ops: this file knows no object or view.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "region.h"
#include "state.h"

static void hold(const struct region_table *t, struct region *r)
{
	if (t->ops && t->ops->hold)
		t->ops->hold(r);
}

static void release(const struct region_table *t, struct region *r)
{
	if (t->ops && t->ops->release)
		t->ops->release(r);
}

static void changed(struct region_table *t, struct region *r)
{
	if (t->ops && t->ops->changed)
		t->ops->changed(t, r);
}

static int by_start(const struct avl_node *a, const struct avl_node *b)
{
	const struct region *x = container_of(a, struct region, node);
	const struct region *y = container_of(b, struct region, node);

	return x->start < y->start ? -1 : x->start > y->start;
}

static bool ends_above(const struct avl_node *n, const void *key)
{
	return region_end(container_of(n, const struct region, node)) > *(const uint64_t *)key;
}

/* Take r out of the table and free it; its references are the caller's to pass on. */
static void remove_node(struct region_table *t, struct region *r)
{
	if (t->ops && t->ops->gone)
		t->ops->gone(t, r);
	avl_remove(&t->tree, &r->node);
	t->n--;
	t->bytes -= r->length;
	free(r);
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

/** region_table_init() - an empty table whose copies are held and released through @ops */
void region_table_init(struct region_table *t, const struct region_ops *ops)
{
	*t = (struct region_table){ .tree.cmp = by_start, .ops = ops };
}

/**
 * region_table_deinit() - drop every region, in address order, and empty the table
 * @t: the table
 * @drop: called for each region, or NULL
 * @userdata: passed to @drop
 */
void region_table_deinit(struct region_table *t, region_drop_fn drop, void *userdata)
{
	struct region *r;

	while ((r = region_lower(t, 0))) {
		struct region piece = *r;

		remove_node(t, r);
		if (drop)
			drop(&piece, userdata);
	}
	region_table_init(t, t->ops);
}

/**
 * region_lower() - the first region whose end is above an address
 * Return: the region, or NULL if every region ends at or below @addr.
 */
struct region *region_lower(const struct region_table *t, uint64_t addr)
{
	struct avl_node *n = avl_first_where(&t->tree, ends_above, &addr);

	return n ? container_of(n, struct region, node) : NULL;
}

/** region_next() - the region after @r in address order, or NULL */
struct region *region_next(const struct region_table *t, const struct region *r)
{
	return region_lower(t, region_end(r));
}

/**
 * region_find() - the region holding an address
 * Return: the region, or NULL. Valid until it leaves the table.
 */
struct region *region_find(const struct region_table *t, uint64_t addr)
{
	struct region *r = region_lower(t, addr);

	return r && r->start <= addr ? r : NULL;
}

/* Link a heap copy of r into the table. */
static int link_copy(struct region_table *t, const struct region *r)
{
	struct region *n = malloc(sizeof(*n));

	if (!n)
		return -ENOMEM;
	*n = *r;
	n->saved = (struct state_handle){ 0 };
	avl_insert(&t->tree, &n->node);
	t->n++;
	t->bytes += n->length;
	changed(t, n);
	return 0;
}

/**
 * region_insert() - add a region that overlaps none in the table
 * @t: the table
 * @r: copied in; the table takes over the references it holds
 *
 * Return: 0, -EEXIST if it overlaps, -EINVAL if it is empty, -ENOMEM.
 */
int region_insert(struct region_table *t, const struct region *r)
{
	const struct region *next;

	if (r->length == 0)
		return -EINVAL;
	next = region_lower(t, r->start);
	if (next && next->start < region_end(r))
		return -EEXIST;
	return link_copy(t, r);
}

/**
 * region_remove_range() - take [start, end) out of the table
 * @t: the table
 * @start: first byte
 * @end: one past the last byte
 * @drop: called with each piece that leaves, a temporary copy whose references the callee must
 *        release; may be NULL
 * @userdata: for @drop
 *
 * Regions that straddle an edge are trimmed or split. Every piece handed to @drop carries
 * references of its own; a split also takes them for the new tail.
 *
 * Return: the number of pieces dropped, or -ENOMEM (the table is then unchanged).
 */
int region_remove_range(struct region_table *t, uint64_t start, uint64_t end, region_drop_fn drop,
			void *userdata)
{
	struct region *r = region_lower(t, start);
	int dropped = 0;

	if (end <= start)
		return 0;
	/* A region that holds the whole range on both sides splits into two. */
	if (r && r->start < start && region_end(r) > end) {
		struct region piece = *r, tail = *r;

		advance(&piece, start - r->start);
		piece.length = end - start;
		advance(&tail, end - r->start);
		if (link_copy(t, &tail) < 0)
			return -ENOMEM;
		t->bytes -= region_end(r) - start;
		r->length = start - r->start;
		changed(t, r);
		/* The tail and the piece handed out each need references of their own. */
		hold(t, &tail);
		hold(t, &piece);
		if (drop)
			drop(&piece, userdata);
		return 1;
	}

	while (r && r->start < end) {
		struct region *next = region_next(t, r);
		struct region piece = *r;

		if (r->start < start) {
			/* Keep the head, drop the rest of this region. */
			advance(&piece, start - r->start);
			t->bytes -= piece.length;
			r->length = start - r->start;
			changed(t, r);
			hold(t, &piece);
		} else if (region_end(r) > end) {
			/* Drop the head, keep the tail: its start stays between its neighbours. */
			piece.length = end - r->start;
			t->bytes -= piece.length;
			advance(r, end - r->start);
			changed(t, r);
			hold(t, &piece);
		} else {
			remove_node(t, r); /* its references pass to the piece */
		}
		if (drop)
			drop(&piece, userdata);
		dropped++;
		r = next;
	}
	return dropped;
}

/**
 * region_resize() - a region's range changes in place (a MAP_GROWSDOWN growth, a mapping the kernel
 * merged): it must stay clear of its neighbours, so the order of the table holds
 */
void region_resize(struct region_table *t, struct region *r, uint64_t start, uint64_t end)
{
	t->bytes -= r->length;
	r->start = start;
	r->length = end - start;
	t->bytes += r->length;
	changed(t, r);
}

static void drop_release(struct region *piece, void *userdata)
{
	release(userdata, piece);
}

/*
 * Copies of the pieces of [from, from+len), placed at @to, in *@out (the caller frees it); they
 * share the references of their originals. Return: how many, -ENOENT for none, -ENOMEM.
 */
static ssize_t pieces_at(const struct region_table *t, uint64_t from, uint64_t to, uint64_t len,
			 struct region **out)
{
	struct region *r, *pieces;
	size_t n = 0, cap = 0;

	region_for_each_in(r, t, from, from + len) cap++;
	if (cap == 0)
		return -ENOENT;
	pieces = calloc(cap, sizeof(*pieces));
	if (!pieces)
		return -ENOMEM;
	region_for_each_in(r, t, from, from + len)
	{
		uint64_t s = MAX(r->start, from), e = MIN(region_end(r), from + len);
		struct region *m = &pieces[n++];

		*m = *r;
		advance(m, s - r->start);
		m->start = s - from + to;
		m->length = e - s;
		m->guard = m->sentinel = 0; /* they did not move */
		m->base = m->start;
	}
	*out = pieces;
	return (ssize_t)n;
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
	struct region *moved;
	ssize_t n = pieces_at(t, from, to, len, &moved);
	int ret;

	if (n < 0)
		return (int)n;
	/* Without a drop function, the references of each removed piece pass to its copy here. */
	ret = region_remove_range(t, from, from + len, NULL, NULL);
	if (ret < 0) {
		free(moved);
		return ret;
	}
	region_remove_range(t, to, to + len, drop_release, t);
	for (ssize_t i = 0; i < n; i++)
		if (region_insert(t, &moved[i]) < 0)
			release(t, &moved[i]);
	free(moved);
	return 0;
}

/**
 * region_copy() - follow an mremap(MREMAP_DONTUNMAP) that left [to, to+len) mapped after moving
 * it to @from: the pieces at @from are copied to @to (where the table holds nothing), each with
 * references of its own; pieces of nonlinear mappings are not
 *
 * Return: 0, -ENOENT if nothing of [from, from+len) is in the table, -ENOMEM.
 */
int region_copy(struct region_table *t, uint64_t from, uint64_t to, uint64_t len)
{
	struct region *copies;
	ssize_t n = pieces_at(t, from, to, len, &copies);

	if (n < 0)
		return (int)n;
	for (ssize_t i = 0; i < n; i++) {
		if (copies[i].view)
			continue;
		hold(t, &copies[i]);
		if (region_insert(t, &copies[i]) < 0)
			release(t, &copies[i]);
	}
	free(copies);
	return 0;
}

/**
 * region_table_copy() - duplicate a table for a forked child, holding what each copy refers to
 * Return: 0 or -ENOMEM (@dst is then empty).
 */
int region_table_copy(struct region_table *dst, const struct region_table *src)
{
	struct region *r;

	region_table_init(dst, src->ops);
	region_for_each(r, src)
	{
		struct region c = *r;

		c.faults = c.pages_populated = c.pages_read = c.bytes_read = 0;
		c.latency_sum_ns = c.latency_max_ns = 0;
		if (link_copy(dst, &c) < 0) {
			region_table_deinit(dst, drop_release, dst);
			return -ENOMEM;
		}
		hold(dst, &c);
	}
	return 0;
}

/* Keys of a region's fields: a new field of struct region gets a new key and one line below. */
enum {
	RK_SPACE = 1,
	RK_START,
	RK_LENGTH,
	RK_OFFSET,
	RK_PROT,
	RK_FLAGS,
	RK_OBJECT,
	RK_VIEW,
	RK_VIEW_INDEX,
	RK_SHARED,
	RK_MAY_WRITE,
	RK_WP,
	RK_FAULTS,
	RK_PAGES_POPULATED,
	RK_PAGES_READ,
	RK_BYTES_READ,
	RK_LATENCY_SUM,
	RK_LATENCY_MAX,
	RK_RA_NEXT,
	RK_RA_WINDOW,
	RK_GUARD,
	RK_SENTINEL,
	RK_BASE,
	RK_MAX_LENGTH,
	RK_GROWN_PAGES,
};

/**
 * region_fields() - every field of struct region, saved or loaded through @io (state.h). The object and view are saved as their ids;
 * the figures are as they were at the last table change (faults do not save them).
 */
void region_fields(struct state_io *io, struct region *r, uint64_t *space_id, uint64_t *obj_id,
		   uint64_t *view_id)
{
	STATE_NUM(io, RK_SPACE, *space_id);
	STATE_NUM(io, RK_START, r->start);
	STATE_NUM(io, RK_LENGTH, r->length);
	STATE_NUM(io, RK_OFFSET, r->offset);
	STATE_NUM(io, RK_PROT, r->prot);
	STATE_NUM(io, RK_FLAGS, r->flags);
	STATE_NUM(io, RK_OBJECT, *obj_id);
	STATE_NUM(io, RK_VIEW, *view_id);
	STATE_NUM(io, RK_VIEW_INDEX, r->view_index);
	STATE_NUM(io, RK_SHARED, r->shared);
	STATE_NUM(io, RK_MAY_WRITE, r->may_write);
	STATE_NUM(io, RK_WP, r->wp);
	STATE_NUM(io, RK_FAULTS, r->faults);
	STATE_NUM(io, RK_PAGES_POPULATED, r->pages_populated);
	STATE_NUM(io, RK_PAGES_READ, r->pages_read);
	STATE_NUM(io, RK_BYTES_READ, r->bytes_read);
	STATE_NUM(io, RK_LATENCY_SUM, r->latency_sum_ns);
	STATE_NUM(io, RK_LATENCY_MAX, r->latency_max_ns);
	STATE_NUM(io, RK_RA_NEXT, r->ra_next);
	STATE_NUM(io, RK_RA_WINDOW, r->ra_window);
	STATE_NUM(io, RK_GUARD, r->guard);
	STATE_NUM(io, RK_SENTINEL, r->sentinel);
	STATE_NUM(io, RK_BASE, r->base);
	STATE_NUM(io, RK_MAX_LENGTH, r->max_length);
	STATE_NUM(io, RK_GROWN_PAGES, r->grown_pages);
}
