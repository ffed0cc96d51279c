// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The private page table of a space (ptable.c), with a store that only counts the slots it gets
 * back, each slot on its own: a slot freed twice, or one freed while a table still holds it, shows.
 * Every test ends with its tables forgotten whole and checks that no chunk is left, and in the
 * sanitizer build (where CI runs it, suite "leaks") that LeakSanitizer finds nothing unreachable.
 * meson runs it with glibc's tcache off and freed memory overwritten (MALLOC_PERTURB_), so that a
 * walk that reads a chunk it freed goes astray in the plain build too.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "daemon/ptable.h"
#include "daemon/store.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define P UPAGER_PAGE_SIZE
#define CB PTABLE_CHUNK_BYTES
#define NSLOTS 65536
#define BASE 0x7f0000000000ULL /* chunk-aligned */

static unsigned freed[NSLOTS]; /* times each slot came back */
static unsigned freed_beyond; /* slots past those */

static void fake_free(struct store *st, uint64_t key, uint64_t pages)
{
	(void)st;
	for (uint64_t k = 0; k < pages; k++) {
		if (key + k < NSLOTS)
			freed[key + k]++;
		else
			freed_beyond++;
	}
}

static const struct store_ops fake_ops = { .free = fake_free };
static struct store store = { .ops = &fake_ops };

struct page {
	bool present, used, leaving, reading;
	int64_t slot; /* -1: none */
};

static const struct page none = { .slot = -1 };

static struct page page_at(const struct ptable *t, uint64_t addr)
{
	struct ptable_chunk *ch = ptable_find(t, addr);
	unsigned i;

	if (!ch)
		return none;
	i = ptable_index(ch, addr);
	return (struct page){ ptable_bit(ch->present, i), ptable_bit(ch->used, i),
			      ptable_bit(ch->leaving, i), ptable_bit(ch->reading, i),
			      ptable_slot(ch, i) };
}

static void set_page(struct ptable *t, uint64_t addr, struct page p)
{
	struct ptable_chunk *ch = ptable_get(t, addr);
	unsigned i;

	cr_assert_not_null(ch);
	i = ptable_index(ch, addr);
	ptable_set_present(t, ch, i, p.present);
	ptable_set_leaving(t, ch, i, p.leaving);
	if (p.used)
		ch->used |= 1ULL << i;
	if (p.reading)
		ch->reading |= 1ULL << i;
	if (p.slot >= 0)
		cr_assert_eq(ptable_set_slot(t, &store, ch, i, (uint64_t)p.slot), 0);
}

static void expect_page(const struct ptable *t, uint64_t addr, struct page want, const char *what)
{
	struct page got = page_at(t, addr);

	cr_assert(got.present == want.present && got.used == want.used &&
			  got.leaving == want.leaving && got.reading == want.reading &&
			  got.slot == want.slot,
		  "%s: page %#llx: present %d used %d leaving %d reading %d slot %lld, want %d %d "
		  "%d %d %lld",
		  what, (unsigned long long)addr, got.present, got.used, got.leaving, got.reading,
		  (long long)got.slot, want.present, want.used, want.leaving, want.reading,
		  (long long)want.slot);
}

static void no_leak(void)
{
#ifdef HAVE_LSAN
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found a leak");
#endif
}

static size_t n_chunks(const struct ptable *t)
{
	size_t n = 0;

	for (struct ptable_chunk *ch = ptable_from(t, 0); ch; ch = ptable_next(t, ch))
		n++;
	return n;
}

static unsigned total_freed(void)
{
	unsigned n = 0;

	for (size_t k = 0; k < NSLOTS; k++)
		n += freed[k];
	return n;
}

/* Forget all of @t: it must be empty then, its counts zero. */
static void forget_all(struct ptable *t)
{
	ptable_forget(t, &store, 0, UINT64_MAX);
	cr_assert_eq(n_chunks(t), 0, "%zu chunks left", n_chunks(t));
	cr_assert_null(t->chunks.root);
	cr_assert_eq(t->present, 0);
	cr_assert_eq(t->leaving, 0);
	cr_assert_eq(t->out, 0);
	no_leak();
}

