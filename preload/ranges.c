// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The table of the ranges the preload mapped through libupager, sorted by address, so that a call
 * on any other range goes to the kernel after one look. Its memory comes from the kernel (never
 * malloc(), which a signal handler must not call), and its lock is taken over fork() so that a
 * child finds the table whole. A process that mapped nothing through upager pays one load.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/macro.h"
#include "kernel.h"
#include "libclient/internal.h"
#include "ranges.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *table;
static size_t cap;
static atomic_size_t count;
static atomic_uint files_added; /* file ranges added so far */

static void atfork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void atfork_release(void)
{
	pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void ranges_init(void)
{
	pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

/** ranges_empty() - whether no range is upager's; needs no lock */
bool ranges_empty(void)
{
	return atomic_load_explicit(&count, memory_order_relaxed) == 0;
}

/** ranges_files_added() - how many file ranges were added so far; needs no lock */
unsigned ranges_files_added(void)
{
	return atomic_load_explicit(&files_added, memory_order_acquire);
}

/**
 * ranges_of_file() - the address spans of the ranges that show bytes [@off, @off + @len) of the
 * file @dev, @ino, page-aligned, at most @max of them into @out (lock held). With @len 0, the first
 * page of one range of the file, if any.
 * Return: how many.
 */
size_t ranges_of_file(dev_t dev, ino_t ino, off_t off, off_t len, struct span *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < atomic_load_explicit(&count, memory_order_relaxed) && n < max; i++) {
		const struct range *r = &table[i];
		off_t r_end = r->offset + (off_t)(r->end - r->start), lo, hi;

		if (r->fd < 0 || r->dev != dev || r->ino != ino)
			continue;
		lo = len ? MAX(off, r->offset) : r->offset;
		hi = len ? MIN(off + len, r_end) : r->offset + (off_t)UPAGER_PAGE_SIZE;
		if (lo >= hi)
			continue;
		out[n++] = (struct span){
			.start = ALIGN_DOWN(r->start + (uintptr_t)(lo - r->offset),
					    UPAGER_PAGE_SIZE),
			.end = ALIGN_UP(r->start + (uintptr_t)(hi - r->offset), UPAGER_PAGE_SIZE),
			.shared_writable =
				(r->flags & MAP_TYPE) != MAP_PRIVATE && (r->prot & PROT_WRITE),
			.fd = r->fd,
			.offset = ALIGN_DOWN(lo, (off_t)UPAGER_PAGE_SIZE),
		};
		if (!len)
			break;
	}
	return n;
}

/** ranges_lock() - take the table's lock */
void ranges_lock(void)
{
	pthread_mutex_lock(&lock);
}

/** ranges_unlock() - release the table's lock */
void ranges_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

/* The index of the first range that ends after addr (count if none). */
static size_t first_after(uintptr_t addr)
{
	size_t lo = 0, hi = atomic_load_explicit(&count, memory_order_relaxed);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (table[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int reserve(size_t n)
{
	size_t new_cap, bytes;
	void *p;

	if (n <= cap)
		return 0;
	new_cap = MAX(cap * 2, UPAGER_PAGE_SIZE / sizeof(*table));
	bytes = ALIGN_UP(new_cap * sizeof(*table), UPAGER_PAGE_SIZE);
	if (table)
		p = kernel_mremap(table, ALIGN_UP(cap * sizeof(*table), UPAGER_PAGE_SIZE), bytes,
				  MREMAP_MAYMOVE, NULL);
	else
		p = kernel_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	table = p;
	cap = bytes / sizeof(*table);
	return 0;
}

static int insert_at(size_t i, const struct range *r)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);
	int ret = reserve(n + 1);

	if (ret < 0)
		return ret;
	memmove(&table[i + 1], &table[i], (n - i) * sizeof(*table));
	table[i] = *r;
	atomic_store_explicit(&count, n + 1, memory_order_relaxed);
	return 0;
}

static void remove_at(size_t i)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);

	upager__fd_unkeep(table[i].fd);
	memmove(&table[i], &table[i + 1], (n - i - 1) * sizeof(*table));
	atomic_store_explicit(&count, n - 1, memory_order_relaxed);
}

/*
 * Whether b continues a, as the pages an mremap() grew a mapping by do: then a later mremap() of
 * the whole finds one range.
 */
static bool joins(const struct range *a, const struct range *b)
{
	return a->end == b->start && a->fd >= 0 && b->fd >= 0 && a->dev == b->dev &&
	       a->ino == b->ino && a->offset + (off_t)(a->end - a->start) == b->offset &&
	       a->prot == b->prot && a->flags == b->flags && a->writable == b->writable;
}

/**
 * ranges_add() - note a range mapped through upager (lock held)
 * @r: the range; the table takes its descriptor, also on failure (closed then)
 *
 * Return: 0, or -ENOMEM.
 */
int ranges_add(const struct range *r)
{
	size_t i = first_after(r->start);
	int ret;

	/* What a descriptor was found to hold (written.c) is looked at again. */
	if (r->fd >= 0)
		atomic_fetch_add_explicit(&files_added, 1, memory_order_release);
	if (i > 0 && joins(&table[i - 1], r)) {
		table[i - 1].end = r->end;
		upager__fd_unkeep(r->fd);
		return 0;
	}
	ret = insert_at(i, r);

	if (ret < 0)
		upager__fd_unkeep(r->fd);
	return ret;
}

