// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The swap store: where pages that leave memory are kept, on a file or a block device that is the
 * daemon's alone, never in the kernel's swap.
 *
 * Page 0 holds a header that says the store is one of upager's; slot N is page N + 1. What the
 * slots hold lives only as long as the store: a file is cut back to its header when it is opened
 * and when it is closed. The checksums that vouch for the slots, and which slots are written, are
 * the store's tables: memory of the daemon's, or, for a store that outlives the daemon under the
 * service manager's fd store (SWAP_KEPT), a memfd that the next daemon takes over with the store's
 * descriptor (swap_adopt()), the file untouched. A file is sparse: it grows with ftruncate() as slots are used, and a freed slot is punched out of it (a
 * device's is discarded), so the store costs disk only for what it holds.
 *
 * I/O goes through the daemon's io_uring with O_DIRECT where the file system has it: a page
 * written out to free memory must not stay in the page cache. Each page written has its CRC32C
 * kept here, and a page read back that does not match it is an error (-EIO), never data.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/macro.h"
#include "log.h"
#include "memfd.h"
#include "page-sums.h"
#include "ring.h"
#include "slots.h"
#include "store-header.h"
#include "swap.h"

#define PAGE UPAGER_PAGE_SIZE
#define SWAP_TABLES_MAGIC "upager swap tables, format 1\n"
#define SWAP_GROW_PAGES 256 /* a file grows by 1 MiB at a time */
#define SWAP_IO_MAX (64U << 20) /* the most one ring request moves */
#define SWAP_RETRIES 8 /* of a request that failed with EAGAIN or EINTR */

struct swap {
	struct ring *ring;
	int fd;
	bool device;
	bool ours; /* the header is written: the file may be cut back at close */
	bool trim; /* punching holes or discarding still works */
	uint64_t file_pages; /* slots the file is long enough for */
	struct slots slots;
	void *tables; /* a header page, then crc, then written (tables_bytes()) */
	int tables_fd; /* their memfd (SWAP_KEPT), or -1: private memory */
	struct page_sums sums; /* in the tables */
	unsigned inflight;
	bool closing; /* swap_close() came while I/O was in flight */
	struct swap_stats stats;
};

struct swap_io {
	struct swap *swap;
	bool write;
	unsigned retries;
	uint64_t slot, pages;
	uint64_t done; /* bytes */
	char *buf;
	swap_done_fn fn;
	void *userdata;
};

/* The first page of the tables: what they are, and for how many slots. */
struct swap_tables_header {
	char magic[32];
	uint64_t pages;
};

/* The tables of a store of @pages slots: a header page, the checksums, the written bits. */
static uint64_t tables_bytes(uint64_t pages)
{
	return PAGE + page_sums_bytes(pages);
}

/*
 * Map the tables of @s (slots.pages set): @fd's if not -1, else a new memfd if @kept, else
 * private memory. Either way only the part that slots in use touch costs memory.
 */
static int tables_map(struct swap *s, int fd, bool kept)
{
	uint64_t bytes = tables_bytes(s->slots.pages);
	void *m;
	int ret;

	if (fd < 0 && kept) {
		ret = memfd_new("upager:swap", bytes, MEMFD_FIXED_SIZE, &fd);
		if (ret < 0)
			return ret;
	}
	s->tables_fd = fd;
	if (fd >= 0)
		m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	else
		m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return neg_errno();
	s->tables = m;
	page_sums_place(&s->sums, (char *)m + PAGE, s->slots.pages);
	return 0;
}

static void swap_destroy(struct swap *s)
{
	/* Nothing in the slots outlives the store: give the file's blocks back. */
	if (s->ours && !s->device && ftruncate(s->fd, PAGE) < 0)
		log_warning("swap: cannot cut the file back: %m");
	if (s->fd >= 0)
		close(s->fd);
	if (s->tables_fd >= 0)
		close(s->tables_fd);
	if (s->tables)
		munmap(s->tables, tables_bytes(s->slots.pages));
	slots_deinit(&s->slots);
	free(s);
}

/**
 * swap_close() - close the store, once the I/O in flight has completed
 * @s: the store, or NULL
 *
 * I/O in flight completes as usual, its callbacks called; the store is freed after the last.
 */
void swap_close(struct swap *s)
{
	if (!s)
		return;
	if (s->inflight > 0)
		s->closing = true;
	else
		swap_destroy(s);
}

static void swap_closep(struct swap **s)
{
	swap_close(*s);
}

/*
 * Open @path, a block device or a regular file (made if missing), and refuse it if anyone but the
 * daemon's user could write it (pages read back from it are mapped into clients) or read it (it
 * holds every user's pages), or if it is a symbolic link another user made: in a directory all
 * may write (/var/tmp), a link made first to an empty file of the daemon's user that all may read
 * had every page paged out land where all could read it.
 */
static int swap_open_fd(const char *path, struct stat *st, int *out)
{
	_cleanup_close_ int fd = -1;
	struct stat before;

	if (lstat(path, &before) == 0 && S_ISLNK(before.st_mode) && before.st_uid != geteuid())
		return -EPERM;
	/* Not even opened: a FIFO, a tty or another device, whose open could have effects. */
	if (stat(path, &before) == 0 && !S_ISREG(before.st_mode) && !S_ISBLK(before.st_mode))
		return -EINVAL;
	/* Without O_CREAT, O_EXCL opens a block device only if no one else has it (mounted). */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_EXCL);
	if (fd < 0 && errno == ENOENT)
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return neg_errno();
	if (fstat(fd, st) < 0)
		return neg_errno();
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return -EINVAL;
	/* A block device's group is the disk group, which may read and write every disk anyway. */
	if (st->st_uid != geteuid() || (st->st_mode & (S_IROTH | S_IWOTH)) ||
	    (S_ISREG(st->st_mode) && (st->st_mode & (S_IRGRP | S_IWGRP))))
		return -EPERM;
	if (S_ISREG(st->st_mode) && flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : neg_errno();
	*out = fd_take(&fd);
	return 0;
}

/* How many slots: @max_bytes of a file, a device's size less its header (at most @max_bytes). */
static int swap_size(int fd, bool device, uint64_t max_bytes, uint64_t *pages)
{
	uint64_t n = max_bytes / PAGE;

	if (device) {
		uint64_t bytes;
		int sector;

		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0 || ioctl(fd, BLKSSZGET, &sector) < 0)
			return neg_errno();
		if (sector > (int)PAGE)
			return -EINVAL; /* O_DIRECT could not move one page */
		bytes = bytes < PAGE ? 0 : bytes / PAGE - 1;
		n = max_bytes ? MIN(n, bytes) : bytes;
	}
	if (n == 0)
		return -EINVAL;
	*pages = n;
	return 0;
}