/*
 * The pattern of page k of a range: every third page out (slot @slot0 + k), others in memory
 * (used or not), some holes.
 */
static struct page pattern(uint64_t k, int64_t slot0)
{
	struct page p = none;

	if (k % 3 == 0)
		p.slot = slot0 + (int64_t)k;
	else if (k % 7 != 5)
		p = (struct page){ .present = true, .used = k % 2, .slot = -1 };
	return p;
}

static void fill(struct ptable *t, uint64_t start, uint64_t pages, int64_t slot0)
{
	for (uint64_t k = 0; k < pages; k++)
		set_page(t, start + k * P, pattern(k, slot0));
}

Test(ptable, pages_set_present_are_counted_once)
{
	struct ptable t = { 0 };
	struct ptable_chunk *ch;

	for (uint64_t k = 0; k < 100; k++)
		set_page(&t, BASE + 30 * P + k * P, (struct page){ .present = true, .slot = -1 });
	cr_assert_eq(t.present, 100);
	cr_assert_eq(n_chunks(&t), 3, "pages 30 to 129: chunks 0, 1 and 2");
	cr_assert_eq(t.n_chunks, 3, "the table counts its chunks");
	ch = ptable_find(&t, BASE + 40 * P);
	cr_assert_not(ptable_set_present(&t, ch, 40, true), "already in memory");
	cr_assert_eq(t.present, 100);
	cr_assert(ptable_set_leaving(&t, ch, 40, true));
	cr_assert_not(ptable_set_leaving(&t, ch, 40, true));
	cr_assert_eq(t.leaving, 1);
	cr_assert(ptable_set_present(&t, ch, 41, false));
	cr_assert_not(ptable_set_present(&t, ch, 41, false));
	cr_assert_eq(t.present, 99);
	cr_assert_eq(t.out, 0);
	forget_all(&t);
	cr_assert_eq(total_freed(), 0);
	cr_assert_eq(t.n_chunks, 0, "no chunk left");
}

/* A page is empty only in none of the states: in memory, leaving, being read back or out. */
Test(ptable, a_page_in_no_state_is_empty)
{
	struct ptable t = { 0 };
	struct ptable_chunk *ch;

	cr_assert(ptable_page_empty(&t, BASE), "no chunk at all");
	set_page(&t, BASE + P, (struct page){ .present = true, .slot = -1 });
	set_page(&t, BASE + 2 * P, (struct page){ .present = true, .leaving = true, .slot = -1 });
	set_page(&t, BASE + 3 * P, (struct page){ .reading = true, .slot = -1 });
	set_page(&t, BASE + 4 * P, (struct page){ .slot = 7 });
	set_page(&t, BASE + 5 * P, (struct page){ .used = true, .slot = -1 });
	cr_assert(ptable_page_empty(&t, BASE), "a page of a chunk that has others");
	for (uint64_t k = 1; k <= 4; k++)
		cr_assert_not(ptable_page_empty(&t, BASE + k * P), "page %llu",
			      (unsigned long long)k);
	cr_assert(ptable_page_empty(&t, BASE + 5 * P), "the used bit alone");
	ch = ptable_find(&t, BASE);
	ch->reading = 0;
	forget_all(&t);
	cr_assert_eq(total_freed(), 1);
}

