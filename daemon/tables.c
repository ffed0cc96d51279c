// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's tables as saved records (state.c keeps the file): which records, in which order,
 * and how each kind is taken back. A record refers to others by id, so it comes after what it
 * names: spaces, objects and their views, regions, sessions and the objects they hold.
 */
#include "common/list.h"
#include "context.h"
#include "fdstore.h"
#include "grow.h"
#include "object.h"
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

static void tables_save(struct daemon *d, struct state *st)
{
	struct state_io io;
	struct session *se;
	struct space *sp;
	struct object *o;
	struct view *v;

	state_begin(&io, st, STATE_REC_DAEMON);
	daemon_fields(&io, d);
	state_end(&io);
	list_for_each_entry (sp, &d->spaces, link)
		space_save(sp, st);
	list_for_each_entry (o, &d->cache.objects, link) {
		object_save(o, st);
		list_for_each_entry (v, &o->views, link)
			view_save(v, st);
	}
	list_for_each_entry (sp, &d->spaces, link)
		space_save_regions(sp, st);
	list_for_each_entry (se, &d->sessions, link)
		session_save(se, st);
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
			grow_attach(s, fd);
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
	.save = tables_save,
	.load = tables_load,
	.loaded = tables_loaded,
};
