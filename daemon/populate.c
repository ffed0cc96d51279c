// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Populating a new region before upager_mmap() returns. MAP_POPULATE reads every absent page of the
 * region (large reads, all in flight at once) and then maps the whole region into the client with
 * as few ioctls as there are runs of ready pages, so that touching it costs no fault at all.
 * MAP_POPULATE|MAP_NONBLOCK, as Linux did before 2.6.23, maps only what is in memory already: pages
 * in the daemon's cache, and pages the kernel has in its page cache of the file (copied without
 * waiting, see fill_from_page_cache()); it never reads the disk and never waits.
 * A failure to populate never fails the mapping: what could not be mapped faults in as usual.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/macro.h"
#include "context.h"
#include "fill.h"
#include "log.h"
#include "object.h"
#include "populate.h"
#include "private.h"
#include "resolve.h"
#include "space.h"
#include "uffdio.h"

/*
 * Whether private region @r is populated for writing, as Linux populates a private writable
 * mapping (each page its own, not the zero page or the file's): MAP_POPULATE without
 * MAP_NONBLOCK, or MAP_LOCKED. A private mapping of an object the library populates for writing
 * after the daemon did (libclient/mmap.c).
 */
static bool populates_for_write(const struct region *r)
{
	return !r->shared && (r->prot & PROT_WRITE) &&
	       ((r->flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE ||
		(r->flags & MAP_LOCKED));
}

/*
 * Whether the pages of private mapping @r of an object go in writable for a populate for writing,
 * counted as the copies it makes; not while the object has nonlinear mappings, whose copies
 * decide how each page goes in.
 */
static bool populate_writes(const struct space *s, const struct region *r)
{
	return region_keeps_copies(s, r) && populates_for_write(r) && list_empty(&r->obj->views);
}

/* Map every ready page of the region; return how many were mapped. */
static uint64_t map_ready_runs(struct space *s, struct region *r)
{
	uint64_t pages = r->length >> UPAGER_PAGE_SHIFT, n = 0;
	bool copies = populate_writes(s, r);

	if (!r->obj) {
		uint64_t fit = MIN(pages, cache_room_pages(&s->d->cache)), own = 0;

		/* A private anonymous region: only as many pages as the budget has room for, as
		 * each is counted, the zero page too: a write to it (after mprotect() for a region
		 * populated for reading) is a copy the kernel makes without a fault, beyond the
		 * daemon's reach. The rest stays empty; its first touch faults. Populated for
		 * writing, zeroed pages of the process's own (a write to the zero page would copy
		 * it, a TLB flush on every CPU the process runs on); for reading, the zero page. */
		if (populates_for_write(r))
			(void)uffdio_copy_zeroes(s->uffd, r->start, fit << UPAGER_PAGE_SHIFT, &own);
		else
			(void)uffdio_zeropage_run(s->uffd, r->start, fit << UPAGER_PAGE_SHIFT,
						  &own);
		private_filled(s, r->start, own);
		n = own >> UPAGER_PAGE_SHIFT;
		/* Stopped short (a page there already, a VMA split by mprotect()): the rest of what
		 * fits page by page. */
		for (uint64_t i = n; i < fit; i++) {
			uint64_t a = r->start + (i << UPAGER_PAGE_SHIFT);

			if (uffdio_zeropage(s->uffd, a, UPAGER_PAGE_SIZE) == 0) {
				private_filled(s, a, UPAGER_PAGE_SIZE);
				n++;
			}
		}
		return n;
	}
	for (uint64_t i = 0; i < pages;) {
		uint64_t p = (r->offset >> UPAGER_PAGE_SHIFT) + i;
		uint64_t run = fill_ready_run(r->obj, p, pages - i);
		bool wp;

		if (run == 0) {
			i++;
			continue;
		}
		/* Read-populated, as Linux populates a shared mapping; a private one that the
		 * library then populates for writing goes in writable, its pages counted as the
		 * copies that makes (rather than a write-protect fault each). */
		if (copies)
			wp = false;
		else
			wp = resolve_linear(s, r, p, RESOLVE_FOR_READ, &run);
		if (uffdio_continue(s->uffd, r->start + (i << UPAGER_PAGE_SHIFT),
				    run << UPAGER_PAGE_SHIFT, wp) == 0) {
			object_used(r->obj, p, run);
			for (uint64_t k = 0; copies && k < run; k++)
				private_copied(s, r->start + ((i + k) << UPAGER_PAGE_SHIFT));
			n += run;
		}
		i += run;
	}
	return n;
}

/*
 * A shared anonymous region: its absent pages are zeroed through the client's mapping
 * (fill_anon_into()), so that the client, not the daemon, pays for them; map_ready_runs() maps
 * the rest.
 */
static void populate_anon(struct space *s, struct region *r)
{
	uint64_t first = r->offset >> UPAGER_PAGE_SHIFT, pages = r->length >> UPAGER_PAGE_SHIFT;
	struct object *o = r->obj;

	for (uint64_t i = 0; i < pages && first + i < object_pages(o);) {
		uint64_t run = 0;

		/* What fits in the budget; the rest is made by the faults to come. */
		while (i + run < pages && first + i + run < object_pages(o) &&
		       object_page_blank(o, first + i + run) && cache_room(o->c, run + 1))
			run++;
		int made = run > 0 ? fill_anon_into(o, s->uffd, r->start + (i << UPAGER_PAGE_SHIFT),
						    first + i, run, r->may_write)
				   : 0;

		if (made > 0) {
			r->pages_populated += (uint64_t)made;
			s->d->stats.pages_populated += (uint64_t)made;
		}
		i += MAX(run, 1);
	}
}

/* Map what is ready in the region that starts at @start, populated from its start. */
static void install_region(struct space *s, uint64_t start, uint64_t count)
{
	struct region *r = region_find(&s->regions, start);

	(void)count;
	if (r && r->start == start) {
		uint64_t n = map_ready_runs(s, r);

		r->pages_populated += n;
		s->d->stats.pages_populated += n;
	}
}

/* A populate waiting for its reads. */
struct populate {
	struct space *space; /* a reference */
	uint64_t addr, count; /* for install */
	populate_install_fn install;
	populate_done_fn done;
	void *userdata;
};

static void populate_finish(void *userdata)
{
	struct populate *job = userdata;

	if (!job->space->dead)
		job->install(job->space, job->addr, job->count);
	job->done(job->userdata);
	space_unref(job->space);
	free(job);
}

/**
 * populate_read() - read object pages for a populate, then map them
 * @s: the space
 * @r: the region populated, whose figures count the reads
 * @o: the object read
 * @first: first object page to read
 * @count: pages to read
 * @install: maps what is ready of [@addr, @addr + @pages pages) in @s once the reads are over,
 *	unless the space is dead
 * @addr: for @install
 * @pages: for @install
 * @done: called after @install, unless this returns 1
 * @userdata: for @done
 *
 * A failure to read does not fail the populate: what could not be read faults in later.
 *
 * Return: 1 if nothing was to wait for and @install ran already (@done is not called), 0 if
 * @done will be called once the reads are over.
 */
int populate_read(struct space *s, struct region *r, struct object *o, uint64_t first,
		  uint64_t count, populate_install_fn install, uint64_t addr, uint64_t pages,
		  populate_done_fn done, void *userdata)
{
	struct populate *job = calloc(1, sizeof(*job));
	uint64_t started = 0;
	int ret;

	if (job) {
		*job = (struct populate){ .space = space_ref(s),
					  .addr = addr,
					  .count = pages,
					  .install = install,
					  .done = done,
					  .userdata = userdata };
		ret = fill_wait(o, first, count, populate_finish, job, &started);
		region_count_reads(r, started);
		if (ret == FILL_WAITING)
			return 0;
		space_unref(s);
		free(job);
		if (ret < 0 && ret != -EAGAIN)
			log_warning("populating %s: %s", o->path, strerror(-ret));
	}
	install(s, addr, pages);
	return 1;
}

/**
 * populate_region() - populate the region of a space that starts at @start
 * @s: the space
 * @start: the region's start
 * @nonblock: only what is in memory already, never wait
 * @done: called once the region is populated, unless this returns 1
 * @userdata: for @done
 *
 * Return: 1 if the region is populated already (@done is not called), 0 if @done will be called
 * once the reads it waits for are over, or a negative errno (@done is not called).
 */
int populate_region(struct space *s, uint64_t start, bool nonblock, populate_done_fn done,
		    void *userdata)
{
	struct region *r = region_find(&s->regions, start);
	int ret;

	if (!r || r->start != start)
		return -ENOENT;
	if (!r->obj && nonblock)
		return 1; /* nothing of a new anonymous region is in memory */
	if (r->obj && !nonblock &&
	    !(r->obj->kind == OBJECT_ANON && r->shared && list_empty(&r->obj->views)))
		return populate_read(s, r, r->obj, r->offset >> UPAGER_PAGE_SHIFT,
				     r->length >> UPAGER_PAGE_SHIFT, install_region, start, 0, done,
				     userdata);
	if (r->obj && nonblock) {
		ret = fill_from_page_cache(r->obj, r->offset >> UPAGER_PAGE_SHIFT,
					   r->length >> UPAGER_PAGE_SHIFT);
		if (ret < 0)
			log_warning("populating %s: %s", r->obj->path, strerror(-ret));
	} else if (r->obj) {
		populate_anon(s, r);
	}
	install_region(s, start, 0);
	return 1;
}