Test(ptable, forget_frees_exactly_the_slots_of_its_range_and_clears_its_bits)
{
	struct ptable t = { 0 };
	uint64_t start = BASE + 10 * P, pages = 200; /* chunks 0 to 3, unaligned */
	uint64_t lo = 30, hi = 150; /* forgotten: pages lo to hi - 1, across two chunk edges */
	uint64_t present = 0, out = 0;

	fill(&t, start, pages, 1000);
	cr_assert_eq(n_chunks(&t), 4);
	/* Chunk 0 (pages 0 to 53 of the range) has pages 30 to 53 forgotten: marked dropped. */
	ptable_find(&t, BASE)->dropped = ~0ULL << (10 + lo);
	ptable_forget(&t, &store, start + lo * P, start + hi * P);
	for (uint64_t k = 0; k < pages; k++) {
		struct page want = k >= lo && k < hi ? none : pattern(k, 1000);

		expect_page(&t, start + k * P, want, "after the forget");
		cr_assert_eq(freed[1000 + k], k % 3 == 0 && k >= lo && k < hi, "slot of page %llu",
			     (unsigned long long)k);
		present += want.present;
		out += want.slot >= 0;
	}
	cr_assert_eq(total_freed(), (hi - lo) / 3);
	cr_assert_eq(t.present, present);
	cr_assert_eq(ptable_find(&t, BASE)->dropped, 0, "a dropped mark survived the forget");
	cr_assert_eq(t.out, out);
	/* Chunk 2 (pages 118 to 181 of the range) kept pages 150 to 181; chunk 1 is gone. */
	cr_assert_null(ptable_find(&t, BASE + CB), "a chunk emptied whole is freed");
	cr_assert_eq(n_chunks(&t), 3);
	forget_all(&t);
	for (uint64_t k = 0; k < pages; k++)
		cr_assert_eq(freed[1000 + k], k % 3 == 0);
}

/*
 * The walk over a range that reaches the top of the address space must stop at its last chunk, and
 * must not read a chunk it has freed to find the next one.
 */
Test(ptable, forget_of_the_whole_address_space_frees_every_slot_once)
{
	struct ptable t = { 0 };
	uint64_t top = UINT64_MAX - CB + 1; /* the last chunk of the address space */

	fill(&t, 0, 70, 0);
	fill(&t, BASE, 3 * 64, 100);
	fill(&t, top - 2 * CB, 3 * 64, 400);
	cr_assert_eq(n_chunks(&t), 2 + 3 + 3);
	ptable_forget(&t, &store, 0, UINT64_MAX);
	cr_assert_eq(n_chunks(&t), 0, "%zu chunks left", n_chunks(&t));
	for (uint64_t k = 0; k < NSLOTS; k++) {
		bool held = (k < 70 && k % 3 == 0) || (k >= 100 && k < 292 && (k - 100) % 3 == 0) ||
			    (k >= 400 && k < 592 && (k - 400) % 3 == 0);

		cr_assert_eq(freed[k], held, "slot %llu freed %u times", (unsigned long long)k,
			     freed[k]);
	}
	forget_all(&t);
}

Test(ptable, forget_up_to_the_top_of_the_address_space_keeps_what_is_below)
{
	struct ptable t = { 0 };
	uint64_t top = UINT64_MAX - CB + 1;

	fill(&t, BASE, 64, 0);
	fill(&t, top, 64, 100);
	ptable_forget(&t, &store, top + 32 * P, UINT64_MAX);
	for (uint64_t k = 0; k < 64; k++) {
		expect_page(&t, BASE + k * P, pattern(k, 0), "below");
		expect_page(&t, top + k * P, k < 32 ? pattern(k, 100) : none, "top chunk");
		cr_assert_eq(freed[k], 0);
		cr_assert_eq(freed[100 + k], k >= 32 && k % 3 == 0);
	}
	forget_all(&t);
}

/* A range inside the last chunk of the address space ends where it ends, not at the chunk's. */
Test(ptable, a_range_that_ends_in_the_top_chunk_ends_there)
{
	struct ptable t = { 0 };
	uint64_t top = UINT64_MAX - CB + 1;

	fill(&t, top, 64, 0);
	ptable_forget(&t, &store, top + 8 * P, top + 16 * P);
	for (uint64_t k = 0; k < 64; k++) {
		expect_page(&t, top + k * P, k >= 8 && k < 16 ? none : pattern(k, 0), "forget");
		cr_assert_eq(freed[k], k >= 8 && k < 16 && k % 3 == 0, "slot %llu",
			     (unsigned long long)k);
	}
	ptable_move(&t, &store, top + 20 * P, top + 40 * P, 4 * P);
	for (uint64_t k = 16; k < 64; k++) {
		struct page want = pattern(k, 0);

		if (k >= 20 && k < 24)
			want = none;
		else if (k >= 40 && k < 44)
			want = pattern(k - 20, 0);
		expect_page(&t, top + k * P, want, "move");
	}
	cr_assert_eq(n_chunks(&t), 1, "nothing went past the top");
	forget_all(&t);
}

