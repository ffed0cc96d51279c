/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backing objects: a file or a shared anonymous area, cached in a daemon-owned memfd. */
#pragma once

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"
#include "common/list.h"
#include "state.h"

struct cache;
struct object;

/*
 * What the nonlinear mappings of an object do for its cache, which knows nothing of them (view.c
 * sets them with the object's first view): whether a page has copies (its home page then stays in
 * memory), bring a page whose data is in a view's writable copy home (PAGE_AWAY; 0, or -EAGAIN to
 * try again later), punch every copy of a page, settle the library's claims on a page before the
 * daemon changes it (or all of them, before the cache follows a change of the file), and free the
 * views' per-object data with the object.
 */
struct object_view_ops {
	bool (*has_copies)(const struct object *o, uint64_t p);
	int (*restore_home)(struct object *o, uint64_t p);
	void (*drop_copies)(struct object *o, uint64_t p);
	void (*claims_settle)(struct object *o, uint64_t p);
	void (*claims_settle_all)(struct object *o);
	void (*object_free)(struct object *o);
};

enum object_kind {
	OBJECT_FILE = 1,
	OBJECT_ANON = 2,
};

/* Per-page state in object.pages[]. */
enum {
	PAGE_ABSENT = 0, /* not in the memfd, or not valid there */
	PAGE_FILLING = 1, /* a fill is writing it */
	PAGE_READY = 2, /* valid in the memfd; may be mapped into clients */
	PAGE_STATE_MASK = 3,
	PAGE_WRITABLE = 4, /* mapped into a writable shared region: a write-back candidate */
	PAGE_AWAY = 8, /* the data is in a nonlinear mapping's writable copy, see view.c */
	PAGE_CLEAN = 16, /* with PAGE_AWAY: read-only copies read from the file, which has it too */
	PAGE_STALE =
		32, /* with PAGE_FILLING: the file changed while the fill read; it reads again */
	/* With PAGE_WRITABLE: made writable ahead of any write (a writer's window), its checksum
	 * then in object.sum; the same checksum later says no write came (object_page_writable()) */
	PAGE_SUMMED = 64,
};

/* The names of object memfds after "upager:": a file's (object_file_name()) names its device and
 * inode, and its birth where the file system tells it. */
#define OBJECT_FILE_NAME_MAX 96
#define OBJECT_ANON_NAME "anon"

struct object {
	struct cache *c;
	uint64_t id;
	unsigned refs;
	enum object_kind kind;
	uid_t owner; /* the user whose request made it, charged for it (limits.c) */

	int memfd;
	uint8_t *map; /* daemon's mapping of the memfd: reserve bytes of address space */
	uint64_t reserve; /* bytes reserved at map */
	uint64_t size; /* memfd size, a multiple of the page size */
	uint8_t *
		pages; /* one state byte per page of reserve, in pages_fd: it outlives the daemon */
	int pages_fd; /* a memfd of reserve / page size bytes, or -1 (object_pages_fd()) */
	/* Kept by object_page_set(), the one place a state changes: pages PAGE_READY, and a bit
	 * per chunk of OBJECT_CHUNK pages that may hold a PAGE_WRITABLE or PAGE_AWAY page, so that
	 * write-back skips what was never written, whatever the size of the object. */
	uint64_t cached;
	uint64_t slots_held; /* pages in a slot of the swap store (object_slot_set()) */
	uint64_t *maybe_dirty;
	/* A bit per page of reserve (a sparse mapping): the page was mapped into a client since
	 * the clock's hand last passed it (object_used(), evict.c); in the second third, the
	 * page was paged out and not read again since (a later fill of it is a refault); in the
	 * last, the file has blocks for it (reserve.c). */
	uint64_t *used;
	uint64_t hand; /* the page the clock's hand looks at next in this object */
	/* OBJECT_ANON with a swap store: per page, 1 + the slot that holds its data while it is
	 * out of memory, or 0 (a sparse mapping, made with the first page-out). */
	uint32_t *slot;
	int slot_fd; /* under an fd store, the memfd of slot, or -1 (object_slots_map()) */
	/* OBJECT_FILE: per page, the checksum of a PAGE_SUMMED page's data when it was made
	 * writable (a sparse mapping, made with the first) */
	uint32_t *sum;
	struct list_head swap_outs; /* page-outs to the swap store under way (evict.c) */

