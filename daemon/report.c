// SPDX-License-Identifier: LGPL-2.1-or-later
/* LIST and STATS: the daemon's tables and figures, as upagerctl shows them. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "common/macro.h"
#include "context.h"
#include "latency.h"
#include "object.h"
#include "proto/codec.h"
#include "report.h"
#include "session.h"
#include "space.h"
#include "store.h"
#include "view.h"

static bool may_see(const struct session *s, const struct space *sp)
{
	return s->uid == 0 || sp->uid == s->uid;
}

/** report_list() - LIST: the mappings the session's peer may see, from a cursor on */
int report_list(struct session *s, const struct upager_msg *req)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	static uint8_t entries[UPAGER_MSG_MAX];
	size_t room = UPAGER_MSG_MAX - upager_msg_size(UPAGER_OP_LIST | UPAGER_OP_REPLY);
	size_t used = 0;
	uint32_t index = 0, cursor = req->u.list.cursor, count = 0;
	struct space *sp, *tmp;
	struct region *r;

	/* A forked child that exited since the last liveness round is not listed. */
	list_for_each_entry_safe (sp, tmp, &s->d->spaces, link)
		space_check_alive(sp);
	list_for_each_entry (sp, &s->d->spaces, link) {
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
			int n;

			if (index++ < cursor)
				continue;
			if (r->obj && r->obj->kind == OBJECT_ANON)
				e.path = "anon";
			e.path_len = strlen(e.path);
			e.resident_pages = space_resident_pages(sp, r);
			n = upager_list_entry_encode(entries + used, room - used, &e);
			if (n == -EMSGSIZE) {
				m.u.list_reply.next_cursor = index - 1;
				goto send;
			}
			if (n < 0)
				return n;
			used += (size_t)n;
			count++;
		}
	}
send:
	m.u.list_reply.count = count;
	m.u.list_reply.entries = entries;
	m.u.list_reply.entries_len = used;
	return session_reply(s, &m, 0, NULL, 0) < 0 ? -EPIPE : REQUEST_REPLIED;
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