/*
 * The slots the file system under the file @fd has room for (one at least): a store larger than
 * it takes freed slots' blocks (kept until their run is long, slots_trim_due()) from new places,
 * and met ENOSPC at the size of all it ever held, though it held a few pages.
 */
static uint64_t fs_room(int fd)
{
	struct statvfs vfs;

	if (fstatvfs(fd, &vfs) < 0 || vfs.f_frsize == 0)
		return UINT64_MAX;
	return MAX((uint64_t)vfs.f_bavail * vfs.f_frsize / PAGE, 1);
}

/* The first @bytes of the store, zeroes past its end, into a buffer O_DIRECT can use. */
static int read_head(struct swap *s, size_t bytes, char **out)
{
	_cleanup_free_ char *buf = aligned_alloc(PAGE, bytes);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	n = pread(s->fd, buf, bytes, 0);
	if (n < 0)
		return neg_errno();
	memset(buf + n, 0, bytes - (size_t)n);
	*out = buf;
	buf = NULL;
	return 0;
}

/*
 * A store already used holds our header; a new one holds nothing: its first MiB (where partition
 * tables, file systems and volume labels keep their signatures) is zeroes, or it is empty. Anything
 * else is someone's data, which the daemon refuses to overwrite.
 */
static int swap_header(struct swap *s)
{
	_cleanup_free_ char *buf = NULL;
	ssize_t n;
	int ret = read_head(s, STORE_BLANK_BYTES, &buf);

	if (ret < 0)
		return ret;
	ret = store_header_check(buf);
	if (ret < 0)
		return ret;
	if (!s->device && ftruncate(s->fd, 0) < 0)
		return neg_errno();
	store_header_make(buf);
	n = pwrite(s->fd, buf, PAGE, 0);
	if (n < 0)
		return neg_errno();
	if (n != (ssize_t)PAGE)
		return -EIO;
	s->ours = true;
	return 0;
}

