// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The one place that decides how a page goes into a client's mapping, for faults, populates and
 * nonlinear mappings alike: writable, or write-protected so that the next write reaches the
 * daemon. The ioctls that then map the page and end the fault are uffdio.c's.
 */
#include "common/list.h"
#include "common/macro.h"
#include "object.h"
#include "region.h"
#include "reserve.h"
#include "resolve.h"
#include "space.h"
#include "view.h"

/**
 * resolve_protect() - whether a page goes into a client's mapping write-protected
 * @facts: RESOLVE_* about the page and the mapping
 *
 * Return: true for a mapping without PROT_WRITE now, for a page with copies elsewhere, and for a
 * page of a mapping whose writes are tracked unless it goes in for a write.
 */
bool resolve_protect(unsigned facts)
{
	if (facts & (RESOLVE_READ_ONLY | RESOLVE_COPIES))
		return true;
	return (facts & RESOLVE_TRACKED) && !(facts & RESOLVE_WRITE);
}

/**
 * resolve_linear() - how ready object pages from @p on go into linear region @r of space @s
 * @s: the space
 * @r: the region, object-backed and linear
 * @p: the first object page
 * @why: they go in for a read, a write fault on page @p, or a writer's window
 * @n: in, the ready pages from @p the caller would map (at least 1); out, how many go in at once
 *	under the answer: 1 where the object has nonlinear mappings, whose copies each page has or
 *	has not; for a write, only those whose blocks the file has (reserve_backed())
 *
 * Pages that go in writable in a mapping that may write are marked PAGE_WRITABLE: write-back
 * candidates, as a shared mapping's pages are with the kernel. In a private mapping
 * (region_keeps_copies()) they go in protected but for a write, whose caller counts them as the
 * process's copies.
 *
 * Return: true to map them write-protected.
 */
bool resolve_linear(const struct space *s, struct region *r, uint64_t p, enum resolve_for why,
		    uint64_t *n)
{
	bool write = why != RESOLVE_FOR_READ;
	struct object *o = r->obj;
	bool tracked = region_tracks_writes(s, r) || region_keeps_copies(s, r);
	unsigned facts = (r->wp ? RESOLVE_READ_ONLY : 0) | (tracked ? RESOLVE_TRACKED : 0) |
			 (write ? RESOLVE_WRITE : 0);
	bool wp;

	if (!list_empty(&o->views)) {
		*n = 1;
		if (view_has_copies(o, p))
			facts |= RESOLVE_COPIES;
	}
	/* Shared anonymous pages that kept their slots when read back (fill.c) go in protected
	 * but for a write, a run of them at a time. */
	if (o->kind == OBJECT_ANON && o->slot) {
		bool kept = object_slot(o, p) >= 0;
		uint64_t k = 1;

		while (k < *n && (object_slot(o, p + k) >= 0) == kept)
			k++;
		*n = k;
		if (kept && region_may_protect(s, r))
			facts |= RESOLVE_TRACKED;
	}
	wp = resolve_protect(facts);
	/* A page that goes in writable may be written: a slot it kept is stale from now on. */
	for (uint64_t i = 0; !wp && o->kind == OBJECT_ANON && o->slot && i < *n; i++)
		if (object_slot(o, p + i) >= 0)
			object_slot_set(o, p + i, -1);
	/* Pages of a hole whose blocks are not reserved go in protected: their first write
	 * reserves them (reserve.c). */
	if (write && r->may_write && !wp)
		*n = reserve_backed(o, p, *n);
	if (r->may_write && !wp)
		for (uint64_t i = 0; i < *n; i++)
			object_page_writable(o, p + i, why == RESOLVE_FOR_WRITE && i == 0);
	return wp;
}

/**
 * resolve_view() - whether the copy in page @i of view @v goes into a client write-protected:
 * every copy does but the one writable copy
 */
bool resolve_view(const struct view *v, uint64_t i)
{
	return resolve_protect(v->copy[i] == COPY_RW ? 0 : RESOLVE_COPIES);
}
