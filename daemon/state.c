// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's tables, saved so that a daemon started after a crash or a restart takes over
 * where the last one stopped. Under a service manager with an fd store (fdstore.c), the tables
 * are written into one of two memfds of the store whenever they changed: before any reply that
 * tells a client about a change, and at the end of the loop iteration otherwise. Faults do not
 * write here: what they change (page states, the copies of nonlinear mappings) lives in memfds of
 * its own (object.c, view.c). The two memfds are written in turn, each with a generation and a
 * checksum, so that a crash in the middle of a write leaves the other one to start from.
 *
 * The format is records of fields, each field tagged with a key and its length. A loader takes
 * the fields it knows and leaves the rest; a field it does not find keeps its zero value. A new
 * field is a new key, and keys are never reused, so a daemon reads the state an older one wrote.
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
#include "daemon.h"
#include "fdstore.h"
#include "grow.h"
#include "log.h"
#include "memfd.h"
#include "object.h"
#include "region.h"
#include "session.h"
#include "space.h"
#include "state.h"
#include "view.h"

#define STATE_MAGIC 0x5453524547415055ULL /* "UPAGERST" */
#define STATE_VERSION 1 /* changes only if an old daemon's state cannot be read any more */
#define MAX_FIELDS 64

struct state_header {
	uint64_t magic;
	uint32_t version;
	uint32_t reserved;
	uint64_t gen; /* the slot with the highest valid generation is current */
	uint64_t len; /* bytes of records after the header */
	uint64_t sum; /* FNV-1a of those bytes */
};

