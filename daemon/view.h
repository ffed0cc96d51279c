/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Views: the nonlinear mappings of upager_remap_file_pages(). A view is a memfd of the mapping's
 * own, linear in the mapping, whose page i holds a copy of the file page table[i]. Copies of one
 * file page are kept coherent by write-invalidate: many read-only copies, or one writable copy.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "state.h"
#include <sys/types.h>

#include "proto/view-table.h"

struct daemon;
struct object;
struct region;
struct space;

/*
 * The client address space a view is mapped in, as the view knows it: enough to write-protect a
 * page there. space_host() gives it; none (uffd -1) once that space is gone.
 */
struct view_host {
	uint64_t id; /* the space's name in the fd store, 0: none */
	int uffd;
	pid_t pid;
};

enum {
	COPY_NONE = 0,
	COPY_RO = 1, /* mapped write-protected into the client */
	COPY_RW = 2, /* the one writable copy; the home page is not valid */
};

struct view {
	uint64_t id; /* its name in the fd store */
	unsigned refs; /* regions that map it */
	struct object *obj; /* a reference */
	int memfd;
	uint8_t *map; /* the daemon's mapping of the memfd */
	uint64_t pages;
	uint64_t base; /* object page of view page 0 in a linear mapping */
	int meta_fd; /* a memfd holding table and copy, so that they outlive the daemon */
	uint64_t *table; /* view page -> object page; the daemon's own word for held pages */
	uint8_t *copy; /* COPY_* per view page, after the table in meta_fd */
	int table_memfd; /* the table shared with the client's library, in the fd store too */
	struct upager_view_table *shared; /* the daemon's mapping of it */
	uint64_t shared_size; /* its size; 0 in the saved state of a daemon that shared none */
	struct view_host host; /* the space that maps it */
	uint64_t start; /* where view page 0 is (or would be) in that space */
	bool may_write;
	bool local; /* the library may remap pages without copies itself (view_publish()) */
	bool claims_stalled; /* a claim of the library's kept the daemon waiting: wait no more */
	uint64_t *touched; /* a bit per page: faulted on since the sweep of copies met it */
	struct list_head link; /* obj->views */
	struct state_handle saved; /* its record in the saved tables (view_mark()) */
};

int view_new(struct object *o, uint64_t pages, uint64_t first_page, bool may_write,
	     struct view **out);
int view_adopt(struct object *o, const struct view *saved, int memfd, int meta_fd, int table_fd,
	       struct view **out);
struct view *view_find(struct daemon *d, uint64_t id);
struct view *view_ref(struct view *v);
struct view *view_unref(struct view *v);
int view_reopen_memfd(struct view *v);
int view_table_fd(struct view *v);
void view_attach(struct view *v, const struct view_host *h, uint64_t start);
void view_publish(struct view *v, bool local);
uint64_t view_page(const struct view *v, uint64_t i);
void view_drop_range(struct view *v, uint64_t first, uint64_t count);
uint64_t view_copies_out(struct view *v, uint64_t first, uint64_t count);
void view_touch(struct view *v, uint64_t i);
bool view_take_touch(struct view *v, uint64_t i);
void view_remap(struct view *v, uint64_t first, uint64_t count, uint64_t pgoff);
uint64_t view_ranges(const struct view *v, uint64_t first, uint64_t count);

int view_restore_home(struct object *o, uint64_t p);
void view_invalidate_copies(struct object *o, uint64_t p, const struct view *keep,
			    uint64_t keep_index);
bool view_has_copies(const struct object *o, uint64_t p);
void view_claims_settle(struct object *o, uint64_t p);

struct daemon;
struct fdstore_passed;
struct state;
struct state_io;
void view_mark(struct view *v);
void view_load(struct daemon *d, struct state_io *io, struct fdstore_passed *p,
	       bool (*host_of)(struct daemon *d, uint64_t id, struct view_host *h));