/* mremap() of @pages from @from to @to, any overlap: the range's pages must be found at @to. */
static void check_move(uint64_t from, uint64_t to, uint64_t pages)
{
	struct ptable t = { 0 };
	uint64_t lo = MIN(from, to) - 3 * CB, hi = MAX(from, to) + pages * P + 3 * CB;
	uint64_t present = 0, out = 0;

	/* The pages around and at the destination, each with a slot of its own. */
	for (uint64_t a = lo; a < hi; a += P)
		set_page(&t, a, (struct page){ .slot = (int64_t)((a - lo) / P) });
	for (uint64_t k = 0; k < pages; k++) {
		ptable_clear_slot(&t, &store, ptable_find(&t, from + k * P),
				  ptable_index(ptable_find(&t, from + k * P), from + k * P));
		set_page(&t, from + k * P, pattern(k, 20000));
	}
	memset(freed, 0, sizeof(freed));
	ptable_move(&t, &store, from, to, pages * P);
	for (uint64_t a = lo; a < hi; a += P) {
		bool at_to = a >= to && a < to + pages * P;
		bool at_from = a >= from && a < from + pages * P;
		struct page want = none;

		if (at_to)
			want = pattern((a - to) / P, 20000);
		else if (!at_from)
			want.slot = (int64_t)((a - lo) / P);
		expect_page(&t, a, want, "after the move");
		/* What the destination held is gone, its slots freed; nothing else. */
		cr_assert_eq(freed[(a - lo) / P], at_to && !at_from, "slot of %#llx",
			     (unsigned long long)a);
		present += want.present;
		out += want.slot >= 0;
	}
	for (uint64_t k = 0; k < pages; k++)
		cr_assert_eq(freed[20000 + k], 0, "the moved slots stay held");
	cr_assert_eq(t.present, present);
	cr_assert_eq(t.out, out);
	forget_all(&t);
	for (uint64_t k = 0; k < pages; k++)
		cr_assert_eq(freed[20000 + k], k % 3 == 0);
}

Test(ptable, move_carries_bits_and_slots_to_the_new_address)
{
	check_move(BASE + 5 * P, BASE + 40 * CB + 37 * P, 100);
	check_move(BASE + 40 * CB + 37 * P, BASE + 5 * P, 100);
	check_move(BASE, BASE + 8 * CB, 128); /* chunk-aligned */
}

Test(ptable, move_to_an_overlapping_range)
{
	check_move(BASE + 5 * P, BASE + 15 * P, 100); /* up a few pages */
	check_move(BASE + 15 * P, BASE + 5 * P, 100); /* down a few */
	check_move(BASE + 5 * P, BASE + 75 * P, 100); /* up more than a chunk */
	check_move(BASE + 75 * P, BASE + 5 * P, 100);
	check_move(BASE + 64 * P, BASE + 63 * P, 130); /* down one page, from a chunk's edge */
	check_move(BASE + 63 * P, BASE + 64 * P, 130);
}

Test(ptable, move_takes_a_page_out_along_and_ends_a_read_under_way)
{
	struct ptable t = { 0 };
	uint64_t from = BASE + 60 * P, to = BASE + 10 * CB;

	set_page(&t, from, (struct page){ .present = true, .leaving = true, .slot = -1 });
	set_page(&t, from + P, (struct page){ .reading = true, .slot = 7 });
	cr_assert_eq(t.leaving, 1);
	ptable_move(&t, &store, from, to, 8 * P);
	expect_page(&t, to, (struct page){ .present = true, .leaving = true, .slot = -1 },
		    "leaving");
	expect_page(&t, to + P, (struct page){ .slot = 7 }, "was being read");
	expect_page(&t, from, none, "old place");
	expect_page(&t, from + P, none, "old place");
	cr_assert_eq(t.leaving, 1);
	cr_assert_eq(t.present, 1);
	cr_assert_eq(total_freed(), 0);
	forget_all(&t);
	cr_assert_eq(freed[7], 1);
}