struct state {
	int fd[2]; /* the two slots; generation g is in fd[g & 1] */
	uint64_t gen;
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

enum rec_type {
	REC_DAEMON = 1,
	REC_SPACE = 2,
	REC_OBJECT = 3,
	REC_VIEW = 4,
	REC_REGION = 5,
	REC_SESSION = 6,
	REC_OPEN = 7,
};

struct rec_header {
	uint16_t type;
	uint16_t reserved;
	uint32_t len; /* bytes of fields after this header */
};

struct field_header {
	uint16_t key;
	uint16_t len;
};

struct field {
	uint16_t key, len;
	const uint8_t *data;
};

/* Save or load: one function per kind of record lists each field once, for both directions. */
struct io {
	struct state *out; /* saving into */
	const struct field *in; /* loading from */
	size_t n_in;
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void put(struct state *st, const void *p, size_t n)
{
	if (st->len + n > st->cap) {
		size_t cap = MAX(st->cap * 2, st->len + n + 4096);
		uint8_t *b = realloc(st->buf, cap);

		if (!b) {
			st->oom = true;
			return;
		}
		st->buf = b;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, p, n);
	st->len += n;
}

static void io_u64(struct io *io, uint16_t key, uint64_t *v)
{
	if (io->out) {
		struct field_header h = { key, sizeof(*v) };

		put(io->out, &h, sizeof(h));
		put(io->out, v, sizeof(*v));
		return;
	}
	for (size_t i = 0; i < io->n_in; i++)
		if (io->in[i].key == key && io->in[i].len == sizeof(*v))
			memcpy(v, io->in[i].data, sizeof(*v));
}

static void io_str(struct io *io, uint16_t key, char **s)
{
	if (io->out) {
		struct field_header h = { key, 0 };

		if (!*s)
			return;
		h.len = (uint16_t)MIN(strlen(*s), 0xffffu);
		put(io->out, &h, sizeof(h));
		put(io->out, *s, h.len);
		return;
	}
	for (size_t i = 0; i < io->n_in; i++)
		if (io->in[i].key == key) {
			free(*s);
			*s = strndup((const char *)io->in[i].data, io->in[i].len);
		}
}

static void io_bytes(struct io *io, uint16_t key, uint8_t *buf, uint16_t *len, size_t cap)
{
	if (io->out) {
		struct field_header h = { key, *len };

		put(io->out, &h, sizeof(h));
		put(io->out, buf, *len);
		return;
	}
	for (size_t i = 0; i < io->n_in; i++)
		if (io->in[i].key == key && io->in[i].len <= cap) {
			memcpy(buf, io->in[i].data, io->in[i].len);
			*len = io->in[i].len;
		}
}

/* Any integer or bool lvalue, through a u64. */
#define IO_NUM(io, key, lv)                   \
	do {                                  \
		uint64_t v_ = (uint64_t)(lv); \
		io_u64(io, key, &v_);         \
		(lv) = (__typeof__(lv))v_;    \
	} while (0)

static void daemon_fields(struct io *io, struct daemon *d)
{
	IO_NUM(io, 1, d->next_object_id);
	IO_NUM(io, 2, d->next_id);
}

static void space_fields(struct io *io, struct space *s)
{
	IO_NUM(io, 1, s->id);
	IO_NUM(io, 2, s->pid);
	IO_NUM(io, 3, s->uid);
	IO_NUM(io, 4, s->token_addr);
	IO_NUM(io, 5, s->features);
	IO_NUM(io, 6, s->converting);
}

/* The page states are not here: they are in the object's own memfd. */
static void object_fields(struct io *io, struct object *o, bool *has_read, bool *has_write)
{
	IO_NUM(io, 1, o->id);
	IO_NUM(io, 2, o->kind);
	IO_NUM(io, 3, o->reserve);
	IO_NUM(io, 4, o->file_size);
	IO_NUM(io, 5, o->dev);
	IO_NUM(io, 6, o->ino);
	IO_NUM(io, 7, o->mtime.tv_sec);
	IO_NUM(io, 8, o->mtime.tv_nsec);
	IO_NUM(io, 9, o->ctime.tv_sec);
	IO_NUM(io, 10, o->ctime.tv_nsec);
	io_str(io, 11, &o->path);
	IO_NUM(io, 12, o->pages_read);
	IO_NUM(io, 13, o->bytes_read);
	IO_NUM(io, 14, o->linear_writers);
	IO_NUM(io, 15, *has_read);
	IO_NUM(io, 16, *has_write);
	IO_NUM(io, 17, o->size); /* the memfd may be larger, see object_resize() */
}

/*
 * The table and copy states are not here: they are in the view's own memfds, the daemon's (vm)
 * and the one shared with the client's library (vt).
 */
static void view_fields(struct io *io, struct view *v, uint64_t *obj_id, uint64_t *space_id)
{
	IO_NUM(io, 1, v->id);
	IO_NUM(io, 2, *obj_id);
	IO_NUM(io, 3, v->pages);
	IO_NUM(io, 4, v->base);
	IO_NUM(io, 5, v->may_write);
	IO_NUM(io, 6, *space_id);
	IO_NUM(io, 7, v->start);
	IO_NUM(io, 8, v->shared_size); /* 0: a daemon that shared no table saved this */
	IO_NUM(io, 9, v->local);
}

/* Keys of a region's fields: a new field of struct region gets a new key and one line below. */
enum {
	RK_SPACE = 1,
	RK_START,
	RK_LENGTH,
	RK_OFFSET,
	RK_PROT,
	RK_FLAGS,
	RK_OBJECT,
	RK_VIEW,
	RK_VIEW_INDEX,
	RK_SHARED,
	RK_MAY_WRITE,
	RK_WP,
	RK_FAULTS,
	RK_PAGES_POPULATED,
	RK_PAGES_READ,
	RK_BYTES_READ,
	RK_LATENCY_SUM,
	RK_LATENCY_MAX,
	RK_RA_NEXT,
	RK_RA_WINDOW,
	RK_GUARD,
	RK_SENTINEL,
	RK_BASE,
	RK_MAX_LENGTH,
	RK_GROWN_PAGES,
};

/*
 * Every field of struct region, in both directions. The object and view are saved as their ids;
 * the figures are as they were at the last table change (faults do not save them).
 */
static void region_fields(struct io *io, struct region *r, uint64_t *space_id, uint64_t *obj_id,
			  uint64_t *view_id)
{
	IO_NUM(io, RK_SPACE, *space_id);
	IO_NUM(io, RK_START, r->start);
	IO_NUM(io, RK_LENGTH, r->length);
	IO_NUM(io, RK_OFFSET, r->offset);
	IO_NUM(io, RK_PROT, r->prot);
	IO_NUM(io, RK_FLAGS, r->flags);
	IO_NUM(io, RK_OBJECT, *obj_id);
	IO_NUM(io, RK_VIEW, *view_id);
	IO_NUM(io, RK_VIEW_INDEX, r->view_index);
	IO_NUM(io, RK_SHARED, r->shared);
	IO_NUM(io, RK_MAY_WRITE, r->may_write);
	IO_NUM(io, RK_WP, r->wp);
	IO_NUM(io, RK_FAULTS, r->faults);
	IO_NUM(io, RK_PAGES_POPULATED, r->pages_populated);
	IO_NUM(io, RK_PAGES_READ, r->pages_read);
	IO_NUM(io, RK_BYTES_READ, r->bytes_read);
	IO_NUM(io, RK_LATENCY_SUM, r->latency_sum_ns);
	IO_NUM(io, RK_LATENCY_MAX, r->latency_max_ns);
	IO_NUM(io, RK_RA_NEXT, r->ra_next);
	IO_NUM(io, RK_RA_WINDOW, r->ra_window);
	IO_NUM(io, RK_GUARD, r->guard);
	IO_NUM(io, RK_SENTINEL, r->sentinel);
	IO_NUM(io, RK_BASE, r->base);
	IO_NUM(io, RK_MAX_LENGTH, r->max_length);
	IO_NUM(io, RK_GROWN_PAGES, r->grown_pages);
}

static void session_fields(struct io *io, struct session *s, uint64_t *space_id, uint64_t *view_id)
{
	IO_NUM(io, 1, s->id);
	IO_NUM(io, 2, s->pid);
	IO_NUM(io, 3, s->uid);
	IO_NUM(io, 4, s->hello);
	IO_NUM(io, 5, s->ctl);
	IO_NUM(io, 6, s->busy);
	IO_NUM(io, 7, s->pending.op);
	IO_NUM(io, 8, s->pending.seq);
	IO_NUM(io, 9, *space_id);
	IO_NUM(io, 10, *view_id);
	IO_NUM(io, 11, s->last.seq);
	io_bytes(io, 12, s->last.msg, &s->last.len, sizeof(s->last.msg));
	IO_NUM(io, 13, s->last.fd);
	IO_NUM(io, 14, s->last.fd_id);
	IO_NUM(io, 15, s->last.fd_writable);
}

static void open_fields(struct io *io, struct pending_open *po, uint64_t *session_id,
			uint64_t *obj_id)
{
	IO_NUM(io, 1, *session_id);
	IO_NUM(io, 2, *obj_id);
	IO_NUM(io, 3, po->prot);
	IO_NUM(io, 4, po->flags);
	IO_NUM(io, 5, po->offset);
	IO_NUM(io, 6, po->length);
	IO_NUM(io, 7, po->shared);
	IO_NUM(io, 8, po->may_write);
}

static size_t rec_begin(struct state *st, uint16_t type)
{
	struct rec_header h = { .type = type };
	size_t at = st->len;

	put(st, &h, sizeof(h));
	return at;
}

static void rec_end(struct state *st, size_t at)
{
	uint32_t len = (uint32_t)(st->len - at - sizeof(struct rec_header));

	if (!st->oom)
		memcpy(st->buf + at + offsetof(struct rec_header, len), &len, sizeof(len));
}

static void save_all(struct daemon *d, struct state *st)
{
	struct io io = { .out = st };
	struct space *sp;
	struct region *r;
	struct object *o;
	struct session *se;
	size_t at;

	at = rec_begin(st, REC_DAEMON);
	daemon_fields(&io, d);
	rec_end(st, at);
	list_for_each_entry (sp, &d->spaces, link) {
		at = rec_begin(st, REC_SPACE);
		space_fields(&io, sp);
		rec_end(st, at);
	}
	list_for_each_entry (o, &d->objects, link) {
		bool has_read = o->fd_read >= 0, has_write = o->fd_write >= 0;
		struct view *v;

		at = rec_begin(st, REC_OBJECT);
		object_fields(&io, o, &has_read, &has_write);
		rec_end(st, at);
		list_for_each_entry (v, &o->views, link) {
			uint64_t obj_id = o->id;
			uint64_t space_id = v->space && !v->space->dead ? v->space->id : 0;

			at = rec_begin(st, REC_VIEW);
			view_fields(&io, v, &obj_id, &space_id);
			rec_end(st, at);
		}
	}
	list_for_each_entry (sp, &d->spaces, link) {
		region_for_each(r, &sp->regions)
		{
			uint64_t space_id = sp->id, obj_id = r->obj ? r->obj->id : 0;
			uint64_t view_id = r->view ? r->view->id : 0;

			at = rec_begin(st, REC_REGION);
			region_fields(&io, r, &space_id, &obj_id, &view_id);
			rec_end(st, at);
		}
	}
	list_for_each_entry (se, &d->sessions, link) {
		uint64_t space_id = se->space && !se->space->dead ? se->space->id : 0;
		uint64_t view_id = se->converting ? se->converting->id : 0;

		at = rec_begin(st, REC_SESSION);
		session_fields(&io, se, &space_id, &view_id);
		rec_end(st, at);
		for (size_t i = 0; i < se->n_opens; i++) {
			uint64_t obj_id = se->opens[i].obj->id;

			at = rec_begin(st, REC_OPEN);
			open_fields(&io, &se->opens[i], &se->id, &obj_id);
			rec_end(st, at);
		}
	}
}

static int pwrite_all(int fd, const uint8_t *p, size_t n)
{
	off_t off = 0;

	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? neg_errno() : -EIO;
		p += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

/**
 * state_flush() - save the tables if they changed since they were last saved
 * @d: the daemon; nothing is done without an fd store
 */
void state_flush(struct daemon *d)
{
	struct state *st = d->state;
	struct state_header h = { .magic = STATE_MAGIC, .version = STATE_VERSION };
	int ret;

	if (!st || !d->state_dirty || d->restoring)
		return;
	st->len = 0;
	st->oom = false;
	put(st, &h, sizeof(h));
	save_all(d, st);
	if (st->oom) {
		log_warning("saving the tables: %s", strerror(ENOMEM));
		return;
	}
	h.gen = st->gen + 1;
	h.len = st->len - sizeof(h);
	h.sum = fnv1a(st->buf + sizeof(h), h.len);
	memcpy(st->buf, &h, sizeof(h));
	ret = pwrite_all(st->fd[h.gen & 1], st->buf, st->len);
	if (ret < 0) {
		log_warning("saving the tables: %s", strerror(-ret));
		return;
	}
	st->gen = h.gen;
	d->state_dirty = false;
}

/* The valid contents of a slot, or NULL. */
static uint8_t *slot_read(int fd, struct state_header *h)
{
	struct stat sb;
	uint8_t *buf;

	if (fd < 0 || fstat(fd, &sb) < 0 || (size_t)sb.st_size < sizeof(*h))
		return NULL;
	if (pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) || h->magic != STATE_MAGIC ||
	    h->version != STATE_VERSION || h->len > (uint64_t)sb.st_size - sizeof(*h))
		return NULL;
	buf = malloc(MAX(h->len, 1));
	if (!buf)
		return NULL;
	if (pread(fd, buf, h->len, sizeof(*h)) != (ssize_t)h->len || fnv1a(buf, h->len) != h->sum) {
		free(buf);
		return NULL;
	}
	return buf;
}

static struct space *find_space(struct daemon *d, uint64_t id)
{
	struct space *s;