	/* OBJECT_FILE */
	int fd_read; /* the first descriptor a client handed over */
	struct store *store; /* the file as a page store (object_file_store()), made at first use */
	int fd_write; /* an O_RDWR one, once a client had it; -1 before; may be fd_read */
	bool fd_write_own; /* fd_write is the daemon's own description, not a client's */
	bool holes; /* the file may have holes: first writes reserve blocks (reserve.c) */
	/* The daemon's own calls under way that change the file's times (a touch, a
	 * reservation): until they are over, a change seen on the file may be theirs. */
	unsigned own_changes;
	/* The first write-back error no msync has reported yet (0: none), over the pages
	 * [wb_err_first, wb_err_end) of the writes that failed; failed write-backs in all. */
	int wb_err;
	uint64_t wb_err_first, wb_err_end;
	uint64_t wb_errors;
	dev_t dev;
	ino_t ino;
	uint64_t file_size;
	struct timespec mtime, ctime;
	char *path;
	int watch_wd; /* its inotify watch (watch.c), or -1 */
	bool watch_stale; /* the file changed: the cache follows it when it can (watch.c) */
	bool watch_quiet; /* no page may be dirty: others' reads ignored by fanotify (watch.c) */

	uint64_t pages_read, bytes_read; /* from the backing store, over the object's life */
	uint64_t pages_out, refaults; /* pages paged out, and read again after (evict.c) */

	/* Nonlinear mappings of the object: the views' own (view.c), which the cache reaches
	 * through view_ops only. */
	struct list_head views;
	const struct object_view_ops *view_ops; /* NULL until the first view */
	void *view_data; /* the views' per-object data */
	unsigned linear_writers; /* regions that map the cache writable without write-protect */

	struct list_head link; /* daemon.objects */
	struct state_handle saved; /* its record in the saved tables (object_mark()) */
	struct list_head fills; /* struct fill.link, fills under way */
	struct list_head wb_queue; /* write-backs asked for, in order (object.c) */
	struct wb_job *wb_running; /* the one whose copy the file's store writes, or NULL */
};

/* What a client's descriptor of a file gives the daemon (file_access_probe()). */
struct file_access {
	int err; /* 0 or a negative errno */
	struct stat st;
	int flags; /* the client's description's F_GETFL */
	int reader; /* a description of the daemon's, or -1 */
	bool rw; /* reader may write back too */
	bool own; /* reader is the daemon's own description (else the client's) */
	bool holes; /* the file had a hole when probed */
	/* What tells this file from one that takes its inode number once it is deleted: its birth
	 * time (statx) and generation (FS_IOC_GETVERSION), each where the file system has it. */
	bool born_known;
	struct statx_timestamp born;
	uint32_t generation;
	char *path;
};

void file_access_probe(int client_fd, struct file_access *fa);
void object_file_name(char *buf, size_t size, const struct file_access *fa);
void file_access_release(struct file_access *fa);
int file_access_reopen(struct file_access *fa);
struct object *object_find_file(struct cache *c, const struct stat *st);
int object_open_file(struct cache *c, struct file_access *fa, uid_t owner, struct object **out);
int object_new_anon(struct cache *c, uint64_t length, uid_t owner, struct object **out);
int object_adopt(struct cache *c, struct object *saved, int memfd, int pages_fd, int fd_read,
		 int fd_write, struct object **out);
struct object *object_find(struct cache *c, uint64_t id);
struct object *object_ref(struct object *o);
struct object *object_unref(struct object *o);
int object_reopen_memfd(struct object *o, bool writable);
int object_pages_fd(struct object *o);
int fd_reopen(int fd, bool writable);
/* Someone waiting for write-backs: an msync or a munmap that replies when they are over. */
struct wb_wait {
	unsigned pending; /* write-backs not over, plus any the waiter holds itself */
	int ret; /* the first error */
	bool reports; /* an msync: it reports errors, the object's kept ones too */
	void (*done)(struct wb_wait *w); /* on the loop, when pending drops to 0 */
	struct list_head link; /* in cache.wb_done until told (object_wb_notify()) */
};

struct wb_job;

int object_writeback(struct object *o, uint64_t first, uint64_t count, bool sync,
		     struct wb_wait *w);
