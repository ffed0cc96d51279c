// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's tables as saved records (state.c keeps the journal): the daemon's own record, every
 * record marked anew after a load, and how each kind is taken back. A record refers to others by
 * id, so it is loaded after what it names: spaces, objects and their views, regions, sessions and
 * the objects they hold (the order of enum state_rec).
 */
#include "common/list.h"
#include "context.h"
#include "fdstore.h"
#include "channel.h"
#include "object.h"
#include "private.h"
#include "session.h"
#include "space.h"
#include "state.h"
#include "tables.h"
#include "view.h"

static void daemon_fields(struct state_io *io, struct daemon *d)
{
	STATE_NUM(io, 1, d->cache.next_object_id);
	STATE_NUM(io, 2, d->next_id);
}

static void daemon_record_save(struct state_handle *h, struct state *st)
{
	struct state_io io;

	state_begin(&io, st, STATE_REC_DAEMON);
	daemon_fields(&io, h->owner);
	state_end(&io);
}

/* Every record, kind by kind, so that their keys follow the order in which they are loaded. */
static void tables_mark_all(struct daemon *d)
{
	struct session *se;
	struct space *sp;
	struct object *o;
	struct view *v;

	state_mark_daemon(d);
	list_for_each_entry (sp, &d->spaces, link)
		space_mark(sp);
	list_for_each_entry (o, &d->cache.objects, link) {
		object_mark(o);
		list_for_each_entry (v, &o->views, link)
			view_mark(v);
	}
	list_for_each_entry (sp, &d->spaces, link)
		space_mark_regions(sp);
	list_for_each_entry (se, &d->sessions, link)
		session_mark(se);
	list_for_each_entry (sp, &d->spaces, link)
		private_mark_all(sp);
}

static void tables_load(struct daemon *d, enum state_rec type, struct state_io *io,
			struct fdstore_passed *p)
{
	struct space *s;
	int fd;

	switch (type) {
	case STATE_REC_DAEMON:
		daemon_fields(io, d);
		break;
	case STATE_REC_SPACE:
		s = space_load(d, io, p);
		fd = s ? fdstore_passed_take(p, "gr", s->id) : -1;
		if (fd >= 0)
			channel_attach(s, fd);
		break;
	case STATE_REC_OBJECT:
		object_load(&d->cache, io, p);
		break;
	case STATE_REC_VIEW:
		view_load(d, io, p, space_view_host);
		break;
	case STATE_REC_REGION:
		space_load_region(d, io);
		break;
	case STATE_REC_SESSION:
		session_load(d, io, p);
		break;
	case STATE_REC_OPEN:
		session_load_open(d, io);
		break;
	case STATE_REC_PRIVATE:
		private_load(d, io);
		break;
	default: /* a newer daemon's: nothing to do with it */
		break;
	}
}

static void tables_loaded(struct daemon *d)
{
	struct object *o, *otmp;
	struct view *v, *vtmp;
	struct space *s;

	/* Objects and views came with one reference each, for the time of the load. */
	list_for_each_entry_safe (o, otmp, &d->cache.objects, link) {
		object_ref(o);
		list_for_each_entry_safe (v, vtmp, &o->views, link)
			view_unref(v);
		object_unref(o);
	}
	list_for_each_entry_safe (o, otmp, &d->cache.objects, link)
		object_unref(o);
	list_for_each_entry (s, &d->spaces, link)
		space_wake(s);
}

const struct state_ops tables_ops = {
	.mark_all = tables_mark_all,
	.save_daemon = daemon_record_save,
	.load = tables_load,
	.loaded = tables_loaded,
};
