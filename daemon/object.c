// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Backing objects. Each object owns a memfd, its cache, which the daemon maps once into a
 * reservation of address space large enough for the object to grow without moving (reads in
 * flight target that mapping). The daemon reads and writes a file only through descriptors a
 * client proved it had: it reopens the client's descriptor into descriptions of its own.
 *
 * The page states live in a memfd of their own too, so that a daemon that takes over after a crash
 * finds them as they were (see state.c); every descriptor of an object is in the fd store.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "common/stat.h"
#include "common/macro.h"
#include "cache.h"
#include "closer.h"
#include "crc32c.h"
#include "fdstore.h"
#include "log.h"
#include "memfd.h"
#include "object.h"
#include "state.h"
#include "file-store.h"
#include "store.h"

#define RESERVE_MIN (1ULL << 30)

static void object_free(struct object *o);

/**
 * object_reserve_for() - the address space the daemon reserves for an object of @size bytes, so
 * that it can grow without moving
 */
uint64_t object_reserve_for(uint64_t size)
{
	uint64_t r = MAX(RESERVE_MIN, size * 2);

	return ALIGN_UP(r, RESERVE_MIN);
}

/*
 * A client that may write a file gets a writable descriptor of its cache; it may grow it (pages
 * past the object's size fault to the daemon, which answers SIGBUS), never shrink it under the
 * daemon's mapping. A shared anonymous object never changes size.
 */
static unsigned object_seals(enum object_kind kind)
{
	return kind == OBJECT_ANON ? MEMFD_FIXED_SIZE : F_SEAL_SHRINK;
}

/*
 * A table of an object of @len bytes, zeroes at first: the page states (one byte per page of the
 * reservation) and the swap slots. Under an fd store (@need_fd) it is a memfd, *@fd (taken) or a
 * new one named @name, mapped shared, so that a daemon that takes over finds it; else plain
 * memory, which costs only what is written (the page states move to a memfd when a descriptor of
 * them is needed, object_pages_fd()).
 */
