// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The cache alone, for the tests of its modules: a real file, a real io_uring and real worker
 * threads, with no daemon around them. The cache reaches the daemon only through its hooks, which
 * here count what they are told.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cache-fixture.h"
#include "daemon/object.h"
#include "daemon/ring.h"
#include "daemon/worker.h"

uv_loop_t loop;
struct cache cache;
unsigned stored, unstored, touched, protected_pages;
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

/* As the daemon's turn of the loop: the waiters whose write-backs are over are told. */
static uv_check_t turn;

static void on_turn(uv_check_t *h)
{
	(void)h;
	object_wb_notify(&cache);
}

void cache_fixture_setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(uv_loop_init(&loop), 0);
	cache = (struct cache){ .fill_max_pages = 16, .hooks = &hooks };
	list_init(&cache.objects);
	list_init(&cache.deferred);
	list_init(&cache.wb_done);
	cr_assert_eq(ring_new(&loop, 64, &cache.ring), 0);
	cr_assert_eq(worker_pool_new(&loop, 2, 2, &cache.workers), 0);
	uv_check_init(&loop, &turn);
	uv_check_start(&turn, on_turn);
}

void cache_fixture_teardown(void)
{
	ring_free(cache.ring);
	worker_pool_free(cache.workers);
	uv_check_stop(&turn);
	uv_close((uv_handle_t *)&turn, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
}

uint8_t pattern(uint64_t page, uint64_t i)
{
	return (uint8_t)(page * 7 + i / 512 + 1);
}

/* A file of PAGES pages and a tail of 100 bytes, each page its own pattern; its object. */
struct object *file_object(int *fdp)
{
	return file_object_named("f", fdp);
}

struct object *file_object_named(const char *name, int *fdp)
{
	char path[128];
	uint8_t buf[4096];
	struct file_access fa;
	struct object *o;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
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
