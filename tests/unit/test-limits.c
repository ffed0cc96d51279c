// SPDX-License-Identifier: LGPL-2.1-or-later
/* Per-user limits, counted from the daemon's tables: sessions, objects, spaces and their regions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "daemon/context.h"
#include "daemon/limits.h"
#include "daemon/object.h"
#include "daemon/space.h"

static struct daemon d;

static void setup(void)
{
	memset(&d, 0, sizeof(d));
	list_init(&d.sessions);
	list_init(&d.spaces);
	list_init(&d.cache.objects);
	d.config.limits = (struct user_limits){
		.connections = 2, .objects = 1, .mappings = 3, .mapped = 10 * 4096
	};
}

TestSuite(limits, .init = setup);

static struct object objects[3];
static struct space spaces[2];

Test(limits, connections_of_a_user_are_bounded)
{
	/* The limit here is 2 (setup()); session.c counts the user's connections. */
	cr_assert_eq(limits_connection(&d, 1000, 1), 0);
	cr_assert_eq(limits_connection(&d, 1000, 2), -EMFILE);
	cr_assert_eq(limits_connection(&d, 0, 1000), 0, "root has no limit");
	d.config.limits.connections = 0;
	cr_assert_eq(limits_connection(&d, 1000, 1000), 0, "0 is no limit");
}

Test(limits, caches_are_charged_to_the_user_that_made_them)
{
	objects[0].owner = 1000;
	list_add_tail(&objects[0].link, &d.cache.objects);
	cr_assert_eq(limits_object(&d, 1000, 4096), -ENFILE);
	cr_assert_eq(limits_object(&d, 1001, 4096), 0);
	objects[1].owner = 0;
	list_add_tail(&objects[1].link, &d.cache.objects);
	cr_assert_eq(limits_object(&d, 0, 4096), 0);
}

/* The daemon maps each cache whole: their sizes count against the user's bytes, mapped or not. */
Test(limits, the_sizes_of_a_users_caches_count_against_its_bytes)
{
	d.config.limits.objects = 0;
	objects[0].owner = 1000;
	objects[0].size = 6 * 4096;
	list_add_tail(&objects[0].link, &d.cache.objects);
	/* 10 pages in all (setup()): 4 more fit, 5 do not. */
	cr_assert_eq(limits_object(&d, 1000, 4 * 4096), 0);
	cr_assert_eq(limits_object(&d, 1000, 5 * 4096), -ENOMEM);
	cr_assert_eq(limits_object(&d, 1001, 1ULL << 44), -ENOMEM, "a sparse file of 16 TiB");
	cr_assert_eq(limits_object(&d, 0, 1ULL << 44), 0, "root has no limit");
	d.config.limits.mapped = 0;
	cr_assert_eq(limits_object(&d, 1000, 1ULL << 44), 0, "0 is no limit");
}

static void add_space(int i, uid_t uid, size_t n, uint64_t pages_each)
{
	spaces[i].uid = uid;
	spaces[i].regions.n = n;
	spaces[i].regions.bytes = n * pages_each * 4096;
	list_add_tail(&spaces[i].link, &d.spaces);
}

Test(limits, mappings_and_bytes_count_every_process_of_the_user)
{
	add_space(0, 1000, 1, 2);
	add_space(1, 1000, 1, 2);
	/* 2 mappings of 4 pages: a third of 6 pages fits, of 7 does not. */
	cr_assert_eq(limits_mapping(&d, 1000, 6 * 4096), 0);
	cr_assert_eq(limits_mapping(&d, 1000, 7 * 4096), -ENOMEM);
	spaces[1].regions.n = 2;
	spaces[1].regions.bytes += 2 * 4096;
	cr_assert_eq(limits_mapping(&d, 1000, 4096), -ENOMEM, "a fourth mapping");
	/* A space that is gone holds nothing. */
	spaces[1].dead = true;
	cr_assert_eq(limits_mapping(&d, 1000, 4096), 0);
	cr_assert_eq(limits_mapping(&d, 0, 1ULL << 40), 0, "root has no limit");
}

Test(limits, a_fork_counts_its_copies_of_the_parent_s_mappings_not_their_bytes)
{
	add_space(0, 1000, 1, 1 << 20);
	/* 1 of 3 mappings: a child with 2 more fits, with 3 does not; their 4 GiB, past the 40 KiB
	 * the user may map, count for nothing (a fork costs the daemon a region each, no cache). */
	cr_assert_eq(limits_fork(&d, 1000, 2, 0), 0);
	cr_assert_eq(limits_fork(&d, 1000, 3, 0), -ENOMEM);
	cr_assert_eq(limits_fork(&d, 0, 1000000, 0), 0, "root has no limit");
}

Test(limits, a_fork_counts_the_copy_of_its_parent_s_private_page_table)
{
	/* 4 GiB mapped at most: 16,384 chunks of 256 KiB, of which its processes may hold two
	 * each; 1 MiB: 4,096 at least. */
	d.config.limits.mapped = 4ULL << 30;
	add_space(0, 1000, 1, 1);
	spaces[0].priv.table.n_chunks = 20000;
	cr_assert_eq(limits_fork(&d, 1000, 1, 12768), 0);
	cr_assert_eq(limits_fork(&d, 1000, 1, 12769), -ENOMEM, "32,769 chunks of 32,768");
	d.config.limits.mapped = 1 << 20;
	spaces[0].priv.table.n_chunks = 4000;
	cr_assert_eq(limits_fork(&d, 1000, 1, 96), 0);
	cr_assert_eq(limits_fork(&d, 1000, 1, 97), -ENOMEM, "past the floor");
	cr_assert_eq(limits_fork(&d, 0, 1, 1000000), 0, "root has no limit");
	d.config.limits.mapped = 0;
	cr_assert_eq(limits_fork(&d, 1000, 1, 1000000), 0, "0 is no limit");
}