int object_writeback_now(struct object *o);
struct store *object_file_store(struct object *o);
void object_stop(struct object *o);
void wb_wait_put(struct wb_wait *w, int ret);
void object_wb_notify(struct cache *c);
bool object_touch_due(const struct object *o);
int object_touch_file(int fd, struct stat *st);
void object_own_change(struct object *o, const struct stat *before, const struct stat *after);
char *fd_path(int fd);
uint64_t object_reserve_for(uint64_t size);
uint64_t object_cached_pages(const struct object *o);
int object_drop(struct object *o, uint64_t first, uint64_t count);
void object_page_punch(struct object *o, uint64_t p, uint8_t state);
int object_cover(struct object *o, uint64_t end);
int object_follow_size(struct object *o, const struct stat *st);
int object_follow_file(struct object *o, const struct stat *st);
int object_refresh(struct object *o, uint64_t first, uint64_t count);
int object_invalidate(struct object *o, uint64_t first, uint64_t count);
bool object_maybe_dirty(const struct object *o, uint64_t first, uint64_t count);
void object_page_writable(struct object *o, uint64_t p, bool written);
int object_slots_map(struct object *o);
int object_slots_claim_all(struct cache *c);
void object_slot_set(struct object *o, uint64_t p, int64_t slot);

/* No write-back of the object is asked for or running. */
static inline bool object_wb_idle(const struct object *o)
{
	return !o->wb_running && list_empty(&o->wb_queue);
}

static inline uint64_t object_pages(const struct object *o)
{
	return o->size >> 12;
}

/* Bring page @p home from a view's copy if its data is there: 0, or -EAGAIN to try later. */
static inline int object_restore_home(struct object *o, uint64_t p)
{
	return (o->pages[p] & PAGE_AWAY) && o->view_ops ? o->view_ops->restore_home(o, p) : 0;
}

#define OBJECT_CHUNK_SHIFT 12 /* a chunk of object.maybe_dirty is 4096 pages */
#define OBJECT_CHUNK (1ULL << OBJECT_CHUNK_SHIFT)

static inline bool object_chunk_maybe_dirty(const struct object *o, uint64_t p)
{
	uint64_t c = p >> OBJECT_CHUNK_SHIFT;

	return o->maybe_dirty[c >> 6] & (1ULL << (c & 63));
}

static inline void object_chunk_mark(struct object *o, uint64_t p, bool dirty)
{
	uint64_t c = p >> OBJECT_CHUNK_SHIFT;

	if (dirty)
		o->maybe_dirty[c >> 6] |= 1ULL << (c & 63);
	else
		o->maybe_dirty[c >> 6] &= ~(1ULL << (c & 63));
}

void object_may_dirty(struct object *o);

/** object_page_set() - the state of page @p becomes @state: the one place a state changes */
static inline void object_page_set(struct object *o, uint64_t p, uint8_t state)
{
	bool was = (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY;
	bool is = (state & PAGE_STATE_MASK) == PAGE_READY;

	if (is && !was) {
		o->cached++;
		o->c->cached++;
	} else if (was && !is) {
		o->cached--;
		o->c->cached--;
	}
	if (!(state & PAGE_WRITABLE))
		state &= (uint8_t)~PAGE_SUMMED;
	if (state & (PAGE_WRITABLE | PAGE_AWAY)) {
		object_chunk_mark(o, p, true);
		if (o->watch_quiet)
			object_may_dirty(o);
	}
	o->pages[p] = state;
}

static inline bool object_bit(const uint64_t *bits, uint64_t p)
{
	return bits[p >> 6] & (1ULL << (p & 63));
}

static inline void object_bit_set(uint64_t *bits, uint64_t p, bool on)
{
	if (on)
		bits[p >> 6] |= 1ULL << (p & 63);
	else
		bits[p >> 6] &= ~(1ULL << (p & 63));
}

/* The second third of object.used: pages paged out and not read again since. */
static inline uint64_t *object_out_bits(const struct object *o)
{
	return o->used + (((o->reserve >> 12) + 63) >> 6);
}

/* The last third of object.used: pages the file has blocks for (reserve.c). */
static inline uint64_t *object_backed_bits(const struct object *o)
{
	return o->used + 2 * (((o->reserve >> 12) + 63) >> 6);
}

/* The swap slot that holds page @p of @o, or -1. */
static inline int64_t object_slot(const struct object *o, uint64_t p)
{
	return o->slot && o->slot[p] ? (int64_t)o->slot[p] - 1 : -1;
}

/* Page @p of @o was never made, or was dropped: absent, and in no swap slot. */
static inline bool object_page_blank(const struct object *o, uint64_t p)
{
	return o->pages[p] == PAGE_ABSENT && object_slot(o, p) < 0;
}

/** object_used() - pages [p, p+n) were mapped into a client: the clock spares them once */
static inline void object_used(struct object *o, uint64_t p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		object_bit_set(o->used, p + i, true);
}

struct fdstore_passed;
struct state;
struct state_io;
void object_mark(struct object *o);
void object_load(struct cache *c, struct state_io *io, struct fdstore_passed *p);
