// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The budget alone (evict.c): fills that wait for room, the clock that sends pages out, dirty
 * pages written back before they go, over the cache of a real file.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cache-fixture.h"
#include "daemon/evict.h"
#include "daemon/fill.h"
#include "daemon/object.h"
#include "daemon/store.h"

TestSuite(evict, .init = cache_fixture_setup, .fini = cache_fixture_teardown);

static bool filled;

static void on_filled(void *userdata)
{
	(void)userdata;
	filled = true;
}

/* Run the loop, balancing at each turn as the daemon does, until *flag; the most seen in memory. */
static uint64_t run_until(bool *flag)
{
	uint64_t most = 0;

	while (!*flag) {
		(void)cache_balance(&cache, NULL);
		most = cache.cached + cache.inflight > most ? cache.cached + cache.inflight : most;
		if (*flag)
			break; /* started and over within the balance */
		uv_run(&loop, UV_RUN_ONCE);
		most = cache.cached + cache.inflight > most ? cache.cached + cache.inflight : most;
	}
	return most;
}

/* Fill pages [first, first+n) of @o and wait, balancing; the most pages seen in memory. */
static uint64_t fill(struct object *o, uint64_t first, uint64_t n)
{
	int ret;

	filled = false;
	ret = fill_wait(o, first, n, on_filled, NULL, NULL);
	cr_assert(ret == FILL_WAITING || ret == 0, "fill_wait: %d", ret);
	filled = ret == 0; /* made at once (zeroes of shared anonymous memory) */
	return run_until(&filled);
}

static void check_page(struct object *o, uint64_t p)
{
	cr_assert_eq(o->pages[p] & PAGE_STATE_MASK, PAGE_READY, "page %lu is ready",
		     (unsigned long)p);
	for (uint64_t i = 0; i < 4096; i += 509)
		cr_assert_eq(o->map[p * 4096 + i], pattern(p, i), "page %lu byte %lu",
			     (unsigned long)p, (unsigned long)i);
}

Test(evict, fills_beyond_the_budget_wait_for_pages_to_leave)
{
	struct object *o;
	uint64_t most;
	int fd;

	cache.budget_pages = 8;
	cache.fill_max_pages = 4;
	o = file_object(&fd);
	filled = false;
	cr_assert_eq(fill_wait(o, 0, PAGES, on_filled, NULL, NULL), FILL_WAITING);
	cr_assert_leq(cache.cached + cache.inflight, 8, "the reads started fit in the budget");
	cr_assert_gt(cache.deferred_pages, 0, "the rest waits");
	most = run_until(&filled);
	cr_assert_leq(most, 8, "%lu pages were in memory at once", (unsigned long)most);
	cr_assert_eq(cache.deferred_pages, 0);
	cr_assert_geq(cache.stats.pages_out, PAGES - 8);
	cr_assert_geq(o->pages_out, PAGES - 8);
	/* The pages that stayed hold the file's data; those that left are absent, to be read. */
	for (uint64_t p = 0; p < PAGES; p++)
		if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY)
			check_page(o, p);
	object_unref(o);
	close(fd);
}

Test(evict, a_page_paged_out_and_read_again_is_a_refault_with_the_same_data)
{
	struct object *o;
	int fd;

	cache.budget_pages = 8;
	cache.fill_max_pages = 4;
	o = file_object(&fd);
	fill(o, 0, PAGES);
	cr_assert_eq(o->pages[0] & PAGE_STATE_MASK, PAGE_ABSENT, "the first pages went first");
	fill(o, 0, 1);
	check_page(o, 0);
	cr_assert_eq(o->refaults, 1);
	cr_assert_eq(cache.stats.refaults, 1);
	object_unref(o);
	close(fd);
}

Test(evict, pages_mapped_since_the_hand_passed_are_spared_once)
{
	struct object *o;
	int fd;

	cache.budget_pages = 24;
	o = file_object(&fd);
	fill(o, 0, 16);
	cr_assert_eq(cache.cached, 16, "below the budget, nothing goes");
	object_used(o, 0, 4);
	/* Eight more pages: some must go, and not the four a client has just used. */
	fill(o, 24, 8);
	for (uint64_t p = 0; p < 4; p++)
		check_page(o, p);
	cr_assert_eq(o->pages[4] & PAGE_STATE_MASK, PAGE_ABSENT, "an unused page went instead");
	cr_assert_leq(cache.cached, 24);
	object_unref(o);
	close(fd);
}