static int table_map(const char *name, uint64_t len, bool need_fd, int *table_fd, void **table)
{
	_cleanup_close_ int fd = *table_fd;
	void *m;

	if (fd < 0 && !need_fd) {
		m = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return neg_errno();
		*table = m;
		return 0;
	}
	if (fd < 0) {
		int ret = memfd_new(name, len, MEMFD_FIXED_SIZE, &fd);

		if (ret < 0)
			return ret;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return neg_errno();
	*table = m;
	*table_fd = fd_take(&fd);
	return 0;
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/**
 * object_pages_fd() - the memfd of the object's page states, made now if it had none
 * @o: the object
 *
 * The states are plain memory of the daemon's until a descriptor of them is needed (a nonlinear
 * mapping's library reads them); they then move into a memfd, mapped where they were.
 *
 * Return: the descriptor (the object's), or a negative errno.
 */
int object_pages_fd(struct object *o)
{
	uint64_t len = o->reserve >> UPAGER_PAGE_SHIFT;
	_cleanup_close_ int fd = -1;
	int ret;

	if (o->pages_fd >= 0)
		return o->pages_fd;
	ret = memfd_new("upager:pages", len, MEMFD_FIXED_SIZE, &fd);
	if (ret < 0)
		return ret;
	/* Only the pages of states that hold one: the rest of the memfd stays a hole, which costs
	 * nothing (a reservation of 1 GiB at least has 256 KiB of states, mostly zeroes). */
	for (uint64_t done = 0; done < len;) {
		uint64_t n = MIN(len - done, (uint64_t)UPAGER_PAGE_SIZE);
		ssize_t w;

		if (all_zero(o->pages + done, n)) {
			done += n;
			continue;
		}
		w = pwrite(fd, o->pages + done, n, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? neg_errno() : -EIO;
		done += (uint64_t)w;
	}
	/* One loop thread: nothing touches the states between the copy and the exchange. */
	if (mmap(o->pages, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
	    MAP_FAILED)
		return neg_errno();
	o->pages_fd = fd_take(&fd);
	cache_store_fd(o->c, o->pages_fd, "pg", o->id);
	return o->pages_fd;
}

/*
 * Reserve address space and map the memfd (of size bytes) and the page states into it. Takes
 * @memfd and @pages_fd (-1: make a new one), also on failure.
 */
/* The bytes of object.used: three bits per page of the reservation. */
static size_t used_bytes(const struct object *o)
{
	return 3 * (((o->reserve >> UPAGER_PAGE_SHIFT) + 63) >> 6) * sizeof(uint64_t);
}

/* The bytes of object.slot. */
static size_t slot_bytes(const struct object *o)
{
	return (o->reserve >> UPAGER_PAGE_SHIFT) * sizeof(uint32_t);
}

/*
 * The kernel keeps a page table over each 2 MiB of the daemon's mapping of a memfd that pages
 * were ever mapped in, also once they are punched out: a mapping made anew gives it back
 * (object_tables_trim()). The reservation starts at a table's edge, so that every block of the
 * mapping has its table to itself.
 */
#define TABLE_SPAN (2ULL << 20)

static void *reserve_aligned(uint64_t len)
{
	uint8_t *m = mmap(NULL, len + TABLE_SPAN, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t start;

	if (m == MAP_FAILED)
		return MAP_FAILED;
	start = ALIGN_UP((uintptr_t)m, TABLE_SPAN);
	if (start > (uintptr_t)m)
		munmap(m, start - (uintptr_t)m);
	munmap((uint8_t *)start + len, (uintptr_t)m + TABLE_SPAN - start);
	return (void *)start;
}

/*
 * Pages [first, first+count) of @o left memory: every 2 MiB block of the daemon's mapping they
 * lie in that holds no page now is mapped anew, its page table given back. The daemon's tables
 * then follow the pages in memory, not every page that ever was: a client that reads one page
 * every 2 MiB of a large sparse file cost the daemon a table a page, budget or not. Mapping
 * anew is safe whatever another thread does there: the mapping is the same memfd's.
 */
static void object_tables_trim(struct object *o, uint64_t first, uint64_t count)
{
	const uint64_t span = TABLE_SPAN >> UPAGER_PAGE_SHIFT;
	uint64_t end = MIN(first + count, object_pages(o));

	for (uint64_t b = ALIGN_DOWN(first, span); b < end; b += span) {
		uint64_t last = MIN(b + span, object_pages(o)), p = b;

		while (p < last && (o->pages[p] & PAGE_STATE_MASK) == PAGE_ABSENT)
			p++;
		if (p < last)
			continue;
		/* A failure (no room for one more mapping) only keeps the table. */
		(void)mmap(o->map + (b << UPAGER_PAGE_SHIFT), (last - b) << UPAGER_PAGE_SHIFT,
			   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, o->memfd,
			   (off_t)(b << UPAGER_PAGE_SHIFT));
	}
}

static int object_map(struct object *o, int memfd, int pages_fd)
{
	_cleanup_close_ int mfd = memfd, pfd = pages_fd;
	uint64_t chunks =
		((o->reserve >> UPAGER_PAGE_SHIFT) + OBJECT_CHUNK - 1) >> OBJECT_CHUNK_SHIFT;
	bool adopted = pages_fd >= 0;
	void *res;
	int ret;

	o->maybe_dirty = calloc((chunks + 63) / 64 + 1, sizeof(uint64_t));
	if (!o->maybe_dirty)
		return -ENOMEM;
	o->used = mmap(NULL, used_bytes(o), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (o->used == MAP_FAILED) {
		o->used = NULL;
		ret = neg_errno();
		goto fail_dirty;
	}
	ret = table_map("upager:pages", o->reserve >> UPAGER_PAGE_SHIFT, o->c->fdstore, &pfd,
			(void **)&o->pages);
	if (ret < 0)
		goto fail_dirty;
	res = reserve_aligned(o->reserve);
	if (res == MAP_FAILED) {
		ret = neg_errno();
		goto fail_pages;
	}
	if (o->size > 0 && mmap(res, o->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd,
				0) == MAP_FAILED) {
		ret = neg_errno();
		munmap(res, o->reserve);
		goto fail_pages;
	}
	o->map = res;
	o->memfd = fd_take(&mfd);
	o->pages_fd = fd_take(&pfd);
	/* The states a previous daemon left: counted once here, every chunk taken for dirty. Its
	 * checksums of pages made writable ahead went with it: those pages are dirty. */
	if (adopted) {
		for (uint64_t p = 0; p < object_pages(o); p++) {
			if (o->pages[p] & PAGE_SUMMED)
				o->pages[p] &= (uint8_t)~PAGE_SUMMED;
			o->cached += (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY;
		}
		o->c->cached += o->cached;
		memset(o->maybe_dirty, 0xff, ((chunks + 63) / 64) * sizeof(uint64_t));
	}
	return 0;

fail_pages:
	munmap(o->pages, o->reserve >> UPAGER_PAGE_SHIFT);
	o->pages = NULL;
fail_dirty:
	if (o->used)
		munmap(o->used, used_bytes(o));
	o->used = NULL;
	free(o->maybe_dirty);
	o->maybe_dirty = NULL;
	return ret;
}

static struct object *object_blank(struct cache *c, enum object_kind kind)
{
	struct object *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->c = c;
	o->kind = kind;
	o->refs = 1;
	o->memfd = o->pages_fd = o->slot_fd = o->fd_read = o->fd_write = o->watch_wd = -1;
	list_init(&o->fills);
	list_init(&o->views);
	list_init(&o->wb_queue);
	list_init(&o->swap_outs);
	list_init(&o->link);
	return o;
}

/* Create the memfd, reserve address space and map it. */
static int object_alloc(struct cache *c, enum object_kind kind, uint64_t size, const char *name,
			struct object **out)
{
	_cleanup_close_ int memfd = -1;
	struct object *o;
	char label[64];
	int ret;

	snprintf(label, sizeof(label), "upager:%s", name);
	ret = memfd_new(label, size, object_seals(kind), &memfd);
	if (ret < 0)
		return ret;

	o = object_blank(c, kind);
	if (!o)
		return -ENOMEM;
	o->size = size;
	o->reserve = object_reserve_for(size);
	ret = object_map(o, fd_take(&memfd), -1);
	if (ret < 0) {
		free(o);
		return ret;
	}
	o->id = ++c->next_object_id;
	list_add_tail(&o->link, &c->objects);
	c->n_objects++;
	cache_store_fd(c, o->memfd, "ob", o->id);
	if (o->pages_fd >= 0)
		cache_store_fd(c, o->pages_fd, "pg", o->id);
	cache_id_taken(c);
	object_mark(o);
	*out = o;
	return 0;
}

/**
 * object_page_punch() - page @p of @o is taken for @state, and punched out of the memfd (which
 * unmaps it from every client), whatever it held
 */
void object_page_punch(struct object *o, uint64_t p, uint8_t state)
{
	object_page_set(o, p, state);
	fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(p << UPAGER_PAGE_SHIFT), UPAGER_PAGE_SIZE);
}

/**
 * object_adopt() - take over an object of a previous daemon
 * @d: the daemon
 * @saved: the object's saved fields (state.c); its path is taken over
 * @memfd: its cache, taken
 * @pages_fd: its page states, taken
 * @fd_read: the file reader or -1, taken
 * @fd_write: the file writer or -1, taken
 * @out: the object, one reference
 *
 * A page that was being filled when the previous daemon died may hold part of a read: it is
 * dropped from the cache and read again on its next touch.
 *
 * Return: 0 or a negative errno; the descriptors are closed on failure.
 */
int object_adopt(struct cache *c, struct object *saved, int memfd, int pages_fd, int fd_read,
		 int fd_write, struct object **out)
{
	_cleanup_close_ int rd = fd_read, wr = fd_write;
	struct object *o;
	struct stat st;
	int ret;

	/* A saved size of 0 is an older daemon's, whose memfd had the object's size. */
	if (memfd < 0 || pages_fd < 0 || fstat(memfd, &st) < 0 ||
	    (!saved->size && saved->reserve < (uint64_t)st.st_size) ||
	    saved->reserve < saved->size || (uint64_t)st.st_size < saved->size) {
		closep(&memfd);
		closep(&pages_fd);
		return -EBADF;
	}
	if (memfd_protect(memfd, object_seals(saved->kind)) < 0 ||
	    memfd_protect(pages_fd, MEMFD_FIXED_SIZE) < 0)
		log_warning("%s: a cache of an older daemon cannot be sealed",
			    saved->path ? saved->path : "?");
	o = object_blank(c, saved->kind);
	if (!o) {
		close(memfd);
		close(pages_fd);
		return -ENOMEM;
	}
	o->id = saved->id;
	o->size = saved->size ? saved->size : (uint64_t)st.st_size;
	o->reserve = saved->reserve;
	o->dev = saved->dev;
	o->ino = saved->ino;
	o->file_size = saved->file_size;
	o->mtime = saved->mtime;
	o->ctime = saved->ctime;
	o->path = saved->path;
	saved->path = NULL;
	o->pages_read = saved->pages_read;
	o->bytes_read = saved->bytes_read;
	o->linear_writers = saved->linear_writers;
	ret = object_map(o, memfd, pages_fd);
	if (ret < 0) {
		free(o->path);
		free(o);
		return ret;
	}
	for (uint64_t p = 0; p < object_pages(o); p++)
		if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_FILLING)
			object_page_punch(o, p, o->pages[p] & (uint8_t)~PAGE_STATE_MASK);
	o->fd_read = fd_take(&rd);
	o->fd_write = fd_take(&wr);
	/* Whose description the writer is, and the file's holes, are not known: first writes
	 * reserve their blocks without asking for the file's extents first (reserve.c). */
	o->holes = o->kind == OBJECT_FILE;
	if (!o->path)
		o->path = strdup("?");
	list_add_tail(&o->link, &c->objects);
	c->n_objects++;
	object_mark(o);
	*out = o;
	return 0;
}

/* Grow or shrink the memfd and the daemon's mapping of it to size bytes. */
static int object_resize(struct object *o, uint64_t size)
{
	if (size == o->size)
		return 0;
	if (size > o->reserve)
		return -EFBIG;
	if (size > o->size) {
		struct stat st;

		memset(o->pages + object_pages(o), 0, (size - o->size) >> UPAGER_PAGE_SHIFT);
		/* The memfd may be larger already: shrinking left it so, or a client grew it and
		 * wrote there, which goes. */
		if (fstat(o->memfd, &st) < 0)
			return neg_errno();
		if ((uint64_t)st.st_size < size && ftruncate(o->memfd, (off_t)size) < 0)
			return neg_errno();
		if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)o->size,
			      (off_t)(size - o->size)) < 0)
			return neg_errno();
		if (mmap(o->map, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, o->memfd,
			 0) == MAP_FAILED)
			return neg_errno();
	} else {
		/* Pages past the new end leave the memfd, and so every client mapping; the memfd
		 * keeps its size (it is sealed against shrinking), and a touch there faults to the
		 * daemon, which answers SIGBUS past the object's end. */
		for (uint64_t p = size >> UPAGER_PAGE_SHIFT; p < object_pages(o); p++)
			if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_FILLING)
				return -EBUSY;
		if (mmap(o->map + size, o->size - size, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
			 0) == MAP_FAILED)
			return neg_errno();
		if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)size,
			      (off_t)(o->size - size)) < 0)
			return neg_errno();
		for (uint64_t p = size >> UPAGER_PAGE_SHIFT; p < object_pages(o); p++) {
			/* Nonlinear copies too, written or not: a touch there gets SIGBUS. */
			if (o->view_ops && o->view_ops->has_copies(o, p))
				o->view_ops->drop_copies(o, p);
			if (o->pages[p])
				object_page_set(o, p, PAGE_ABSENT);
		}
	}
	o->size = size;
	object_mark(o);
	return 0;
}

/**
 * object_cover() - make the cache at least @end bytes long (within the reservation), without
 * growing the object, so that a client mapping up to @end takes a fault, not shmem's SIGBUS,
 * past the object's end: the daemon then looks whether the file grew (object_follow_size())
 * @o: the object (a file's)
 * @end: the end of a mapping of it, in bytes
 *
 * Return: 0 or a negative errno.
 */
int object_cover(struct object *o, uint64_t end)
{
	struct stat st;

	end = MIN(ALIGN_UP(end, UPAGER_PAGE_SIZE), o->reserve);
	if (o->kind != OBJECT_FILE || end <= o->size)
		return 0;
	if (fstat(o->memfd, &st) < 0)
		return neg_errno();
	if ((uint64_t)st.st_size < end && ftruncate(o->memfd, (off_t)end) < 0)
		return neg_errno();
	return 0;
}

/**
 * object_follow_size() - the cache follows the file's size @st->st_size, changed behind it
 * (ftruncate(2), a write(2) past the end, fallocate(2) by any process)
 * @o: the object (a file's)
 * @st: the file's status, just read
 *
 * Growth makes the new pages absent (a touch reads them). Truncation drops every page wholly past
 * the new end, dirty or not, as the kernel does, which unmaps it from every client (a touch there
 * gets SIGBUS), and zeroes the last page past the end.
 *
 * Return: 0, or a negative errno (-EBUSY: pages past the new end are being read; the caller tries
 * again later).
 */
