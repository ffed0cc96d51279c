// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The cache alone: objects and fills over a real file, a real io_uring and real worker threads,
 * with no daemon around them. The cache reaches the daemon only through its hooks, which here
 * count what they are told.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/cache.h"
#include "daemon/fill.h"
#include "daemon/object.h"
#include "daemon/ring.h"
#include "daemon/worker.h"
#include "cache-fixture.h"

TestSuite(cache, .init = cache_fixture_setup, .fini = cache_fixture_teardown);

static bool filled;

static void on_filled(void *userdata)
{
	(void)userdata;
	filled = true;
}

Test(cache, an_object_reads_its_file_into_the_cache_and_counts_it)
{
	struct object *o;
	uint64_t started = 0;
	int fd;

	o = file_object(&fd);
	cr_assert_eq(cache.n_objects, 1);
	cr_assert_gt(stored, 0, "the object's descriptors went to the fd store hook");
	cr_assert_gt(touched, 0);
	cr_assert_eq(object_pages(o), PAGES + 1);
	cr_assert_eq(object_cached_pages(o), 0);
	cr_assert_eq(fill_ready_run(o, 0, 1), 0);

	filled = false;
	cr_assert_eq(fill_wait(o, 0, PAGES + 1, on_filled, NULL, &started), FILL_WAITING);
	cr_assert_eq(started, PAGES + 1);
	while (!filled)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(fill_ready_run(o, 0, PAGES + 1), PAGES + 1, "every page is ready");
	cr_assert_eq(object_cached_pages(o), PAGES + 1);
	for (uint64_t p = 0; p <= PAGES; p++)
		for (uint64_t i = 0; i < 4096; i += 511) {
			uint8_t want = p < PAGES || i < 100 ? pattern(p, i) : 0;

			cr_assert_eq(o->map[p * 4096 + i], want, "page %lu byte %lu",
				     (unsigned long)p, (unsigned long)i);
		}
	cr_assert_geq(cache.stats.pages_read, PAGES + 1);
	object_unref(o);
	cr_assert_eq(cache.n_objects, 0);
	cr_assert_gt(unstored, 0);
	close(fd);
}

/*
 * A write to the file while a fill reads it (the writer's object_refresh() comes between the
 * read and the fill's end): the page the fill read before the write is not taken for ready; it
 * is read again, and shows the written bytes.
 */
Test(cache, a_page_written_while_its_fill_reads_is_read_again)
{
	uint64_t started = 0, read_before;
	uint8_t buf[4096];
	struct object *o;
	int fd;

	/* One fill of the whole file: read into a buffer, then written into the memfd. (Split in
	 * several, a fill could be over, its page ready, before the last read ends: the write
	 * would then drop that page, not make its fill read it again.) */
	cache.fill_max_pages = PAGES + 1;
	o = file_object(&fd);
	filled = false;
	read_before = cache.stats.bytes_read;
	cr_assert_eq(fill_wait(o, 0, PAGES + 1, on_filled, NULL, &started), FILL_WAITING);
	while (cache.stats.bytes_read - read_before < PAGES * 4096 + 100 && !filled)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_not(filled, "the fill ended with its read, not after the write into the memfd");
	memset(buf, 0xab, sizeof(buf));
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 3 * 4096), 4096);
	cr_assert_eq(object_refresh(o, 3, 1), 0);
	while (!filled)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(fill_ready_run(o, 0, PAGES + 1), PAGES + 1, "every page is ready");
	for (uint64_t i = 0; i < 4096; i += 511)
		cr_assert_eq(o->map[3 * 4096 + i], 0xab, "byte %lu: the bytes before the write",
			     (unsigned long)i);
	cr_assert_eq(o->map[4 * 4096], pattern(4, 0));
	object_unref(o);
	close(fd);
}

static bool synced;

static void on_synced(struct wb_wait *w)
{
	(void)w;
	synced = true;
}

