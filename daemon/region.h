/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A space's region table: non-overlapping ranges of one client address space, in a balanced tree
 * ordered by address. The table is a container only: what a region refers to (its object, its view)
 * is held and released through the two functions the owner of the table gives it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/avl.h"
#include "state.h"

struct object;
struct view;

struct region {
	uint64_t start, length;
	uint64_t offset; /* into the object, bytes */
	uint32_t prot, flags; /* as the client asked for them */
	struct object *obj; /* NULL: private anonymous */
	struct view *view; /* a nonlinear mapping's view, or NULL */
	uint64_t view_index; /* view page at start */
	uint64_t view_hand; /* its page where the sweep of copies goes on (view-out.c) */
	bool shared; /* mapped MAP_SHARED from the memfd */
	bool may_write; /* shared and the client may write the object */
	bool wp; /* may write, mapped without PROT_WRITE: pages go in write-protected,
			       * so that a write after mprotect() is seen */
	/* MAP_GROWSDOWN (grow.c): the guard page right below start (0: none, the mapping cannot
	 * grow), the sentinel page below it (0: none), the start the client was given, and the
	 * most the mapping may grow to (0: no limit). */
	uint64_t guard;
	uint64_t sentinel;
	uint64_t base;
	uint64_t max_length;
	uint64_t grown_pages;
	uint64_t private_out, private_in; /* its private pages paged out, and read back */
	uint64_t refused_until_ns; /* its client refused a whole DROP: no page-out before then */
	uint64_t refused_for_ns; /* for how long, doubled at each refusal in a row */
	/* Private anonymous pages UFFDIO_MOVE refused for their mapping's protection (mprotect()
	 * took PROT_WRITE: the move takes writable mappings only): its DROPs go in place. */
	bool drop_in_place;
	/* A private mapping of a file that shrank: its copies from object offset cut_offset on
	 * are past the end, and go (private.c), as the kernel's truncation unmaps them. */
	bool cutting;
	uint64_t cut_offset;
	/* Figures of this mapping. */
	uint64_t faults;
	uint64_t pages_populated;
	uint64_t pages_read, bytes_read; /* reads this mapping's faults started */
	uint64_t latency_sum_ns, latency_max_ns;
	/* Sequential read-ahead: the object page a sequential reader touches next, and the window.
	 * In a private anonymous mapping (private.c): the address after the last run of pages
	 * touched in order (zeroed for a writer, or read back), and the pages of that run. */
	uint64_t ra_next;
	uint32_t ra_window;
	/* The same for a sequential writer of pages that came in write-protected (fault.c). */
	uint64_t wr_next;
	uint32_t wr_window;
	/* A shared anonymous mapping's writer of new pages in order (fault.c): the pages of its run
	 * ending at ra_next (zero-ahead.h). */
	uint32_t zero_run;
	struct avl_node node; /* in the table, by start */
	struct state_handle saved; /* its record in the saved tables; a copy starts without one */
};

/*
 * What the owner of a table does when a region is copied (a split, a fork) and when a copy goes;
 * and when a region of the table is new or changed, and when it leaves the table.
 */
struct region_table;
struct region_ops {
	void (*hold)(struct region *r);
	void (*release)(struct region *r);
	void (*changed)(struct region_table *t, struct region *r);
	void (*gone)(struct region_table *t, struct region *r);
};

struct region_table {
	struct avl_tree tree;
	size_t n; /* regions */
	uint64_t bytes; /* their lengths together */
	const struct region_ops *ops;
};

/* Called for each piece of a region that leaves the table. */
typedef void (*region_drop_fn)(struct region *piece, void *userdata);

void region_table_init(struct region_table *t, const struct region_ops *ops);
void region_table_deinit(struct region_table *t, region_drop_fn drop, void *userdata);
struct region *region_find(const struct region_table *t, uint64_t addr);
struct region *region_lower(const struct region_table *t, uint64_t addr);
struct region *region_next(const struct region_table *t, const struct region *r);
int region_insert(struct region_table *t, const struct region *r);
int region_remove_range(struct region_table *t, uint64_t start, uint64_t end, region_drop_fn drop,
			void *userdata);
void region_resize(struct region_table *t, struct region *r, uint64_t start, uint64_t end);
int region_move(struct region_table *t, uint64_t from, uint64_t to, uint64_t len);
int region_copy(struct region_table *t, uint64_t from, uint64_t to, uint64_t len);
int region_table_copy(struct region_table *dst, const struct region_table *src);

/* Every region of table t, in address order; r may not leave the table inside the loop. */
#define region_for_each(r, t) for (r = region_lower(t, 0); r; r = region_next(t, r))

/* Every region of table t that overlaps [lo, hi), in address order. */
#define region_for_each_in(r, t, lo, hi) \
	for (r = region_lower(t, lo); r && r->start < (hi); r = region_next(t, r))

static inline uint64_t region_end(const struct region *r)
{
	return r->start + r->length;
}

struct state_io;
void region_fields(struct state_io *io, struct region *r, uint64_t *space_id, uint64_t *obj_id,
		   uint64_t *view_id);