int object_follow_size(struct object *o, const struct stat *st)
{
	uint64_t len = (uint64_t)st->st_size;
	uint64_t size = ALIGN_UP(len, UPAGER_PAGE_SIZE);
	uint64_t tail = len & (UPAGER_PAGE_SIZE - 1);
	int ret;

	if (o->kind != OBJECT_FILE || len == o->file_size)
		return 0;
	if (size < o->size && !object_wb_idle(o))
		return -EBUSY; /* a write-back copy of pages past the end is on its way */
	if (len < o->file_size && o->view_ops)
		o->view_ops->claims_settle_all(o);
	ret = object_resize(o, size);
	if (ret < 0)
		return ret;
	if (len < o->file_size)
		o->c->shrinks++;
	if (len < o->file_size && tail) {
		uint64_t p = len >> UPAGER_PAGE_SHIFT;

		/* The bytes past the end read zeroes in every mapping: a nonlinear page's data
		 * goes home first, where they are zeroed, and its copies read it again. */
		if (o->view_ops && o->view_ops->has_copies(o, p) &&
		    object_restore_home(o, p) != -EAGAIN)
			o->view_ops->drop_copies(o, p);
		if ((o->pages[p] & (PAGE_STATE_MASK | PAGE_AWAY)) == PAGE_READY)
			memset(o->map + len, 0, UPAGER_PAGE_SIZE - tail);
	}
	o->file_size = len;
	object_mark(o);
	return 0;
}

/*
 * Whether the file's status @st says it changed since the daemon last looked. A status whose
 * change time is older than the one the daemon recorded was read before the daemon's own latest
 * change (a write-back or a time update that finished after a worker read @st): it says nothing
 * new, since no one can set a change time back.
 */
static bool stat_changed(const struct object *o, const struct stat *st)
{
	if (st->st_ctim.tv_sec < o->ctime.tv_sec ||
	    (st->st_ctim.tv_sec == o->ctime.tv_sec && st->st_ctim.tv_nsec < o->ctime.tv_nsec))
		return false;
	return (uint64_t)st->st_size != o->file_size || st->st_mtim.tv_sec != o->mtime.tv_sec ||
	       st->st_mtim.tv_nsec != o->mtime.tv_nsec || st->st_ctim.tv_sec != o->ctime.tv_sec ||
	       st->st_ctim.tv_nsec != o->ctime.tv_nsec;
}

/*
 * Nonlinear copies of page @p that hold what the file held (read-only copies of a home page no
 * writable mapping held, or read from the page cache) go, and the home page no longer counts as
 * away in them.
 */
static void drop_clean_copies(struct object *o, uint64_t p)
{
	uint8_t s = o->pages[p];

	if ((s & PAGE_WRITABLE) || ((s & PAGE_AWAY) && !(s & PAGE_CLEAN)) ||
	    !o->view_ops->has_copies(o, p))
		return;
	o->view_ops->drop_copies(o, p);
	if (s & PAGE_AWAY)
		object_page_set(o, p, s & (uint8_t) ~(PAGE_AWAY | PAGE_CLEAN));
}

/*
 * Pages made writable ahead of a write. A writer in order gets the ready pages after the one it
 * writes made writable at once (fault.c), and a client may then write them without the daemon
 * knowing: each is a write-back candidate. A page no one wrote would still win over a write(2) of
 * others and its old bytes go back into the file at the next write-back. So the checksum of a
 * clean page made writable ahead is kept (PAGE_SUMMED); write-back leaves out, and a change of the
 * file drops, a page whose bytes still have it: no client wrote it.
 */
static int sums_map(struct object *o)
{
	void *m;

	if (o->sum)
		return 0;
	m = mmap(NULL, (o->reserve >> UPAGER_PAGE_SHIFT) * sizeof(uint32_t), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return neg_errno();
	o->sum = m;
	return 0;
}

static uint32_t page_sum(const uint8_t *data)
{
	return crc32c(0, data, UPAGER_PAGE_SIZE);
}

/**
 * object_page_writable() - page @p of @o goes into a client writable: a write-back candidate
 * @o: the object
 * @p: a ready page
 * @written: the client writes it now (its write fault); else it may, later or never
 */
void object_page_writable(struct object *o, uint64_t p, bool written)
{
	uint8_t s = o->pages[p];

	if (written) {
		object_page_set(o, p, (uint8_t)((s | PAGE_WRITABLE) & ~PAGE_SUMMED));
		return;
	}
	if (s & PAGE_WRITABLE)
		return;
	if (o->kind == OBJECT_FILE && (s & (PAGE_STATE_MASK | PAGE_AWAY)) == PAGE_READY &&
	    list_empty(&o->views) && sums_map(o) == 0) {
		o->sum[p] = page_sum(o->map + (p << UPAGER_PAGE_SHIFT));
		s |= PAGE_SUMMED;
	}
	object_page_set(o, p, s | PAGE_WRITABLE);
}

/* Whether page @p of @o was made writable ahead and its bytes are still those it had then. */
static bool page_unwritten(const struct object *o, uint64_t p, const uint8_t *data)
{
	return (o->pages[p] & (PAGE_SUMMED | PAGE_AWAY)) == PAGE_SUMMED && o->sum &&
	       list_empty(&o->views) && page_sum(data) == o->sum[p];
}

/*
 * Page @p of @o, if it was made writable ahead: no client wrote it, and it is write-protected in
 * every client and taken for clean (true: the caller drops it, or leaves it out of a write-back:
 * the file may have changed there since, by others); or a client did, and it loses its checksum.
 */
static bool take_unwritten(struct object *o, uint64_t p)
{
	const struct cache_hooks *h = o->c->hooks;
	const uint8_t *data = o->map + (p << UPAGER_PAGE_SHIFT);

	if (!(o->pages[p] & PAGE_SUMMED))
		return false;
	if (page_unwritten(o, p, data) && h && h->protect(o, p, 1) && page_unwritten(o, p, data)) {
		object_page_set(o, p, o->pages[p] & (uint8_t)~PAGE_WRITABLE);
		return true;
	}
	object_page_set(o, p, o->pages[p] & (uint8_t)~PAGE_SUMMED);
	return false;
}

/*
 * The pages of [from, n) made writable ahead that no client wrote: write-protected in every
 * client, then, their bytes unchanged still, dropped like any clean page.
 */
static void drop_unwritten(struct object *o, uint64_t from, uint64_t n)
{
	for (uint64_t p = from; p < n; p++)
		if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY && take_unwritten(o, p))
			object_page_punch(o, p, PAGE_ABSENT);
}

/* Drop the pages of [from, n) that no writable shared mapping ever held (punching a page out
 * unmaps it from every client too), and their nonlinear copies; a page being read may have been
 * read before the change: its fill reads it again (fill.c). */
static void drop_clean(struct object *o, uint64_t from, uint64_t n)
{
	uint64_t run = 0;

	if (o->view_ops)
		o->view_ops->claims_settle_all(o);
	drop_unwritten(o, from, n);
	for (uint64_t p = from; p <= n; p++) {
		bool stale;

		if (p < n && o->view_ops)
			drop_clean_copies(o, p);
		stale = p < n && o->pages[p] == PAGE_READY;
		if (p < n && (o->pages[p] & PAGE_STATE_MASK) == PAGE_FILLING)
			object_page_set(o, p, o->pages[p] | PAGE_STALE);

		if (stale) {
			object_page_set(o, p, PAGE_ABSENT);
			run++;
			continue;
		}
		if (run > 0) {
			uint64_t first = p - run;

			if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)(first << UPAGER_PAGE_SHIFT),
				      (off_t)(run << UPAGER_PAGE_SHIFT)) < 0)
				log_warning("punching the cache of %s: %m", o->path);
			run = 0;
		}
	}
}

/*
 * Zero @len bytes of a table in private anonymous memory: its whole pages given back
 * (MADV_DONTNEED reads zeroes after), so that a table of a sparse object of terabytes costs what
 * was set in it, not its size.
 */
static void zero_table(void *table, size_t len)
{
	uintptr_t a = (uintptr_t)table, end = a + len;
	uintptr_t lo = ALIGN_UP(a, UPAGER_PAGE_SIZE), hi = ALIGN_DOWN(end, UPAGER_PAGE_SIZE);

	if (lo >= hi || madvise((void *)lo, hi - lo, MADV_DONTNEED) < 0) {
		memset(table, 0, len);
		return;
	}
	memset(table, 0, lo - a);
	memset((void *)hi, 0, end - hi);
}

/*
 * The file changed behind the cache (write(2), truncate): drop every cached page no writable
 * shared mapping ever held, so the next touch reads the file as it is now.
 */
