// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The slot allocator of the swap store. The free slots are a set of extents (first page, length)
 * in two AVL trees: by page, to merge a freed run with its neighbours, and by length, to find a
 * run that fits. Every call is O(log n) in the number of free extents; none scans.
 *
 * Next fit: an allocation begins where the last one ended while the extent there has room, so
 * that pages paged out one after the other get adjacent slots and go out in one write. A new
 * cursor goes to the smallest extent of at least SLOTS_RUN pages, and only when none is left to
 * the smallest hole that fits: small holes fill last, runs stay long.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/macro.h"
#include "latency.h"
#include "slots.h"

struct extent {
	struct avl_node by_start, by_size;
	uint64_t start, pages;
};

static uint64_t extent_end(const struct extent *e)
{
	return e->start + e->pages;
}

static int cmp_start(const struct avl_node *a, const struct avl_node *b)
{
	const struct extent *x = container_of(a, struct extent, by_start);
	const struct extent *y = container_of(b, struct extent, by_start);

	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_size(const struct avl_node *a, const struct avl_node *b)
{
	const struct extent *x = container_of(a, struct extent, by_size);
	const struct extent *y = container_of(b, struct extent, by_size);

	if (x->pages != y->pages)
		return x->pages < y->pages ? -1 : 1;
	return cmp_start(&x->by_start, &y->by_start);
}

/* Extents never overlap, so their ends are in the order of their starts. */
static bool ends_at_or_after(const struct avl_node *n, const void *key)
{
	return extent_end(container_of(n, struct extent, by_start)) >= *(const uint64_t *)key;
}

static bool ends_after(const struct avl_node *n, const void *key)
{
	return extent_end(container_of(n, struct extent, by_start)) > *(const uint64_t *)key;
}

static bool holds_at_least(const struct avl_node *n, const void *key)
{
	return container_of(n, struct extent, by_size)->pages >= *(const uint64_t *)key;
}

static struct extent *find_start(const struct slots *s, avl_past_fn past, uint64_t key)
{
	struct avl_node *n = avl_first_where(&s->by_start, past, &key);

	return n ? container_of(n, struct extent, by_start) : NULL;
}

static struct extent *find_size(const struct slots *s, uint64_t pages)
{
	struct avl_node *n = avl_first_where(&s->by_size, holds_at_least, &pages);

	return n ? container_of(n, struct extent, by_size) : NULL;
}

static void extent_insert(struct slots *s, struct extent *e)
{
	avl_insert(&s->by_start, &e->by_start);
	avl_insert(&s->by_size, &e->by_size);
}

static void extent_remove(struct slots *s, struct extent *e)
{
	avl_remove(&s->by_start, &e->by_start);
	avl_remove(&s->by_size, &e->by_size);
}

/**
 * slots_init() - @pages free slots
 * @s: the allocator
 * @pages: its size in pages, more than 0
 *
 * Return: 0 or -ENOMEM.
 */
int slots_init(struct slots *s, uint64_t pages)
{
	struct extent *e = malloc(sizeof(*e));

	if (!e)
		return -ENOMEM;
	*s = (struct slots){ .by_start.cmp = cmp_start, .by_size.cmp = cmp_size, .pages = pages };
	*e = (struct extent){ .start = 0, .pages = pages };
	extent_insert(s, e);
	return 0;
}

static void free_tree(struct avl_node *n)
{
	while (n) {
		struct avl_node *right = n->right;

		free_tree(n->left);
		free(container_of(n, struct extent, by_start));
		n = right;
	}
}

/**
 * slots_deinit() - release the allocator's memory
 * @s: the allocator
 */
void slots_deinit(struct slots *s)
{
	free_tree(s->by_start.root);
	s->by_start.root = s->by_size.root = NULL;
}

/**
 * slots_alloc() - a run of @pages contiguous free slots
 * @s: the allocator
 * @pages: how many, more than 0
 * @slot: the first of them
 *
 * Return: 0; -ENOSPC if no free run is that long (smaller ones may be); -EINVAL for 0 pages.
 */
int slots_alloc(struct slots *s, uint64_t pages, uint64_t *slot)
{
	struct extent *e;

	if (pages == 0)
		return -EINVAL;
	if (slots_full(s))
		return -ENOSPC;
	e = find_start(s, ends_at_or_after, s->cursor);
	if (!e || e->start > s->cursor || e->pages < pages)
		e = find_size(s, MAX(pages, (uint64_t)SLOTS_RUN));
	if (!e)
		e = find_size(s, pages);
	if (!e)
		return -ENOSPC;
	*slot = e->start;
	avl_remove(&s->by_size, &e->by_size);
	e->start += pages;
	e->pages -= pages;
	if (e->pages > 0) {
		avl_insert(&s->by_size, &e->by_size); /* its place by page is unchanged */
	} else {
		avl_remove(&s->by_start, &e->by_start);
		free(e);
	}
	s->used += pages;
	s->cursor = *slot + pages;
	return 0;
}

/**
 * slots_free() - give back a run of slots, merged with the free ones around it
 * @s: the allocator
 * @slot: its first slot
 * @pages: its length
 *
 * Return: 0; -EINVAL if any of them is free already or past the end; -ENOMEM.
 */
int slots_free(struct slots *s, uint64_t slot, uint64_t pages)
{
	struct extent *left, *right, *e;

	if (!slots_allocated(s, slot, pages))
		return -EINVAL;
	left = find_start(s, ends_at_or_after, slot);
	right = left && extent_end(left) == slot ? find_start(s, ends_after, slot) : left;
	if (!left || extent_end(left) != slot)
		left = NULL;
	if (right && right->start != slot + pages)
		right = NULL;
	if (left && right) {
		extent_remove(s, right);
		avl_remove(&s->by_size, &left->by_size);
		left->pages += pages + right->pages;
		avl_insert(&s->by_size, &left->by_size);
		free(right);
	} else if (left || right) {
		e = left ? left : right;
		avl_remove(&s->by_size, &e->by_size);
		if (e == right)
			e->start =
				slot; /* still after the extent before it: its place by page holds */
		e->pages += pages;
		avl_insert(&s->by_size, &e->by_size);
	} else {
		e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		*e = (struct extent){ .start = slot, .pages = pages };
		extent_insert(s, e);
	}
	s->used -= pages;
	return 0;
}

/**
 * slots_free_run() - the run of free slots that holds @slot
 * @s: the allocator
 * @slot: a free slot
 * @start: its first slot
 * @pages: its length
 *
 * Return: false if @slot is not free.
 */
bool slots_free_run(const struct slots *s, uint64_t slot, uint64_t *start, uint64_t *pages)
{
	struct extent *e = find_start(s, ends_after, slot);

	if (!e || e->start > slot)
		return false;
	*start = e->start;
	*pages = e->pages;
	return true;
}

/**
 * slots_claim() - allocate the run [@slot, @slot+@pages) itself, free until now
 * @s: the allocator
 * @slot: its first slot
 * @pages: its length
 *
 * For a store taken over: the slots that the pages a previous daemon paged out are in. The
 * cursor stays where it was.
 *
 * Return: 0; -EINVAL if any of them is allocated already or past the end, or for 0 pages;
 * -ENOMEM.
 */
int slots_claim(struct slots *s, uint64_t slot, uint64_t pages)
{
	struct extent *e, *right;
	uint64_t end;

	if (pages == 0 || slot >= s->pages || pages > s->pages - slot)
		return -EINVAL;
	e = find_start(s, ends_after, slot);
	if (!e || e->start > slot || extent_end(e) < slot + pages)
		return -EINVAL;
	end = extent_end(e);
	if (end > slot + pages && e->start < slot) {
		right = malloc(sizeof(*right));
		if (!right)
			return -ENOMEM;
		*right = (struct extent){ .start = slot + pages, .pages = end - slot - pages };
		extent_insert(s, right);
	}
	avl_remove(&s->by_size, &e->by_size);
	if (e->start < slot) {
		e->pages = slot - e->start; /* what is left before the run */
	} else {
		e->start = slot + pages; /* what is left after it: still in its place by page */
		e->pages = end - e->start;
	}
	if (e->pages > 0) {
		avl_insert(&s->by_size, &e->by_size);
	} else {
		avl_remove(&s->by_start, &e->by_start);
		free(e);
	}
	s->used += pages;
	return 0;
}

/**
 * slots_allocated() - whether every slot of a run is allocated
 * @s: the allocator
 * @slot: its first slot
 * @pages: its length
 *
 * Return: false also for an empty run or one past the end.
 */
bool slots_allocated(const struct slots *s, uint64_t slot, uint64_t pages)
{
	const struct extent *e;

	if (pages == 0 || slot >= s->pages || pages > s->pages - slot)
		return false;
	e = find_start(s, ends_after, slot);
	return !e || e->start >= slot + pages;
}

/**
 * slots_trim_due() - after slots_free(@slot, @pages): the slots whose storage to give back now
 * @s: the allocator
 * @slot: the first freed
 * @pages: how many
 * @top: the end of the slots ever used
 * @start: the first to give back
 * @count: how many
 *
 * A punch or a trim costs as much for one page as for many, and the storage is taken again at the
 * next write there: the slots of pages read back one at a time keep theirs until the free run
 * around them is SLOTS_RUN long, or no slot is in use (then all of [0, @top) goes). A run of
 * SLOTS_TRIM_PAGES or more goes at once.
 *
 * Return: whether there is anything to give back.
 */
bool slots_trim_due(const struct slots *s, uint64_t slot, uint64_t pages, uint64_t top,
		    uint64_t *start, uint64_t *count)
{
	uint64_t run_start, run_pages;

	if (s->used == 0 && top) {
		*start = 0;
		*count = top;
		return true;
	}
	if (pages >= SLOTS_TRIM_PAGES) {
		*start = slot;
		*count = pages;
		return true;
	}
	if (slots_free_run(s, slot, &run_start, &run_pages) && run_pages >= SLOTS_RUN &&
	    run_pages - pages < SLOTS_RUN) {
		*start = run_start;
		*count = run_pages;
		return true;
	}
	return false;
}

/**
 * slots_out_of_room() - a write to the store ended with @error: if it is that the file system or
 * server under it had no room (ENOSPC, EDQUOT), no slot is allocated for SLOTS_FULL_NS, and the
 * store counts as full (slots_full()): the pages that would go stay in memory. Trying again at
 * once had the daemon spin, each write failing, and every fault that waited for room wait on.
 */
void slots_out_of_room(struct slots *s, int error)
{
	if (error == -ENOSPC || error == -EDQUOT)
		s->full_until_ns = now_ns() + SLOTS_FULL_NS;
}

/** slots_full() - whether the store had no room below it a moment ago (slots_out_of_room()) */
bool slots_full(const struct slots *s)
{
	return s->full_until_ns && now_ns() < s->full_until_ns;
}
