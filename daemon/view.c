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
 *    of the memfd, which unmaps it from every linear mapping).
 * A write to a read-only copy (a write-protect fault) punches every other copy and the home page
 * and makes the copy writable. Anything that needs the home page (a linear fault, a new copy,
 * write-back) first copies the writable copy home and write-protects it again (view_restore_home).
 * A write through a linear mapping to a page that has copies punches the copies.
 * A page with no copy pays nothing of this.
 *
 * The table and the copy states live in a memfd of the view's own, so that a daemon that takes
 * over after a crash finds them as they were, and rebuilds the index of copies from them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
 * home; the home page is then ready and a write-back candidate.
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
	if (!src) {
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
		cs->e[k] = cs->e[--cs->n];
	}
	if (cs && cs->n == 0) {
		free(cs);
		o->copies[p] = NULL;
	}
}

static uint64_t meta_size(uint64_t pages)
{
	return ALIGN_UP(pages * (sizeof(uint64_t) + 1), UPAGER_PAGE_SIZE);
}

/* Map the view's memfd and its table and copy states; takes @memfd and @meta_fd (-1: new). */
static int view_map(struct view *v, int memfd, int meta_fd)
{
	_cleanup_close_ int fd = memfd, mfd = meta_fd;
	void *m;

	if (mfd < 0) {
		mfd = memfd_create("upager:view-table", MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, (off_t)meta_size(v->pages)) < 0)
			return neg_errno();
	}
	m = mmap(NULL, meta_size(v->pages), PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (m == MAP_FAILED)
		return neg_errno();
	v->table = m;
	v->copy = (uint8_t *)(v->table + v->pages);
	v->map = mmap(NULL, v->pages << UPAGER_PAGE_SHIFT, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      0);
	if (v->map == MAP_FAILED) {
		int ret = neg_errno();

		munmap(m, meta_size(v->pages));
		return ret;
	}
	v->memfd = fd_take(&fd);
	v->meta_fd = fd_take(&mfd);
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

	memfd = memfd_create("upager:view", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)(pages << UPAGER_PAGE_SHIFT)) < 0)
		return neg_errno();
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->refs = 1;
	v->pages = pages;
	v->may_write = may_write;
	ret = view_map(v, fd_take(&memfd), -1);
	if (ret < 0) {
		free(v);
		return ret;
	}
	v->base = first_page;
	for (uint64_t i = 0; i < pages; i++)
		v->table[i] = first_page + i;
	v->obj = object_ref(o);
	v->id = ++o->d->next_id;
	list_add_tail(&v->link, &o->views);
	fdstore_add(o->d, v->memfd, "vw", v->id);
	fdstore_add(o->d, v->meta_fd, "vm", v->id);
	daemon_touch(o->d);
	*out = v;
	return 0;
}

/**
 * view_adopt() - take over a view of a previous daemon
 * @o: its object
 * @saved: the view's saved fields (id, pages, base, may_write)
 * @memfd: the view's memfd, taken
 * @meta_fd: its table and copy states, taken
 * @out: the view, one reference; view_attach() it to its space
 *
 * The object's index of copies is rebuilt from the copy states.
 *
 * Return: 0 or a negative errno; the descriptors are closed on failure.
 */
int view_adopt(struct object *o, const struct view *saved, int memfd, int meta_fd,
	       struct view **out)
{
	struct view *v;
	struct stat st;
	int ret;

	if (memfd < 0 || meta_fd < 0 || fstat(meta_fd, &st) < 0 ||
	    (uint64_t)st.st_size < meta_size(saved->pages)) {
		closep(&memfd);
		closep(&meta_fd);
		return -EBADF;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		close(memfd);
		close(meta_fd);
		return -ENOMEM;
	}
	v->id = saved->id;
	v->refs = 1;
	v->pages = saved->pages;
	v->base = saved->base;
	v->may_write = saved->may_write;
	ret = view_map(v, memfd, meta_fd);
	if (ret < 0) {
		free(v);
		return ret;
	}
	v->obj = object_ref(o);
	list_add_tail(&v->link, &o->views);
	for (uint64_t i = 0; i < v->pages; i++) {
		if (v->copy[i] == COPY_NONE)
			continue;
		if (v->copy[i] > COPY_RW || copies_add(o, v->table[i], v, i) < 0) {
			v->copy[i] = COPY_NONE;
			punch(v->memfd, i, 1);
		}
	}
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
	view_drop_range(v, 0, v->pages);
	list_del_init(&v->link);
	munmap(v->map, v->pages << UPAGER_PAGE_SHIFT);
	munmap(v->table, meta_size(v->pages));
	close(v->memfd);
	close(v->meta_fd);
	fdstore_remove(v->obj->d, "vw", v->id);
	fdstore_remove(v->obj->d, "vm", v->id);
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