Test(ptable, fork_shares_slots_freed_once_both_let_go)
{
	struct ptable parent = { 0 }, child = { 0 };
	uint64_t pages = 150;

	fill(&parent, BASE + 20 * P, pages, 0);
	ptable_fork(&parent, &child);
	cr_assert_eq(child.out, parent.out);
	cr_assert_eq(child.present, 0, "pages in memory are the parent's");
	for (uint64_t k = 0; k < pages; k++)
		expect_page(&child, BASE + 20 * P + k * P,
			    k % 3 == 0 ? (struct page){ .slot = (int64_t)k } : none, "child");
	/* The parent unmaps half, the child the other half: nothing freed yet. */
	ptable_forget(&parent, &store, BASE, BASE + 20 * P + 75 * P);
	ptable_forget(&child, &store, BASE + 20 * P + 75 * P, BASE + CB * 10);
	cr_assert_eq(total_freed(), 0, "a slot both hold is freed when one lets go");
	/* Each lets go of the rest: every slot freed once. */
	forget_all(&child);
	for (uint64_t k = 0; k < pages; k++)
		cr_assert_eq(freed[k], k % 3 == 0 && k < 75, "slot %llu", (unsigned long long)k);
	forget_all(&parent);
	for (uint64_t k = 0; k < pages; k++)
		cr_assert_eq(freed[k], k % 3 == 0, "slot %llu", (unsigned long long)k);
}

/* Held puts: a slot let go of reaches the store only once the tables are saved. */
Test(ptable, slots_let_go_of_while_puts_are_held_go_back_at_the_release)
{
	struct ptable a = { 0 };

	set_page(&a, BASE, (struct page){ .slot = 7 });
	set_page(&a, BASE + P, (struct page){ .slot = 8 });
	ptable_hold_puts(true);
	ptable_clear_slot(&a, &store, ptable_find(&a, BASE), 0);
	cr_assert_eq(freed[7], 0, "freed before the tables were saved");
	ptable_release_puts();
	cr_assert_eq(freed[7], 1);
	ptable_clear_slot(&a, &store, ptable_find(&a, BASE), 1);
	cr_assert_eq(freed[8], 0);
	ptable_hold_puts(false);
	cr_assert_eq(freed[8], 1, "holding stopped: what was held goes back");
	forget_all(&a);
	cr_assert_eq(total_freed(), 2);
}

Test(ptable, a_slot_three_tables_hold_is_freed_by_the_last)
{
	struct ptable a = { 0 }, b = { 0 }, c = { 0 };
	struct ptable_chunk *ch;

	set_page(&a, BASE, (struct page){ .slot = 5 });
	ptable_fork(&a, &b);
	ptable_fork(&b, &c);
	/* a's page is read back: its slot is let go of, not freed. */
	ch = ptable_find(&a, BASE);
	ptable_clear_slot(&a, &store, ch, 0);
	ptable_drop_if_empty(&a, ch);
	cr_assert_eq(a.out, 0);
	forget_all(&c);
	cr_assert_eq(freed[5], 0);
	forget_all(&b);
	cr_assert_eq(freed[5], 1);
	forget_all(&a);
	cr_assert_eq(total_freed(), 1);
}

/*
 * A slot held by more tables than its share count can count is not shared any more: the table
 * that would go past it does not get the slot (its touch maps zeroes), rather than the slot be
 * freed while a table still holds it.
 */
Test(ptable, a_slot_is_freed_once_however_many_tables_hold_it)
{
	enum {
		N = UINT16_MAX + 2
	};
	struct ptable parent = { 0 }, *children = calloc(N, sizeof(*children));
	unsigned shared = 0;

	cr_assert_not_null(children);
	set_page(&parent, BASE, (struct page){ .slot = 5 });
	for (unsigned k = 0; k < N; k++) {
		ptable_fork(&parent, &children[k]);
		shared += children[k].out;
	}
	cr_assert_geq(shared, UINT16_MAX, "shared %u times", shared);
	for (unsigned k = 0; k < N; k++) {
		ptable_forget(&children[k], &store, 0, UINT64_MAX);
		cr_assert_eq(freed[5], 0, "freed while the parent holds it (child %u)", k);
	}
	forget_all(&parent);
	cr_assert_eq(freed[5], 1, "freed %u times", freed[5]);
	free(children);
}

