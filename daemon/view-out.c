// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Copies of nonlinear mappings leave memory under the budget. The copies in views count in it
 * (cache.copies); once per loop iteration, before the cache's own sweep, they give their share of
 * what the budget wants to go, as private pages give theirs: as many of the pages over it as
 * copies are of the pages in memory. A hand per mapping goes round its pages; each copy it meets
 * leaves (view_copies_out()): a read-only one is punched, as a remap punches it, and the next
 * touch copies the page again; a writable one goes home first, where its data is then a dirty
 * page of the cache, which writes it back before it leaves too. Copies in locked mappings
 * (MAP_LOCKED, mlock(2)) stay. The daemon sees the faults on copies only (view_touch()): a copy
 * faulted on since the hand last met it stays that once. Without that second chance, the copy a
 * fault just made could leave in the balance of the same turn, before the faulting thread ran,
 * and its thread fault on it again for ever, above a budget nothing else meets.
 */
#include <sys/mman.h>

#include "common/macro.h"
#include "context.h"
#include "evict.h"
#include "locked.h"
#include "region.h"
#include "space.h"
#include "view-out.h"
#include "view.h"

/* Whether the page at addr of region r of space s is locked in memory. */
static bool locked(struct space *s, const struct region *r, uint64_t addr)
{
	if (r->flags & MAP_LOCKED)
		return true;
	space_locked_refresh(s);
	return locked_overlaps(&s->locked, addr, addr + UPAGER_PAGE_SIZE);
}

/*
 * Send out up to @want copies of the view pages region @r maps, from its hand on, looking at
 * *scan copies at most; those touched since the hand last met them stay this once (*spared).
 * Return: how many left.
 */
static uint64_t region_out(struct space *s, struct region *r, uint64_t want, uint64_t *scan,
			   uint64_t *spared)
{
	struct view *v = r->view;
	uint64_t n = r->length >> UPAGER_PAGE_SHIFT, sent = 0, k;

	if (n == 0 || (r->flags & MAP_LOCKED))
		return 0;
	for (k = 0; k < n && sent<want && * scan> 0; k++) {
		uint64_t j = (r->view_hand + k) % n, i = r->view_index + j;

		if (i >= v->pages || v->copy[i] == COPY_NONE)
			continue;
		(*scan)--;
		if (locked(s, r, r->start + (j << UPAGER_PAGE_SHIFT)))
			continue;
		if (view_take_touch(v, i))
			(*spared)++;
		else
			sent += view_copies_out(v, i, 1);
	}
	r->view_hand = (r->view_hand + k) % n;
	return sent;
}

/**
 * views_balance() - send copies of nonlinear mappings out, their share of what the budget wants
 * to go
 * @d: the daemon; called where no fault is half done, before the cache's own balance
 * @spared: set to how many copies the hand passed over for a touch: they may leave next turn
 *
 * Return: how many left.
 */
uint64_t views_balance(struct daemon *d, uint64_t *spared)
{
	struct cache *c = &d->cache;
	uint64_t use = cache_use(c), low = cache_low_mark(c), want, scan, sent = 0;
	struct space *s;

	*spared = 0;
	if (!c->copies || !cache_must_page_out(c))
		return 0;
	want = (use - low) * c->copies / use + 1;
	scan = 2 * c->copies + 64;
	list_for_each_entry (s, &d->spaces, link) {
		struct region *r;

		if (s->dead)
			continue;
		region_for_each(r, &s->regions)
		{
			if (!r->view)
				continue;
			uint64_t n = region_out(s, r, want - sent, &scan, spared);

			sent += n;
			if (sent >= want || !scan)
				return sent;
		}
	}
	return sent;
}