/* Pages 0 to 3 have copies in a nonlinear mapping. */
static bool first_four_copied(const struct object *o, uint64_t p)
{
	(void)o;
	return p < 4;
}

static void settle_none(struct object *o, uint64_t p)
{
	(void)o;
	(void)p;
}

Test(evict, home_pages_with_copies_stay_and_copies_count_in_the_budget)
{
	static const struct object_view_ops ops = { .has_copies = first_four_copied,
						    .claims_settle = settle_none };
	struct object *o;
	int fd;

	cache.budget_pages = 24;
	o = file_object(&fd);
	o->view_ops = &ops;
	fill(o, 0, 16);
	/* Eight copies elsewhere and eight more pages: twelve of the cache's must go, none of
	 * the four whose copies need them. */
	cache.copies = 8;
	fill(o, 24, 8);
	for (uint64_t p = 0; p < 4; p++)
		check_page(o, p);
	cr_assert_eq(o->pages[4] & PAGE_STATE_MASK, PAGE_ABSENT, "a page without copies went");
	cr_assert_leq(cache.cached + cache.copies, 24);
	cache.copies = 0;
	o->view_ops = NULL;
	object_unref(o);
	close(fd);
}

static bool synced;

static void on_synced(struct wb_wait *w)
{
	(void)w;
	synced = true;
}

Test(evict, a_dirty_page_is_written_back_before_it_leaves)
{
	struct wb_wait w = { .pending = 1, .done = on_synced };
	uint8_t buf[4096];
	struct object *o;
	int fd;

	cache.budget_pages = 16;
	o = file_object(&fd);
	fill(o, 0, 16);
	for (uint64_t p = 0; p < 16; p++) {
		object_page_set(o, p, PAGE_READY | PAGE_WRITABLE);
		memset(o->map + p * 4096, 0xcd, 4096);
	}
	/* Room for more: the dirty pages are written (write-protected first), then dropped. */
	fill(o, 16, 8);
	cr_assert_geq(protected_pages, 8, "pages were write-protected before they were written");
	cr_assert_geq(cache.stats.pages_written_out, 8);
	for (uint64_t p = 0; p < 16; p++) {
		cr_assert_eq(pread(fd, buf, sizeof(buf), (off_t)(p * 4096)), 4096);
		if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_ABSENT)
			cr_assert_eq(buf[100], 0xcd, "page %lu left before it was in the file",
				     (unsigned long)p);
	}
	/* Nothing is lost, whatever stayed: a last write-back writes the rest. */
	cr_assert_eq(object_writeback(o, 0, PAGES, true, &w), 0);
	wb_wait_put(&w, 0);
	synced = false;
	run_until(&synced);
	for (uint64_t p = 0; p < 16; p++) {
		cr_assert_eq(pread(fd, buf, sizeof(buf), (off_t)(p * 4096)), 4096);
		cr_assert_eq(buf[100], 0xcd);
	}
	object_unref(o);
	close(fd);
}

Test(evict, the_slack_is_a_sixteenth_of_the_budget_within_bounds)
{
	cache.budget_pages = 1024;
	cr_assert_eq(cache_slack(&cache), 64);
	cache.budget_pages = 32768;
	cr_assert_eq(cache_slack(&cache), 2048);
	cache.budget_pages = 1 << 20;
	cr_assert_eq(cache_slack(&cache), 16384);
	cache.budget_pages = 100;
	cr_assert_eq(cache_slack(&cache), 25);
}

/*
 * Shared anonymous pages through a page store of the test's own (store.h): what leaves is written
 * to the store and punched; a later fill reads it back, and its slot is freed.
 */
#define STORE_PAGES 64

struct fake_store {
	struct store store;
	uint8_t data[STORE_PAGES][4096];
	bool used[STORE_PAGES];
	uint64_t writes, reads, in_use, flushes, durable;
	uint64_t write_calls; /* writes asked, each of one run */
	int fail; /* a negative errno: what every write says */
	/* Completions to come, on the loop (an async handle wakes it): a real store's come so. */
	uv_async_t async;
	struct fake_op {
		store_done_fn done;
		void *userdata;
		int bytes;
	} ops[STORE_PAGES];
	unsigned n_ops;
};

static struct fake_store fake;