static int object_revalidate(struct object *o, const struct stat *st, bool holes)
{
	int ret;

	/* A write-back under way changes the file's times itself, and the pages it writes are
	 * taken for clean before they are in the file: none may be dropped and read again now. */
	if (!stat_changed(o, st) || !object_wb_idle(o))
		return 0;
	log_debug("%s changed on disk; refreshing the cache", o->path);
	drop_clean(o, 0,
		   MIN(object_pages(o),
		       ALIGN_UP((uint64_t)st->st_size, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT));
	ret = object_follow_size(o, st);
	if (ret < 0)
		return ret;
	/* Blocks may have gone too (a hole punched): they are asked for again. */
	o->holes = holes;
	zero_table(object_backed_bits(o), (((o->reserve >> UPAGER_PAGE_SHIFT) + 63) >> 6) * 8);
	o->mtime = st->st_mtim;
	o->ctime = st->st_ctim;
	object_mark(o);
	return 0;
}

/**
 * object_follow_file() - the file changed behind the cache (watch.c): as object_revalidate()
 * @o: the object
 * @st: the file's status, just read
 *
 * Return: 0, -EBUSY if the cache cannot follow now (a write-back, a read past the new end or a
 * change of the daemon's own under way: the caller tries again later), or another negative errno.
 */
int object_follow_file(struct object *o, const struct stat *st)
{
	if (!stat_changed(o, st))
		return 0;
	if (!object_wb_idle(o) || o->own_changes > 0)
		return -EBUSY;
	return object_revalidate(o, st, true);
}

/**
 * object_refresh() - the file's writer says it wrote pages [first, first+count) of @o, or changed
 * its size (count 0), and its call has returned: the cache follows the size and drops the range's
 * pages no writable mapping ever held, which the next touch reads again. A page a mapping may have
 * written stays: its bytes are the mapping's until written back (docs/design.md).
 * @o: the object
 * @first: the first page written
 * @count: how many
 *
 * Return: 0, or a negative errno (-EBUSY while a write-back is under way: its pages are taken for
 * clean before they are in the file; the caller asks again).
 */
int object_refresh(struct object *o, uint64_t first, uint64_t count)
{
	struct stat st;
	int ret;

	if (o->kind != OBJECT_FILE || o->fd_read < 0)
		return 0;
	if (!object_wb_idle(o))
		return -EBUSY;
	ret = fstat_cached(o->fd_read, &st);
	if (ret < 0)
		return ret;
	ret = object_follow_size(o, &st);
	if (ret < 0)
		return ret;
	drop_clean(o, MIN(first, object_pages(o)), MIN(first + count, object_pages(o)));
	return 0;
}

/**
 * object_may_dirty() - a page of @o may become dirty while others' reads of its file go unheard
 * (object_page_set()): the watch hears them again first
 * @o: the object
 */
void object_may_dirty(struct object *o)
{
	o->watch_quiet = false;
	if (o->c->hooks && o->c->hooks->may_dirty)
		o->c->hooks->may_dirty(o);
}

/** object_maybe_dirty() - whether a page of [first, first+count) of @o may need writing back */
bool object_maybe_dirty(const struct object *o, uint64_t first, uint64_t count)
{
	uint64_t end = MIN(first + count, object_pages(o));

	for (uint64_t p = first; p < end; p++) {
		if (!object_chunk_maybe_dirty(o, p)) {
			p |= OBJECT_CHUNK - 1;
			continue;
		}
		if (o->pages[p] & (PAGE_WRITABLE | PAGE_AWAY))
			return true;
	}
	return false;
}

/** fd_path() - what @fd names (its /proc/self/fd link), malloc'ed; "?" if unknown */
char *fd_path(int fd)
{
	char link[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return strdup("?");
	buf[n] = 0;
	return strdup(buf);
}

/*
 * A new description of the client's file, through /proc/self/fd, with @mode. O_NONBLOCK makes the
 * open fail at once rather than wait for a lease holder to give its lease up (fcntl(2)); it is
 * cleared again, since io_uring would not wait for a read on a description that has it.
 */
static int reopen_nonblock(int client_fd, int mode)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", client_fd);
	fd = open(path, mode | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/**
 * file_access_probe() - what the daemon needs of a client's file, found with calls that may block
 * @client_fd: the client's descriptor (the caller's duplicate)
 * @fa: filled in; fa->err is 0 or a negative errno
 *
 * It may block for as long as the file's file system does (a worker thread runs it): it reads
 * the file's status and opens the daemon's own description of the file, for reading, and for
 * writing back too if the client's descriptor is O_RDWR: one descriptor. It is a new open file
 * description (/proc/self/fd), so that the daemon's read pattern is not mixed with the client's
 * in the kernel's read-ahead state and its writes land where they belong even if the client's
 * description has O_APPEND; the client proved its access by passing its descriptor. Where the
 * reopen fails (a lease held on the file, which a reopen would have to break), the client's own
 * description serves: for writing only without O_APPEND.
 *
 * The kernel is told not to read ahead on the daemon's reader: the daemon reads ahead itself, for
 * sequential readers only, and MAP_NONBLOCK relies on the page cache holding nothing the daemon
 * did not ask for.
 */
void file_access_probe(int client_fd, struct file_access *fa)
{
	struct statfs sfs;
	struct statx stx;
	bool rdwr;
	int lease, gen;

	*fa = (struct file_access){ .reader = -1 };
	if (fstat(client_fd, &fa->st) < 0 || (fa->flags = fcntl(client_fd, F_GETFL)) < 0) {
		fa->err = neg_errno();
		return;
	}
	/* memfd_secret(2)'s pages are no one's to read but the mapping process's. */
	if (!S_ISREG(fa->st.st_mode) ||
	    (fstatfs(client_fd, &sfs) == 0 && (unsigned long)sfs.f_type == SECRETMEM_MAGIC)) {
		fa->err = -ENODEV;
		return;
	}
	if (statx(client_fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_BTIME, &stx) == 0 &&
	    (stx.stx_mask & STATX_BTIME)) {
		fa->born = stx.stx_btime;
		fa->born_known = true;
	}
	if (ioctl(client_fd, FS_IOC_GETVERSION, &gen) == 0) {
		fa->generation = (uint32_t)gen;
		fa->born_known = true;
	}
	rdwr = (fa->flags & O_ACCMODE) == O_RDWR;
	/* The client's own lease: its description serves, and no break is started. */
	lease = fcntl(client_fd, F_GETLEASE);
	if (lease != F_RDLCK && lease != F_WRLCK) {
		fa->reader = reopen_nonblock(client_fd, rdwr ? O_RDWR : O_RDONLY);
		if (fa->reader >= 0) {
			posix_fadvise(fa->reader, 0, 0, POSIX_FADV_RANDOM);
			fa->rw = rdwr;
			fa->own = true;
			/* Its own offset: SEEK_HOLE moves no client's. */
			fa->holes = lseek(fa->reader, 0, SEEK_HOLE) < fa->st.st_size;
			goto out;
		}
	}
	/* The client's own description: its read-ahead is left alone, and it writes back only
	 * without O_APPEND (pwrite(2) appends on such a description). */
	fa->reader = fcntl(client_fd, F_DUPFD_CLOEXEC, 3);
	fa->rw = rdwr && !(fa->flags & O_APPEND);
	fa->holes = true; /* not asked: it would move the client's offset */
out:
	if (fa->reader < 0)
		fa->err = neg_errno();
	fa->path = fd_path(client_fd);
}

/**
 * object_file_name() - the name of the cache of the file @fa probed, after "upager:":
 * "file:DEV:INO:BIRTH_SEC.BIRTH_NSEC:GENERATION" (hexadecimal; 0 where the file system tells
 * none), so that a cache of a deleted file is not taken for one of another that took its inode
 */
void object_file_name(char *buf, size_t size, const struct file_access *fa)
{
	snprintf(buf, size, "file:%" PRIx64 ":%" PRIx64 ":%" PRIx64 ".%" PRIx32 ":%" PRIx32,
		 (uint64_t)fa->st.st_dev, (uint64_t)fa->st.st_ino, (uint64_t)fa->born.tv_sec,
		 fa->born.tv_nsec, fa->generation);
}

/**
 * file_access_reopen() - a new description of the daemon's own in place of @fa's reader, with
 * the same access, opened now (watch.c: a description carries the file's pre-content marks of
 * the moment it was opened)
 * @fa: what file_access_probe() found
 *
 * Return: 0, or a negative errno (the reader is the client's description, or the open failed):
 * the old reader stays.
 */
int file_access_reopen(struct file_access *fa)
{
	int fd;

	if (fa->err < 0 || !fa->own)
		return -EBADF;
	fd = reopen_nonblock(fa->reader, fa->rw ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return neg_errno();
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	closer_close(fa->reader);
	fa->reader = fd;
	return 0;
}

/** file_access_release() - close and free what @fa still holds */
void file_access_release(struct file_access *fa)
{
	closep(&fa->reader);
	fa->reader = -1;
	free(fa->path);
	fa->path = NULL;
}

/** object_find_file() - the object of the file whose status is @st, or NULL */
struct object *object_find_file(struct cache *c, const struct stat *st)
{
	struct object *o;

	list_for_each_entry (o, &c->objects, link)
		if (o->kind == OBJECT_FILE && o->dev == st->st_dev && o->ino == st->st_ino)
			return o;
	return NULL;
}

/**
 * object_open_file() - the object of a file, made or found
 * @d: the daemon
 * @fa: what file_access_probe() found of a client's descriptor; the reader, writer and path
 *      the object keeps are taken from it (set to -1, NULL), the caller releases the rest
 * @owner: the user charged for the object if it is made
 * @out: a new reference to the object
 *
 * A file mapped before is found by device and inode, and its cache is refreshed if the file changed
 * since (see object_revalidate()). A writable description becomes the object's write-back
 * descriptor if it has none yet.
 *
 * Return: 0 or a negative errno.
 */
int object_open_file(struct cache *c, struct file_access *fa, uid_t owner, struct object **out)
{
	const struct stat *st = &fa->st;
	char name[OBJECT_FILE_NAME_MAX];
	struct object *o;
	int ret;

	if (fa->err < 0)
		return fa->err;
	o = object_find_file(c, st);
	if (o) {
		ret = object_revalidate(o, st, fa->holes);
		if (ret < 0)
			return ret;
		object_ref(o);
		goto keep_writer;
	}

	/* The name ties the cache to its file for a daemon that takes it back (resume.c). */
	object_file_name(name, sizeof(name), fa);
	ret = object_alloc(c, OBJECT_FILE, ALIGN_UP((uint64_t)st->st_size, UPAGER_PAGE_SIZE), name,
			   &o);
	if (ret < 0)
		return ret;
	o->owner = owner;
	o->dev = st->st_dev;
	o->ino = st->st_ino;
	o->file_size = (uint64_t)st->st_size;
	o->mtime = st->st_mtim;
	o->ctime = st->st_ctim;
	o->path = fa->path ? fa->path : strdup("?");
	fa->path = NULL;
	o->holes = fa->holes;
	/* One description reads and, if it may, writes back. */
	o->fd_read = fa->reader;
	cache_store_fd(c, o->fd_read, "rd", o->id);
	if (!fa->rw)
		fa->reader = -1;
keep_writer:
	/* Opened while the file was marked, such a writer waits for the daemon's answer to its
	 * own write (watch.c): only workers write with it, and the loop once the watch is gone. */
	if (o->fd_write < 0 && fa->rw && fa->reader >= 0) {
		o->fd_write_own = fa->own;
		o->fd_write = fd_take(&fa->reader);
		cache_store_fd(c, o->fd_write, "wr", o->id);
	}
	object_mark(o);
	*out = o;
	return 0;
}

/**
 * object_new_anon() - a shared anonymous object of @length bytes, zero-filled, charged to @owner
 * Return: 0 and a reference in *@out, or a negative errno.
 */
int object_new_anon(struct cache *c, uint64_t length, uid_t owner, struct object **out)
{
	struct object *o;
	int ret;

	ret = object_alloc(c, OBJECT_ANON, ALIGN_UP(length, UPAGER_PAGE_SIZE), OBJECT_ANON_NAME,
			   &o);
	if (ret < 0)
		return ret;
	o->owner = owner;
	o->path = strdup("anon");
	*out = o;
	return 0;
}

/** object_find() - the object with id @id, or NULL */
struct object *object_find(struct cache *c, uint64_t id)
{
	struct object *o;

	list_for_each_entry (o, &c->objects, link)
		if (id && o->id == id)
			return o;
	return NULL;
}

/** object_ref() - take a reference; returns @o */
struct object *object_ref(struct object *o)
{
	o->refs++;
	return o;
}

/**
 * object_unref() - drop a reference; the last one writes the cache back and frees the object
 * Return: NULL.
 */
struct object *object_unref(struct object *o)
{
	if (!o || --o->refs > 0)
		return NULL;
	/* The last reference: what may be dirty goes to the file first; the object is freed
	 * when that is over (wb_over()), unless a new mapping takes it again meanwhile. */
	object_writeback(o, 0, object_pages(o), false, NULL);
	if (object_wb_idle(o))
		object_free(o);
	return NULL;
}

static void object_free(struct object *o)
{
	struct cache *c = o->c;

	if (o->wb_err)
		log_error("%s: a write-back failed (%s) and no msync reported it: writes to pages "
			  "%" PRIu64 "-%" PRIu64 " may be lost",
			  o->path, strerror(-o->wb_err), o->wb_err_first, o->wb_err_end - 1);

	if (o->kind == OBJECT_FILE && c->hooks && c->hooks->forget)
		c->hooks->forget(o);

	list_del_init(&o->link);
	c->n_objects--;
	c->cached -= o->cached;
	munmap(o->map, o->reserve);
	munmap(o->pages, o->reserve >> UPAGER_PAGE_SHIFT);
	munmap(o->used, used_bytes(o));
	if (o->slot) {
		/* Runs of slots next to each other go back together (swap_free()). */
		for (uint64_t p = 0, n; p < object_pages(o); p += MAX(n, 1)) {
			int64_t first = object_slot(o, p);

			for (n = 0; first >= 0 && p + n < object_pages(o) &&
				    object_slot(o, p + n) == first + (int64_t)n;
			     n++)
				;
			if (n && c->store)
				store_free(c->store, (uint64_t)first, n);
		}
		munmap(o->slot, slot_bytes(o));
	}
	if (o->sum)
		munmap(o->sum, slot_bytes(o));
	free(o->maybe_dirty);
	file_store_free(o->store);
	close(o->memfd);
	closep(&o->pages_fd);
	closep(&o->slot_fd);
	/* A client's file: its release may ask a file system that does not answer. */
	if (o->fd_write >= 0 && o->fd_write != o->fd_read)
		closer_close_owned(o->fd_write, o->owner);
	if (o->fd_read >= 0)
		closer_close_owned(o->fd_read, o->owner);
	cache_unstore_fd(c, "ob", o->id);
	cache_unstore_fd(c, "pg", o->id);
	cache_unstore_fd(c, "sl", o->id);
	cache_unstore_fd(c, "rd", o->id);
	cache_unstore_fd(c, "wr", o->id);
	state_forget(c->state, &o->saved);
	if (o->view_ops)
		o->view_ops->object_free(o);
	free(o->path);
	free(o);
}

/**
 * fd_reopen() - a new open file description of what @fd refers to, through /proc/self/fd
 * @fd: a descriptor of the daemon's
 * @writable: O_RDWR if true, else O_RDONLY
 *
 * Return: the descriptor (O_CLOEXEC), or a negative errno.
 */
int fd_reopen(int fd, bool writable)
{
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	return r < 0 ? neg_errno() : r;
}

/**
 * object_reopen_memfd() - a new descriptor of the object's memfd to hand to a client
 * @o: the object
 * @writable: O_RDWR if true, else O_RDONLY (the client can then never write the cache)
 *
 * Return: the descriptor (O_CLOEXEC), or a negative errno.
 */
int object_reopen_memfd(struct object *o, bool writable)
{
	return fd_reopen(o->memfd, writable);
}

/*
 * Write-back. A page may be dirty from the time a client may write it (PAGE_WRITABLE) until it is
 * written back while no client may write it: before its run is copied for the file's page store,
 * it is write-protected in every client, so that a write from then on faults and makes it dirty
 * again, and only then taken for clean (a page a client may write unprotected stays dirty). So a
 * page is written back once per write fault, not at every write-back. The copy goes to the store
 * as the swap store gets shared anonymous pages (store_write()), then a flush (store_flush(),
 * durable for MS_SYNC): the file store writes in a worker thread, never on the loop, so a file
 * system that stalls costs the clients that wait for that write-back (an msync, a munmap), no one
 * else. An object's write-backs run one at a time, in the order asked, so that an MS_SYNC that
 * comes after another write-back of the same pages returns only once those writes are done too.
 */
struct wb_req {
	struct list_head link; /* object.wb_queue */
	uint64_t first, count;
	uint64_t next; /* the first page not yet taken into a job */
	bool sync;
	struct wb_wait *w; /* or NULL */
};

/* The most a job takes at once: its pages are copied out of the cache for it. */
#define WB_JOB_PAGES 4096

struct wb_run {
	uint64_t first, count;
	bool cleaned; /* taken for clean: dirty again if its write fails */
};

struct wb_job {
	struct object *o;
	struct wb_req *req;
	struct wb_run *runs;
	size_t n_runs;
	uint8_t *data; /* the runs' pages, one after the other, copied on the loop */
	bool last; /* the request's last job: it syncs */
	bool now; /* object_writeback_now()'s: over when the store is */
	unsigned pending; /* transfers of the store not over, and one while they are asked */
	int ret; /* the first error */
	uint64_t written;
};

static void wb_kick(struct object *o);
static void wb_wait_later(struct cache *c, struct wb_wait *w, int ret);

/*
 * The next runs of dirty pages of @req, up to WB_JOB_PAGES, write-protected in every client, taken
 * for clean and copied out of the cache: the store writes the copy, so that the loop may go on
 * changing the cache (fills, nonlinear copies taking pages away) while it does.
 */
/*
 * Whether the chunk of pages from @first (a chunk's first page) holds a page to write back or to
 * bring home; a chunk found to hold none is marked so, and skipped until a page there becomes
 * PAGE_WRITABLE or PAGE_AWAY again (object_page_set()).
 */
static bool chunk_dirty(struct object *o, uint64_t first)
{
	const uint8_t *s = o->pages + first;

	if (!object_chunk_maybe_dirty(o, first))
		return false;
	for (uint64_t i = 0; i < OBJECT_CHUNK; i++)
		if (s[i] & (PAGE_WRITABLE | PAGE_AWAY))
			return true;
	object_chunk_mark(o, first, false);
	return false;
}

static int wb_collect(struct object *o, struct wb_req *req, struct wb_job *job)
{
	const uint8_t want = PAGE_READY | PAGE_WRITABLE;
	uint64_t end = MIN(req->first + req->count, object_pages(o)), p, run = 0, taken = 0;
	size_t cap = 0;

	for (p = req->next; p <= end; p++) {
		struct wb_run *r;

		if (p < end && run == 0 && (p & (OBJECT_CHUNK - 1)) == 0 &&
		    p + OBJECT_CHUNK <= end && !chunk_dirty(o, p)) {
			p += OBJECT_CHUNK - 1; /* nothing to write back in this chunk */
			continue;
		}
		/* A page whose data was in a copy: above the budget, its read-only copies go once
		 * it is home, so that writing it back does not take twice its memory. */
		if (p < end && (o->pages[p] & PAGE_AWAY) && object_restore_home(o, p) == 0 &&
		    (o->pages[p] & PAGE_STATE_MASK) == PAGE_READY && !cache_room(o->c, 1))
			o->view_ops->drop_copies(o, p);
		if (p < end && (o->pages[p] & (uint8_t)~PAGE_SUMMED) == want &&
		    taken + run < WB_JOB_PAGES && !take_unwritten(o, p)) {
			run++;
			continue;
		}
		if (run == 0)
			continue;
		if (job->n_runs == cap) {
			struct wb_run *v;

			cap = cap ? 2 * cap : 8;
			v = realloc(job->runs, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			job->runs = v;
		}
		r = &job->runs[job->n_runs++];
		r->first = p - run;
		r->count = run;
		r->cleaned = o->c->hooks && o->c->hooks->protect(o, r->first, r->count);
		if (r->cleaned)
			for (uint64_t q = r->first; q < p; q++)
				object_page_set(o, q, o->pages[q] & (uint8_t)~PAGE_WRITABLE);
		taken += run;
		run = 0;
		if (taken == WB_JOB_PAGES) {
			object_chunk_mark(o, p, true); /* the rest of its chunk was not looked at */
			break;
		}
	}
	req->next = MIN(p, end);
	job->last = req->next == end;
	if (taken == 0)
		return 0;
	job->data = malloc(taken << UPAGER_PAGE_SHIFT);
	if (!job->data)
		return -ENOMEM;
	taken = 0;
	for (size_t i = 0; i < job->n_runs; i++) {
		memcpy(job->data + (taken << UPAGER_PAGE_SHIFT),
		       o->map + (job->runs[i].first << UPAGER_PAGE_SHIFT),
		       job->runs[i].count << UPAGER_PAGE_SHIFT);
		taken += job->runs[i].count;
	}
	return 0;
}

/**
 * object_invalidate() - an msync with MS_INVALIDATE: follow the file's size, and drop the pages of
 * [first, first+count) that no writable mapping ever held, which the next touch reads again, even
 * where the cache cannot tell a change of others from its own (a write-back under way or just
 * over, see object_follow_file()); but not those the write-back under way has taken for clean,
 * which are not in the file yet
 * @o: the object
 * @first: the first page
 * @count: how many
 *
 * Return: 0 or a negative errno.
 */
int object_invalidate(struct object *o, uint64_t first, uint64_t count)
{
	const struct wb_job *job = o->wb_running;
	uint64_t from, end;
	struct stat st;
	int ret;

	if (o->kind != OBJECT_FILE || o->fd_read < 0)
		return 0;
	ret = fstat_cached(o->fd_read, &st);
	if (ret < 0)
		return ret;
	ret = object_follow_size(o, &st);
	end = MIN(first + count, object_pages(o));
	from = MIN(first, end);
	for (size_t i = 0; job && i < job->n_runs; i++) {
		drop_clean(o, from, MAX(from, MIN(job->runs[i].first, end)));
		from = MAX(from, MIN(job->runs[i].first + job->runs[i].count, end));
	}
	drop_clean(o, from, end);
	return ret;
}

/* The file's status after the store's writes: our own change, none behind the cache's back. */
static void wb_status(void *userdata, const struct stat *st)
{
	struct object *o = userdata;

	o->file_size = (uint64_t)st->st_size;
	o->mtime = st->st_mtim;
	o->ctime = st->st_ctim;
	object_mark(o);
}

/**
 * object_file_store() - the file of @o as its page store (file-store.c), made now if it has none
 * Return: the store, or NULL (no memory, or no descriptor of the file).
 */
struct store *object_file_store(struct object *o)
{
	if (!o->store && o->kind == OBJECT_FILE && o->fd_read >= 0)
		o->store = file_store_new(o->c->ring, o->c->workers, 0x80000000u | (uint32_t)o->id,
					  o->fd_read, &o->fd_write, wb_status, o);
	return o->store;
}

static void wb_job_free(struct wb_job *job)
{
	free(job->runs);
	free(job->data);
	free(job);
}

/*
 * A write-back failed: counted and logged, and, unless an msync waits for it (which reports it),
 * kept on the object for the next msync of its pages. Its pages stay dirty and go again with the
 * next write-back.
 */
static void wb_failed(struct object *o, const struct wb_job *job, bool reported)
{
	o->wb_errors++;
	o->c->stats.wb_errors++;
	log_limited(LOG_ERR, "write-back of %s: %s%s", o->path, strerror(-job->ret),
		    reported ? "" : " (kept for the next msync)");
	if (reported || job->n_runs == 0)
		return;
	if (o->wb_err == 0) {
		o->wb_err = job->ret;
		o->wb_err_first = job->runs[0].first;
		o->wb_err_end = 0;
	}
	for (size_t i = 0; i < job->n_runs; i++) {
		o->wb_err_first = MIN(o->wb_err_first, job->runs[i].first);
		o->wb_err_end = MAX(o->wb_err_end, job->runs[i].first + job->runs[i].count);
	}
}

/*
 * The job's transfers are over: its results, then the object's next write-back. @later: called
 * from a completion of the store, so an object no one holds any more is freed here (else the one
 * that asked, object_unref(), does it).
 */
static void wb_over(struct wb_job *job, bool later)
{
	struct object *o = job->o;
	struct wb_req *req = job->req;

	o->c->stats.bytes_written += job->written;
	if (job->ret < 0) {
		for (size_t i = 0; i < job->n_runs; i++)
			for (uint64_t p = job->runs[i].first;
			     job->runs[i].cleaned && p < job->runs[i].first + job->runs[i].count;
			     p++)
				if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY)
					object_page_set(o, p, o->pages[p] | PAGE_WRITABLE);
		wb_failed(o, job, req->w && req->w->reports);
	}
	if (job->now)
		return;
	if (o->wb_running == job)
		o->wb_running = NULL;
	if (job->ret == 0 && !job->last && !o->c->stopping) {
		/* The rest of the request goes next, before any other. */
		list_add(&req->link, &o->wb_queue);
	} else {
		wb_wait_later(o->c, req->w, job->ret);
		free(req);
	}
	wb_job_free(job);
	wb_kick(o);
	if (later && o->refs == 0 && object_wb_idle(o))
		object_free(o);
}

/* A transfer of the store is over: the bytes written, or a negative errno. */
static void wb_written(void *userdata, int result)
{
	struct wb_job *job = userdata;

	if (result < 0 && job->ret == 0)
		job->ret = result;
	if (result > 0)
		job->written += (uint64_t)result;
	/* Never the last while wb_submit() asks: it holds one. */
	if (--job->pending == 0)
		wb_over(job, true);
}

/*
 * Hand the job's runs to the file's store, and a flush after them.
 * Return: true if the job is over already (nothing went, or the store was set to write now): the
 * caller calls wb_over(); else a completion of the store does.
 */
static bool wb_submit(struct wb_job *job)
{
	struct store *st = object_file_store(job->o);
	uint64_t taken = 0;
	int ret = st ? 0 : -ENOMEM;

	/* One held while they are asked: a transfer may be over before its call returns. */
	job->pending = 1;
	for (size_t i = 0; i < job->n_runs && ret == 0; i++) {
		job->pending++;
		ret = store_write(st, job->runs[i].first, job->data + (taken << UPAGER_PAGE_SHIFT),
				  job->runs[i].count, wb_written, job);
		job->pending -= ret != 0;
		taken += job->runs[i].count;
	}
	/* Also after a write refused: those asked before it go. */
	if (st) {
		int err;

		job->pending++;
		err = store_flush(st, job->last && job->req->sync, wb_written, job);
		job->pending -= err != 0;
		ret = ret < 0 || err > 0 ? ret : err;
	}
	if (ret < 0)
		job->ret = ret;
	return --job->pending == 0;
}

/* Start the object's next write-back, unless one runs. */
static void wb_kick(struct object *o)
{
	/* A daemon that stops writes back on its own thread (object_stop()). */
	if (o->c->stopping)
		return;
	while (!o->wb_running && !list_empty(&o->wb_queue)) {
		struct wb_req *req = list_first_entry(&o->wb_queue, struct wb_req, link);
		struct wb_job *job = calloc(1, sizeof(*job));
		int ret = job ? 0 : -ENOMEM;

		list_del_init(&req->link);
		if (job) {
			job->o = o;
			job->req = req;
			ret = wb_collect(o, req, job);
		}
		if (ret == 0 && job->n_runs == 0 && !req->sync) {
			/* Nothing to write (a request is taken whole when it has nothing more). */
			ret = 1;
		}
		if (ret == 0) {
			/* One job per object at a time: its store writes in the order asked. */
			o->wb_running = job;
			if (wb_submit(job))
				wb_over(job, false);
			return;
		}
		if (job)
			wb_job_free(job);
		wb_wait_later(o->c, req->w, ret < 0 ? ret : 0);
		free(req);
	}
}

/*
 * One write-back @w waits for is over, with @ret, where the write-back's code goes on with its
 * object: the waiter is told at the loop's turn (object_wb_notify()). Its done may drop the last
 * reference of the object (a reader's pre-content wait whose writer died meanwhile), which freed
 * it under wb_over() and got the daemon killed by SIGSEGV.
 */
static void wb_wait_later(struct cache *c, struct wb_wait *w, int ret)
{
	if (!w)
		return;
	if (ret < 0 && w->ret == 0)
		w->ret = ret;
	if (--w->pending == 0)
		list_add_tail(&w->link, &c->wb_done);
}

/**
 * object_wb_notify() - tell the waiters whose write-backs are over (wb_wait_later()); at each turn
 * of the loop, where no write-back is half done
 * @c: the cache
 */
void object_wb_notify(struct cache *c)
{
	while (!list_empty(&c->wb_done)) {
		struct wb_wait *w = list_first_entry(&c->wb_done, struct wb_wait, link);

		list_del_init(&w->link);
		w->done(w);
	}
}

/**
 * wb_wait_put() - one write-back @w waits for is over, with @ret (0 or a negative errno)
 * @w: the waiter, or NULL; its done() is called when its last write-back is over
 */
void wb_wait_put(struct wb_wait *w, int ret)
{
	if (!w)
		return;
	if (ret < 0 && w->ret == 0)
		w->ret = ret;
	if (--w->pending == 0)
		w->done(w);
}

/**
 * object_writeback() - write the pages of [first, first+count) that may be dirty to the file
 * @o: the object
 * @first: first page
 * @count: number of pages
 * @sync: wait for the data to reach the disk (fdatasync)
 * @w: who waits for it (its pending count is raised until it is over), or NULL
 *
 * The write-back goes to the file's store after those of the object asked before (see above).
 * Only bytes below the file's current end are written; the rest of the last page never reaches
 * the file. Shared anonymous objects have nothing to write.
 *
 * Return: 0, or a negative errno if it could not be asked for.
 */
int object_writeback(struct object *o, uint64_t first, uint64_t count, bool sync, struct wb_wait *w)
{
	struct wb_req *req;

	if (o->kind != OBJECT_FILE || o->fd_write < 0)
		return 0;
	if (w && w->reports && o->wb_err && first < o->wb_err_end &&
	    first + count > o->wb_err_first) {
		/* An earlier write-back of these pages failed: this msync reports it, once. */
		if (w->ret == 0)
			w->ret = o->wb_err;
		o->wb_err = 0;
	}
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->first = req->next = first;
	req->count = count;
	req->sync = sync;
	req->w = w;
	if (w)
		w->pending++;
	list_add_tail(&req->link, &o->wb_queue);
	wb_kick(o);
	return 0;
}

/**
 * object_stop() - the daemon stops: write back on the loop's own thread, and free the object if
 * no one holds it (and no write-back of it is under way)
 * @o: the object
 */
void object_stop(struct object *o)
{
	object_writeback_now(o);
	if (o->refs == 0 && object_wb_idle(o))
		object_free(o);
}

/**
 * object_writeback_now() - write back every page that may be dirty, on the loop's own thread
 * @o: the object
 *
 * For a daemon that stops, whose worker threads will not be waited for: the pages of a
 * write-back under way are taken for dirty again, the write-backs still asked for are over, and
 * everything is written and synced here, by the file's store set to write now.
 *
 * Return: 0 or a negative errno.
 */
int object_writeback_now(struct object *o)
{
	struct wb_req req = { .first = 0, .count = object_pages(o), .sync = true };
	struct store *st;
	int ret = 0;
	bool last;

	if (o->kind != OBJECT_FILE || o->fd_write < 0)
		return 0;
	if (o->wb_running) {
		struct wb_job *busy = o->wb_running;

		for (size_t i = 0; i < busy->n_runs; i++)
			for (uint64_t p = busy->runs[i].first;
			     p < busy->runs[i].first + busy->runs[i].count; p++)
				if ((o->pages[p] & PAGE_STATE_MASK) == PAGE_READY)
					object_page_set(o, p, o->pages[p] | PAGE_WRITABLE);
	}
	while (!list_empty(&o->wb_queue)) {
		struct wb_req *r = list_first_entry(&o->wb_queue, struct wb_req, link);

		list_del_init(&r->link);
		wb_wait_later(o->c, r->w, 0);
		free(r);
	}
	st = object_file_store(o);
	if (!st)
		return -ENOMEM;
	st->now = true;
	do {
		struct wb_job job = { .o = o, .req = &req, .now = true };

		ret = wb_collect(o, &req, &job);
		/* Over at once: a store set to write now makes its transfers in the call. */
		if (ret == 0 && wb_submit(&job)) {
			wb_over(&job, false);
			ret = job.ret;
		}
		last = job.last;
		free(job.runs);
		free(job.data);
	} while (!last && ret == 0);
	st->now = false;
	return ret;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/**
 * object_touch_due() - whether a client's write through a shared mapping must set the file's
 * modification and change times first: Linux sets them to now at the first write to a clean page
 * of such a mapping (mmap(2)); not if they are now already, to the granularity of the coarse
 * clock (a file system with fine-grained times may have set them a little past it), by the
 * daemon's own figure of them (no system call)
 * @o: the object
 */
bool object_touch_due(const struct object *o)
{
	struct timespec now;

	if (o->kind != OBJECT_FILE || o->fd_write < 0 ||
	    clock_gettime(CLOCK_REALTIME_COARSE, &now) < 0)
		return false;
	return ts_before(&o->mtime, &now) || ts_before(&o->ctime, &now);
}

/**
 * object_touch_file() - set the file's times to now through @fd, and read them back into @st
 * (the call that may block: a worker thread makes it)
 * Return: 0 or a negative errno.
 */
int object_touch_file(int fd, struct stat *st)
{
	const struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_NOW } };

	if (futimens(fd, times) < 0 || fstat(fd, st) < 0)
		return neg_errno();
	return 0;
}

/**
 * object_own_change() - the daemon changed the file's times itself (object_touch_file(), a
 * reservation of blocks) and its call is over: the times it set are no change behind the cache's
 * back, unless the file had changed already before the call (then they are left for the watch to
 * follow, see object_follow_file())
 * @o: the object
 * @before: the file's status read just before the call
 * @after: just after it
 */
void object_own_change(struct object *o, const struct stat *before, const struct stat *after)
{
	if (stat_changed(o, before))
		return;
	o->mtime = after->st_mtim;
	o->ctime = after->st_ctim;
	object_mark(o);
}

/**
 * object_drop() - pages [first, first+count) of @o leave memory: punched out of the memfd, which
 * unmaps them from every client too; the next touch faults and fills them again
 * @o: the object
 * @first: first page
 * @count: pages, each ready and clean (in the file, or in the swap store)
 *
 * Return: 0, or a negative errno (the pages stay).
 */
int object_drop(struct object *o, uint64_t first, uint64_t count)
{
	uint64_t *out = object_out_bits(o);

	if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(first << UPAGER_PAGE_SHIFT), (off_t)(count << UPAGER_PAGE_SHIFT)) < 0)
		return neg_errno();
	for (uint64_t p = first; p < first + count; p++) {
		object_page_set(o, p, PAGE_ABSENT);
		object_bit_set(o->used, p, false);
		object_bit_set(out, p, true);
	}
	object_tables_trim(o, first, count);
	o->pages_out += count;
	o->c->stats.pages_out += count;
	return 0;
}

/**
 * object_slots_map() - give a shared anonymous object its table of swap slots, if it has none
 * @o: the object
 *
 * Under an fd store the table is a memfd of the store ("sl"), so that a daemon that takes over
 * knows which slot each page that left memory is in.
 *
 * Return: 0, or a negative errno.
 */
int object_slots_map(struct object *o)
{
	int ret;

	if (o->slot)
		return 0;
	ret = table_map("upager:slots", slot_bytes(o), o->c->fdstore, &o->slot_fd,
			(void **)&o->slot);
	if (ret < 0)
		return ret;
	if (o->slot_fd >= 0)
		cache_store_fd(o->c, o->slot_fd, "sl", o->id);
	return 0;
}

/*
 * The slot table a previous daemon left for @o (@fd, taken). A page that has a slot and is not
 * absent was on its way out (its slot set, maybe punched already: swap_out_done()) or back in
 * (read, its slot not yet freed: fill.c); either way no client changed it since it was written
 * (it was write-protected). If the memfd holds it, it stays there and its slot is let go;
 * else it is absent, and read back from its slot on its next touch.
 */
static int object_slots_adopt(struct object *o, int fd)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != slot_bytes(o)) {
		close(fd);
		return -EBADF;
	}
	o->slot_fd = fd;
	ret = table_map("upager:slots", slot_bytes(o), true, &o->slot_fd, (void **)&o->slot);
	if (ret < 0) {
		o->slot_fd = -1;
		return ret;
	}
	for (uint64_t p = 0; p < object_pages(o); p++) {
		off_t off = (off_t)(p << UPAGER_PAGE_SHIFT);

		if (!o->slot[p] || (o->pages[p] & PAGE_STATE_MASK) == PAGE_ABSENT)
			continue;
		if (lseek(o->memfd, off, SEEK_DATA) == off)
			o->slot[p] = 0; /* not claimed: free in the store */
		else
			object_page_punch(o, p, PAGE_ABSENT);
	}
	return 0;
}