static struct swap *swap_blank(struct ring *ring)
{
	struct swap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = s->tables_fd = -1;
	s->ring = ring;
	s->trim = true;
	return s;
}

/**
 * swap_open() - open a swap store on a file or a block device
 * @ring: the daemon's ring, for the store's I/O; it outlives the store
 * @path: a regular file, made (mode 0600) if missing, or a block device
 * @max_bytes: the most a file may hold; a device's size if 0, else at most this
 * @flags: SWAP_KEPT: the tables are in a memfd (swap_tables_fd()), so that the store and what it
 *         holds outlive the daemon (swap_adopt())
 * @out: the store
 *
 * A file is cut back to its header: what it held before is gone. Neither a file nor a device is
 * taken that holds something other than a swap store or zeroes in its first MiB.
 *
 * Return: 0; -EINVAL for another kind of file, no room for one slot, or a sector larger than a
 * page; -EPERM if another user, or a file's group or others, may write it; -EBUSY if another
 * store or a mount has it; -EEXIST if it holds other data; or another negative errno.
 */
int swap_open(struct ring *ring, const char *path, uint64_t max_bytes, unsigned flags,
	      struct swap **out)
{
	_cleanup_(swap_closep) struct swap *s = swap_blank(ring);
	struct stat st;
	uint64_t pages;
	int ret, fl;

	if (!s)
		return -ENOMEM;
	ret = swap_open_fd(path, &st, &s->fd);
	if (ret < 0)
		return ret;
	s->device = S_ISBLK(st.st_mode);
	ret = swap_size(s->fd, s->device, max_bytes, &pages);
	if (ret < 0)
		return ret;
	fl = fcntl(s->fd, F_GETFL);
	if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_DIRECT) < 0)
		log_info("swap: %s has no O_DIRECT: its pages go through the page cache", path);
	ret = swap_header(s);
	if (ret < 0)
		return ret;
	if (!s->device)
		pages = MIN(pages, fs_room(s->fd));
	ret = slots_init(&s->slots, pages);
	if (ret < 0)
		return ret;
	ret = tables_map(s, -1, flags & SWAP_KEPT);
	if (ret < 0)
		return ret;
	memcpy(s->tables, SWAP_TABLES_MAGIC, sizeof(SWAP_TABLES_MAGIC));
	((struct swap_tables_header *)s->tables)->pages = pages;
	s->file_pages = s->device ? pages : 0;
	s->stats.size_bytes = pages * PAGE;
	*out = s;
	s = NULL;
	return 0;
}

/* The store on @s->fd holds our header. */
static int swap_header_ours(struct swap *s)
{
	_cleanup_free_ char *buf = NULL;
	int ret = read_head(s, PAGE, &buf);

	if (ret < 0)
		return ret;
	return memcmp(buf, STORE_MAGIC, sizeof(STORE_MAGIC)) == 0 ? 0 : -EINVAL;
}

/* How many slots the tables in @fd are for: 0 if they are not a swap store's tables. */
static uint64_t tables_pages(int fd)
{
	struct swap_tables_header h;
	struct stat st;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || fstat(fd, &st) < 0 ||
	    memcmp(h.magic, SWAP_TABLES_MAGIC, sizeof(SWAP_TABLES_MAGIC)) != 0 || h.pages == 0 ||
	    h.pages > UINT32_MAX || (uint64_t)st.st_size != tables_bytes(h.pages))
		return 0;
	return h.pages;
}

/**
 * swap_adopt() - take over a store that a previous daemon opened with SWAP_KEPT, as it left it
 * @ring: the daemon's ring, for the store's I/O; it outlives the store
 * @fd: the store's descriptor (swap_fd()), taken
 * @tables_fd: its tables (swap_tables_fd()), taken
 * @out: the store
 *
 * Nothing in the store is cut back or changed: each slot keeps its data, checksum and written
 * bit. Every slot is free until swap_claim() takes it: the caller claims those that its pages
 * are in, and the others (a page-out in flight when the previous daemon died) are free again.
 *
 * Return: 0; -EBADF if either descriptor is missing (-1); -EINVAL if they are not a store and its
 * tables; or another negative errno. The descriptors are closed on failure, and the store is
 * left as it was.
 */
