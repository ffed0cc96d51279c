// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Nonlinear mappings without extra VMAs. A shmem VMA maps its file linearly, so the client maps a
 * view memfd of its own over the whole mapping and page i of the view holds a copy of file page
 * table[i]: a remap only rewrites the table and drops the copies it replaces, whatever the number
 * of ranges; the client keeps one VMA.
 *
 * Copies are kept coherent with the object's cache (the home page, which linear mappings map)
 * by write-invalidate, as in distributed shared memory:
 *  - a file page has any number of read-only copies, mapped write-protected into their clients,
 *    and then a valid home page, mapped write-protected into linear mappings too; or
 *  - exactly one writable copy, and no valid home page (PAGE_AWAY: the home page was punched out
 *    of the memfd, which unmaps it from every linear mapping);
 *  - read-only copies read straight from the kernel's page cache by a populating remap, and no
 *    home page yet (PAGE_AWAY | PAGE_CLEAN: the file has the data too, a write to a copy clears
 *    PAGE_CLEAN).
 * A write to a read-only copy (a write-protect fault) punches every other copy and the home page
 * and makes the copy writable. Anything that needs the home page (a linear fault, a new copy,
 * write-back) first copies the writable copy home and write-protects it again (view_restore_home).
 * A write through a linear mapping to a page that has copies punches the copies.
 * A page with no copy pays nothing of this.
 *
 * The table lives twice. The shared table (a memfd the client's library maps too) says which object
 * page each view page shows; the library rewrites the entries of pages without a copy itself, and
 * the daemon marks an entry HELD while its page has a copy. The daemon's table and the copy states
 * are a memfd only the daemon has (the daemon's table names the object page of each held page).
 * Both memfds are in the fd store, so that a daemon that takes over after a crash finds them as
 * they were, and rebuilds the index of copies and the HELD bits from them (adopt_copies()).
 *
 * This file keeps views, their tables and the index of copies, and the coherence rules above;
 * view-copy.c makes the copies (faults, populate, and the copies the library makes alone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "proto/claim.h"
#include "context.h"
#include "fdstore.h"
#include "fill.h"
#include "log.h"
#include "memfd.h"
#include "object.h"
#include "region.h"
#include "state.h"
#include "uffdio.h"
#include "view-internal.h"
#include "view.h"

struct copyref {
	struct view *v;
	uint64_t index;
};

/* The copies of one object page. */
struct copyset {
	uint32_t n, cap;
	struct copyref e[];
};

/*
 * The views' own data of an object (object.view_data): per object page, its copies, in chunks of
 * COPIES_CHUNK pages made with their first copy and freed with their last, so that the index costs
 * what the copies do, not the size of the object (a sparse file of terabytes).
 */
#define COPIES_CHUNK_SHIFT 9
#define COPIES_CHUNK (1u << COPIES_CHUNK_SHIFT)

struct copies_chunk {
	uint32_t pages; /* of its pages, those with copies */
	struct copyset *page[COPIES_CHUNK];
};

struct object_copies {
	struct copies_chunk **chunks; /* NULL where no page has a copy */
	uint64_t n_chunks;
};

static struct copies_chunk *chunk_of(const struct object *o, uint64_t p)
{
	const struct object_copies *oc = o->view_data;
	uint64_t c = p >> COPIES_CHUNK_SHIFT;

	return oc && c < oc->n_chunks ? oc->chunks[c] : NULL;
}

static struct copyset *copies_of(const struct object *o, uint64_t p)
{
	const struct copies_chunk *ch = chunk_of(o, p);

	return ch ? ch->page[p & (COPIES_CHUNK - 1)] : NULL;
}

/* Page @p of @o has a copy set now (@cs), or none any more (NULL). */
static int copies_set(struct object *o, uint64_t p, struct copyset *cs)
{
	struct object_copies *oc = o->view_data;
	uint64_t c = p >> COPIES_CHUNK_SHIFT;
	struct copies_chunk *ch;

	if (c >= oc->n_chunks) {
		uint64_t n = MAX((object_pages(o) + COPIES_CHUNK - 1) >> COPIES_CHUNK_SHIFT, c + 1);
		struct copies_chunk **v = realloc(oc->chunks, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		memset(v + oc->n_chunks, 0, (n - oc->n_chunks) * sizeof(*v));
		oc->chunks = v;
		oc->n_chunks = n;
	}
	ch = oc->chunks[c];
	if (!ch) {
		if (!cs)
			return 0;
		ch = oc->chunks[c] = calloc(1, sizeof(*ch));
		if (!ch)
			return -ENOMEM;
	}
	ch->pages += (cs != NULL) - (ch->page[p & (COPIES_CHUNK - 1)] != NULL);
	ch->page[p & (COPIES_CHUNK - 1)] = cs;
	if (ch->pages == 0) {
		free(ch);
		oc->chunks[c] = NULL;
	}
	return 0;
}

/** view_has_copies() - whether object page @p has a copy in some view */
bool view_has_copies(const struct object *o, uint64_t p)
{
	struct copyset *cs = copies_of(o, p);

	return cs && cs->n > 0;
}

int view_copies_add(struct object *o, uint64_t p, struct view *v, uint64_t index)
{
	struct copyset *cs = copies_of(o, p);

	if (!cs || cs->n == cs->cap) {
		uint32_t cap = cs ? cs->cap * 2 : 2;
		struct copyset *n = realloc(cs, sizeof(*n) + cap * sizeof(n->e[0]));

		if (!n)
			return -ENOMEM;
		if (!cs)
			n->n = 0;
		n->cap = cap;
		if (copies_set(o, p, n) < 0) {
			if (!cs)
				free(n);
			return -ENOMEM;
		}
		cs = n;
	}
	cs->e[cs->n++] = (struct copyref){ v, index };
	o->c->copies++;
	return 0;
}

static void copies_remove(struct object *o, uint64_t p, const struct view *v, uint64_t index)
{
	struct copyset *cs = copies_of(o, p);

	if (!cs)
		return;
	for (uint32_t k = 0; k < cs->n; k++)
		if (cs->e[k].v == v && cs->e[k].index == index) {
			cs->e[k] = cs->e[--cs->n];
			o->c->copies--;
			break;
		}
	if (cs->n == 0) {
		free(cs);
		copies_set(o, p, NULL);
	}
}

/**
 * view_page() - the object page view page @i shows, or will show at its next touch
 *
 * A page with a copy shows what the daemon copied into it; any other page what the shared table
 * says, which the client's library may rewrite at any time (a MAP_NONBLOCK remap). The result
 * comes from the client then: check it against the object's size before using it.
 */
uint64_t view_page(const struct view *v, uint64_t i)
{
	if (v->copy[i] != COPY_NONE)
		return v->table[i];
	return (__atomic_load_n(&v->shared->entry[i], __ATOMIC_ACQUIRE) & ~UPAGER_VIEW_HELD) ^
	       (v->base + i);
}

/* What the shared table holds for object page p at view page i. */
uint64_t view_encode(const struct view *v, uint64_t i, uint64_t p)
{
	return p ^ (v->base + i);
}

/*
 * Before a copy of object page p goes into view page i: mark the entry held, so that the library
 * leaves it to the daemon from now on. False if the library rewrote the entry since it was read.
 */
bool view_hold(struct view *v, uint64_t i, uint64_t p)
{
	__u64 e = __atomic_load_n(&v->shared->entry[i], __ATOMIC_ACQUIRE);

	/* A HELD bit the daemon did not set is the client's doing: take the entry all the same. */
	if ((e & ~UPAGER_VIEW_HELD) != view_encode(v, i, p) ||
	    !__atomic_compare_exchange_n(&v->shared->entry[i], &e,
					 view_encode(v, i, p) | UPAGER_VIEW_HELD, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	v->table[i] = p;
	return true;
}

/* The copy of view page i is gone (punched): the library may rewrite its entry again. */
void view_release(struct view *v, uint64_t i)
{
	__atomic_store_n(&v->shared->entry[i], view_encode(v, i, v->table[i]), __ATOMIC_RELEASE);
}

static uint64_t page_addr(const struct view *v, uint64_t index)
{
	return v->start + (index << UPAGER_PAGE_SHIFT);
}

void view_punch(int memfd, uint64_t page, uint64_t count)
{
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(page << UPAGER_PAGE_SHIFT), (off_t)(count << UPAGER_PAGE_SHIFT)) < 0)
		log_warning("punching a page out of a cache: %m");
}

/*
 * Write-protect a writable copy in its client again. A copy the client does not map any more
 * (-ENOENT) or whose client is gone is as good as protected. Return: 0, or -EAGAIN if the copy
 * is still writable (the client's mm kept changing, see uffdio_set_drain()), and then it stays
 * COPY_RW: the one place where its data is.
 */
static int downgrade(struct view *v, uint64_t index)
{
	int ret = 0;

	if (v->copy[index] != COPY_RW)
		return 0;
	if (v->host.uffd >= 0)
		ret = uffdio_writeprotect(v->host.uffd, page_addr(v, index), UPAGER_PAGE_SIZE,
					  true);
	if (ret < 0 && ret != -ENOENT && ret != -ESRCH) {
		log_limited(LOG_WARNING, "cannot write-protect a copy of pid %d: %s",
			    (int)v->host.pid, strerror(-ret));
		return -EAGAIN;
	}
	v->copy[index] = COPY_RO;
	return 0;
}

/*
 * Make the home page of object page @p valid again.
 *
 * If the page's data lives in a copy (PAGE_AWAY), the copy is write-protected again and copied
 * home; the home page is then ready, and a write-back candidate if the copy was written (or the
 * home page was one when it went). Read-only copies that were read
 * from the page cache (PAGE_CLEAN, see copy_from_page_cache()) hold what the file holds: the home
 * page is left absent, to be read from the file again like any other. With @force, a writable
 * copy that cannot be write-protected is copied home all the same (the caller punches it next).
 *
 * Return: 0, -ENOENT if no copy holds the data any more (the page reads from the file again), or
 * -EAGAIN if the writable copy could not be write-protected: it stays writable and the only
 * place of the data (PAGE_AWAY), and the caller tries again later; never read the file then.
 */
static int restore_home(struct object *o, uint64_t p, bool force)
{
	struct copyset *cs = copies_of(o, p);
	struct copyref *src = NULL;
	uint8_t dirty;

	if (!(o->pages[p] & PAGE_AWAY))
		return 0;
	for (uint32_t k = 0; cs && k < cs->n; k++)
		if (!src || cs->e[k].v->copy[cs->e[k].index] == COPY_RW)
			src = &cs->e[k];
	if (!src || ((o->pages[p] & PAGE_CLEAN) && src->v->copy[src->index] != COPY_RW)) {
		/* Nothing to copy, or read-only copies of what the file holds: read it again. */
		object_page_set(o, p, PAGE_ABSENT);
		return -ENOENT;
	}
	/* Read-only copies are as dirty as the home page was when it went. */
	dirty = src->v->copy[src->index] == COPY_RW ? PAGE_WRITABLE : o->pages[p] & PAGE_WRITABLE;
	if (downgrade(src->v, src->index) < 0 && !force)
		return -EAGAIN;
	memcpy(o->map + (p << UPAGER_PAGE_SHIFT), src->v->map + (src->index << UPAGER_PAGE_SHIFT),
	       UPAGER_PAGE_SIZE);
	object_page_set(o, p, PAGE_READY | dirty);
	return 0;
}

/**
 * view_restore_home() - make the home page of object page @p valid again
 * @o: the object
 * @p: the page
 *
 * See restore_home(); never without the write-protection of the writable copy.
 *
 * Return: 0, -ENOENT or -EAGAIN as restore_home().
 */
int view_restore_home(struct object *o, uint64_t p)
{
	return restore_home(o, p, false);
}

/**
 * view_invalidate_copies() - punch every copy of object page @p but one
 * @o: the object
 * @p: the page
 * @keep: the view whose copy stays, or NULL
 * @keep_index: its page in @keep
 */
void view_invalidate_copies(struct object *o, uint64_t p, const struct view *keep,
			    uint64_t keep_index)
{
	struct copyset *cs = copies_of(o, p);

	for (uint32_t k = 0; cs && k < cs->n;) {
		struct copyref c = cs->e[k];

		if (c.v == keep && c.index == keep_index) {
			k++;
			continue;
		}
		c.v->copy[c.index] = COPY_NONE;
		view_punch(c.v->memfd, c.index, 1);
		view_release(c.v, c.index);
		cs->e[k] = cs->e[--cs->n];
		o->c->copies--;
	}
	if (cs && cs->n == 0) {
		free(cs);
		copies_set(o, p, NULL);
	}
}

static uint64_t meta_size(uint64_t pages)
{
	return ALIGN_UP(pages * (sizeof(uint64_t) + 1), UPAGER_PAGE_SIZE);
}

static uint64_t shared_size(uint64_t pages)
{
	return ALIGN_UP(sizeof(struct upager_view_table) + pages * sizeof(__u64), UPAGER_PAGE_SIZE);
}

/* Whether the memfd @fd is @size bytes long. */
static bool has_size(int fd, uint64_t size)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (uint64_t)st.st_size == size;
}

/*
 * Map the view's memfd, its table and copy states, and the table it shares with the client's
 * library; takes the three descriptors (-1: make a new one, with @memfd made by the caller). The
 * memfds the client is handed are sealed against shrinking and growing, so that no client can
 * make the daemon's mapping of them fault; the shared table passed back by the fd store must have
 * those seals.
 */
static int view_map(struct view *v, int memfd, int meta_fd, int table_fd)
{
	_cleanup_close_ int fd = memfd, mfd = meta_fd, tfd = table_fd;
	int ret;

	if (mfd < 0) {
		ret = memfd_new("upager:view-meta", meta_size(v->pages), MEMFD_FIXED_SIZE, &mfd);
		if (ret < 0)
			return ret;
	} else if (!has_size(mfd, meta_size(v->pages))) {
		return -EBADF;
	}
	if (tfd < 0) {
		ret = memfd_new("upager:view-table", shared_size(v->pages), MEMFD_FIXED_SIZE, &tfd);
		if (ret < 0)
			return ret;
	} else if (memfd_protect(tfd, MEMFD_FIXED_SIZE) < 0 ||
		   !has_size(tfd, shared_size(v->pages))) {
		/* The client maps this one: it must be sealed. */
		return -EBADF;
	}
	if (!has_size(fd, v->pages << UPAGER_PAGE_SHIFT))
		return -EBADF;
	if (memfd_protect(fd, MEMFD_FIXED_SIZE) < 0)
		log_warning("a view of an older daemon cannot be sealed");
	v->shared_size = shared_size(v->pages);
	v->table = mmap(NULL, meta_size(v->pages), PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	v->shared = mmap(NULL, v->shared_size, PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
	v->map = mmap(NULL, v->pages << UPAGER_PAGE_SHIFT, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      0);
	if (v->table == MAP_FAILED || v->shared == MAP_FAILED || v->map == MAP_FAILED) {
		ret = neg_errno();
		if (v->table != MAP_FAILED)
			munmap(v->table, meta_size(v->pages));
		if (v->shared != MAP_FAILED)
			munmap(v->shared, v->shared_size);
		if (v->map != MAP_FAILED)
			munmap(v->map, v->pages << UPAGER_PAGE_SHIFT);
		return ret;
	}
	v->copy = (uint8_t *)(v->table + v->pages);
	v->memfd = fd_take(&fd);
	v->meta_fd = fd_take(&mfd);
	v->table_memfd = fd_take(&tfd);
	return 0;
}

/* The header of the shared table, from the daemon's own fields. */
static void shared_header(struct view *v)
{
	v->shared->magic = UPAGER_VIEW_TABLE_MAGIC;
	v->shared->pages = v->pages;
	v->shared->base = v->base;
	__atomic_store_n(&v->shared->object_pages, object_pages(v->obj), __ATOMIC_RELAXED);
}

static void object_copies_free(struct object *o)
{
	struct object_copies *oc = o->view_data;

	/* Each page's copies went with its last copy, and each chunk with its last page. */
	for (uint64_t c = 0; oc && c < oc->n_chunks; c++)
		free(oc->chunks[c]);
	if (oc)
		free(oc->chunks);
	free(oc);
	o->view_data = NULL;
}

static void drop_copies(struct object *o, uint64_t p)
{
	view_invalidate_copies(o, p, NULL, 0);
}

/* Every claim of every view of @o settled: the copies the library made are known, those under way
 * revoked, so that none made before a change of the file is taken for the daemon's later. */
static void claims_settle_all(struct object *o)
{
	struct view *v;

	claim_settle_fence();
	list_for_each_entry (v, &o->views, link)
		view_settle(v, 0, UINT64_MAX, true);
}

/* What views do for the cache of their object (struct object_view_ops). */
static const struct object_view_ops view_object_ops = {
	.has_copies = view_has_copies,
	.restore_home = view_restore_home,
	.drop_copies = drop_copies,
	.claims_settle = view_claims_settle,
	.claims_settle_all = claims_settle_all,
	.object_free = object_copies_free,
};

/* The object learns of its views at the first one. Return: 0 or -ENOMEM. */
static int views_of(struct object *o)
{
	if (o->view_ops)
		return 0;
	o->view_data = calloc(1, sizeof(struct object_copies));
	if (!o->view_data)
		return -ENOMEM;
	o->view_ops = &view_object_ops;
	return 0;
}

/**
 * view_new() - a view of @pages pages over object @o, mapping it linearly from @first_page
 * @o: the file object
 * @pages: length of the mapping in pages
 * @first_page: object page of view page 0
 * @may_write: whether the client may write the file
 * @out: the view, one reference
 *
 * Return: 0 or a negative errno.
 */
int view_new(struct object *o, uint64_t pages, uint64_t first_page, bool may_write,
	     struct view **out)
{
	_cleanup_close_ int memfd = -1;
	struct view *v;
	int ret;

	ret = views_of(o);
	if (ret < 0)
		return ret;
	ret = memfd_new("upager:view", pages << UPAGER_PAGE_SHIFT, MEMFD_FIXED_SIZE, &memfd);
	if (ret < 0)
		return ret;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->refs = 1;
	v->host.uffd = -1; /* mapped nowhere until view_attach() */
	v->pages = pages;
	v->may_write = may_write;
	ret = view_map(v, fd_take(&memfd), -1, -1);
	if (ret < 0) {
		free(v);
		return ret;
	}
	/* The table and the shared table are zeroes: linear, and no memory until written. */
	v->base = first_page;
	v->obj = object_ref(o);
	shared_header(v);
	v->id = ++cache_daemon(o->c)->next_id;
	/* Copies write their home pages from the daemon's side: no slot a page kept can tell
	 * that it is clean any more. */
	for (uint64_t p = 0; o->kind == OBJECT_ANON && o->slot && p < object_pages(o); p++)
		if (object_slot(o, p) >= 0 && (o->pages[p] & PAGE_STATE_MASK) != PAGE_ABSENT)
			object_slot_set(o, p, -1);
	list_add_tail(&v->link, &o->views);
	fdstore_add(cache_daemon(o->c), v->memfd, "vw", v->id);
	fdstore_add(cache_daemon(o->c), v->meta_fd, "vm", v->id);
	fdstore_add(cache_daemon(o->c), v->table_memfd, "vt", v->id);
	state_mark_daemon(cache_daemon(o->c));
	view_mark(v);
	*out = v;
	return 0;
}

/* Whether view page i holds data in the view's memfd (SEEK_DATA also finds swapped-out pages). */
static bool page_present(const struct view *v, uint64_t i)
{
	return lseek(v->memfd, (off_t)(i << UPAGER_PAGE_SHIFT), SEEK_DATA) ==
	       (off_t)(i << UPAGER_PAGE_SHIFT);
}

/*
 * Make the copy states, the object's index of copies and the HELD bits of the shared table agree
 * again after a takeover. The dead daemon may have stopped anywhere between view_hold() and setting
 * the copy state (make_copy()), or between punching a copy and view_release() (view_drop_range(),
 * view_invalidate_copies()):
 *  - a copy state without a page in the memfd: the copy was punched (its data had gone home
 *    first); it is gone, and so is HELD;
 *  - HELD without a copy state: a copy being made, maybe half written, or one being dropped;
 *    the page is punched and HELD cleared, so the next touch makes the copy again;
 *  - a copy: its entry says its object page, HELD (whatever the client wrote there).
 * The library never writes a HELD entry, so it cannot race with these writes.
 */
static void adopt_copies(struct view *v, bool from_table)
{
	struct object *o = v->obj;

	for (uint64_t i = 0; i < v->pages; i++) {
		__u64 e = __atomic_load_n(&v->shared->entry[i], __ATOMIC_ACQUIRE);
		bool copy = v->copy[i] != COPY_NONE;

		/* An older daemon's table names every page, and there is no shared table yet. */
		if (from_table && !copy && v->table[i] != v->base + i)
			__atomic_store_n(&v->shared->entry[i], view_encode(v, i, v->table[i]),
					 __ATOMIC_RELEASE);
		if (copy && (v->copy[i] > COPY_RW || v->table[i] >= object_pages(o) ||
			     !page_present(v, i) || view_copies_add(o, v->table[i], v, i) < 0)) {
			v->copy[i] = COPY_NONE;
			view_punch(v->memfd, i, 1);
			view_release(v, i);
			continue;
		}
		if (copy) {
			__atomic_store_n(&v->shared->entry[i],
					 view_encode(v, i, v->table[i]) | UPAGER_VIEW_HELD,
					 __ATOMIC_RELEASE);
		} else if (e & UPAGER_VIEW_HELD) {
			view_punch(v->memfd, i, 1);
			__atomic_compare_exchange_n(&v->shared->entry[i], &e, e & ~UPAGER_VIEW_HELD,
						    false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
		}
	}
}

/**
 * view_adopt() - take over a view of a previous daemon
 * @o: its object
 * @saved: the view's saved fields (id, pages, base, may_write, shared_size)
 * @memfd: the view's memfd, taken
 * @meta_fd: its table and copy states, taken
 * @table_fd: the table it shares with the client's library, taken; -1 for the state of a daemon
 *            that shared none (@saved->shared_size 0), when a new one is made
 * @out: the view, one reference; view_attach() it to its space, then view_publish() it
 *
 * The object's index of copies is rebuilt from the copy states, and the HELD bits of the shared
 * table made to agree with them (adopt_copies()). The client's library keeps its mapping of the
 * shared table: it is the same memfd.
 *
 * Return: 0 or a negative errno; the descriptors are closed on failure.
 */
int view_adopt(struct object *o, const struct view *saved, int memfd, int meta_fd, int table_fd,
	       struct view **out)
{
	struct view *v;
	struct stat st;
	int ret;

	/* A view that had a shared table cannot go on without it: the client writes into it. */
	if (views_of(o) < 0 || memfd < 0 || meta_fd < 0 || (saved->shared_size && table_fd < 0) ||
	    fstat(meta_fd, &st) < 0 || (uint64_t)st.st_size < meta_size(saved->pages)) {
		closep(&memfd);
		closep(&meta_fd);
		closep(&table_fd);
		return -EBADF;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		close(memfd);
		close(meta_fd);
		closep(&table_fd);
		return -ENOMEM;
	}
	v->id = saved->id;
	v->refs = 1;
	v->host.uffd = -1;
	v->pages = saved->pages;
	v->base = saved->base;
	v->may_write = saved->may_write;
	v->local = saved->local;
	ret = view_map(v, memfd, meta_fd, table_fd);
	if (ret < 0) {
		free(v);
		return ret;
	}
	v->obj = object_ref(o);
	list_add_tail(&v->link, &o->views);
	shared_header(v);
	adopt_copies(v, saved->shared_size == 0);
	/* A copy the library made while no daemon ran is taken; one under way is not. */
	view_settle(v, UINT64_MAX, UINT64_MAX, true);
	if (!saved->shared_size)
		fdstore_add(cache_daemon(o->c), v->table_memfd, "vt", v->id);
	*out = v;
	return 0;
}

/** view_find() - the view with id @id among the views of every object, or NULL */
struct view *view_find(struct daemon *d, uint64_t id)
{
	struct object *o;
	struct view *v;

	list_for_each_entry (o, &d->cache.objects, link)
		list_for_each_entry (v, &o->views, link)
			if (id && v->id == id)
				return v;
	return NULL;
}

/** view_ref() - take a reference; returns @v */
struct view *view_ref(struct view *v)
{
	v->refs++;
	return v;
}

/**
 * view_unref() - drop a reference; the last one sends every copy home and frees the view
 * Return: NULL.
 */
struct view *view_unref(struct view *v)
{
	if (!v || --v->refs > 0)
		return NULL;
	view_publish(v, false);
	view_drop_range(v, 0, v->pages);
	list_del_init(&v->link);
	munmap(v->map, v->pages << UPAGER_PAGE_SHIFT);
	munmap(v->table, meta_size(v->pages));
	munmap(v->shared, v->shared_size);
	close(v->memfd);
	close(v->meta_fd);
	close(v->table_memfd);
	fdstore_remove(cache_daemon(v->obj->c), "vw", v->id);
	fdstore_remove(cache_daemon(v->obj->c), "vm", v->id);
	fdstore_remove(cache_daemon(v->obj->c), "vt", v->id);
	state_forget(v->obj->c->state, &v->saved);
	object_unref(v->obj);
	free(v->touched);
	free(v);
	return NULL;
}

/** view_reopen_memfd() - a descriptor of the view's memfd for the client, writable if it may */
int view_reopen_memfd(struct view *v)
{
	return fd_reopen(v->memfd, v->may_write);
}

/** view_table_fd() - the shared table's memfd, for the client (the daemon keeps its own) */
int view_table_fd(struct view *v)
{
	return v->table_memfd;
}

/**
 * view_publish() - let the client's library remap pages without copies itself, or stop it
 * @v: the view, attached
 * @local: true only while one region maps the whole view where view_attach() says
 */
void view_publish(struct view *v, bool local)
{
	__atomic_store_n(&v->shared->object_pages, object_pages(v->obj), __ATOMIC_RELAXED);
	__atomic_store_n(&v->shared->start, local ? v->start : 0, __ATOMIC_RELEASE);
	if (v->local != local) {
		v->local = local;
		view_mark(v);
	}
}

/** view_attach() - the view is mapped at @start in the space @h says (NULL: none any more) */
void view_attach(struct view *v, const struct view_host *h, uint64_t start)
{
	v->host = h ? *h : (struct view_host){ .uffd = -1 };
	v->start = start;
	view_mark(v);
}

/* Pages of a view dropped at once: the home pages they bring back are punched copies soon. */
#define DROP_CHUNK 64

static void drop_chunk(struct view *v, uint64_t first, uint64_t end)
{
	struct object *o = v->obj;
	bool any = false;

	for (uint64_t i = first; i < end; i++) {
		uint64_t p = v->table[i];

		if (v->copy[i] == COPY_NONE)
			continue;
		/* Forced: the copy is punched below, which ends any write to it; only a write
		 * between the copy home and the punch can be lost, if the protection failed. */
		if ((o->pages[p] & PAGE_AWAY) && (v->copy[i] == COPY_RW || copies_of(o, p)->n == 1))
			restore_home(o, p, true);
		copies_remove(o, p, v, i);
		any = true;
	}
	if (!any)
		return;
	view_punch(v->memfd, first, end - first);
	/* Only now, with the copies gone, may the library rewrite their entries. */
	for (uint64_t i = first; i < end; i++)
		if (v->copy[i] != COPY_NONE) {
			v->copy[i] = COPY_NONE;
			view_release(v, i);
		}
}

/**
 * view_drop_range() - the copies of view pages [first, first+count) leave (remap, munmap)
 *
 * A writable copy goes home first; every copy is punched out of the view, which unmaps it from
 * the client.
 */
void view_drop_range(struct view *v, uint64_t first, uint64_t count)
{
	uint64_t end = MIN(first + count, v->pages);

	view_settle(v, UINT64_MAX, UINT64_MAX, true);
	/* A chunk at a time: the writable copies that go home do not take twice their memory. */
	for (uint64_t at = first; at < end; at += DROP_CHUNK)
		drop_chunk(v, at, MIN(at + DROP_CHUNK, end));
}

/** view_touch() - a fault came for view page @i: the sweep of copies (view-out.c) spares it once */
void view_touch(struct view *v, uint64_t i)
{
	if (!v->touched)
		v->touched = calloc((v->pages + 63) / 64, sizeof(uint64_t));
	if (v->touched && i < v->pages)
		v->touched[i / 64] |= 1ULL << (i % 64);
}

/** view_take_touch() - whether view page @i was touched since the last call for it; clears it */
bool view_take_touch(struct view *v, uint64_t i)
{
	uint64_t bit = 1ULL << (i % 64);
	bool was;

	if (!v->touched || i >= v->pages)
		return false;
	was = v->touched[i / 64] & bit;
	v->touched[i / 64] &= ~bit;
	return was;
}

/**
 * view_copies_out() - the copies of view pages [first, first+count) leave memory for the budget
 * (view-out.c): a writable one goes home first, write-protected again (not if it cannot be now:
 * it stays, and so do the copies after it); then they are punched as a remap punches them. The
 * home pages they leave behind are the cache's to send out (evict.c).
 * @v: the view
 * @first: first view page
 * @count: pages, each with a copy
 *
 * Return: how many left.
 */
uint64_t view_copies_out(struct view *v, uint64_t first, uint64_t count)
{
	uint64_t n = 0;

	while (n < count && first + n < v->pages) {
		uint64_t i = first + n;

		if (v->copy[i] == COPY_RW && restore_home(v->obj, v->table[i], false) < 0)
			break;
		n++;
	}
	view_drop_range(v, first, n);
	return n;
}

/** view_remap() - view pages [first, first+count) show object pages pgoff, pgoff+1, ... */
void view_remap(struct view *v, uint64_t first, uint64_t count, uint64_t pgoff)
{
	view_drop_range(v, first, count);
	for (uint64_t k = 0; k < count && first + k < v->pages; k++) {
		v->table[first + k] = pgoff + k;
		__atomic_store_n(&v->shared->entry[first + k], view_encode(v, first + k, pgoff + k),
				 __ATOMIC_RELEASE);
	}
}

/**
 * view_ranges() - how many remapped ranges view pages [first, first+count) hold: maximal runs
 * that are consecutive in the file but not where a linear mapping would have them
 */
uint64_t view_ranges(const struct view *v, uint64_t first, uint64_t count)
{
	uint64_t n = 0, end = MIN(first + count, v->pages), prev = 0;

	for (uint64_t i = first; i < end; i++) {
		uint64_t p = view_page(v, i);
		bool moved = p != v->base + i;
		bool continues = i > first && p == prev + 1 && prev != v->base + i - 1;

		if (moved && !continues)
			n++;
		prev = p;
	}
	return n;
}

/*
 * The table and copy states are not here: they are in the view's own memfds, the daemon's (vm)
 * and the one shared with the client's library (vt).
 */
static void view_fields(struct state_io *io, struct view *v, uint64_t *obj_id, uint64_t *space_id)
{
	STATE_NUM(io, 1, v->id);
	STATE_NUM(io, 2, *obj_id);
	STATE_NUM(io, 3, v->pages);
	STATE_NUM(io, 4, v->base);
	STATE_NUM(io, 5, v->may_write);
	STATE_NUM(io, 6, *space_id);
	STATE_NUM(io, 7, v->start);
	STATE_NUM(io, 8, v->shared_size); /* 0: a daemon that shared no table saved this */
	STATE_NUM(io, 9, v->local);
}

static void view_save(struct state_handle *h, struct state *st)
{
	struct view *v = container_of(h, struct view, saved);
	uint64_t obj_id = v->obj->id;
	uint64_t space_id = v->host.id;
	struct state_io io;

	state_begin(&io, st, STATE_REC_VIEW);
	view_fields(&io, v, &obj_id, &space_id);
	state_end(&io);
}

/** view_mark() - the saved record of view @v changed, or is new */
void view_mark(struct view *v)
{
	state_mark(v->obj->c->state, &v->saved, view_save, NULL);
}

/**
 * view_load() - take a view back from its record and its memfds in the fd store
 * @d: the daemon
 * @io: the record
 * @p: what the service manager passed
 * @host_of: what the view needs of the live space of an id (it attaches to it); false: none
 */
void view_load(struct daemon *d, struct state_io *io, struct fdstore_passed *p,
	       bool (*host_of)(struct daemon *d, uint64_t id, struct view_host *h))
{
	struct view saved = { 0 }, *v;
	struct view_host h;
	uint64_t obj_id = 0, space_id = 0;
	struct object *o;
	int memfd, meta_fd, table_fd;

	view_fields(io, &saved, &obj_id, &space_id);
	memfd = fdstore_passed_take(p, "vw", saved.id);
	meta_fd = fdstore_passed_take(p, "vm", saved.id);
	table_fd = fdstore_passed_take(p, "vt", saved.id);
	o = object_find(&d->cache, obj_id);
	if (!o || view_adopt(o, &saved, memfd, meta_fd, table_fd, &v) < 0) {
		if (!o) {
			closep(&memfd);
			closep(&meta_fd);
			closep(&table_fd);
		}
		log_warning("a nonlinear mapping was not passed back");
		return;
	}
	view_attach(v, host_of(d, space_id, &h) ? &h : NULL, saved.start);
	/*
	 * The library goes on remapping alone only if both the saved tables and the shared one
	 * say it may: an unsaved change (the mapping moved) has always stopped it.
	 */
	view_publish(v, saved.local && v->host.uffd >= 0 &&
				__atomic_load_n(&v->shared->start, __ATOMIC_ACQUIRE) == v->start);
}

/* The library's claims (struct upager_view_table): settled before the daemon changes a page. */

/* How long the daemon waits for a library that is copying a page in (a claim COPYING). */
#define CLAIM_WAIT_NS (20ULL * 1000 * 1000)

/*
 * Take the copy the library made alone at view page i (a claim DONE) as the daemon's own: the
 * state copy_from_page_cache() leaves. The claim comes from the client: what does not look like
 * one goes, and the page faults again.
 */
static void claim_adopt(struct view *v, uint64_t i, uint64_t p)
{
	struct object *o = v->obj;

	if (i >= v->pages || v->copy[i] != COPY_NONE)
		return;
	if (p >= object_pages(o) ||
	    __atomic_load_n(&v->shared->entry[i], __ATOMIC_ACQUIRE) !=
		    (view_encode(v, i, p) | UPAGER_VIEW_HELD) ||
	    view_copies_add(o, p, v, i) < 0) {
		view_punch(v->memfd, i, 1);
		return;
	}
	v->table[i] = p;
	v->copy[i] = COPY_RO;
	/* The page was no one's (or the file's and clean copies'); a fill may have begun since. */
	if ((o->pages[p] & ~PAGE_AWAY & ~PAGE_CLEAN) == PAGE_ABSENT)
		object_page_set(o, p, PAGE_ABSENT | PAGE_AWAY | PAGE_CLEAN);
	o->c->stats.bytes_from_page_cache += UPAGER_PAGE_SIZE;
}

/*
 * Settle one claim of the library on view v (struct upager_view_table): a copy it has made (DONE)
 * becomes the daemon's; a claim on object page p or at view page i (UINT64_MAX: none), or any
 * claim if all, is revoked, after waiting for a copy under way (COPYING) to be done.
 */
static void claim_settle_one(struct view *v, struct upager_view_claim *c, uint64_t p, uint64_t i,
			     bool all)
{
	uint64_t deadline = 0;

	for (;;) {
		uint64_t ci, cp;
		__u64 state = claim_read(c, &ci, &cp);

		switch (state) {
		case UPAGER_CLAIM_IDLE:
		case UPAGER_CLAIM_REVOKED:
			return;
		case UPAGER_CLAIM_DONE:
			claim_adopt(v, ci, cp);
			claim_take_done(c);
			return;
		case UPAGER_CLAIM_ACTIVE:
			if (!all && cp != p && ci != i)
				return;
			if (claim_revoke(c, state))
				return;
			continue;
		case UPAGER_CLAIM_COPYING:
			if (!all && cp != p && ci != i)
				return;
			/* A UFFDIO_COPY and two stores: let the client's thread finish them, unless
			 * it once made the daemon wait for nothing. */
			if (!deadline) {
				deadline = now_ns() + (v->claims_stalled ? 0 : CLAIM_WAIT_NS);
			} else if (now_ns() > deadline && claim_revoke(c, state)) {
				/* A stopped client: its copy goes, and it takes it back itself. */
				v->claims_stalled = true;
				if (ci < v->pages && v->copy[ci] == COPY_NONE)
					view_punch(v->memfd, ci, 1);
				return;
			}
			sched_yield();
			continue;
		default: /* not a state: the client's doing */
			claim_reset(c, state);
			return;
		}
	}
}

/* Settle every claim of the library on view v, as claim_settle_one(). */
void view_settle(struct view *v, uint64_t p, uint64_t i, bool all)
{
	for (size_t k = 0; v->shared && k < UPAGER_VIEW_CLAIMS; k++)
		claim_settle_one(v, &v->shared->claim[k], p, i, all);
}

/**
 * view_claims_settle() - settle the library's claims on object page @p (struct
 * upager_view_table) before the daemon acts on the page
 * @o: the object
 * @p: the page, whose state byte the caller has just made non-zero
 *
 * A library copies a page in alone only while its state byte is 0, which it checks after it has
 * published its claim; the daemon makes the byte non-zero before it looks at the claims. So either
 * the library sees the byte and gives up, or the daemon sees the claim here.
 */
void view_claims_settle(struct object *o, uint64_t p)
{
	struct view *v;

	claim_settle_fence();
	list_for_each_entry (v, &o->views, link)
		view_settle(v, p, UINT64_MAX, false);
}