/**
 * object_slots_claim_all() - the slots that the pages of every object are in, claimed in a page
 * store just taken over (store_claim()); the other slots stay free
 * @c: the cache, its store set
 *
 * Return: 0, or the first negative errno of store_claim() (a slot named twice: logged, and the
 * pages stay in the slots they name).
 */
int object_slots_claim_all(struct cache *c)
{
	struct object *o;
	int err = 0;

	list_for_each_entry (o, &c->objects, link) {
		uint64_t n = object_pages(o), p = 0;

		o->slots_held = 0;
		while (o->slot && p < n) {
			int64_t first = object_slot(o, p);
			uint64_t run = 1;
			int ret;

			if (first < 0) {
				p++;
				continue;
			}
			while (p + run < n && object_slot(o, p + run) == first + (int64_t)run)
				run++;
			o->slots_held += run;
			ret = store_claim(c->store, (uint64_t)first, run);
			if (ret < 0) {
				log_limited(LOG_ERR,
					    "swap: object %" PRIu64 " pages %" PRIu64 "+%" PRIu64
					    " name slots not free: %s",
					    o->id, p, run, strerror(-ret));
				err = err ? err : ret;
			}
			p += run;
		}
	}
	return err;
}

/**
 * object_slot_set() - page @p of @o is in swap slot @slot from now on (-1: in none); a slot it
 * was in before is freed
 */
