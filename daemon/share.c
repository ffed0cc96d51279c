// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A user's share of the budget (upagerd --uid-memory-max, half the budget by default): when pages
 * must leave memory, those of the users above their share go first, each up to what it is over,
 * whatever kind they are. A user's pages are the cached pages of the objects charged to it (its
 * files and shared anonymous memory, object.owner) and the private anonymous pages of its
 * processes that count in the budget. Copies of nonlinear mappings are not counted per user: they
 * leave in proportion to their number (view-out.c). Once per turn of the loop, only when the
 * budget wants pages to go, shares_over() makes the table that private_balance() and
 * cache_balance() take from in that order; an empty one while no user with pages is under its
 * share (no one to keep pages for: they go as if there were no shares). The same table names the
 * users (never root) whose pages hold all of the swap store they may (--max-swap, half the store
 * by default): a user's slots are those of the objects charged to it and of its processes'
 * private pages (a slot a forked child shares with its parent counts for each).
 */
#include <errno.h>
#include <stdlib.h>

#include "common/macro.h"

#include "context.h"
#include "evict.h"
#include "object.h"
#include "private.h"
#include "share.h"
#include "space.h"

static int by_uid(const void *a, const void *b)
{
	const struct user_over *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void sort_by_uid(struct user_over *e, size_t n)
{
	if (n)
		qsort(e, n, sizeof(*e), by_uid);
}

/*
 * The entries of @e (sorted) from @i on of one user: their pages in *@sum, of which those of objects
 * in *@objects (may be NULL); the next user's index.
 */
static size_t user_sum(const struct user_over *e, size_t n, size_t i, uint64_t *sum,
		       uint64_t *objects)
{
	uint64_t obj = 0;
	size_t j;

	*sum = 0;
	for (j = i; j < n && e[j].uid == e[i].uid; j++) {
		*sum += e[j].pages;
		obj += e[j].objects;
	}
	if (objects)
		*objects = obj;
	return j;
}

/**
 * users_over_sum() - from pages in memory by user, the users above @share and by how much
 * @pages: (user, pages, of which those of objects that may leave) entries, several per user
 *	allowed; sorted here
 * @n: how many
 * @share: a user's share, in pages
 * @out: the users over it, in order of uid, each with its objects' pages; its table is @pages
 *	itself (free that, not @out).
 *	Empty if no user with pages is under its share: there is no one to keep pages for. Its
 *	swap_full table is left as it is.
 *
 * Return: 0.
 */
int users_over_sum(struct user_over *pages, size_t n, uint64_t share, struct users_over *out)
{
	size_t over = 0, under = 0;
	uint64_t sum, objects;

	sort_by_uid(pages, n);
	for (size_t i = 0, j; i < n; i = j) {
		j = user_sum(pages, n, i, &sum, &objects);
		if (sum > share)
			pages[over++] = (struct user_over){ pages[i].uid, sum - share, objects };
		else if (sum)
			under++;
	}
	/* The swap's table is made apart (users_swap_full()): left as it is. */
	out->u = pages;
	out->n = under ? over : 0;
	out->waiting = false;
	return 0;
}

/**
 * users_swap_full() - the users whose pages hold all of the swap store they may
 * @held: (user, slots) entries, several per user allowed; sorted here
 * @n: how many
 * @most: the slots a user may hold
 * @out: the users (never root) that hold @most or more, in order; a table of its own (NULL if
 *	there is none), freed by users_over_free()
 *
 * Return: 0, or -ENOMEM.
 */
int users_swap_full(struct user_over *held, size_t n, uint64_t most, struct users_over *out)
{
	uint64_t sum;

	out->swap_full = NULL;
	out->n_swap_full = 0;
	sort_by_uid(held, n);
	for (size_t i = 0, j; i < n; i = j) {
		j = user_sum(held, n, i, &sum, NULL);
		if (held[i].uid == 0 || sum < most)
			continue;
		if (!out->swap_full) {
			out->swap_full = calloc(n, sizeof(*out->swap_full));
			if (!out->swap_full)
				return -ENOMEM;
		}
		out->swap_full[out->n_swap_full++] = held[i].uid;
	}
	return 0;
}

/* The users at their most of the swap store (upagerd --max-swap), into @out. */
static int swap_full(struct daemon *d, struct users_over *out)
{
	const struct cache *c = &d->cache;
	uint64_t most = d->config.limits.swap;
	struct user_over *held;
	struct object *o;
	struct space *s;
	size_t n = 0, cap = (size_t)c->n_objects + d->n_spaces + 1;
	int ret;

	if (!c->store || !most)
		return 0;
	most = most == LIMIT_SWAP_HALF ? c->swap_pages / 2 : most >> UPAGER_PAGE_SHIFT;
	held = calloc(cap, sizeof(*held));
	if (!held)
		return -ENOMEM;
	list_for_each_entry (o, &c->objects, link)
		if (o->slots_held && n < cap)
			held[n++] = (struct user_over){ o->owner, o->slots_held };
	list_for_each_entry (s, &d->spaces, link)
		if (!s->dead && s->priv.table.out && n < cap)
			held[n++] = (struct user_over){ s->uid, s->priv.table.out };
	ret = users_swap_full(held, n, MAX(most, 1), out);
	free(held);
	return ret;
}

/**
 * shares_over() - the users over their share, if the budget wants pages to go now
 * @d: the daemon
 * @out: the table (empty if there is none or no page need go); users_over_free() it
 *
 * Return: 0, or -ENOMEM (@out empty: the kinds then give in proportion alone).
 */
int shares_over(struct daemon *d, struct users_over *out)
{
	struct cache *c = &d->cache;
	struct user_over *pages;
	struct object *o;
	struct space *s;
	size_t n = 0;

	*out = (struct users_over){ 0 };
	if (!c->budget_pages || (!cache_must_page_out(c) && !c->deferred_pages))
		return 0;
	if (swap_full(d, out) < 0 || !c->uid_share_pages)
		return 0;
	pages = calloc((size_t)c->n_objects + d->n_spaces + 1, sizeof(*pages));
	if (!pages)
		return -ENOMEM;
	list_for_each_entry (o, &c->objects, link)
		if (o->cached && n < (size_t)c->n_objects + d->n_spaces)
			pages[n++] =
				(struct user_over){ o->owner, o->cached,
						    o->kind == OBJECT_FILE || c->store ? o->cached
										       : 0 };
	list_for_each_entry (s, &d->spaces, link)
		if (!s->dead && private_use(s) && n < (size_t)c->n_objects + d->n_spaces)
			pages[n++] = (struct user_over){ s->uid, private_use(s) };
	return users_over_sum(pages, n, c->uid_share_pages, out);
}

/** users_over_free() - let the table go */
void users_over_free(struct users_over *o)
{
	free(o->u);
	free(o->swap_full);
	*o = (struct users_over){ 0 };
}