	for (uint64_t i = first; i < end; i++) {
		uint64_t p = v->table[i];

		if (v->copy[i] == COPY_NONE)
			continue;
		if ((o->pages[p] & PAGE_AWAY) && (v->copy[i] == COPY_RW || copies_of(o, p)->n == 1))
			view_restore_home(o, p);
		copies_remove(o, p, v, i);
		v->copy[i] = COPY_NONE;
		any = true;
	}
	if (any && first < end)
		punch(v->memfd, first, end - first);
}

/** view_remap() - view pages [first, first+count) show object pages pgoff, pgoff+1, ... */
void view_remap(struct view *v, uint64_t first, uint64_t count, uint64_t pgoff)
{
	view_drop_range(v, first, count);
	for (uint64_t k = 0; k < count && first + k < v->pages; k++)
		v->table[first + k] = pgoff + k;
	daemon_touch(v->obj->d);
}

/**
 * view_ranges() - how many remapped ranges view pages [first, first+count) hold: maximal runs
 * that are consecutive in the file but not where a linear mapping would have them
 */
uint64_t view_ranges(const struct view *v, uint64_t first, uint64_t count)
{
	uint64_t n = 0, end = MIN(first + count, v->pages);

	for (uint64_t i = first; i < end; i++) {
		bool moved = v->table[i] != v->base + i;
		bool continues = i > first && v->table[i] == v->table[i - 1] + 1 &&
				 v->table[i - 1] != v->base + i - 1;

		if (moved && !continues)
			n++;
	}
	return n;
}

/* Copy home page p into view page i and map it, write-protected, at addr of space s. */
static int make_copy(struct space *s, uint64_t addr, struct view *v, uint64_t i)
{
	struct object *o = v->obj;
	uint64_t p = v->table[i];
	bool first = !view_has_copies(o, p);
	int ret;

	memcpy(v->map + (i << UPAGER_PAGE_SHIFT), o->map + (p << UPAGER_PAGE_SHIFT),
	       UPAGER_PAGE_SIZE);
	ret = copies_add(o, p, v, i);
	if (ret < 0)
		return ret;
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
};

static void view_wait_done(struct fill_waiter *w)
{
	struct view_wait *vw = container_of(w, struct view_wait, w);
	struct space *s = vw->space;
	struct region *r = s->dead ? NULL : region_find(&s->regions, vw->addr);

	if (r && r->view && r->start == vw->region_start)
		view_fault(s, r, vw->addr, VIEW_RETRY, vw->t0);
	else if (!s->dead)
		uffdio_wake(s->uffd, vw->addr, UPAGER_PAGE_SIZE);
	space_unref(s);
	free(vw);
}

struct view_wait_ctx {
	struct space *s;
	uint64_t addr, region_start, t0;
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
	return &vw->w;
}

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
	uint64_t p = v->table[i];
	int ret;

	if (p >= object_pages(o)) {
		sigbus(s, addr);
		return;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write to a read-only copy: it becomes the one writable copy. */
		if (v->copy[i] != COPY_NONE) {
			view_invalidate_copies(o, p, v, i);
			if (!(o->pages[p] & PAGE_AWAY)) {
				uint8_t dirty = o->pages[p] & PAGE_WRITABLE;

				punch(o->memfd, p, 1);
				o->pages[p] = PAGE_ABSENT | PAGE_AWAY | dirty;
			}
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
	if (o->pages[p] & PAGE_AWAY)
		view_restore_home(o, p);
	if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY) {
		if (make_copy(s, addr, v, i) < 0)
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
		struct view_wait_ctx c = { s, addr, r->start, t0 };
		uint64_t started = 0;

		ret = fill_range(o, p, 1, view_waiter, &c, &started);
		r->pages_read += started;
		r->bytes_read += started << UPAGER_PAGE_SHIFT;
		if (ret == 0 && (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY)
			make_copy(s, addr, v, i);
		else if (ret <= 0)
			sigbus(s, addr);
	}
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
		p = v->table[i];
		if (v->copy[i] != COPY_NONE || p >= object_pages(v->obj))
			continue;
		if (v->obj->pages[p] & PAGE_AWAY)
			view_restore_home(v->obj, p);
		if ((v->obj->pages[p] & PAGE_STATE_MASK) == PAGE_READY &&
		    make_copy(s, a, v, i) == 0)
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
 * @nonblock: only pages whose data is in memory; never read
 * @done: called when done, unless this returns 1 or fails
 * @userdata: for @done
 *
 * Return: 1 when done at once, 0 when @done will be called after the reads, or a negative errno.
 */
int view_populate(struct space *s, uint64_t addr, uint64_t count, bool nonblock,
		  populate_done_fn done, void *userdata)
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
	if (!nonblock) {
		struct view *v = r->view;
		uint64_t first = r->view_index + ((addr - r->start) >> UPAGER_PAGE_SHIFT);
		struct fill_job *wait = fill_job_new(view_populate_finish, job);
		uint64_t started = 0;
		int waits;

		/* The table maps the range to consecutive object pages. A failure to read does
		 * not fail the call: what could not be read faults in later. */
		waits = wait ? fill_range(v->obj, v->table[first], count, fill_job_waiter, wait,
					  &started)
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