void object_slot_set(struct object *o, uint64_t p, int64_t slot)
{
	struct cache *c = o->c;
	int64_t old = object_slot(o, p);

	/* The table first: a daemon that takes over never finds a page in a slot that was freed
	 * (object_slots_adopt()). */
	if (o->slot)
		o->slot[p] = slot >= 0 ? (uint32_t)(slot + 1) : 0;
	o->slots_held += (slot >= 0) - (old >= 0);
	if (old >= 0 && c->store)
		store_free(c->store, (uint64_t)old, 1);
}

/** object_cached_pages() - pages of the object that are valid in its cache */
uint64_t object_cached_pages(const struct object *o)
{
	return o->cached;
}

/* The page states are not here: they are in the object's own memfd. */
static void object_fields(struct state_io *io, struct object *o, bool *has_read, bool *has_write)
{
	STATE_NUM(io, 1, o->id);
	STATE_NUM(io, 2, o->kind);
	STATE_NUM(io, 3, o->reserve);
	STATE_NUM(io, 4, o->file_size);
	STATE_NUM(io, 5, o->dev);
	STATE_NUM(io, 6, o->ino);
	STATE_NUM(io, 7, o->mtime.tv_sec);
	STATE_NUM(io, 8, o->mtime.tv_nsec);
	STATE_NUM(io, 9, o->ctime.tv_sec);
	STATE_NUM(io, 10, o->ctime.tv_nsec);
	state_str(io, 11, &o->path);
	STATE_NUM(io, 12, o->pages_read);
	STATE_NUM(io, 13, o->bytes_read);
	STATE_NUM(io, 14, o->linear_writers);
	STATE_NUM(io, 15, *has_read);
	STATE_NUM(io, 16, *has_write);
	STATE_NUM(io, 17, o->size); /* the memfd may be larger, see object_resize() */
}