int swap_adopt(struct ring *ring, int fd, int tables_fd, struct swap **out)
{
	_cleanup_(swap_closep) struct swap *s = swap_blank(ring);
	_cleanup_close_ int tfd = tables_fd;
	struct stat st;
	uint64_t pages;
	int ret;

	if (!s) {
		closep(&fd);
		return -ENOMEM;
	}
	s->fd = fd;
	if (fd < 0 || tfd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	s->device = S_ISBLK(st.st_mode);
	ret = swap_header_ours(s);
	if (ret < 0)
		return ret;
	pages = tables_pages(tfd);
	if (pages == 0)
		return -EINVAL;
	ret = slots_init(&s->slots, pages);
	if (ret < 0)
		return ret;
	ret = tables_map(s, fd_take(&tfd), true);
	if (ret < 0)
		return ret;
	if (s->device)
		s->file_pages = pages;
	else if ((uint64_t)st.st_size > PAGE)
		s->file_pages = MIN((uint64_t)st.st_size / PAGE - 1, pages);
	s->stats.size_bytes = pages * PAGE;
	s->ours = true;
	*out = s;
	s = NULL;
	return 0;
}

/**
 * swap_claim() - slots of a store taken over (swap_adopt()) that hold a page: allocated again
 * @s: the store
 * @slot: the first
 * @pages: how many
 *
 * Return: 0; -EINVAL if any of them is allocated already or past the end; -ENOMEM.
 */
int swap_claim(struct swap *s, uint64_t slot, uint64_t pages)
{
	int ret = slots_claim(&s->slots, slot, pages);

	if (ret < 0)
		return ret;
	s->stats.used_pages = s->slots.used;
	s->stats.peak_pages = MAX(s->stats.peak_pages, s->slots.used);
	return 0;
}

/** swap_fd() - the store's descriptor, still the store's: for the fd store */
int swap_fd(const struct swap *s)
{
	return s->fd;
}

/** swap_tables_fd() - the memfd of the store's tables (SWAP_KEPT), or -1; still the store's */
int swap_tables_fd(const struct swap *s)
{
	return s->tables_fd;
}

/* A file grows, sparse, to hold slot @end - 1, by SWAP_GROW_PAGES at a time. */
static int swap_grow(struct swap *s, uint64_t end)
{
	uint64_t n;

	if (end <= s->file_pages)
		return 0;
	n = MIN(ALIGN_UP(end, (uint64_t)SWAP_GROW_PAGES), s->slots.pages);
	if (ftruncate(s->fd, (off_t)store_slot_offset(n)) < 0)
		return neg_errno();
	s->file_pages = n;
	return 0;
}

/**
 * swap_alloc() - allocate @pages contiguous slots, next to the last ones if there is room
 * @s: the store
 * @pages: how many
 * @slot: the first
 *
 * Return: 0; -ENOSPC if no run of @pages free slots is left (a shorter one may be), or while the
 * file system under the store has had no room for a write; -EINVAL for 0 pages; or a negative
 * errno of growing the file.
 */
int swap_alloc(struct swap *s, uint64_t pages, uint64_t *slot)
{
	uint64_t first;
	int ret;

	ret = slots_alloc(&s->slots, pages, &first);
	if (ret < 0)
		return ret;
	ret = swap_grow(s, first + pages);
	if (ret < 0) {
		(void)slots_free(&s->slots, first, pages);
		return ret;
	}
	/* A store taken over may have written bits left on free slots (swap_adopt()). */
	page_sums_forget(&s->sums, first, pages);
	s->stats.used_pages = s->slots.used;
	s->stats.peak_pages = MAX(s->stats.peak_pages, s->slots.used);
	*slot = first;
	return 0;
}

/* Give the disk blocks of freed slots back, if the store can; a store that cannot still works. */
static void swap_trim(struct swap *s, uint64_t slot, uint64_t pages)
{
	uint64_t range[2] = { store_slot_offset(slot), pages * PAGE };
	int ret;

	if (!s->trim)
		return;
	if (s->device)
		ret = ioctl(s->fd, BLKDISCARD, range);
	else
		ret = fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)range[0],
				(off_t)range[1]);
	if (ret == 0)
		return;
	if (errno == EOPNOTSUPP || errno == ENOTTY) {
		log_info("swap: freed slots keep their blocks: the store cannot %s",
			 s->device ? "discard" : "punch holes");
		s->trim = false;
		return;
	}
	log_limited(LOG_WARNING, "swap: freeing slots %lu+%lu: %m", (unsigned long)slot,
		    (unsigned long)pages);
}

