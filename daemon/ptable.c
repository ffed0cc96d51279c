// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The private page table of a space: chunks of 64 pages in an AVL tree by address, their bits and
 * slots, the references to slots that tables share after fork(), and the range operations that
 * munmap(), MADV_DONTNEED, mremap() and fork() make on it. See ptable.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ptable.h"
#include "store.h"

static int by_base(const struct avl_node *a, const struct avl_node *b)
{
	const struct ptable_chunk *x = container_of(a, struct ptable_chunk, node);
	const struct ptable_chunk *y = container_of(b, struct ptable_chunk, node);

	return x->base < y->base ? -1 : x->base > y->base;
}

static bool base_at_or_past(const struct avl_node *n, const void *key)
{
	return container_of(n, struct ptable_chunk, node)->base >= *(const uint64_t *)key;
}

/** ptable_from() - the first chunk of @t at or after @addr's chunk, or NULL */
struct ptable_chunk *ptable_from(const struct ptable *t, uint64_t addr)
{
	uint64_t base = ALIGN_DOWN(addr, PTABLE_CHUNK_BYTES);
	struct avl_node *n = avl_first_where(&t->chunks, base_at_or_past, &base);

	return n ? container_of(n, struct ptable_chunk, node) : NULL;
}

/** ptable_next() - the chunk of @t after @ch, or NULL */
struct ptable_chunk *ptable_next(const struct ptable *t, const struct ptable_chunk *ch)
{
	uint64_t next = ch->base + PTABLE_CHUNK_BYTES;

	return next ? ptable_from(t, next) : NULL; /* 0: @ch ends the address space */
}

/** ptable_find() - the chunk of @t that holds @addr, or NULL */
struct ptable_chunk *ptable_find(const struct ptable *t, uint64_t addr)
{
	struct ptable_chunk *ch = ptable_from(t, addr);

	return ch && ch->base == ALIGN_DOWN(addr, PTABLE_CHUNK_BYTES) ? ch : NULL;
}

/** ptable_get() - the chunk of @t that holds @addr, made empty if there was none; NULL: ENOMEM */
struct ptable_chunk *ptable_get(struct ptable *t, uint64_t addr)
{
	struct ptable_chunk *ch = ptable_find(t, addr);

	if (ch)
		return ch;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->base = ALIGN_DOWN(addr, PTABLE_CHUNK_BYTES);
	t->chunks.cmp = by_base;
	avl_insert(&t->chunks, &ch->node);
	t->n_chunks++;
	return ch;
}

/**
 * ptable_page_empty() - whether the page at @addr is in none of the states of @t: not in memory,
 * leaving, being read back or out (a touch finds nothing there: zeroes)
 */
bool ptable_page_empty(const struct ptable *t, uint64_t addr)
{
	const struct ptable_chunk *ch = ptable_find(t, addr);
	unsigned i = ch ? ptable_index(ch, addr) : 0;

	return !ch ||
	       !(ptable_bit(ch->present | ch->leaving | ch->reading, i) || ptable_slot(ch, i) >= 0);
}

/**
 * ptable_drop_if_empty() - free @ch if none of its pages is in memory, leaving, being read or
 * out (the used bits alone do not keep it)
 */
void ptable_drop_if_empty(struct ptable *t, struct ptable_chunk *ch)
{
	if (ch->present | ch->leaving | ch->reading)
		return;
	for (unsigned i = 0; ch->slot && i < PTABLE_CHUNK_PAGES; i++)
		if (ch->slot[i])
			return;
	if (t->gone)
		t->gone(t, ch);
	avl_remove(&t->chunks, &ch->node);
	t->n_chunks--;
	free(ch->slot);
	free(ch);
}

/*
 * Slots held by more than one table (after a fork): the references past the first, by slot, for
 * every table of the daemon (grown as needed). A slot let go of while it has one loses that
 * reference instead of going back to the store.
 */
static uint16_t *extra_refs;
static size_t n_extra_refs;