/* The slot of a page whose DROP was under way at the fork: the child gets it by ptable_share(). */
Test(ptable, a_shared_slot_is_freed_once_both_let_go)
{
	struct ptable parent = { 0 }, child = { 0 };

	set_page(&parent, BASE + 3 * P, (struct page){ .slot = 9 });
	set_page(&child, BASE + 4 * P, (struct page){ .slot = 10 });
	cr_assert_eq(ptable_share(&child, BASE + 3 * P, 9), 0);
	cr_assert_eq(ptable_share(&child, BASE + 4 * P, 9), -EEXIST, "a page holds one slot");
	cr_assert_eq(ptable_share(&child, BASE + 5 * CB, UINT32_MAX), -ENOSPC);
	cr_assert_eq(n_chunks(&child), 1, "no chunk is left empty");
	cr_assert_eq(child.out, 2);
	expect_page(&child, BASE + 4 * P, (struct page){ .slot = 10 }, "kept its own");
	forget_all(&parent);
	cr_assert_eq(freed[9], 0);
	forget_all(&child);
	cr_assert_eq(freed[9], 1);
	cr_assert_eq(freed[10], 1);
}

Test(ptable, a_slot_set_over_another_frees_the_other)
{
	struct ptable t = { 0 };
	struct ptable_chunk *ch = ptable_get(&t, BASE);

	cr_assert_eq(ptable_set_slot(&t, &store, ch, 3, 10), 0);
	cr_assert_eq(ptable_set_slot(&t, &store, ch, 3, 11), 0);
	cr_assert_eq(freed[10], 1);
	cr_assert_eq(t.out, 1);
	cr_assert_eq(ptable_set_slot(&t, &store, ch, 4, UINT32_MAX), -ENOSPC);
	cr_assert_eq(t.out, 1);
	cr_assert_eq(freed_beyond, 1, "a slot the table cannot hold is let go of");
	cr_assert_eq(ptable_reserve_slots(&t, BASE, 2, UINT32_MAX - 2), -ENOSPC);
	forget_all(&t);
	cr_assert_eq(freed[11], 1);
}

Test(ptable, empty_chunks_are_freed)
{
	struct ptable t = { 0 };
	struct ptable_chunk *ch = ptable_get(&t, BASE);

	ch->used = ~0ULL;
	ptable_drop_if_empty(&t, ch);
	cr_assert_eq(n_chunks(&t), 0, "the used bits alone keep no chunk");
	ch = ptable_get(&t, BASE);
	cr_assert_eq(ptable_reserve_slots(&t, BASE, 64, 0), 0);
	cr_assert_not_null(ch->slot);
	ch->reading = 1;
	ptable_drop_if_empty(&t, ch);
	cr_assert_eq(n_chunks(&t), 1, "a page being read back keeps its chunk");
	ch->reading = 0;
	ptable_drop_if_empty(&t, ch);
	cr_assert_eq(n_chunks(&t), 0, "an empty slot table keeps no chunk");
	forget_all(&t);
}

/*
 * Random sets, forgets and moves on a window of a few chunks, against a model: a page each, and
 * the slots freed.
 */
#define WIN_PAGES (6 * PTABLE_CHUNK_PAGES)

static struct page model[WIN_PAGES];
static unsigned model_freed[NSLOTS];

static void model_forget(uint64_t lo, uint64_t hi)
{
	for (uint64_t k = lo; k < hi; k++) {
		if (model[k].slot >= 0)
			model_freed[model[k].slot]++;
		model[k] = none;
	}
}

static void model_move(uint64_t from, uint64_t to, uint64_t n)
{
	struct page moved[WIN_PAGES];

	for (uint64_t k = 0; k < n; k++) {
		moved[k] = model[from + k];
		moved[k].reading = false;
		if (!moved[k].present && moved[k].slot < 0)
			moved[k] = none;
		model[from + k] = none;
	}
	model_forget(to, to + n);
	for (uint64_t k = 0; k < n; k++)
		model[to + k] = moved[k];
}