/**
 * swap_free() - free slots and give their blocks back (a hole punched, or a discard): at once for
 * a run of 16 or more, else once the free run around them is 2 MiB long or the store is empty
 * @s: the store
 * @slot: the first
 * @pages: how many
 *
 * No I/O of these slots may be in flight.
 *
 * Return: 0; -EINVAL if any of them is not allocated; -ENOMEM.
 */
int swap_free(struct swap *s, uint64_t slot, uint64_t pages)
{
	uint64_t start, count;
	int ret = slots_free(&s->slots, slot, pages);

	if (ret < 0)
		return ret;
	page_sums_forget(&s->sums, slot, pages);
	page_sums_release(&s->sums, &s->slots, slot);
	s->stats.used_pages = s->slots.used;
	if (slots_trim_due(&s->slots, slot, pages, s->file_pages, &start, &count))
		swap_trim(s, start, count);
	return 0;
}

static int swap_done(struct swap *s, bool write, uint64_t slot, const char *buf, uint64_t pages,
		     int res)
{
	if (res == 0 && write)
		page_sums_commit(&s->sums, slot, buf, pages);
	else if (res == 0)
		res = page_sums_verify(&s->sums, "swap", slot, buf, pages);
	if (write)
		s->stats.writes++;
	else
		s->stats.reads++;
	if (res < 0)
		s->stats.errors++;
	else if (write)
		s->stats.pages_out += pages;
	else
		s->stats.pages_in += pages;
	return res;
}

static void on_io(void *userdata, int res);

static int swap_io_submit(struct swap_io *io)
{
	struct swap *s = io->swap;
	uint32_t len = (uint32_t)MIN(io->pages * PAGE - io->done, (uint64_t)SWAP_IO_MAX);
	uint64_t offset = store_slot_offset(io->slot) + io->done;

	if (io->write)
		return ring_write(s->ring, s->fd, io->buf + io->done, len, offset, on_io, io);
	return ring_read(s->ring, s->fd, io->buf + io->done, len, offset, on_io, io);
}

static void swap_io_finish(struct swap_io *io, int res)
{
	struct swap *s = io->swap;

	if (res < 0)
		log_limited(LOG_ERR, "swap: %s of slots %lu+%lu: %s", io->write ? "write" : "read",
			    (unsigned long)io->slot, (unsigned long)io->pages, strerror(-res));
	if (io->write)
		slots_out_of_room(&s->slots, res);
	res = swap_done(s, io->write, io->slot, io->buf, io->pages, res);
	io->fn(io->userdata, res);
	free(io);
	if (--s->inflight == 0 && s->closing)
		swap_destroy(s);
}

/*
 * What a transfer that moved @res bytes (or failed with it) leaves: 1 if all of @total is moved,
 * 0 to go on with the rest, or a negative errno. One that stops inside a page or at the end of
 * the file is -EIO: a short transfer is never taken for the whole.
 */
static int swap_progress(uint64_t *done, uint64_t total, int64_t res)
{
	if (res < 0)
		return (int)res;
	if (res == 0)
		return -EIO;
	*done += (uint64_t)res;
	if (!IS_ALIGNED(*done, PAGE))
		return -EIO;
	return *done == total;
}

/* A large transfer goes in pieces of SWAP_IO_MAX, a short one goes on with the rest. */
static void on_io(void *userdata, int res)
{
	struct swap_io *io = userdata;
	int ret;

	if ((res == -EAGAIN || res == -EINTR) && io->retries++ < SWAP_RETRIES)
		ret = 0;
	else
		ret = swap_progress(&io->done, io->pages * PAGE, res);
	if (ret == 0)
		ret = swap_io_submit(io);
	if (ret != 0)
		swap_io_finish(io, ret > 0 ? 0 : ret);
}