/*
 * A reference more to @slot. Return: 0, or -ENOMEM or -EMLINK (as many as can be counted), and
 * then the slot must not be shared: it would go back to the store while a table holds it.
 */
static int slot_ref(uint64_t slot)
{
	if (slot >= n_extra_refs) {
		size_t n = MAX(slot + 1, 2 * n_extra_refs);
		uint16_t *p = realloc(extra_refs, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		memset(p + n_extra_refs, 0, (n - n_extra_refs) * sizeof(*p));
		extra_refs = p;
		n_extra_refs = n;
	}
	if (extra_refs[slot] == UINT16_MAX)
		return -EMLINK;
	extra_refs[slot]++;
	return 0;
}

/*
 * Slots no table holds any more, kept from their store until the tables that let go of them are
 * saved (ptable_hold_puts(), ptable_release_puts()): a daemon killed before that takes over
 * tables that still name them, and must find there what it left, not a slot written over or
 * trimmed.
 */
struct held_put {
	struct store *st;
	uint64_t slot;
};
static struct held_put *held_puts;
static size_t n_held_puts, held_puts_cap;
static bool holding_puts;

/** ptable_hold_puts() - whether slots let go of wait for ptable_release_puts() (off at first) */
void ptable_hold_puts(bool on)
{
	holding_puts = on;
	if (!on)
		ptable_release_puts();
}

/** ptable_release_puts() - the slots let go of so far go back to their stores (the tables saved) */
void ptable_release_puts(void)
{
	size_t n = n_held_puts;

	n_held_puts = 0;
	for (size_t k = 0; k < n; k++)
		store_free(held_puts[k].st, held_puts[k].slot, 1);
	if (n_held_puts == 0 && held_puts_cap > 4096) {
		free(held_puts);
		held_puts = NULL;
		held_puts_cap = 0;
	}
}

/**
 * ptable_put() - a table lets go of its reference to @slot: the slot goes back to @st once no
 * table holds it (@st NULL: nowhere), when the tables are saved if puts are held
 */
void ptable_put(struct store *st, uint64_t slot)
{
	if (slot < n_extra_refs && extra_refs[slot]) {
		extra_refs[slot]--;
		return;
	}
	if (!st)
		return;
	if (holding_puts && n_held_puts == held_puts_cap) {
		size_t cap = held_puts_cap ? 2 * held_puts_cap : 256;
		struct held_put *p = realloc(held_puts, cap * sizeof(*p));

		if (p) {
			held_puts = p;
			held_puts_cap = cap;
		}
	}
	if (holding_puts && n_held_puts < held_puts_cap)
		held_puts[n_held_puts++] = (struct held_put){ st, slot };
	else
		store_free(st, slot, 1);
}

/** ptable_slot() - the slot of page @i of @ch, or -1 */
int64_t ptable_slot(const struct ptable_chunk *ch, unsigned i)
{
	return ch->slot && ch->slot[i] ? (int64_t)ch->slot[i] - 1 : -1;
}

static int slot_alloc_table(struct ptable_chunk *ch)
{
	if (!ch->slot)
		ch->slot = calloc(PTABLE_CHUNK_PAGES, sizeof(*ch->slot));
	return ch->slot ? 0 : -ENOMEM;
}

/* The slots of @ch changed: its owner saves them. */
static void changed(struct ptable *t, struct ptable_chunk *ch)
{
	if (t->changed)
		t->changed(t, ch);
}

static int slot_set(struct ptable *t, struct ptable_chunk *ch, unsigned i, uint64_t slot)
{
	if (slot >= UINT32_MAX)
		return -ENOSPC;
	if (slot_alloc_table(ch) < 0)
		return -ENOMEM;
	ch->slot[i] = (uint32_t)slot + 1;
	changed(t, ch);
	return 0;
}

/** ptable_clear_slot() - page @i of @ch lets go of its slot, if it has one (ptable_put()) */
void ptable_clear_slot(struct ptable *t, struct store *st, struct ptable_chunk *ch, unsigned i)
{
	int64_t slot = ptable_slot(ch, i);

	if (slot < 0)
		return;
	ch->slot[i] = 0;
	t->out--;
	changed(t, ch);
	ptable_put(st, (uint64_t)slot);
}

/**
 * ptable_set_slot() - page @i of @ch holds @slot now (a reference the caller had), instead of
 * the one it held
 *
 * Return: 0, or a negative errno (-ENOSPC, -ENOMEM), and then @slot is let go of.
 */
int ptable_set_slot(struct ptable *t, struct store *st, struct ptable_chunk *ch, unsigned i,
		    uint64_t slot)
{
	int ret;

	ptable_clear_slot(t, st, ch, i);
	ret = slot_set(t, ch, i, slot);
	if (ret < 0) {
		ptable_put(st, slot);
		return ret;
	}
	t->out++;
	return 0;
}

/**
 * ptable_reserve_slots() - make sure that the @n pages from @addr can take slots @slot to
 * @slot + @n - 1 (ptable_set_slot() cannot fail there): the slot tables of their chunks, made now
 *
 * Return: 0, -ENOSPC (a slot the table cannot hold) or -ENOMEM.
 */
int ptable_reserve_slots(struct ptable *t, uint64_t addr, uint64_t n, uint64_t slot)
{
	if (slot + n >= UINT32_MAX)
		return -ENOSPC;
	for (uint64_t a = ALIGN_DOWN(addr, PTABLE_CHUNK_BYTES); a < addr + (n << UPAGER_PAGE_SHIFT);
	     a += PTABLE_CHUNK_BYTES) {
		struct ptable_chunk *ch = ptable_find(t, a);

		if (ch && slot_alloc_table(ch) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Bit @i of @word, counted in @count. Return: whether it changed. */
static bool set_counted(uint64_t *word, uint64_t *count, unsigned i, bool on)
{
	if (ptable_bit(*word, i) == on)
		return false;
	*word ^= 1ULL << i;
	*count += on ? 1 : (uint64_t)-1;
	return true;
}

/** ptable_set_present() - page @i of @ch is in memory or not. Return: whether that changed. */
bool ptable_set_present(struct ptable *t, struct ptable_chunk *ch, unsigned i, bool on)
{
	return set_counted(&ch->present, &t->present, i, on);
}

/** ptable_set_leaving() - page @i of @ch is on its way out or not. Return: whether that changed. */
bool ptable_set_leaving(struct ptable *t, struct ptable_chunk *ch, unsigned i, bool on)
{
	return set_counted(&ch->leaving, &t->leaving, i, on);
}

/*
 * Call fn on every chunk that overlaps [start, end), with the first and last page index in it;
 * fn may free the chunk.
 */
static void for_each_chunk(struct ptable *t, uint64_t start, uint64_t end,
			   void (*fn)(struct ptable *t, struct ptable_chunk *ch, unsigned lo,
				      unsigned hi, void *data),
			   void *data)
{
	struct ptable_chunk *ch = ptable_from(t, start);

	while (ch && ch->base < end) {
		uint64_t next = ch->base + PTABLE_CHUNK_BYTES;
		unsigned lo = start > ch->base ? ptable_index(ch, start) : 0;
		uint64_t span = end - ch->base; /* not end < next: next is 0 after the top chunk */
		/* A page partly in the range is in it: [x, UINT64_MAX) reaches the top. */
		unsigned hi =
			span < PTABLE_CHUNK_BYTES
				? (unsigned)((span + UPAGER_PAGE_SIZE - 1) >> UPAGER_PAGE_SHIFT)
				: PTABLE_CHUNK_PAGES;

		bool last = next < ch->base; /* the top of the address space */

		fn(t, ch, lo, hi, data); /* may free ch */
		if (last)
			return;
		ch = ptable_from(t, next);
	}
}

/* Pages [lo, hi) of @ch are no page of the table any more, apart from their slots. */
static void clear_pages(struct ptable *t, struct ptable_chunk *ch, unsigned lo, unsigned hi)
{
	for (unsigned i = lo; i < hi; i++) {
		ptable_set_present(t, ch, i, false);
		ptable_set_leaving(t, ch, i, false);
		ch->reading &= ~(1ULL << i);
		ch->used &= ~(1ULL << i);
		ch->dropped &= ~(1ULL << i);
	}
}

static void forget_chunk(struct ptable *t, struct ptable_chunk *ch, unsigned lo, unsigned hi,
			 void *data)
{
	struct store *st = data;

	clear_pages(t, ch, lo, hi);
	for (unsigned i = lo; i < hi; i++)
		ptable_clear_slot(t, st, ch, i);
	ptable_drop_if_empty(t, ch);
}

/**
 * ptable_forget() - [start, end) holds no page of @t any more (munmap, MADV_DONTNEED): its bits
 * are cleared and its slots let go of (ptable_put() into @st)
 */
void ptable_forget(struct ptable *t, struct store *st, uint64_t start, uint64_t end)
{
	if (start >= end)
		return;
	for_each_chunk(t, start, end, forget_chunk, st);
}

/* A page's state, taken out of one place to be put in another. */
struct moved_page {
	uint64_t addr;
	bool present, used, leaving;
	int64_t slot;
};

struct take {
	struct moved_page *pages;
	size_t n, cap;
};

static void take_chunk(struct ptable *t, struct ptable_chunk *ch, unsigned lo, unsigned hi,
		       void *data)
{
	struct take *tk = data;

	for (unsigned i = lo; i < hi; i++) {
		struct moved_page m = { ch->base + ((uint64_t)i << UPAGER_PAGE_SHIFT),
					ptable_bit(ch->present, i), ptable_bit(ch->used, i),
					ptable_bit(ch->leaving, i), ptable_slot(ch, i) };

		if (!m.present && m.slot < 0)
			continue;
		if (tk->n == tk->cap) {
			size_t cap = MAX(2 * tk->cap, 64);
			struct moved_page *p = realloc(tk->pages, cap * sizeof(*p));

			if (!p)
				break;
			tk->pages = p;
			tk->cap = cap;
		}
		tk->pages[tk->n++] = m;
		if (m.slot >= 0) {
			ch->slot[i] = 0; /* the slot goes with the page */
			t->out--;
			changed(t, ch);
		}
	}
	/* A read under way there ends without effect. */
	clear_pages(t, ch, lo, hi);
	ptable_drop_if_empty(t, ch);
}

/**
 * ptable_move() - mremap() moved [from, from+len) to [to, to+len) (the two may overlap): the
 * pages' states go along (in memory, used, leaving, their slots), what was at @to is forgotten, a
 * read under way in either ends without effect (its owner follows a page-out, private.c)
 */
void ptable_move(struct ptable *t, struct store *st, uint64_t from, uint64_t to, uint64_t len)
{
	struct take tk = { 0 };

	if (from + len < from)
		return;
	for_each_chunk(t, from, from + len, take_chunk, &tk);
	ptable_forget(t, st, to, to + len);
	for (size_t k = 0; k < tk.n; k++) {
		uint64_t addr = tk.pages[k].addr - from + to;
		struct ptable_chunk *ch = ptable_get(t, addr);
		unsigned i;

		if (!ch) {
			if (tk.pages[k].slot >= 0)
				ptable_put(st, (uint64_t)tk.pages[k].slot);
			continue;
		}
		i = ptable_index(ch, addr);
		ptable_set_present(t, ch, i, tk.pages[k].present);
		ptable_set_leaving(t, ch, i, tk.pages[k].leaving);
		if (tk.pages[k].used)
			ch->used |= 1ULL << i;
		if (tk.pages[k].slot >= 0)
			ptable_set_slot(t, st, ch, i, (uint64_t)tk.pages[k].slot);
	}
	free(tk.pages);
}

/**
 * ptable_share() - page @addr of @t holds @slot too, a slot another table holds (a reference more)
 *
 * Return: 0, -EEXIST (the page holds a slot already), -ENOSPC, -ENOMEM or -EMLINK (the slot is
 * held by as many tables as can be counted).
 */
int ptable_share(struct ptable *t, uint64_t addr, uint64_t slot)
{
	struct ptable_chunk *ch = ptable_get(t, addr);
	unsigned i;
	int ret;

	if (!ch)
		return -ENOMEM;
	i = ptable_index(ch, addr);
	ret = ptable_slot(ch, i) >= 0 ? -EEXIST : slot_set(t, ch, i, slot);
	if (ret == 0) {
		ret = slot_ref(slot);
		if (ret < 0)
			ch->slot[i] = 0; /* its record, marked, is saved as it is at the flush */
	}
	if (ret < 0) {
		ptable_drop_if_empty(t, ch);
		return ret;
	}
	t->out++;
	return 0;
}

/**
 * ptable_fork() - @child is the table of a fork of @parent's space: it holds the slots of
 * @parent's pages out now, a reference each; its pages in memory are its parent's, shared until
 * written, and not in the table
 */
void ptable_fork(const struct ptable *parent, struct ptable *child)
{
	for (struct ptable_chunk *ch = ptable_from(parent, 0); ch; ch = ptable_next(parent, ch))
		for (unsigned i = 0; ch->slot && i < PTABLE_CHUNK_PAGES; i++)
			if (ptable_slot(ch, i) >= 0)
				/* On failure the child's touch maps zeroes there: SIGBUS would
				 * be better, but memory is short. */
				ptable_share(child, ch->base + ((uint64_t)i << UPAGER_PAGE_SHIFT),
					     (uint64_t)ptable_slot(ch, i));
}

/**
 * ptable_take() - @to, empty, takes every page of @from, which is left empty: its chunks, bits,
 * slots (their references) and counts; each chunk that holds a slot is @to's to save now (its
 * changed hook)
 */
void ptable_take(struct ptable *to, struct ptable *from)
{
	to->chunks = from->chunks;
	to->present = from->present;
	to->leaving = from->leaving;
	to->out = from->out;
	to->n_chunks = from->n_chunks;
	from->chunks.root = NULL;
	from->present = from->leaving = from->out = from->n_chunks = 0;
	for (struct ptable_chunk *ch = ptable_from(to, 0); ch; ch = ptable_next(to, ch))
		if (ch->slot)
			changed(to, ch);
}

/**
 * ptable_load_slots() - the slots of the chunk at @base, as a saved record had them (a slot + 1
 * per page, 0: none), put in @t; they are claimed with ptable_adopt_slots()
 *
 * Return: 0 or -ENOMEM.
 */
int ptable_load_slots(struct ptable *t, uint64_t base, const uint32_t *slots)
{
	struct ptable_chunk *ch = ptable_get(t, base);

	if (!ch || slot_alloc_table(ch) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < PTABLE_CHUNK_PAGES; i++) {
		if (ch->slot[i])
			t->out--;
		ch->slot[i] = slots[i];
		if (slots[i])
			t->out++;
	}
	ptable_drop_if_empty(t, ch);
	return 0;
}

/**
 * ptable_adopt_slots() - the slots of @t, loaded with ptable_load_slots(), allocated again in @st,
 * a store just taken over: a slot that another table claimed already is a reference more
 *
 * Return: 0, or the first negative errno (a slot that can be neither claimed nor shared: logged
 * by the caller; the page keeps it, and a read of it fails rather than giving another's data).
 */
int ptable_adopt_slots(struct ptable *t, struct store *st)
{
	uint64_t pages = 0, used;
	int err = 0;

	if (st->ops->figures)
		st->ops->figures(st, &pages, &used);
	for (struct ptable_chunk *ch = ptable_from(t, 0); ch; ch = ptable_next(t, ch))
		for (unsigned i = 0; ch->slot && i < PTABLE_CHUNK_PAGES; i++) {
			int64_t slot = ptable_slot(ch, i);
			int ret;

			if (slot < 0)
				continue;
			ret = store_claim(st, (uint64_t)slot, 1);
			if (ret == -EINVAL && (uint64_t)slot < pages)
				ret = slot_ref((uint64_t)slot); /* held by a table before */
			err = err ? err : ret;
		}
	return err;
}