	list_for_each_entry (s, &d->spaces, link)
		if (id && s->id == id)
			return s;
	return NULL;
}

static struct session *find_session(struct daemon *d, uint64_t id)
{
	struct session *s;

	list_for_each_entry (s, &d->sessions, link)
		if (s->id == id)
			return s;
	return NULL;
}

static void load_space(struct daemon *d, struct io *io, struct fdstore_passed *p)
{
	struct space saved = { 0 }, *s;
	int uffd;

	space_fields(io, &saved);
	uffd = fdstore_passed_take(p, "uf", saved.id);
	if (uffd < 0 || space_new(d, uffd, saved.pid, saved.uid, saved.token_addr, &s) < 0) {
		log_warning("the userfaultfd of pid %d was not passed back", (int)saved.pid);
		return;
	}
	s->id = saved.id;
	s->features = saved.features;
	s->converting = saved.converting;
	uffd = fdstore_passed_take(p, "gr", saved.id);
	if (uffd >= 0)
		grow_attach(s, uffd);
	space_unref(s); /* the loop's reference keeps it */
}

static void load_object(struct daemon *d, struct io *io, struct fdstore_passed *p)
{
	struct object saved = { 0 }, *o;
	bool has_read = false, has_write = false;
	int memfd, pages_fd, rd = -1, wr = -1, ret;

	object_fields(io, &saved, &has_read, &has_write);
	memfd = fdstore_passed_take(p, "ob", saved.id);
	pages_fd = fdstore_passed_take(p, "pg", saved.id);
	if (has_read)
		rd = fdstore_passed_take(p, "rd", saved.id);
	if (has_write)
		wr = fdstore_passed_take(p, "wr", saved.id);
	/* The service manager passes one descriptor of an open file description stored twice. */
	if (has_write && wr < 0 && rd >= 0)
		wr = fcntl(rd, F_DUPFD_CLOEXEC, 3);
	ret = object_adopt(d, &saved, memfd, pages_fd, rd, wr, &o);
	if (ret < 0)
		log_warning("object %s was not passed back: %s", saved.path ? saved.path : "?",
			    strerror(-ret));
	free(saved.path);
}

static void load_view(struct daemon *d, struct io *io, struct fdstore_passed *p)
{
	struct view saved = { 0 }, *v;
	uint64_t obj_id = 0, space_id = 0;
	struct object *o;
	int memfd, meta_fd, table_fd;

	view_fields(io, &saved, &obj_id, &space_id);
	memfd = fdstore_passed_take(p, "vw", saved.id);
	meta_fd = fdstore_passed_take(p, "vm", saved.id);
	table_fd = fdstore_passed_take(p, "vt", saved.id);
	o = object_find(d, obj_id);
	if (!o || view_adopt(o, &saved, memfd, meta_fd, table_fd, &v) < 0) {
		if (!o) {
			closep(&memfd);
			closep(&meta_fd);
			closep(&table_fd);
		}
		log_warning("a nonlinear mapping was not passed back");
		return;
	}
	view_attach(v, find_space(d, space_id), saved.start);
	/*
	 * The library goes on remapping alone only if both the saved tables and the shared one
	 * say it may: an unsaved change (the mapping moved) has always stopped it.
	 */
	view_publish(v, saved.local && v->space &&
				__atomic_load_n(&v->shared->start, __ATOMIC_ACQUIRE) == v->start);
}

static void load_region(struct daemon *d, struct io *io)
{
	uint64_t space_id = 0, obj_id = 0, view_id = 0;
	struct region r = { 0 };
	struct space *s;

	region_fields(io, &r, &space_id, &obj_id, &view_id);
	s = find_space(d, space_id);
	r.obj = object_find(d, obj_id);
	r.view = view_find(d, view_id);
	if (!s || (obj_id && !r.obj) || (view_id && !r.view)) {
		log_warning("a mapping at %#" PRIx64 " lost what it maps", r.start);
		return;
	}
	if (r.obj)
		object_ref(r.obj);
	if (r.view)
		view_ref(r.view);
	if (region_insert(&s->regions, &r) < 0) {
		view_unref(r.view);
		object_unref(r.obj);
	}
}

static void load_session(struct daemon *d, struct io *io, struct fdstore_passed *p)
{
	uint64_t space_id = 0, view_id = 0;
	struct session *saved = calloc(1, sizeof(*saved));
	struct space *sp;
	struct view *v;
	int fd;

	if (!saved)
		return;
	session_fields(io, saved, &space_id, &view_id);
	fd = fdstore_passed_take(p, "cl", saved->id);
	if (fd >= 0) {
		sp = find_space(d, space_id);
		v = view_find(d, view_id);
		saved->space = sp ? space_ref(sp) : NULL;
		saved->converting = v ? view_ref(v) : NULL;
		session_adopt(d, saved, fd);
	}
	free(saved);
}

static void load_open(struct daemon *d, struct io *io)
{
	uint64_t session_id = 0, obj_id = 0;
	struct pending_open po = { 0 };
	struct session *s;

	open_fields(io, &po, &session_id, &obj_id);
	s = find_session(d, session_id);
	po.obj = object_find(d, obj_id);
	if (!s || !po.obj || s->n_opens == MAX_PENDING_OPENS)
		return;
	object_ref(po.obj);
	s->opens[s->n_opens++] = po;
}

/* Rebuild the tables from the records in buf[0, len). */
static void load_all(struct daemon *d, const uint8_t *buf, size_t len, struct fdstore_passed *p)
{
	struct field fields[MAX_FIELDS];
	struct object *o, *otmp;
	struct view *v, *vtmp;
	struct space *s;
	size_t at = 0;

	while (at + sizeof(struct rec_header) <= len) {
		struct rec_header rh;
		struct io io = { .in = fields };
		size_t f, end;

		memcpy(&rh, buf + at, sizeof(rh));
		at += sizeof(rh);
		end = at + rh.len;
		if (end > len)
			break;
		for (f = at; f + sizeof(struct field_header) <= end && io.n_in < MAX_FIELDS;) {
			struct field_header fh;

			memcpy(&fh, buf + f, sizeof(fh));
			f += sizeof(fh);
			if (f + fh.len > end)
				break;
			fields[io.n_in++] = (struct field){ fh.key, fh.len, buf + f };
			f += fh.len;
		}
		switch (rh.type) {
		case REC_DAEMON:
			daemon_fields(&io, d);
			break;
		case REC_SPACE:
			load_space(d, &io, p);
			break;
		case REC_OBJECT:
			load_object(d, &io, p);
			break;
		case REC_VIEW:
			load_view(d, &io, p);
			break;
		case REC_REGION:
			load_region(d, &io);
			break;
		case REC_SESSION:
			load_session(d, &io, p);
			break;
		case REC_OPEN:
			load_open(d, &io);
			break;
		default: /* a newer daemon's: nothing to do with it */
			break;
		}
		at = end;
	}
	/* Objects and views came with one reference each, for the time of the load. */
	list_for_each_entry_safe (o, otmp, &d->objects, link) {
		object_ref(o);
		list_for_each_entry_safe (v, vtmp, &o->views, link)
			view_unref(v);
		object_unref(o);
	}
	list_for_each_entry_safe (o, otmp, &d->objects, link)
		object_unref(o);
	list_for_each_entry (s, &d->spaces, link)
		space_wake(s);
}

static int slot_new(struct daemon *d, struct state *st, unsigned i)
{
	int ret = memfd_new("upager:state", 0, 0, &st->fd[i]);

	if (ret < 0)
		return ret;
	return fdstore_add(d, st->fd[i], "st", i);
}

/**
 * state_init() - take over the tables a previous daemon saved, and save ours from now on
 * @d: the daemon, its loop and ring set up; nothing is done without an fd store
 * @passed: what the service manager passed; the descriptors the tables name are taken from it
 *
 * Every space that is taken over is woken (space_wake()), since the faults the previous daemon
 * had read but not resolved are lost.
 *
 * Return: 0 or a negative errno.
 */
int state_init(struct daemon *d, struct fdstore_passed *passed)
{
	struct state_header h[2] = { 0 };
	uint8_t *slot[2];
	struct state *st;
	int cur, ret;

	if (!d->fdstore)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->fd[0] = fdstore_passed_take(passed, "st", 0);
	st->fd[1] = fdstore_passed_take(passed, "st", 1);
	slot[0] = slot_read(st->fd[0], &h[0]);
	slot[1] = slot_read(st->fd[1], &h[1]);
	cur = slot[1] && (!slot[0] || h[1].gen > h[0].gen) ? 1 : 0;
	if (slot[cur]) {
		d->restoring = true;
		load_all(d, slot[cur], h[cur].len, passed);
		d->restoring = false;
		st->gen = h[cur].gen;
		log_info("took over %u clients, %u spaces, %u objects from the previous daemon",
			 d->n_sessions, d->n_spaces, d->n_objects);
	} else if (st->fd[0] >= 0 || st->fd[1] >= 0) {
		log_error(
			"the saved tables cannot be read; clients of the previous daemon are lost");
	}
	free(slot[0]);
	free(slot[1]);
	for (unsigned i = 0; i < 2; i++) {
		if (st->fd[i] >= 0)
			continue;
		ret = slot_new(d, st, i);
		if (ret < 0) {
			/* No store to keep the tables in: serve on, as a daemon started by hand. */
			log_warning("no fd store (%s): a restart will lose the clients",
				    strerror(-ret));
			closep(&st->fd[0]);
			closep(&st->fd[1]);
			free(st);
			d->fdstore = false;
			return 0;
		}
	}
	d->state = st;
	d->save = state_flush;
	daemon_touch(d);
	state_flush(d);
	return 0;
}

/** state_free() - stop saving the tables */
void state_free(struct daemon *d)
{
	struct state *st = d->state;

	if (!st)
		return;
	close(st->fd[0]);
	close(st->fd[1]);
	free(st->buf);
	free(st);
	d->state = NULL;
	d->save = NULL;
}