static void object_save(struct state_handle *h, struct state *st)
{
	struct object *o = container_of(h, struct object, saved);
	bool has_read = o->fd_read >= 0, has_write = o->fd_write >= 0;
	struct state_io io;

	state_begin(&io, st, STATE_REC_OBJECT);
	object_fields(&io, o, &has_read, &has_write);
	state_end(&io);
}

/** object_mark() - the saved record of object @o changed, or is new */
void object_mark(struct object *o)
{
	state_mark(o->c->state, &o->saved, object_save, NULL);
}

/** object_load() - take an object back from its record and its descriptors in the fd store */
void object_load(struct cache *c, struct state_io *io, struct fdstore_passed *p)
{
	struct object saved = { 0 }, *o;
	bool has_read = false, has_write = false;
	int memfd, pages_fd, slot_fd, rd = -1, wr = -1, ret;

	object_fields(io, &saved, &has_read, &has_write);
	memfd = fdstore_passed_take(p, "ob", saved.id);
	pages_fd = fdstore_passed_take(p, "pg", saved.id);
	slot_fd = fdstore_passed_take(p, "sl", saved.id);
	if (has_read)
		rd = fdstore_passed_take(p, "rd", saved.id);
	if (has_write)
		wr = fdstore_passed_take(p, "wr", saved.id);
	/* The service manager passes one descriptor of an open file description stored twice. */
	if (has_write && wr < 0 && rd >= 0)
		wr = fcntl(rd, F_DUPFD_CLOEXEC, 3);
	ret = object_adopt(c, &saved, memfd, pages_fd, rd, wr, &o);
	if (ret < 0)
		log_warning("object %s was not passed back: %s", saved.path ? saved.path : "?",
			    strerror(-ret));
	if (ret < 0 || slot_fd < 0)
		closep(&slot_fd);
	else if ((ret = object_slots_adopt(o, slot_fd)) < 0)
		log_error("object %" PRIu64 ": its swap slots are lost (%s): its pages that were "
			  "paged out fault with SIGBUS",
			  o->id, strerror(-ret));
	free(saved.path);
}
