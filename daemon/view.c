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
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "daemon.h"
#include "fdstore.h"
#include "fill.h"
#include "log.h"
#include "object.h"
#include "region.h"
#include "space.h"
#include "uffdio.h"
#include "view.h"

/* view_fault() again after the fill it waited on, not a fault of the kernel's */
#define VIEW_RETRY (1ULL << 63)

struct copyref {
	struct view *v;
	uint64_t index;
};

/* The copies of one object page. */
struct copyset {
	uint32_t n, cap;
	struct copyref e[];
};

static struct copyset *copies_of(const struct object *o, uint64_t p)
{
	return o->copies && p < o->copies_len ? o->copies[p] : NULL;
}

/** view_has_copies() - whether object page @p has a copy in some view */
bool view_has_copies(const struct object *o, uint64_t p)
{
	struct copyset *cs = copies_of(o, p);

	return cs && cs->n > 0;
}

static int copies_add(struct object *o, uint64_t p, struct view *v, uint64_t index)
{
	struct copyset *cs;

	if (!o->copies || p >= o->copies_len) {
		uint64_t len = MAX(object_pages(o), p + 1);
		struct copyset **c = realloc(o->copies, len * sizeof(*c));

		if (!c)
			return -ENOMEM;
		memset(c + o->copies_len, 0, (len - o->copies_len) * sizeof(*c));
		o->copies = c;
		o->copies_len = len;
	}
	cs = o->copies[p];
	if (!cs || cs->n == cs->cap) {
		uint32_t cap = cs ? cs->cap * 2 : 2;
		struct copyset *n = realloc(cs, sizeof(*n) + cap * sizeof(n->e[0]));

		if (!n)
			return -ENOMEM;
		if (!cs)
			n->n = 0;
		n->cap = cap;
		o->copies[p] = cs = n;
	}
	cs->e[cs->n++] = (struct copyref){ v, index };
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
			break;
		}
	if (cs->n == 0) {
		free(cs);
		o->copies[p] = NULL;
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
static uint64_t encode(const struct view *v, uint64_t i, uint64_t p)
{
	return p ^ (v->base + i);
}

/*
 * Before a copy of object page p goes into view page i: mark the entry held, so that the library
 * leaves it to the daemon from now on. False if the library rewrote the entry since it was read.
 */
static bool hold(struct view *v, uint64_t i, uint64_t p)
{
	__u64 e = __atomic_load_n(&v->shared->entry[i], __ATOMIC_ACQUIRE);

	/* A HELD bit the daemon did not set is the client's doing: take the entry all the same. */
	if ((e & ~UPAGER_VIEW_HELD) != encode(v, i, p) ||
	    !__atomic_compare_exchange_n(&v->shared->entry[i], &e,
					 encode(v, i, p) | UPAGER_VIEW_HELD, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	v->table[i] = p;
	return true;
}

/* The copy of view page i is gone (punched): the library may rewrite its entry again. */
static void release(struct view *v, uint64_t i)
{
	__atomic_store_n(&v->shared->entry[i], encode(v, i, v->table[i]), __ATOMIC_RELEASE);
}

static uint64_t page_addr(const struct view *v, uint64_t index)
{
	return v->start + (index << UPAGER_PAGE_SHIFT);
}

static void punch(int memfd, uint64_t page, uint64_t count)
{
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(page << UPAGER_PAGE_SHIFT), (off_t)(count << UPAGER_PAGE_SHIFT)) < 0)
		log_warning("punching a page out of a cache: %m");
}

/* Write-protect a writable copy in its client again. */
static void downgrade(struct view *v, uint64_t index)
{
	if (v->copy[index] != COPY_RW)
		return;
	if (v->space && !v->space->dead)
		uffdio_writeprotect(v->space->uffd, page_addr(v, index), UPAGER_PAGE_SIZE, true);
	v->copy[index] = COPY_RO;
}

/**
 * view_restore_home() - make the home page of object page @p valid again
 * @o: the object
 * @p: the page
 *
 * If the page's data lives in a copy (PAGE_AWAY), the copy is write-protected again and copied
 * home; the home page is then ready and a write-back candidate. Read-only copies that were read
 * from the page cache (PAGE_CLEAN, see copy_from_page_cache()) hold what the file holds: the home
 * page is left absent, to be read from the file again like any other.
 *
 * Return: 0, or -ENOENT if no copy holds the data any more (the page reads from the file again).
 */
int view_restore_home(struct object *o, uint64_t p)
{
	struct copyset *cs = copies_of(o, p);
	struct copyref *src = NULL;

	if (!(o->pages[p] & PAGE_AWAY))
		return 0;
	for (uint32_t k = 0; cs && k < cs->n; k++)
		if (!src || cs->e[k].v->copy[cs->e[k].index] == COPY_RW)
			src = &cs->e[k];
	if (!src || ((o->pages[p] & PAGE_CLEAN) && src->v->copy[src->index] != COPY_RW)) {
		/* Nothing to copy, or read-only copies of what the file holds: read it again. */
		o->pages[p] = PAGE_ABSENT;
		return -ENOENT;
	}
	downgrade(src->v, src->index);
	memcpy(o->map + (p << UPAGER_PAGE_SHIFT), src->v->map + (src->index << UPAGER_PAGE_SHIFT),
	       UPAGER_PAGE_SIZE);
	o->pages[p] = PAGE_READY | PAGE_WRITABLE;
	return 0;
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
		punch(c.v->memfd, c.index, 1);
		release(c.v, c.index);
		cs->e[k] = cs->e[--cs->n];
	}
	if (cs && cs->n == 0) {
		free(cs);
		o->copies[p] = NULL;
	}
}

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
		    (encode(v, i, p) | UPAGER_VIEW_HELD) ||
	    copies_add(o, p, v, i) < 0) {
		punch(v->memfd, i, 1);
		return;
	}
	v->table[i] = p;
	v->copy[i] = COPY_RO;
	/* The page was no one's (or the file's and clean copies'); a fill may have begun since. */
	if ((o->pages[p] & ~PAGE_AWAY & ~PAGE_CLEAN) == PAGE_ABSENT)
		o->pages[p] = PAGE_ABSENT | PAGE_AWAY | PAGE_CLEAN;
	o->d->stats.bytes_from_page_cache += UPAGER_PAGE_SIZE;
	daemon_touch(o->d);
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
		__u64 state = __atomic_load_n(&c->state, __ATOMIC_SEQ_CST);
		uint64_t ci = __atomic_load_n(&c->index, __ATOMIC_RELAXED);
		uint64_t cp = __atomic_load_n(&c->page, __ATOMIC_RELAXED);

		switch (state) {
		case UPAGER_CLAIM_IDLE:
		case UPAGER_CLAIM_REVOKED:
			return;
		case UPAGER_CLAIM_DONE:
			claim_adopt(v, ci, cp);
			__atomic_store_n(&c->state, UPAGER_CLAIM_IDLE, __ATOMIC_RELEASE);
			return;
		case UPAGER_CLAIM_ACTIVE:
			if (!all && cp != p && ci != i)
				return;
			if (__atomic_compare_exchange_n(&c->state, &state, UPAGER_CLAIM_REVOKED,
							false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				return;
			continue;
		case UPAGER_CLAIM_COPYING:
			if (!all && cp != p && ci != i)
				return;
			/* A UFFDIO_COPY and two stores: let the client's thread finish them, unless
			 * it once made the daemon wait for nothing. */
			if (!deadline) {
				deadline =
					daemon_now_ns() + (v->claims_stalled ? 0 : CLAIM_WAIT_NS);
			} else if (daemon_now_ns() > deadline &&
				   __atomic_compare_exchange_n(
					   &c->state, &state, UPAGER_CLAIM_REVOKED, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
				/* A stopped client: its copy goes, and it takes it back itself. */
				v->claims_stalled = true;
				if (ci < v->pages && v->copy[ci] == COPY_NONE)
					punch(v->memfd, ci, 1);
				return;
			}
			sched_yield();
			continue;
		default: /* not a state: the client's doing */
			__atomic_compare_exchange_n(&c->state, &state, UPAGER_CLAIM_IDLE, false,
						    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
			return;
		}
	}
}

/* Settle every claim of the library on view v, as claim_settle_one(). */
static void claim_settle(struct view *v, uint64_t p, uint64_t i, bool all)
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

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	list_for_each_entry (v, &o->views, link)
		claim_settle(v, p, UINT64_MAX, false);
}

static uint64_t meta_size(uint64_t pages)
{
	return ALIGN_UP(pages * (sizeof(uint64_t) + 1), UPAGER_PAGE_SIZE);
}

static uint64_t shared_size(uint64_t pages)
{
	return ALIGN_UP(sizeof(struct upager_view_table) + pages * sizeof(__u64), UPAGER_PAGE_SIZE);
}

/*
 * Map the view's memfd, its table and copy states, and the table it shares with the client's
 * library; takes the three descriptors (-1: make a new one). The shared table is sealed against
 * shrinking and growing, so that no client can make the daemon's mapping of it fault; one passed
 * back by the fd store must have those seals.
 */
static int view_map(struct view *v, int memfd, int meta_fd, int table_fd)
{
	_cleanup_close_ int fd = memfd, mfd = meta_fd, tfd = table_fd;
	int ret;

	if (mfd < 0) {
		mfd = memfd_create("upager:view-meta", MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, (off_t)meta_size(v->pages)) < 0)
			return neg_errno();
	}
	if (tfd < 0) {
		tfd = memfd_create("upager:view-table", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (tfd < 0 || ftruncate(tfd, (off_t)shared_size(v->pages)) < 0 ||
		    fcntl(tfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
			return neg_errno();
	} else {
		int seals = fcntl(tfd, F_GET_SEALS);
		struct stat st;

		if (seals < 0 ||
		    (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
		    fstat(tfd, &st) < 0 || (uint64_t)st.st_size != shared_size(v->pages))
			return -EBADF;
	}
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

	memfd = memfd_create("upager:view", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)(pages << UPAGER_PAGE_SHIFT)) < 0)
		return neg_errno();
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->refs = 1;
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
	v->id = ++o->d->next_id;
	list_add_tail(&v->link, &o->views);
	fdstore_add(o->d, v->memfd, "vw", v->id);
	fdstore_add(o->d, v->meta_fd, "vm", v->id);
	fdstore_add(o->d, v->table_memfd, "vt", v->id);
	daemon_touch(o->d);
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
 * again after a takeover. The dead daemon may have stopped anywhere between hold() and setting
 * the copy state (make_copy()), or between punching a copy and release() (view_drop_range(),
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
			__atomic_store_n(&v->shared->entry[i], encode(v, i, v->table[i]),
					 __ATOMIC_RELEASE);
		if (copy && (v->copy[i] > COPY_RW || v->table[i] >= object_pages(o) ||
			     !page_present(v, i) || copies_add(o, v->table[i], v, i) < 0)) {
			v->copy[i] = COPY_NONE;
			punch(v->memfd, i, 1);
			release(v, i);
			continue;
		}
		if (copy) {
			__atomic_store_n(&v->shared->entry[i],
					 encode(v, i, v->table[i]) | UPAGER_VIEW_HELD,
					 __ATOMIC_RELEASE);
		} else if (e & UPAGER_VIEW_HELD) {
			punch(v->memfd, i, 1);
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
	if (memfd < 0 || meta_fd < 0 || (saved->shared_size && table_fd < 0) ||
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
	claim_settle(v, UINT64_MAX, UINT64_MAX, true);
	if (!saved->shared_size)
		fdstore_add(o->d, v->table_memfd, "vt", v->id);
	*out = v;
	return 0;
}

/** view_find() - the view with id @id among the views of every object, or NULL */
struct view *view_find(struct daemon *d, uint64_t id)
{
	struct object *o;
	struct view *v;

	list_for_each_entry (o, &d->objects, link)
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
	fdstore_remove(v->obj->d, "vw", v->id);
	fdstore_remove(v->obj->d, "vm", v->id);
	fdstore_remove(v->obj->d, "vt", v->id);
	daemon_touch(v->obj->d);
	object_unref(v->obj);
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
		daemon_touch(v->obj->d);
	}
}

/** view_attach() - the view is mapped at @start in space @s */
void view_attach(struct view *v, struct space *s, uint64_t start)
{
	v->space = s;
	v->start = start;
	if (s)
		daemon_touch(s->d);
}

/**
 * view_drop_range() - the copies of view pages [first, first+count) leave (remap, munmap)
 *
 * A writable copy goes home first; every copy is punched out of the view, which unmaps it from
 * the client.
 */
void view_drop_range(struct view *v, uint64_t first, uint64_t count)
{
	struct object *o = v->obj;
	uint64_t end = MIN(first + count, v->pages);
	bool any = false;

	claim_settle(v, UINT64_MAX, UINT64_MAX, true);

	for (uint64_t i = first; i < end; i++) {
		uint64_t p = v->table[i];

		if (v->copy[i] == COPY_NONE)
			continue;
		if ((o->pages[p] & PAGE_AWAY) && (v->copy[i] == COPY_RW || copies_of(o, p)->n == 1))
			view_restore_home(o, p);
		copies_remove(o, p, v, i);
		any = true;
	}
	if (!any || first >= end)
		return;
	punch(v->memfd, first, end - first);
	/* Only now, with the copies gone, may the library rewrite their entries. */
	for (uint64_t i = first; i < end; i++)
		if (v->copy[i] != COPY_NONE) {
			v->copy[i] = COPY_NONE;
			release(v, i);
		}
}

/** view_remap() - view pages [first, first+count) show object pages pgoff, pgoff+1, ... */
void view_remap(struct view *v, uint64_t first, uint64_t count, uint64_t pgoff)
{
	view_drop_range(v, first, count);
	for (uint64_t k = 0; k < count && first + k < v->pages; k++) {
		v->table[first + k] = pgoff + k;
		__atomic_store_n(&v->shared->entry[first + k], encode(v, first + k, pgoff + k),
				 __ATOMIC_RELEASE);
	}
	daemon_touch(v->obj->d);
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
 * Copy home page p into view page i and map it, write-protected, at addr of space s.
 * Return: 0, -EAGAIN if the library remapped view page i since p was read, or -ENOMEM.
 */
static int make_copy(struct space *s, uint64_t addr, struct view *v, uint64_t i, uint64_t p)
{
	struct object *o = v->obj;
	bool first = !view_has_copies(o, p);
	int ret;

	if (!hold(v, i, p))
		return -EAGAIN;
	memcpy(v->map + (i << UPAGER_PAGE_SHIFT), o->map + (p << UPAGER_PAGE_SHIFT),
	       UPAGER_PAGE_SIZE);
	ret = copies_add(o, p, v, i);
	if (ret < 0) {
		release(v, i);
		return ret;
	}
	v->copy[i] = COPY_RO;
	if (first && o->linear_writers > 0) {
		/* Linear mappings may hold the home page writable: take it from them; they get it
		 * back write-protected at their next touch. */
		uint8_t dirty = o->pages[p] & PAGE_WRITABLE;

		punch(o->memfd, p, 1);
		o->pages[p] = PAGE_ABSENT | PAGE_AWAY | dirty;
	}
	ret = uffdio_continue(s->uffd, addr, UPAGER_PAGE_SIZE, true);
	if (ret == -EEXIST || ret == -EAGAIN)
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	return 0;
}

struct view_wait {
	struct fill_waiter w;
	struct space *space; /* a reference */
	uint64_t addr, region_start, t0;
	uint64_t page; /* the object page waited for */
};

static void view_wait_done(struct fill_waiter *w)
{
	struct view_wait *vw = container_of(w, struct view_wait, w);
	struct space *s = vw->space;
	struct region *r = s->dead ? NULL : region_find(&s->regions, vw->addr);

	if (r && r->view && r->start == vw->region_start) {
		uint64_t i = r->view_index + ((vw->addr - r->start) >> UPAGER_PAGE_SHIFT);

		/* Remapped meanwhile: a new fault, which may have to wait for a fill of its own. */
		view_fault(s, r, vw->addr, view_page(r->view, i) == vw->page ? VIEW_RETRY : 0,
			   vw->t0);
	} else if (!s->dead)
		uffdio_wake(s->uffd, vw->addr, UPAGER_PAGE_SIZE);
	space_unref(s);
	free(vw);
}

struct view_wait_ctx {
	struct space *s;
	uint64_t addr, region_start, t0, page;
};

static struct fill_waiter *view_waiter(void *userdata)
{
	struct view_wait_ctx *c = userdata;
	struct view_wait *vw = calloc(1, sizeof(*vw));

	if (!vw)
		return NULL;
	vw->w.done = view_wait_done;
	vw->space = space_ref(c->s);
	vw->addr = c->addr;
	vw->region_start = c->region_start;
	vw->t0 = c->t0;
	vw->page = c->page;
	return &vw->w;
}

static int copy_from_page_cache(struct space *s, uint64_t addr, struct view *v, uint64_t i,
				uint64_t p);

static void sigbus(struct space *s, uint64_t addr)
{
	if (uffdio_poison(s->uffd, addr, UPAGER_PAGE_SIZE) < 0)
		uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
}

/**
 * view_fault() - serve a fault in a nonlinear mapping
 * @s: the space
 * @r: the region, a view's
 * @addr: the faulting page
 * @flags: UFFD_PAGEFAULT_FLAG_*; UFFD_PAGEFAULT_FLAG_MINOR when a fill it waited on is over
 * @t0: when the fault was read
 */
void view_fault(struct space *s, struct region *r, uint64_t addr, uint64_t flags, uint64_t t0)
{
	struct view *v = r->view;
	struct object *o = v->obj;
	uint64_t i = r->view_index + ((addr - r->start) >> UPAGER_PAGE_SHIFT);
	uint64_t p;
	int ret;

	claim_settle(v, UINT64_MAX, i, false);
	p = view_page(v, i);
	if (p >= object_pages(o)) {
		sigbus(s, addr);
		return;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write to a read-only copy: it becomes the one writable copy. */
		if (v->copy[i] != COPY_NONE) {
			if (o->pages[p] == PAGE_ABSENT) {
				/* Clean copies only (view_restore_home()): a library may be copying
				 * the page in as well. */
				o->pages[p] = PAGE_ABSENT | PAGE_AWAY;
				view_claims_settle(o, p);
			}
			view_invalidate_copies(o, p, v, i);
			if (!(o->pages[p] & PAGE_AWAY)) {
				uint8_t dirty = o->pages[p] & PAGE_WRITABLE;

				punch(o->memfd, p, 1);
				o->pages[p] = PAGE_ABSENT | PAGE_AWAY | dirty;
			}
			/* From now on only the copy has the data. */
			o->pages[p] &= (uint8_t)~PAGE_CLEAN;
			v->copy[i] = COPY_RW;
		}
		if (uffdio_writeprotect(s->uffd, addr, UPAGER_PAGE_SIZE, false) < 0)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	if (v->copy[i] != COPY_NONE) {
		/* The copy exists but this client lost its page table entry (MADV_DONTNEED). */
		ret = uffdio_continue(s->uffd, addr, UPAGER_PAGE_SIZE, v->copy[i] != COPY_RW);
		if (ret < 0)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		return;
	}
	/* A page no one has: straight from the kernel's page cache, if it is there. */
	if (copy_from_page_cache(s, addr, v, i, p) == 0)
		return;
	if (o->pages[p] & PAGE_AWAY)
		view_restore_home(o, p);
	if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY) {
		ret = make_copy(s, addr, v, i, p);
		if (ret == -EAGAIN)
			uffdio_wake(s->uffd, addr,
				    UPAGER_PAGE_SIZE); /* remapped: it faults again */
		else if (ret < 0)
			sigbus(s, addr);
		(void)t0;
		return;
	}
	if (flags & VIEW_RETRY) {
		/* A fill this fault waited on is over and the page is still not there. */
		sigbus(s, addr);
		return;
	}
	{
		struct view_wait_ctx c = { s, addr, r->start, t0, p };
		uint64_t started = 0;

		ret = fill_range(o, p, 1, view_waiter, &c, &started);
		r->pages_read += started;
		r->bytes_read += started << UPAGER_PAGE_SHIFT;
		if (ret == 0 && (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY) {
			if (make_copy(s, addr, v, i, p) < 0)
				uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
		} else if (ret <= 0) {
			sigbus(s, addr);
		}
	}
}

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

static uint8_t page_buf[UPAGER_PAGE_SIZE] __attribute__((aligned(UPAGER_PAGE_SIZE)));

/* Write one page at page @index of @fd: 0, or a negative errno (-ENOMEM when shmem is full). */
static int write_page(int fd, uint64_t index, const uint8_t *src)
{
	size_t done = 0;

	while (done < UPAGER_PAGE_SIZE) {
		ssize_t k = pwrite(fd, src + done, UPAGER_PAGE_SIZE - done,
				   (off_t)((index << UPAGER_PAGE_SHIFT) + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 && errno != ENOSPC ? neg_errno() : -ENOMEM;
		done += (size_t)k;
	}
	return 0;
}

/*
 * Copy file page p straight from the kernel's page cache into view page i and map it,
 * write-protected, at addr of space s, without filling the home page: one fresh page instead of
 * two (about 4 us). Only for a page no one has: the home page PAGE_ABSENT and no copy anywhere,
 * so the file has the only data. The home page becomes PAGE_AWAY | PAGE_CLEAN: the data is in
 * read-only copies and in the file, and view_restore_home() reads it from the file again instead
 * of copying it home. Never waits for the disk.
 * Return: 0, or a negative errno (-EAGAIN: not in the page cache, or remapped meanwhile).
 */
static int copy_from_page_cache(struct space *s, uint64_t addr, struct view *v, uint64_t i,
				uint64_t p)
{
	struct object *o = v->obj;
	uint64_t off = p << UPAGER_PAGE_SHIFT;
	ssize_t got;
	int ret;

	if (o->kind != OBJECT_FILE || o->pages[p] != PAGE_ABSENT || view_has_copies(o, p) ||
	    off >= o->file_size)
		return -EAGAIN;
	if (!hold(v, i, p))
		return -EAGAIN;
	/* Through a buffer and write(2), which neither faults the view page in nor zeroes it. */
	got = preadv2(o->fd_read, &(struct iovec){ page_buf, UPAGER_PAGE_SIZE }, 1, (off_t)off,
		      RWF_NOWAIT);
	/* A partial page is whole only at end of file. */
	if (got < (ssize_t)UPAGER_PAGE_SIZE && (got <= 0 || off + (uint64_t)got < o->file_size)) {
		ret = got < 0 ? neg_errno() : -EAGAIN;
		goto fail;
	}
	memset(page_buf + got, 0, UPAGER_PAGE_SIZE - (size_t)got);
	/* A view mapped shared: UFFDIO_COPY puts the page into its memfd and maps it, one call
	 * instead of a write(2) and UFFDIO_CONTINUE. A private one (a file the client may not
	 * write) would get an anonymous page from it, which the view's memfd would not hold. */
	ret = v->may_write ? uffdio_copy(s->uffd, addr, page_buf, UPAGER_PAGE_SIZE, true)
			   : write_page(v->memfd, i, page_buf);
	if (ret < 0)
		goto fail;
	ret = copies_add(o, p, v, i);
	if (ret < 0)
		goto fail;
	v->copy[i] = COPY_RO;
	o->pages[p] = PAGE_ABSENT | PAGE_AWAY | PAGE_CLEAN;
	view_claims_settle(o, p); /* a library's copy of the page is one more clean copy */
	o->d->stats.bytes_from_page_cache += (uint64_t)got;
	if (!v->may_write) {
		ret = uffdio_continue(s->uffd, addr, UPAGER_PAGE_SIZE, true);
		if (ret == -EEXIST || ret == -EAGAIN)
			uffdio_wake(s->uffd, addr, UPAGER_PAGE_SIZE);
	}
	return 0;
fail:
	/* The read may have written part of the page: a copy that is not there goes. */
	punch(v->memfd, i, 1);
	release(v, i);
	return ret;
}

struct view_populate {
	struct space *space; /* a reference */
	uint64_t addr, count;
	populate_done_fn done; /* NULL when view_populate() returns 1 */
	void *userdata;
};

/* Copy in and map every page of the range whose data is in memory. */
static void view_install(struct space *s, uint64_t addr, uint64_t count)
{
	for (uint64_t k = 0; k < count; k++) {
		uint64_t a = addr + (k << UPAGER_PAGE_SHIFT);
		struct region *r = region_find(&s->regions, a);
		struct view *v;
		uint64_t i, p;

		if (!r || !r->view)
			continue;
		v = r->view;
		i = r->view_index + ((a - r->start) >> UPAGER_PAGE_SHIFT);
		p = view_page(v, i);
		if (v->copy[i] != COPY_NONE || p >= object_pages(v->obj))
			continue;
		if (v->obj->pages[p] & PAGE_AWAY)
			view_restore_home(v->obj, p);
		if ((v->obj->pages[p] & PAGE_STATE_MASK) == PAGE_READY &&
		    make_copy(s, a, v, i, p) == 0)
			r->pages_populated++;
	}
}

static void view_populate_finish(void *userdata)
{
	struct view_populate *job = userdata;

	if (!job->space->dead)
		view_install(job->space, job->addr, job->count);
	if (job->done)
		job->done(job->userdata);
	space_unref(job->space);
	free(job);
}

/**
 * view_populate() - copy in and map the remapped pages [addr, addr + count pages)
 * @s: the space
 * @addr: first page, in one nonlinear region
 * @count: pages
 * @done: called when done, unless this returns 1 or fails
 * @userdata: for @done
 *
 * Return: 1 when done at once, 0 when @done will be called after the reads, or a negative errno.
 */
int view_populate(struct space *s, uint64_t addr, uint64_t count, populate_done_fn done,
		  void *userdata)
{
	struct region *r = region_find(&s->regions, addr);
	struct view_populate *job;

	if (!r || !r->view)
		return -EINVAL;
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->space = space_ref(s);
	job->addr = addr;
	job->count = count;
	{
		struct view *v = r->view;
		uint64_t first = r->view_index + ((addr - r->start) >> UPAGER_PAGE_SHIFT);
		struct fill_job *wait = fill_job_new(view_populate_finish, job);
		uint64_t started = 0, direct = 0;
		int waits;

		/* Pages no one has go straight from the page cache into the view, as long as the
		 * page cache has them. */
		while (direct < count && direct < FILL_NOW_MAX_PAGES &&
		       copy_from_page_cache(s, addr + (direct << UPAGER_PAGE_SHIFT), v,
					    first + direct, v->table[first + direct]) == 0)
			direct++;
		r->pages_populated += direct;
		if (direct == count) {
			if (wait)
				fill_job_arm(wait, 0);
			view_populate_finish(job);
			return 1;
		}
		/* view_remap() just made the range show consecutive object pages (the daemon's
		 * table says which). A failure to read does not fail the call: what could not be
		 * read faults in later. */
		fill_small_now(v->obj, v->table[first] + direct, count - direct);
		waits = wait ? fill_range(v->obj, v->table[first] + direct, count - direct,
					  fill_job_waiter, wait, &started)
			     : -ENOMEM;
		r->pages_read += started;
		r->bytes_read += started << UPAGER_PAGE_SHIFT;
		if (wait && fill_job_arm(wait, waits) == 0) {
			job->done = done;
			job->userdata = userdata;
			return 0;
		}
	}
	view_populate_finish(job);
	return 1;
}
