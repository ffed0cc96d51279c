// SPDX-License-Identifier: LGPL-2.1-or-later
/* LIST and STATS: the daemon's tables and figures, as upagerctl shows them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/macro.h"
#include "context.h"
#include "latency.h"
#include "log.h"
#include "mm.h"
#include "object.h"
#include "proto/codec.h"
#include "report.h"
#include "session.h"
#include "space.h"
#include "store.h"
#include "view.h"
#include "worker.h"

static bool may_see(const struct session *s, const struct space *sp)
{
	return s->uid == 0 || sp->uid == s->uid;
}

/*
 * A LIST's reply, whose mappings' resident pages are counted in a worker thread: reading a
 * client's pagemap takes time in proportion to the length of its mappings (half a second for 80
 * GiB of page tables), which the loop spent while every client's faults waited; a user with
 * many connections asking LIST in turn held them up for seconds. The pool runs a few jobs of a
 * user at once; the others wait their turn there, not on the loop.
 */
struct list_item {
	struct upager_list_entry e; /* its path in the job's paths */
	struct mm_mark mark; /* of its process: its pagemap is read */
};

struct list_job {
	struct worker_job job;
	struct session *s;
	struct upager_msg req, rep;
	size_t n, cap;
	struct list_item *items;
	uint64_t *resident; /* the thread's counts, one an item */
	uint8_t paths[UPAGER_MSG_MAX]; /* the entries encoded once, to measure them */
};

static void list_job_free(struct worker_job *job)
{
	struct list_job *lj = container_of(job, struct list_job, job);

	free(lj->items);
	free(lj->resident);
	free(lj);
}

static bool same_mm(const struct mm_mark *a, const struct mm_mark *b)
{
	return a->pid == b->pid && a->token == b->token && a->seed[0] == b->seed[0] &&
	       a->seed[1] == b->seed[1];
}

/* In a worker thread: each mapping's pages in its process's page tables. */
static void list_job_run(struct worker_job *job)
{
	struct list_job *lj = container_of(job, struct list_job, job);
	const struct mm_mark *opened = NULL;
	int fd = -1;

	for (size_t k = 0; k < lj->n; k++) {
		struct list_item *it = &lj->items[k];

		if (!opened || !same_mm(opened, &it->mark)) {
			closep(&fd);
			fd = mm_open_waiting(&it->mark, "pagemap");
			opened = &it->mark;
		}
		lj->resident[k] = fd >= 0 ? mm_present_pages(fd, it->e.start,
							     it->e.length >> UPAGER_PAGE_SHIFT)
					  : 0;
	}
	closep(&fd);
}

/*
 * On the loop: the reply, encoded again with the counts. A count not over by the deadline (the
 * read of a mark waits on a file mapped over a token page, mm.c) is 0: the thread is left to it.
 */
static void list_job_done(struct worker_job *job, int status)
{
	struct list_job *lj = container_of(job, struct list_job, job);
	static uint8_t entries[UPAGER_MSG_MAX];
	struct session *s = lj->s;
	size_t used = 0;
	int ret = status == -ETIMEDOUT ? 0 : status;

	s->listing = false;
	if (s->closing) {
		session_resume(s, &lj->req, -ECANCELED);
		return;
	}
	if (status == -ETIMEDOUT)
		log_limited(LOG_WARNING, "the memory of a process listed does not read in time: "
					 "its mappings' resident pages are listed as 0");
	for (size_t k = 0; status == 0 && k < lj->n; k++)
		lj->items[k].e.resident_pages = lj->resident[k];
	for (size_t k = 0; ret == 0 && k < lj->n; k++) {
		int n = upager_list_entry_encode(entries + used, sizeof(entries) - used,
						 &lj->items[k].e);

		if (n < 0)
			ret = n;
		else
			used += (size_t)n;
	}
	if (ret == 0) {
		lj->rep.u.list_reply.entries = entries;
		lj->rep.u.list_reply.entries_len = used;
		ret = session_reply(s, &lj->rep, 0, NULL, 0) < 0 ? -EPIPE : REQUEST_REPLIED;
	}
	session_resume(s, &lj->req, ret);
}

