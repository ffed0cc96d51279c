/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The private page table of a space (ptable.c): which of its private anonymous pages are in memory
 * and which the swap store holds. Pages are kept by 64-page chunks in a tree by address: a bit each
 * for in memory (present), touched since the clock's hand passed (used), leaving (a page-out under
 * way), being read back (reading); and a slot each, allocated only for a chunk with one. After
 * fork() two tables hold the same slots: a slot goes back to the store once no table holds it.
 *
 * A zeroed table is an empty one. It counts its pages in memory, leaving and out; whoever keeps
 * totals over several tables adds the changes (ptable_set_present() and ptable_set_leaving() say
 * whether the bit changed; around a range operation, compare the counts).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/avl.h"
#include "common/macro.h"
#include "state-handle.h"

#define PTABLE_CHUNK_PAGES 64
#define PTABLE_CHUNK_BYTES ((uint64_t)PTABLE_CHUNK_PAGES << UPAGER_PAGE_SHIFT)

struct store;

struct ptable_chunk {
	struct avl_node node;
	struct state_handle saved; /* its record while it holds a slot (struct ptable.changed) */
	uint64_t base; /* the address of its first page */
	uint64_t present, used, leaving, reading; /* a bit per page */
	uint64_t
		dropped; /* copies dropped in place whose UFFD_EVENT_REMOVE may come yet (private.c) */
	uint32_t *slot; /* NULL, or a slot + 1 per page (0: none) */
};

struct ptable {
	struct avl_tree chunks; /* struct ptable_chunk, by base */
	/* The owner's hooks, or NULL: the slots of @ch changed; @ch is freed now */
	void (*changed)(struct ptable *t, struct ptable_chunk *ch);
	void (*gone)(struct ptable *t, struct ptable_chunk *ch);
	uint64_t present; /* pages in memory */
	uint64_t leaving; /* of those, on their way out */
	uint64_t out; /* pages with a slot */
	uint64_t n_chunks; /* what the table costs the daemon: about 400 bytes a chunk */
};

static inline unsigned ptable_index(const struct ptable_chunk *ch, uint64_t addr)
{
	return (unsigned)((addr - ch->base) >> UPAGER_PAGE_SHIFT);
}

static inline bool ptable_bit(uint64_t word, unsigned i)
{
	return word >> i & 1;
}

struct ptable_chunk *ptable_from(const struct ptable *t, uint64_t addr);
struct ptable_chunk *ptable_next(const struct ptable *t, const struct ptable_chunk *ch);
struct ptable_chunk *ptable_find(const struct ptable *t, uint64_t addr);
struct ptable_chunk *ptable_get(struct ptable *t, uint64_t addr);
bool ptable_page_empty(const struct ptable *t, uint64_t addr);
void ptable_drop_if_empty(struct ptable *t, struct ptable_chunk *ch);
bool ptable_set_present(struct ptable *t, struct ptable_chunk *ch, unsigned i, bool on);
bool ptable_set_leaving(struct ptable *t, struct ptable_chunk *ch, unsigned i, bool on);
int64_t ptable_slot(const struct ptable_chunk *ch, unsigned i);
int ptable_reserve_slots(struct ptable *t, uint64_t addr, uint64_t n, uint64_t slot);
int ptable_set_slot(struct ptable *t, struct store *st, struct ptable_chunk *ch, unsigned i,
		    uint64_t slot);
void ptable_clear_slot(struct ptable *t, struct store *st, struct ptable_chunk *ch, unsigned i);
void ptable_put(struct store *st, uint64_t slot);
void ptable_hold_puts(bool on);
void ptable_release_puts(void);
void ptable_forget(struct ptable *t, struct store *st, uint64_t start, uint64_t end);
void ptable_move(struct ptable *t, struct store *st, uint64_t from, uint64_t to, uint64_t len);
int ptable_share(struct ptable *t, uint64_t addr, uint64_t slot);
void ptable_fork(const struct ptable *parent, struct ptable *child);
void ptable_take(struct ptable *to, struct ptable *from);
int ptable_load_slots(struct ptable *t, uint64_t base, const uint32_t *slots);
int ptable_adopt_slots(struct ptable *t, struct store *st);