static int swap_submit(struct swap *s, bool write, uint64_t slot, void *buf, uint64_t pages,
		       swap_done_fn done, void *userdata)
{
	struct swap_io *io;
	int ret;

	if (s->closing)
		return -ESHUTDOWN;
	ret = page_sums_check(&s->sums, &s->slots, write, slot, buf, pages);
	if (ret < 0)
		return ret;
	io = malloc(sizeof(*io));
	if (!io)
		return -ENOMEM;
	*io = (struct swap_io){ .swap = s,
				.write = write,
				.slot = slot,
				.pages = pages,
				.buf = buf,
				.fn = done,
				.userdata = userdata };
	ret = swap_io_submit(io);
	if (ret < 0) {
		free(io);
		return ret;
	}
	/* Until it is written whole, no one reads what the slots held before. */
	if (write)
		page_sums_forget(&s->sums, slot, pages);
	s->inflight++;
	return 0;
}

/**
 * swap_write() - write pages to slots through the ring
 * @s: the store
 * @slot: the first slot, allocated
 * @buf: the pages, page-aligned; untouched until @done
 * @pages: how many
 * @done: called on the loop with 0 or a negative errno
 * @userdata: for @done
 *
 * Return: 0, or a negative errno when nothing was queued (@done is not called): -EINVAL for a
 * slot not allocated or a buffer not aligned; -ESHUTDOWN after swap_close().
 */
int swap_write(struct swap *s, uint64_t slot, const void *buf, uint64_t pages, swap_done_fn done,
	       void *userdata)
{
	return swap_submit(s, true, slot, (void *)buf, pages, done, userdata);
}

/**
 * swap_read() - read pages back from slots through the ring, checked against their checksums
 * @s: the store
 * @slot: the first slot, written
 * @buf: room for the pages, page-aligned
 * @pages: how many
 * @done: called on the loop with 0, -EIO if a page came back different from what was written, or
 *        another negative errno
 * @userdata: for @done
 *
 * Return: 0, or a negative errno when nothing was queued (@done is not called): -EINVAL also for
 * a slot never written whole since it was allocated.
 */
int swap_read(struct swap *s, uint64_t slot, void *buf, uint64_t pages, swap_done_fn done,
	      void *userdata)
{
	return swap_submit(s, false, slot, buf, pages, done, userdata);
}

static int swap_rw_now(struct swap *s, bool write, uint64_t slot, char *buf, uint64_t pages)
{
	uint64_t len = pages * PAGE, done = 0;
	int ret = page_sums_check(&s->sums, &s->slots, write, slot, buf, pages);

	if (ret < 0)
		return ret;
	if (write)
		page_sums_forget(&s->sums, slot, pages);
	while (ret == 0) {
		size_t n = MIN(len - done, (uint64_t)SWAP_IO_MAX);
		off_t off = (off_t)(store_slot_offset(slot) + done);
		ssize_t r = write ? pwrite(s->fd, buf + done, n, off)
				  : pread(s->fd, buf + done, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		ret = swap_progress(&done, len, r < 0 ? neg_errno() : r);
	}
	return swap_done(s, write, slot, buf, pages, ret > 0 ? 0 : ret);
}

/**
 * swap_write_now() - swap_write() that waits, with pwrite(), for shutdown and tests
 * Return: 0 or a negative errno.
 */
int swap_write_now(struct swap *s, uint64_t slot, const void *buf, uint64_t pages)
{
	return swap_rw_now(s, true, slot, (void *)buf, pages);
}

/**
 * swap_read_now() - swap_read() that waits, with pread(); -EIO for a page that came back different
 * Return: 0 or a negative errno.
 */
int swap_read_now(struct swap *s, uint64_t slot, void *buf, uint64_t pages)
{
	return swap_rw_now(s, false, slot, buf, pages);
}

/**
 * swap_stats() - the store's figures
 * @s: the store
 * @out: filled
 */
void swap_stats(const struct swap *s, struct swap_stats *out)
{
	*out = s->stats;
	out->inflight = s->inflight;
	out->full = slots_full(&s->slots);
}