/* Another entry for @lj's reply; -EMSGSIZE once it is full. */
static int list_entry_add(struct list_job *lj, size_t *used, const struct upager_list_entry *e,
			  const struct mm_mark *mark)
{
	size_t room = UPAGER_MSG_MAX - upager_msg_size(UPAGER_OP_LIST | UPAGER_OP_REPLY);
	const uint8_t *pos = lj->paths + *used;
	size_t left;
	int n;

	if (lj->n == lj->cap) {
		size_t cap = MAX(2 * lj->cap, (size_t)64);
		struct list_item *v = realloc(lj->items, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		lj->items = v;
		lj->cap = cap;
	}
	n = upager_list_entry_encode(lj->paths + *used, room - *used, e);
	if (n < 0)
		return n;
	/* Decoded again, its path is the job's own. */
	left = (size_t)n;
	if (upager_list_entry_next(&pos, &left, &lj->items[lj->n].e) != 1)
		return -EINVAL;
	lj->items[lj->n++].mark = *mark;
	*used += (size_t)n;
	return 0;
}

/** report_list() - LIST: the mappings the session's peer may see, from a cursor on */
int report_list(struct session *s, const struct upager_msg *req)
{
	struct list_job *lj = calloc(1, sizeof(*lj));
	uint32_t index = 0, cursor = req->u.list.cursor;
	struct space *sp, *tmp;
	struct region *r;
	size_t used = 0;
	int ret = 0;

	if (!lj)
		return -ENOMEM;
	lj->req = *req;
	lj->rep = (struct upager_msg){ .op = req->op, .seq = req->seq };
	/* A forked child that exited since the last liveness round is not listed. */
	list_for_each_entry_safe (sp, tmp, &s->d->spaces, link)
		space_check_alive(sp);
	list_for_each_entry (sp, &s->d->spaces, link) {
		struct mm_mark mark = space_mm(sp);

		if (!may_see(s, sp) || (req->u.list.pid && (pid_t)req->u.list.pid != sp->pid))
			continue;
		region_for_each(r, &sp->regions)
		{
			struct upager_list_entry e = {
				.pid = (uint32_t)sp->pid,
				.uid = sp->uid,
				.start = r->start,
				.length = r->length,
				.offset = r->obj ? r->offset : 0,
				.prot = r->prot,
				.flags = r->flags,
				.faults = r->faults,
				.pages_populated = r->pages_populated,
				.pages_read = r->pages_read,
				.bytes_read = r->bytes_read,
				.latency_avg_ns = r->faults ? r->latency_sum_ns / r->faults : 0,
				.latency_max_ns = r->latency_max_ns,
				.object_id = r->obj ? r->obj->id : 0,
				.nonlinear = r->view != NULL,
				.remapped_ranges = r->view ? (uint32_t)view_ranges(
								     r->view, r->view_index,
								     r->length >> UPAGER_PAGE_SHIFT)
							   : 0,
				.grown_pages = r->grown_pages,
				.max_length = r->max_length,
				.object_pages_out = r->obj ? r->obj->pages_out : 0,
				.object_refaults = r->obj ? r->obj->refaults : 0,
				.object_writeback_errors = r->obj ? r->obj->wb_errors : 0,
				.object_writeback_error = r->obj ? (uint32_t)-r->obj->wb_err : 0,
				.private_pages_out = r->private_out,
				.private_pages_in = r->private_in,
				.path = r->obj ? r->obj->path : "anon",
			};

			if (index++ < cursor)
				continue;
			if (r->obj && r->obj->kind == OBJECT_ANON)
				e.path = "anon";
			e.path_len = strlen(e.path);
			ret = list_entry_add(lj, &used, &e, &mark);
			if (ret == -EMSGSIZE) {
				lj->rep.u.list_reply.next_cursor = index - 1;
				goto counted;
			}
			if (ret < 0)
				goto fail;
		}
	}
counted:
	lj->rep.u.list_reply.count = (uint32_t)lj->n;
	lj->resident = calloc(MAX(lj->n, (size_t)1), sizeof(*lj->resident));
	if (!lj->resident) {
		ret = -ENOMEM;
		goto fail;
	}
	lj->job = (struct worker_job){ .run = list_job_run,
				       .done = list_job_done,
				       .free = list_job_free,
				       .owner = s->uid,
				       .timeout_ms = s->d->config.file_timeout_ms };
	lj->s = s;
	ret = worker_submit(s->d->cache.workers, &lj->job);
	if (ret < 0)
		goto fail;
	s->listing = true;
	return REQUEST_LATER;
fail:
	list_job_free(&lj->job);
	return ret;
}

/* The budget and what holding to it did, from the cache's figures; the wire speaks of bytes. */
static void report_paging(const struct cache *c, struct upager_msg *m)
{
	m->u.stats_reply.budget_bytes = c->budget_pages << UPAGER_PAGE_SHIFT;
	m->u.stats_reply.memory_pages = cache_use(c);
	m->u.stats_reply.pages_out = c->stats.pages_out;
	m->u.stats_reply.pages_written_out = c->stats.pages_written_out;
	m->u.stats_reply.pages_in = c->stats.pages_in;
	m->u.stats_reply.refaults = c->stats.refaults;
	m->u.stats_reply.over_budget = c->stats.over_budget;
	m->u.stats_reply.swap_bytes = c->swap_pages << UPAGER_PAGE_SHIFT;
	m->u.stats_reply.swap_used_bytes = c->swap_used << UPAGER_PAGE_SHIFT;
	m->u.stats_reply.writeback_errors = c->stats.wb_errors;
}

/* The swap store: its kind, where it is, its requests. */
static void report_store(struct cache *c, struct upager_msg *m)
{
	struct store_info i;

	if (!c->store || !c->store->ops->info)
		return;
	c->store->ops->info(c->store, &i);
	m->u.stats_reply.store_kind =
		strcmp(i.kind, "nbd") == 0 ? UPAGER_STORE_NBD : UPAGER_STORE_FILE;
	m->u.stats_reply.store_inflight = (uint32_t)i.inflight;
	m->u.stats_reply.store_bytes_out = i.bytes_out;
	m->u.stats_reply.store_bytes_in = i.bytes_in;
	m->u.stats_reply.store_errors = i.errors;
	m->u.stats_reply.store_reconnects = i.reconnects;
	m->u.stats_reply.store_connections = i.connections;
	m->u.stats_reply.store_where = i.where;
	m->u.stats_reply.store_where_len = (uint32_t)strnlen(i.where, UPAGER_PATH_MAX);
}

/** report_stats() - STATS: the daemon's figures */
int report_stats(struct session *s, const struct upager_msg *req)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	struct daemon *d = s->d;
	struct object *o;

	m.u.stats_reply.sessions = d->n_sessions;
	m.u.stats_reply.spaces = d->n_spaces;
	m.u.stats_reply.regions = space_count_regions(d);
	m.u.stats_reply.objects = d->cache.n_objects;
	list_for_each_entry (o, &d->cache.objects, link)
		m.u.stats_reply.cached_pages += object_cached_pages(o);
	m.u.stats_reply.faults = d->stats.faults;
	m.u.stats_reply.pages_read = d->cache.stats.pages_read;
	m.u.stats_reply.bytes_read = d->cache.stats.bytes_read;
	m.u.stats_reply.bytes_written = d->cache.stats.bytes_written;
	m.u.stats_reply.uptime_ms = uv_now(d->loop) - d->start_ms;
	m.u.stats_reply.pages_populated = d->stats.pages_populated;
	m.u.stats_reply.bytes_from_page_cache = d->cache.stats.bytes_from_page_cache;
	m.u.stats_reply.latency_p50_ns = latency_percentile(&d->stats.latency, 50);
	m.u.stats_reply.latency_p99_ns = latency_percentile(&d->stats.latency, 99);
	m.u.stats_reply.latency_max_ns = d->stats.latency.max_ns;
	report_paging(&d->cache, &m);
	report_store(&d->cache, &m);
	return session_reply(s, &m, 0, NULL, 0) < 0 ? -EPIPE : REQUEST_REPLIED;
}
