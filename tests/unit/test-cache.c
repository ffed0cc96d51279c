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
#include <unistd.h>
#include <uv.h>

#include "daemon/cache.h"
#include "daemon/fill.h"
#include "daemon/object.h"
#include "daemon/ring.h"
#include "daemon/worker.h"

#define PAGES 40

static uv_loop_t loop;
static struct cache cache;
static unsigned stored, unstored, touched, protected_pages;
static char dir[] = "/tmp/upager-cache-XXXXXX";

static int store_fd(struct cache *c, int fd, const char *kind, uint64_t id)
{
	(void)c, (void)fd, (void)kind, (void)id;
	stored++;
	return 0;
}

static void unstore_fd(struct cache *c, const char *kind, uint64_t id)
{
	(void)c, (void)kind, (void)id;
	unstored++;
}

static void touch(struct cache *c)
{
	(void)c;
	touched++;
}

static bool protect(struct object *o, uint64_t first, uint64_t count)
{
	(void)o, (void)first;
	protected_pages += (unsigned)count;
	return true;
}

static const struct cache_hooks hooks = { store_fd, unstore_fd, touch, protect };

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(uv_loop_init(&loop), 0);
	cache = (struct cache){ .fill_max_pages = 16, .hooks = &hooks };
	list_init(&cache.objects);
	cr_assert_eq(ring_new(&loop, 64, &cache.ring), 0);
	cr_assert_eq(worker_pool_new(&loop, 2, 2, &cache.workers), 0);
}

static void teardown(void)
{
	ring_free(cache.ring);
	worker_pool_free(cache.workers);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
}

TestSuite(cache, .init = setup, .fini = teardown);

static uint8_t pattern(uint64_t page, uint64_t i)
{
	return (uint8_t)(page * 7 + i / 512 + 1);
}

/* A file of PAGES pages and a tail of 100 bytes, each page its own pattern; its object. */
static struct object *file_object(int *fdp)
{
	char path[128];
	uint8_t buf[4096];
	struct file_access fa;
	struct object *o;
	int fd;

	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	for (uint64_t p = 0; p <= PAGES; p++) {
		for (uint64_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(p, i);
		cr_assert_eq(pwrite(fd, buf, p < PAGES ? 4096 : 100, (off_t)(p * 4096)),
			     p < PAGES ? 4096 : 100);
	}
	file_access_probe(fd, &fa);
	cr_assert_eq(fa.err, 0);
	cr_assert_eq(object_open_file(&cache, &fa, getuid(), &o), 0);
	file_access_release(&fa);
	*fdp = fd;
	return o;
}

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