static int fake_alloc(struct store *st, uint64_t pages, uint64_t *key)
{
	(void)st;
	for (uint64_t k = 0; k + pages <= STORE_PAGES; k++) {
		uint64_t n = 0;

		while (n < pages && !fake.used[k + n])
			n++;
		if (n < pages)
			continue;
		for (n = 0; n < pages; n++)
			fake.used[k + n] = true;
		fake.in_use += pages;
		*key = k;
		return 0;
	}
	return -ENOSPC;
}

static void fake_free(struct store *st, uint64_t key, uint64_t pages)
{
	(void)st;
	for (uint64_t n = 0; n < pages; n++)
		fake.used[key + n] = false;
	fake.in_use -= pages;
}

static void fake_fire(uv_async_t *a)
{
	(void)a;
	while (fake.n_ops) {
		struct fake_op op = fake.ops[0];

		memmove(fake.ops, fake.ops + 1, --fake.n_ops * sizeof(op));
		op.done(op.userdata, op.bytes);
	}
}

static void fake_later(store_done_fn done, void *userdata, int result)
{
	cr_assert_lt(fake.n_ops, STORE_PAGES);
	fake.ops[fake.n_ops++] = (struct fake_op){ done, userdata, result };
	uv_async_send(&fake.async);
}

static int fake_write(struct store *st, uint64_t key, const void *buf, uint64_t pages,
		      store_done_fn done, void *userdata)
{
	(void)st;
	memcpy(fake.data[key], buf, pages * 4096);
	fake.writes += pages;
	fake.write_calls++;
	fake_later(done, userdata, fake.fail ? fake.fail : (int)(pages * 4096));
	return 0;
}

static int fake_read(struct store *st, uint64_t key, void *buf, uint64_t pages, store_done_fn done,
		     void *userdata)
{
	(void)st;
	memcpy(buf, fake.data[key], pages * 4096);
	fake.reads += pages;
	fake_later(done, userdata, (int)(pages * 4096));
	return 0;
}

static void fake_figures(struct store *st, uint64_t *pages, uint64_t *used)
{
	(void)st;
	*pages = STORE_PAGES;
	*used = fake.in_use;
}

static int fake_flush(struct store *st, bool durable, store_done_fn done, void *userdata)
{
	(void)st;
	fake.flushes++;
	fake.durable += durable;
	fake_later(done, userdata, 0);
	return 0;
}

static const struct store_ops fake_ops = { .alloc = fake_alloc,
					   .free = fake_free,
					   .write = fake_write,
					   .read = fake_read,
					   .figures = fake_figures,
					   .flush = fake_flush };

/* After the suite's own setup (cache_fixture_setup()). */
static void fake_setup(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.store.ops = &fake_ops;
	uv_async_init(&loop, &fake.async, fake_fire);
	cache.store = &fake.store;
}