Test(cache, write_back_writes_only_the_pages_written_and_protects_them_first)
{
	struct wb_wait w = { .pending = 1, .done = on_synced };
	uint8_t buf[4096];
	struct object *o;
	int fd;

	o = file_object(&fd);
	/* Two pages written through a writable mapping: the fault path marks them so. */
	for (uint64_t p = 3; p <= 4; p++) {
		object_page_set(o, p, PAGE_READY | PAGE_WRITABLE);
		memset(o->map + p * 4096, 0xab, 4096);
	}
	synced = false;
	cr_assert_eq(object_writeback(o, 0, PAGES + 1, true, &w), 0);
	wb_wait_put(&w, 0);
	while (!synced)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(w.ret, 0);
	cr_assert_eq(protected_pages, 2, "the pages were write-protected before they were copied");
	cr_assert_eq(cache.stats.bytes_written, 2 * 4096);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 3 * 4096), 4096);
	cr_assert_eq(buf[0], 0xab);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 5 * 4096), 4096);
	cr_assert_eq(buf[0], pattern(5, 0), "a page not written is left alone");
	/* Written back and protected: clean, so a second write-back writes nothing. */
	w = (struct wb_wait){ .pending = 1, .done = on_synced };
	synced = false;
	cr_assert_eq(object_writeback(o, 0, PAGES + 1, true, &w), 0);
	wb_wait_put(&w, 0);
	while (!synced)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(cache.stats.bytes_written, 2 * 4096, "nothing more was written");
	object_unref(o);
	close(fd);
}

/*
 * A daemon that stops writes back on its own thread: the write-backs asked for are over, and the
 * dirty pages are in the file when object_writeback_now() returns, the loop never run; the tail of
 * the last page, past the file's end, is not written.
 */
Test(cache, a_stopping_daemon_writes_back_at_once_and_never_past_the_end)
{
	struct wb_wait w = { .pending = 1, .done = on_synced };
	uint8_t buf[4096];
	struct stat st;
	struct object *o;
	int fd;

	o = file_object(&fd);
	for (uint64_t p = 1; p <= PAGES; p += PAGES - 1) {
		object_page_set(o, p, PAGE_READY | PAGE_WRITABLE);
		memset(o->map + p * 4096, 0x5a, 4096);
	}
	cache.stopping = true;
	synced = false;
	cr_assert_eq(object_writeback(o, 0, PAGES + 1, true, &w), 0);
	wb_wait_put(&w, 0);
	cr_assert_eq(object_writeback_now(o), 0);
	object_wb_notify(&cache);
	cr_assert(synced, "the write-back asked for is over");
	cr_assert_eq(pread(fd, buf, sizeof(buf), 4096), 4096);
	cr_assert_eq(buf[4095], 0x5a);
	cr_assert_eq(pread(fd, buf, sizeof(buf), PAGES * 4096), 100);
	cr_assert_eq(buf[99], 0x5a);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, PAGES * 4096 + 100, "nothing was written past the end");
	cr_assert_eq(cache.stats.bytes_written, 4096 + 100, "%lu",
		     (unsigned long)cache.stats.bytes_written);
	cache.stopping = false;
	object_unref(o);
	close(fd);
}

/*
 * A waiter whose done drops the last reference of the object (a reader's pre-content wait whose
 * writer died meanwhile): the object goes once the write-back is over, not in the middle of it.
 * Its done ran inside the write-back's end, which went on with the object it had freed (the
 * daemon died of SIGSEGV, found by the third-party audit).
 */
static struct object *held;

static void drop_held(struct wb_wait *w)
{
	(void)w;
	held = object_unref(held);
	synced = true;
}

Test(cache, a_waiter_that_drops_the_last_reference_frees_the_object_after_its_write_back)
{
	struct wb_wait w = { .pending = 1, .done = drop_held };
	struct object *o;
	int fd;

	o = file_object(&fd);
	object_page_set(o, 1, PAGE_READY | PAGE_WRITABLE);
	memset(o->map + 4096, 0x5a, 4096);
	held = object_ref(o);
	synced = false;
	cr_assert_eq(object_writeback(o, 0, PAGES + 1, false, &w), 0);
	wb_wait_put(&w, 0);
	object_unref(o); /* the writer is gone: the waiter's reference is the last */
	while (!synced)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_eq(cache.stats.bytes_written, 4096);
	cr_assert(list_empty(&cache.objects), "the object is freed");
	close(fd);
}