/*
 * Split table[@i] at @at, inside it: [start, @at) stays at @i, [@at, end) follows at @i + 1, with
 * a descriptor of its own (none if the process has no descriptor left: it then cannot grow with
 * mremap()). Return: 0, or -ENOMEM (nothing changed).
 */
static int split_at(size_t i, uintptr_t at)
{
	struct range tail = table[i];
	int ret;

	tail.offset += (off_t)(at - table[i].start);
	tail.start = at;
	tail.fd = table[i].fd >= 0 ? upager__fd_keep(table[i].fd) : -1;
	ret = insert_at(i + 1, &tail);
	if (ret < 0) {
		upager__fd_unkeep(tail.fd);
		return ret;
	}
	table[i].end = at;
	return 0;
}

/**
 * ranges_forget() - take [@start, @start + @length) out of the table, trimming or splitting the
 * ranges it cuts (lock held)
 *
 * Return: whether any range met it.
 */
bool ranges_forget(uintptr_t start, size_t length)
{
	uintptr_t end = start + ALIGN_UP(length, UPAGER_PAGE_SIZE);
	size_t i = first_after(start);
	bool met = false;

	while (i < atomic_load_explicit(&count, memory_order_relaxed) && table[i].start < end) {
		struct range *r = &table[i];

		met = true;
		if (r->start < start && r->end > end) {
			/* Without room for the tail, it is forgotten too. */
			(void)split_at(i, end);
			table[i].end = start;
			break;
		}
		if (r->start < start) {
			r->end = start;
			i++;
		} else if (r->end > end) {
			r->offset += (off_t)(end - r->start);
			r->start = end;
			break;
		} else {
			remove_at(i);
		}
	}
	return met;
}

/**
 * ranges_overlap() - whether a range meets [@start, @start + @length) (lock held)
 * @which: if not NULL, only ranges for which it is true count
 */
bool ranges_overlap(uintptr_t start, size_t length, bool (*which)(const struct range *))
{
	uintptr_t end = start + ALIGN_UP(length, UPAGER_PAGE_SIZE);

	for (size_t i = first_after(start);
	     i < atomic_load_explicit(&count, memory_order_relaxed) && table[i].start < end; i++)
		if (!which || which(&table[i]))
			return true;
	return false;
}

/**
 * ranges_protect() - [@start, @start + @length) now has @prot (lock held): the ranges it covers
 * in part are split at its ends, as the kernel splits the mappings, so that no touch of the
 * preload meets a page whose protection refuses it
 */
void ranges_protect(uintptr_t start, size_t length, int prot)
{
	uintptr_t end = start + ALIGN_UP(length, UPAGER_PAGE_SIZE);

	for (size_t i = first_after(start);
	     i < atomic_load_explicit(&count, memory_order_relaxed) && table[i].start < end; i++) {
		if (table[i].start < start) {
			/* The part before goes on as it was; the next turn takes the rest. */
			if (table[i].end > start)
				(void)split_at(i, start);
			continue;
		}
		if (table[i].end > end && split_at(i, end) < 0)
			continue; /* no room: the whole keeps its protection, as before */
		table[i].prot = prot;
	}
}

/** ranges_find() - the range that holds @addr, or NULL (lock held) */
size_t ranges_parts(uintptr_t start, size_t length, int prot, struct span *out, size_t max)
{
	uintptr_t end = start + length;
	size_t n = 0;

	for (size_t i = first_after(start);
	     i < atomic_load_explicit(&count, memory_order_relaxed) && table[i].start < end &&
	     n < max;
	     i++)
		if ((table[i].prot & prot) == prot)
			out[n++] = (struct span){
				.start = MAX(start, table[i].start),
				.end = MIN(end, table[i].end),
				.shared_writable = (table[i].flags & MAP_TYPE) != MAP_PRIVATE &&
						   (table[i].prot & PROT_WRITE),
				.private_writable = (table[i].flags & MAP_TYPE) == MAP_PRIVATE &&
						    (table[i].prot & PROT_WRITE),
				.fd = table[i].fd,
				.offset = table[i].offset +
					  (off_t)(MAX(start, table[i].start) - table[i].start),
			};
	return n;
}

struct range *ranges_find(uintptr_t addr)
{
	size_t i = first_after(addr);

	if (i < atomic_load_explicit(&count, memory_order_relaxed) && table[i].start <= addr)
		return &table[i];
	return NULL;
}

/**
 * ranges_each_part() - call @fn on each part of [@start, @start+@length) in ranges whose protection
 * has all of @prot (ranges_parts()), in order, a batch at a time: the lock is taken for each batch
 * and not held while @fn runs (it may fault on the range, or call the kernel)
 */
void ranges_each_part(uintptr_t start, size_t length, int prot,
		      void (*fn)(const struct span *sp, void *arg), void *arg)
{
	uintptr_t at = start, end = start + length;
	struct span parts[RANGES_BATCH];
	size_t n;

	do {
		ranges_lock();
		n = ranges_parts(at, end - at, prot, parts, RANGES_BATCH);
		ranges_unlock();
		for (size_t k = 0; k < n; k++)
			fn(&parts[k], arg);
		if (n)
			at = parts[n - 1].end;
	} while (n == RANGES_BATCH && at < end);
}