static void fake_teardown(void)
{
	uv_close((uv_handle_t *)&fake.async, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	cache.store = NULL;
}

/* A shared anonymous object of @pages, its first @written made and written by a client (page p
 * all 0x40 + p). */
static struct object *anon_written(uint64_t pages, uint64_t written)
{
	struct object *o;

	cr_assert_eq(object_new_anon(&cache, pages * 4096, getuid(), &o), 0);
	fill(o, 0, written);
	for (uint64_t p = 0; p < written; p++) {
		object_page_set(o, p, PAGE_READY | PAGE_WRITABLE);
		memset(o->map + p * 4096, (int)(0x40 + p), 4096);
	}
	return o;
}

Test(evict, shared_anonymous_pages_go_to_the_store_and_come_back)
{
	struct object *o;

	fake_setup();
	cache.budget_pages = 16;
	o = anon_written(32, 16);
	/* Sixteen more pages: some of the first go to the store. */
	fill(o, 16, 16);
	cr_assert_gt(fake.writes, 0, "pages were written to the store");
	cr_assert_geq(protected_pages, fake.writes, "write-protected before they were written");
	cr_assert_eq(o->pages[0] & PAGE_STATE_MASK, PAGE_ABSENT, "the first page left");
	cr_assert_geq(object_slot(o, 0), 0, "and its data is in a slot");
	cr_assert_leq(cache.cached, 16);
	/* Its fill reads it back: the same bytes; the store under half full, it keeps its slot
	 * (written, it would give it up: resolve_linear(), fault.c). */
	fill(o, 0, 1);
	cr_assert_eq(o->pages[0] & PAGE_STATE_MASK, PAGE_READY);
	cr_assert_eq(fake.reads, 1);
	cr_assert_geq(object_slot(o, 0), 0, "the page read back gave up its slot");
	cr_assert_eq(o->pages[0] & PAGE_WRITABLE, 0, "a kept page is clean");
	for (uint64_t i = 0; i < 4096; i++)
		cr_assert_eq(o->map[i], 0x40, "byte %lu of the page read back", (unsigned long)i);
	cr_assert_eq(cache.stats.pages_in, 1);
	object_slot_set(o, 0, -1);
	/* Freed with the object: no slot stays taken. */
	object_unref(o);
	cr_assert_eq(fake.in_use, 0, "%lu slots still taken", (unsigned long)fake.in_use);
	fake_teardown();
}

/*
 * Pages all used since the hand last passed go out in runs once each has had its chance, not one
 * at a time: where a run ends at a used page, the hand goes on past that page (else the next run
 * started on it, took it and ended at the next used page: a write a page).
 */
Test(evict, pages_all_used_go_out_in_runs_after_their_second_chance)
{
	struct object *o;

	fake_setup();
	cache.budget_pages = 48;
	o = anon_written(64, 48);
	/* All used but the first, where the hand stands. */
	object_used(o, 1, 47);
	/* Sixteen more pages: the first ones go. */
	fill(o, 48, 16);
	cr_assert_gt(fake.writes, 0, "pages were written to the store");
	cr_assert_geq(fake.writes, 4 * fake.write_calls, "%lu pages in %lu writes",
		      (unsigned long)fake.writes, (unsigned long)fake.write_calls);
	cr_assert_leq(cache.cached, 48);
	object_unref(o);
	fake_teardown();
}

/*
 * A store nearly full, its free slots apart: runs of pages take what slots there are, shorter
 * ones; once it is full and nothing else can leave, a fill of new zeroes fails (its pages stay
 * absent: the fault ends in SIGBUS) rather than go above the budget for good, and a page read
 * back from the store still comes in.
 */
Test(evict, a_full_store_takes_its_last_slots_apart_then_new_zeroes_fail)
{
	struct object *o;
	uint64_t most;

	fake_setup();
	/* Every other slot taken: 32 free, none next to another. */
	for (uint64_t k = 0; k < STORE_PAGES; k += 2)
		fake.used[k] = true;
	fake.in_use = STORE_PAGES / 2;
	cache.budget_pages = 16;
	o = anon_written(64, 16);
	/* Thirty-two more pages, a fill each: the store's 32 slots take as many. */
	for (uint64_t p = 16; p < 48; p++)
		fill(o, p, 1);
	cr_assert_eq(fake.writes, 32, "%lu pages went to single slots", (unsigned long)fake.writes);
	cr_assert_eq(fake.in_use, STORE_PAGES);
	/* The store full and every page in memory dirty: no new page of zeroes. */
	most = fill(o, 48, 1);
	cr_assert_eq(o->pages[48] & PAGE_STATE_MASK, PAGE_ABSENT, "no page was made");
	cr_assert_leq(most, 17, "%lu pages in memory", (unsigned long)most);
	/* A page in the store comes back all the same, its slot freed for one to leave. */
	cr_assert_geq(object_slot(o, 0), 0, "the first page is in the store");
	fill(o, 0, 1);
	cr_assert_eq(o->pages[0] & PAGE_STATE_MASK, PAGE_READY);
	cr_assert_eq(o->map[0], 0x40);
	object_unref(o);
	cr_assert_eq(fake.in_use, STORE_PAGES / 2, "the object's slots were freed with it");
	for (uint64_t k = 0; k < STORE_PAGES; k += 2)
		fake.used[k] = false;
	fake.in_use = 0;
	fake_teardown();
}

/* Write back @o's pages and wait; the write-back's result. */
static int write_back(struct object *o)
{
	struct wb_wait w = { .pending = 1, .done = on_synced };

	synced = false;
	cr_assert_eq(object_writeback(o, 0, PAGES + 1, true, &w), 0);
	wb_wait_put(&w, 0);
	run_until(&synced);
	return w.ret;
}

/*
 * A file's dirty pages are written back through its page store, as shared anonymous pages go to
 * theirs: the runs to the store's write, then a durable flush for MS_SYNC; a write the store fails
 * is reported and leaves the pages dirty.
 */
Test(evict, a_files_dirty_pages_are_written_back_through_its_store)
{
	uint8_t buf[4096];
	struct object *o;
	int fd;

	fake_setup();
	o = file_object(&fd);
	o->store = &fake.store; /* the file's store is the test's */
	for (uint64_t p = 2; p <= 7; p += 5) {
		object_page_set(o, p, PAGE_READY | PAGE_WRITABLE);
		memset(o->map + p * 4096, 0xee, 4096);
	}
	cr_assert_eq(write_back(o), 0);
	cr_assert_eq(fake.writes, 2, "%lu pages went to the store", (unsigned long)fake.writes);
	cr_assert_eq(fake.data[2][0], 0xee);
	cr_assert_eq(fake.data[7][4095], 0xee);
	cr_assert_eq(fake.flushes, 1);
	cr_assert_eq(fake.durable, 1, "an MS_SYNC write-back flushes to stable storage");
	cr_assert_eq(cache.stats.bytes_written, 2 * 4096);
	cr_assert_geq(protected_pages, 2, "write-protected before they were copied");
	cr_assert_eq(o->pages[2], PAGE_READY, "written back: clean");
	cr_assert_eq(pread(fd, buf, sizeof(buf), 2 * 4096), 4096);
	cr_assert_eq(buf[0], pattern(2, 0), "nothing went around the store to the file");

	/* The store fails the write: the error comes back, and the page stays dirty. */
	fake.fail = -EIO;
	object_page_set(o, 3, PAGE_READY | PAGE_WRITABLE);
	cr_assert_eq(write_back(o), -EIO);
	cr_assert_eq(o->pages[3], PAGE_READY | PAGE_WRITABLE, "dirty again after the error");
	fake.fail = 0;
	cr_assert_eq(write_back(o), 0);
	cr_assert_eq(o->pages[3], PAGE_READY);
	o->store = NULL;
	object_unref(o);
	close(fd);
	fake_teardown();
}

/* The objects of a user over its share (share.c says by how much) give pages before others'. */
Test(evict, the_objects_of_a_user_over_its_share_give_pages_first)
{
	struct user_over u = { .uid = 7, .pages = 1000 };
	struct users_over over = { .u = &u, .n = 1 };
	struct object *mine, *theirs;
	int fd1, fd2;

	cache.budget_pages = 64;
	theirs = file_object_named("theirs", &fd2);
	theirs->owner = 8;
	mine = file_object_named("mine", &fd1);
	mine->owner = 7;
	fill(theirs, 0, 8);
	fill(mine, 0, 16);
	cr_assert_eq(cache.cached, 24);
	/* Now 24 pages is above the budget: 6 must go (the slack of a budget of 24). */
	cache.budget_pages = 20;
	(void)cache_balance(&cache, &over);
	for (uint64_t p = 0; p < 8; p++)
		check_page(theirs, p);
	cr_assert_leq(cache.cached, 20 - cache_slack(&cache) + 1, "%lu pages stayed",
		      (unsigned long)cache.cached);
	cr_assert_eq(u.pages, 1000 - (24 - cache.cached), "what the user gave is taken off");
	object_unref(mine);
	object_unref(theirs);
	close(fd1);
	close(fd2);
}

/*
 * A fill that waits for room while the pages on their way out never leave (their write does not
 * end: a client's write(2) from its own mapping of the file holds the lock the write-back waits
 * for, and its fault waits for the fill) reads on above the budget after a second.
 */
Test(evict, a_fill_waiting_on_a_write_out_that_does_not_end_goes_on_after_a_second)
{
	uint64_t over;
	struct object *o;

	fake_setup();
	cache.budget_pages = 4;
	o = anon_written(8, 4);
	filled = false;
	cr_assert_eq(fill_wait(o, 4, 1, on_filled, NULL, NULL), FILL_WAITING);
	over = cache.stats.over_budget;
	/* The writes of the page-out are queued; the loop that would end them does not run. */
	(void)cache_balance(&cache, NULL);
	(void)cache_balance(&cache, NULL);
	cr_assert_gt(fake.write_calls, 0, "nothing went out");
	cr_assert_gt(cache.deferred_pages, 0, "the fill did not wait");
	usleep(1100 * 1000);
	(void)cache_balance(&cache, NULL);
	cr_assert_eq(cache.deferred_pages, 0, "the fill still waits");
	cr_assert_eq(cache.stats.over_budget, over + 1);
	run_until(&filled);
	cr_assert_eq(o->pages[4] & PAGE_STATE_MASK, PAGE_READY);
	object_unref(o);
	fake_teardown();
}
