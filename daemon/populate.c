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

#include "common/macro.h"
#include "context.h"
#include "fill.h"
#include "log.h"
#include "object.h"
#include "populate.h"
#include "space.h"
#include "uffdio.h"
#include "view.h"

struct populate {
	struct space *space; /* a reference */
	uint64_t start; /* the region, found again by its start when the reads are done */
	populate_done_fn done; /* NULL when populate_region() returns 1 */
	void *userdata;
};

/* Map every ready page of the region; return how many were mapped. */
static uint64_t install(struct space *s, struct region *r)
{
	uint64_t pages = r->length >> UPAGER_PAGE_SHIFT, n = 0;

	if (!r->obj) {
		/* A new private anonymous region: every page is the zero page. */
		if (uffdio_zeropage(s->uffd, r->start, r->length) == 0)
			return pages;
		for (uint64_t i = 0; i < pages; i++)
			n += uffdio_zeropage(s->uffd, r->start + (i << UPAGER_PAGE_SHIFT),
					     UPAGER_PAGE_SIZE) == 0;
		return n;
	}
	for (uint64_t i = 0; i < pages;) {
		uint64_t p = (r->offset >> UPAGER_PAGE_SHIFT) + i;
		uint64_t run = fill_ready_run(r->obj, p, pages - i);
		/* Read-populated, as Linux populates a shared mapping: write-protected until the
		 * first write, where writes are tracked (map_ready() in fault.c). */
		bool wp = r->wp || region_tracks_writes(s, r);

		if (run == 0) {
			i++;
			continue;
		}
		if (!list_empty(&r->obj->views)) {
			/* A page with copies in nonlinear mappings goes in write-protected, so that
			 * a write reaches the daemon, which drops the copies (view.c). */
			run = 1;
			wp = wp || view_has_copies(r->obj, p);
		}
		if (r->may_write && !wp)
			for (uint64_t k = 0; k < run; k++)
				object_page_set(r->obj, p + k,
						r->obj->pages[p + k] | PAGE_WRITABLE);
		if (uffdio_continue(s->uffd, r->start + (i << UPAGER_PAGE_SHIFT),
				    run << UPAGER_PAGE_SHIFT, wp) == 0)
			n += run;
		i += run;
	}
	return n;
}

/*
 * A shared anonymous region: its absent pages are zeroed through the client's mapping
 * (fill_anon_into()), so that the client, not the daemon, pays for them; install() maps the rest.
 */
static void populate_anon(struct space *s, struct region *r)
{
	uint64_t first = r->offset >> UPAGER_PAGE_SHIFT, pages = r->length >> UPAGER_PAGE_SHIFT;
	struct object *o = r->obj;

	for (uint64_t i = 0; i < pages && first + i < object_pages(o);) {
		uint64_t run = 0;

		while (i + run < pages && first + i + run < object_pages(o) &&
		       o->pages[first + i + run] == PAGE_ABSENT)
			run++;
		if (run > 0 && fill_anon_into(o, s->uffd, r->start + (i << UPAGER_PAGE_SHIFT),
					      first + i, run, r->may_write) == 0) {
			r->pages_populated += run;
			s->d->stats.pages_populated += run;
		}
		i += MAX(run, 1);
	}
}

/* Map what is ready, tell the caller if it waits, and free the job. */
static void populate_finish(void *userdata)
{
	struct populate *job = userdata;
	struct space *s = job->space;
	struct region *r = s->dead ? NULL : region_find(&s->regions, job->start);

	if (r && r->start == job->start) {
		uint64_t n = install(s, r);

		r->pages_populated += n;
		s->d->stats.pages_populated += n;
	}
	if (job->done)
		job->done(job->userdata);
	space_unref(s);
	free(job);
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
	struct fill_job *wait = NULL;
	struct populate *job;
	uint64_t first, count, started = 0;
	int ret;

	if (!r || r->start != start)
		return -ENOENT;
	if (!r->obj && nonblock)
		return 1; /* nothing of a new anonymous region is in memory */
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->space = space_ref(s);
	job->start = start;

	if (r->obj && r->obj->kind == OBJECT_ANON && r->shared && list_empty(&r->obj->views) &&
	    !nonblock) {
		populate_anon(s, r);
	} else if (r->obj) {
		first = r->offset >> UPAGER_PAGE_SHIFT;
		count = r->length >> UPAGER_PAGE_SHIFT;
		if (nonblock) {
			ret = fill_from_page_cache(r->obj, first, count);
		} else {
			wait = fill_job_new(populate_finish, job);
			ret = wait ? fill_range(r->obj, first, count, fill_job_waiter, wait,
						&started)
				   : -ENOMEM;
			r->pages_read += started;
			r->bytes_read += started << UPAGER_PAGE_SHIFT;
		}
		if (ret < 0)
			log_warning("populating %s: %s", r->obj->path, strerror(-ret));
		if (wait && fill_job_arm(wait) == 0) {
			job->done = done;
			job->userdata = userdata;
			return 0;
		}
	}
	populate_finish(job);
	return 1;
}