Test(ptable, random_operations_match_a_model)
{
	struct ptable t = { 0 };
	int64_t next_slot = 0;

	srand(7);
	for (unsigned k = 0; k < WIN_PAGES; k++)
		model[k] = none;
	for (unsigned op = 0; op < 20000; op++) {
		uint64_t a = (uint64_t)rand() % WIN_PAGES, b = (uint64_t)rand() % WIN_PAGES;
		uint64_t lo = MIN(a, b), hi = MAX(a, b) + 1;
		int what = rand() % 10;

		if (what < 5) {
			/* A page's bits set anew (used and leaving only in memory, as the daemon
			 * has them: a chunk kept by used bits alone would be dropped), a slot
			 * given or the one it had kept. */
			struct page p = { .present = rand() % 2, .slot = -1 };
			struct ptable_chunk *ch = ptable_get(&t, BASE + a * P);
			unsigned i = ptable_index(ch, BASE + a * P);

			p.used = p.present && rand() % 2;
			p.leaving = p.present && rand() % 4 == 0;
			p.reading = !p.present && rand() % 4 == 0;
			if (rand() % 2 && next_slot < NSLOTS)
				p.slot = next_slot++;
			ch->used &= ~(1ULL << i);
			ch->reading &= ~(1ULL << i);
			set_page(&t, BASE + a * P, p);
			ptable_drop_if_empty(&t, ch);
			if (p.slot < 0)
				p.slot = model[a].slot;
			else if (model[a].slot >= 0)
				model_freed[model[a].slot]++;
			model[a] = p;
		} else if (what < 7) {
			ptable_forget(&t, &store, BASE + lo * P, BASE + hi * P);
			model_forget(lo, hi);
		} else {
			uint64_t n = 1 + (uint64_t)rand() % (WIN_PAGES / 2);
			uint64_t from = (uint64_t)rand() % (WIN_PAGES - n + 1);
			uint64_t to = (uint64_t)rand() % (WIN_PAGES - n + 1);

			ptable_move(&t, &store, BASE + from * P, BASE + to * P, n * P);
			model_move(from, to, n);
		}
		for (unsigned k = 0, present = 0, leaving = 0, out = 0; k <= WIN_PAGES; k++) {
			if (k == WIN_PAGES) {
				cr_assert_eq(t.present, present, "op %u", op);
				cr_assert_eq(t.leaving, leaving, "op %u", op);
				cr_assert_eq(t.out, out, "op %u", op);
				break;
			}
			expect_page(&t, BASE + k * P, model[k], "against the model");
			present += model[k].present;
			leaving += model[k].leaving;
			out += model[k].slot >= 0;
		}
		cr_assert_eq(memcmp(freed, model_freed, sizeof(freed)), 0, "op %u: slots freed",
			     op);
	}
	forget_all(&t);
}

/* A store taken over: each slot may be claimed once; past NSLOTS there is none. */
static unsigned claimed[NSLOTS];

static int fake_claim(struct store *st, uint64_t key, uint64_t pages)
{
	(void)st;
	if (pages != 1 || key >= NSLOTS || claimed[key])
		return -EINVAL;
	claimed[key]++;
	return 0;
}

static void fake_figures(struct store *st, uint64_t *pages, uint64_t *used)
{
	(void)st;
	*pages = NSLOTS;
	*used = 0;
}

static const struct store_ops adopted_ops = { .free = fake_free,
					      .claim = fake_claim,
					      .figures = fake_figures };
static struct store adopted = { .ops = &adopted_ops };

