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
 * The format is records of fields, each field tagged with a key and its length (state.h). This
 * file knows the framing only: what the records say, and their order, come through state_ops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "context.h"
#include "fdstore.h"
#include "log.h"
#include "memfd.h"
#include "state.h"

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
	const struct state_ops *ops;
	int fd[2]; /* the two slots; generation g is in fd[g & 1] */
	uint64_t gen;
	uint8_t *buf;
	size_t len, cap;
	bool oom;
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

/** state_u64() - save or load the number field @key */
void state_u64(struct state_io *io, uint16_t key, uint64_t *v)
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

/** state_str() - save or load the string field @key; a string loaded replaces *@s */
void state_str(struct state_io *io, uint16_t key, char **s)
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

/** state_bytes() - save or load the field @key of at most @cap bytes */
void state_bytes(struct state_io *io, uint16_t key, uint8_t *buf, uint16_t *len, size_t cap)
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

/** state_begin() - start a record of kind @type in @st, to save its fields through @io */
void state_begin(struct state_io *io, struct state *st, enum state_rec type)
{
	struct rec_header h = { .type = (uint16_t)type };

	*io = (struct state_io){ .out = st, .at = st->len };
	put(st, &h, sizeof(h));
}

/** state_end() - the record begun with state_begin() is complete */
void state_end(struct state_io *io)
{
	struct state *st = io->out;
	uint32_t len = (uint32_t)(st->len - io->at - sizeof(struct rec_header));

	if (!st->oom)
		memcpy(st->buf + io->at + offsetof(struct rec_header, len), &len, sizeof(len));
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
	st->ops->save(d, st);
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

/* Rebuild the tables from the records in buf[0, len). */
static void load_all(struct daemon *d, struct state *st, const uint8_t *buf, size_t len,
		     struct fdstore_passed *p)
{
	struct state_field fields[MAX_FIELDS];
	size_t at = 0;

	while (at + sizeof(struct rec_header) <= len) {
		struct rec_header rh;
		struct state_io io = { .in = fields };
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
			fields[io.n_in++] = (struct state_field){ fh.key, fh.len, buf + f };
			f += fh.len;
		}
		st->ops->load(d, (enum state_rec)rh.type, &io, p);
		at = end;
	}
	st->ops->loaded(d);
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
 * @ops: how the tables are saved and taken back
 *
 * Every space that is taken over is woken (space_wake()), since the faults the previous daemon
 * had read but not resolved are lost.
 *
 * Return: 0 or a negative errno.
 */
int state_init(struct daemon *d, struct fdstore_passed *passed, const struct state_ops *ops)
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
	st->ops = ops;
	st->fd[0] = fdstore_passed_take(passed, "st", 0);
	st->fd[1] = fdstore_passed_take(passed, "st", 1);
	slot[0] = slot_read(st->fd[0], &h[0]);
	slot[1] = slot_read(st->fd[1], &h[1]);
	cur = slot[1] && (!slot[0] || h[1].gen > h[0].gen) ? 1 : 0;
	if (slot[cur]) {
		d->restoring = true;
		load_all(d, st, slot[cur], h[cur].len, passed);
		d->restoring = false;
		st->gen = h[cur].gen;
		log_info("took over %u clients, %u spaces, %u objects from the previous daemon",
			 d->n_sessions, d->n_spaces, d->cache.n_objects);
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