Test(ptable, slots_loaded_from_records_are_claimed_once_and_shared_after)
{
	struct ptable parent = { 0 }, child = { 0 }, empty = { 0 };
	uint32_t a[PTABLE_CHUNK_PAGES] = { 0 }, b[PTABLE_CHUNK_PAGES] = { 0 };
	uint32_t none_set[PTABLE_CHUNK_PAGES] = { 0 };

	a[3] = 10 + 1;
	a[5] = 11 + 1;
	b[3] = 10 + 1; /* the child of a fork holds slot 10 too */
	cr_assert_eq(ptable_load_slots(&parent, BASE, a), 0);
	cr_assert_eq(ptable_load_slots(&child, BASE, b), 0);
	cr_assert_eq(ptable_load_slots(&empty, BASE, none_set), 0);
	cr_assert_eq(n_chunks(&empty), 0, "a record without slots leaves no chunk");
	cr_assert_eq(parent.out, 2);
	cr_assert_eq(child.out, 1);
	cr_assert_eq(ptable_adopt_slots(&parent, &adopted), 0);
	cr_assert_eq(ptable_adopt_slots(&child, &adopted), 0);
	cr_assert_eq(claimed[10], 1, "a slot two tables hold is claimed once");
	cr_assert_eq(claimed[11], 1);
	expect_page(&child, BASE + 3 * P, (struct page){ .slot = 10 }, "loaded");
	forget_all(&parent);
	cr_assert_eq(freed[11], 1);
	cr_assert_eq(freed[10], 0, "the child holds it still");
	forget_all(&child);
	cr_assert_eq(freed[10], 1);
}

static unsigned n_changed, n_gone;

static void count_changed(struct ptable *t, struct ptable_chunk *ch)
{
	(void)t;
	(void)ch;
	n_changed++;
}

static void count_gone(struct ptable *t, struct ptable_chunk *ch)
{
	(void)t;
	(void)ch;
	n_gone++;
}

Test(ptable, its_owner_hears_of_each_change_of_slots_and_of_each_chunk_freed)
{
	struct ptable t = { .changed = count_changed, .gone = count_gone };
	struct ptable_chunk *ch = ptable_get(&t, BASE);

	cr_assert_eq(ptable_set_slot(&t, &store, ch, 3, 10), 0);
	cr_assert_geq(n_changed, 1, "a slot set");
	n_changed = 0;
	ptable_set_present(&t, ch, 4, true);
	cr_assert_eq(n_changed, 0, "a page in memory is not a change of slots");
	ptable_move(&t, &store, BASE, BASE + 2 * CB, CB);
	cr_assert_geq(n_changed, 2, "a move takes the slot from one chunk to another");
	cr_assert_geq(n_gone, 1, "the chunk left empty is freed");
	n_changed = 0;
	forget_all(&t);
	cr_assert_geq(n_changed, 1, "a slot let go of");
}

/*
 * A table taken whole by another, empty one (a fork's table, made when its event was read, taken
 * by the child's space when it is followed): the pages, their bits, slots and counts go over, the
 * table taken from is left empty, each chunk with a slot is the taker's to save, and every slot is
 * freed once, by the taker.
 */
Test(ptable, a_table_taken_whole_moves_its_pages_and_its_slots)
{
	struct ptable from = { 0 }, to = { .changed = count_changed };
	uint64_t pages = 150;

	fill(&from, BASE + 20 * P, pages, 0);
	set_page(&from, BASE + 4 * CB, (struct page){ .present = true, .slot = -1 });
	uint64_t present = from.present, out = from.out;

	n_changed = 0;
	ptable_take(&to, &from);
	cr_assert_eq(n_chunks(&from), 0);
	cr_assert(from.present == 0 && from.leaving == 0 && from.out == 0 && from.n_chunks == 0);
	cr_assert_eq(to.n_chunks, n_chunks(&to), "the count goes with the chunks");
	cr_assert_eq(to.present, present);
	cr_assert_eq(to.out, out);
	cr_assert_geq(n_changed, 3, "the chunks with slots are the taker's to save");
	for (uint64_t k = 0; k < pages; k++)
		expect_page(&to, BASE + 20 * P + k * P, pattern(k, 0), "taken");
	expect_page(&to, BASE + 4 * CB, (struct page){ .present = true, .slot = -1 }, "taken");
	forget_all(&from);
	cr_assert_eq(total_freed(), 0);
	forget_all(&to);
	for (uint64_t k = 0; k < pages; k++)
		cr_assert_eq(freed[k], k % 3 == 0, "slot %llu", (unsigned long long)k);
}
