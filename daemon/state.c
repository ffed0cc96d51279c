// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's tables, saved so that a daemon started after a crash or a restart takes over
 * where the last one stopped. Under a service manager with an fd store (fdstore.c), they are kept
 * in one of two memfds of the store as a journal: a snapshot of every record, then entries
 * appended as records change (PUT of a record under its key) or go (DEL of a key). The modules
 * that own the tables mark what changed (state_mark()); state_flush() appends the marked records
 * before any reply that tells a client about a change and at the end of the loop iteration, so
 * that a request costs the same whatever the number of mappings. Faults do not write here: what
 * they change (page states, the copies of nonlinear mappings) lives in memfds of its own
 * (object.c, view.c).
 *
 * Each entry carries a checksum of itself and of its slot's generation: a crash in the middle of
 * an append leaves a torn tail, which the loader ignores. Once the journal is more than twice the
 * size of what it describes, a snapshot goes into the other memfd with the next generation, its
 * header last, so the work per change stays bounded on average and a crash in the middle of a
 * snapshot leaves the slot before it to start from.
 *
 * The format of a record is fields tagged with a key and their length (state.h). This file knows
 * the framing only: what the records say comes through state_ops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "context.h"
#include "crc32c.h"
#include "fdstore.h"
#include "log.h"
#include "memfd.h"
#include "state.h"

#define STATE_MAGIC 0x5453524547415055ULL /* "UPAGERST" */
#define STATE_VERSION 2 /* changes only if an old daemon's state cannot be read any more */
#define MAX_FIELDS 64
/* A journal longer than twice its records and this is written again as a snapshot. */
#define JOURNAL_FLOOR (64u << 10)

struct state_header {
	uint64_t magic;
	uint32_t version;
	uint32_t sum; /* of the header with sum 0 */
	uint64_t gen; /* the slot with the highest valid generation is current */
	uint64_t snap_len; /* bytes of the snapshot's entries after the header; then the journal */
};

enum {
	ENTRY_PUT = 1,
	ENTRY_DEL = 2
};

struct entry_header {
	uint32_t sum; /* of the generation, then the rest of the entry */
	uint32_t len; /* bytes of fields after this header */
	uint64_t key;
	uint16_t op;
	uint16_t type; /* enum state_rec of a PUT */
	uint32_t reserved;
};

struct state {
	const struct state_ops *ops;
	int fd[2]; /* the two slots; generation g is in fd[g & 1] */
	uint64_t gen; /* of the current slot; 0: none written yet */
	uint64_t end; /* bytes of the current slot written */
	uint64_t next_key;
	struct list_head live; /* struct state_handle.live */
	struct list_head dirty; /* struct state_handle.dirty: marked, to be appended */
	uint64_t live_bytes; /* of the last entries of the live records */
	uint64_t *dels; /* keys of records gone, to be appended */
	size_t n_dels, cap_dels;
	bool broken; /* a write failed: the next flush writes a snapshot */
	/* The entries being written. */
	uint8_t *buf;
	size_t len, cap;
	bool oom;
	uint64_t entry_gen; /* what they are summed with */
	uint64_t entry_key; /* of the record being saved */
};

struct field_header {
	uint16_t key;
	uint16_t len;
};

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

/* The checksum of the entry at p, of len bytes in all, in a slot of generation gen. */
static uint32_t entry_sum(const uint8_t *p, size_t len, uint64_t gen)
{
	uint32_t sum = crc32c(0, &gen, sizeof(gen));

	return crc32c(sum, p + sizeof(uint32_t), len - sizeof(uint32_t));
}

/* Complete the entry that starts at @at of st->buf. */
static void entry_seal(struct state *st, size_t at)
{
	struct entry_header eh;

	if (st->oom)
		return;
	memcpy(&eh, st->buf + at, sizeof(eh));
	eh.len = (uint32_t)(st->len - at - sizeof(eh));
	memcpy(st->buf + at, &eh, sizeof(eh));
	eh.sum = entry_sum(st->buf + at, st->len - at, st->entry_gen);
	memcpy(st->buf + at, &eh, sizeof(eh.sum));
}

/** state_begin() - start a record of kind @type in @st, to save its fields through @io */
void state_begin(struct state_io *io, struct state *st, enum state_rec type)
{
	struct entry_header h = { .key = st->entry_key, .op = ENTRY_PUT, .type = (uint16_t)type };

	*io = (struct state_io){ .out = st, .at = st->len };
	put(st, &h, sizeof(h));
}

/** state_end() - the record begun with state_begin() is complete */
void state_end(struct state_io *io)
{
	entry_seal(io->out, io->at);
}

/**
 * state_mark() - the record of what @h is embedded in changed, or is new: the next
 * state_flush() appends it
 * @st: the saved state, or NULL (no fd store, or taking over: nothing is done)
 * @h: the handle, zeroed before its first mark
 * @save: writes the record
 * @owner: for @save
 */
void state_mark(struct state *st, struct state_handle *h, state_save_fn *save, void *owner)
{
	if (!st)
		return;
	h->save = save;
	h->owner = owner;
	if (!h->key) {
		h->key = ++st->next_key;
		h->len = 0;
		list_add_tail(&h->live, &st->live);
	}
	if (!h->marked) {
		list_add_tail(&h->dirty, &st->dirty);
		h->marked = true;
	}
}

/**
 * state_forget() - what @h is embedded in goes: its record is deleted at the next state_flush()
 * @st: the saved state, or NULL
 * @h: the handle; marked again, it becomes a new record
 */
void state_forget(struct state *st, struct state_handle *h)
{
	if (!st || !h->key)
		return;
	if (h->marked)
		list_del_init(&h->dirty);
	h->marked = false;
	list_del_init(&h->live);
	st->live_bytes -= h->len;
	if (h->len) {
		if (st->n_dels == st->cap_dels) {
			size_t cap = MAX(st->cap_dels * 2, 64);
			uint64_t *k = realloc(st->dels, cap * sizeof(*k));

			if (!k) {
				st->broken = true; /* the snapshot will leave it out */
				goto out;
			}
			st->dels = k;
			st->cap_dels = cap;
		}
		st->dels[st->n_dels++] = h->key;
	}
out:
	h->key = 0;
	h->len = 0;
}

/** state_mark_daemon() - the daemon's own record (its counters) changed */
void state_mark_daemon(struct daemon *d)
{
	if (d->state)
		state_mark(d->state, &d->saved, d->state->ops->save_daemon, d);
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
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

/* The entry of @h's record at the end of st->buf. */
static void save_one(struct state *st, struct state_handle *h)
{
	size_t at = st->len;

	st->entry_key = h->key;
	h->save(h, st);
	st->live_bytes += (st->len - at) - h->len;
	h->len = (uint32_t)(st->len - at);
}

static void unmark_all(struct state *st)
{
	struct state_handle *h, *tmp;

	list_for_each_entry_safe (h, tmp, &st->dirty, dirty) {
		list_del_init(&h->dirty);
		h->marked = false;
	}
	st->n_dels = 0;
}

/* Every live record into the slot after the current one, which becomes current. */
static int snapshot(struct state *st)
{
	struct state_header h = { .magic = STATE_MAGIC, .version = STATE_VERSION };
	struct state_handle *r;
	int fd, ret;

	h.gen = st->gen + 1;
	fd = st->fd[h.gen & 1];
	st->len = 0;
	st->oom = false;
	st->entry_gen = h.gen;
	st->live_bytes = 0;
	put(st, &h, sizeof(h));
	list_for_each_entry (r, &st->live, live) {
		r->len = 0;
		save_one(st, r);
	}
	unmark_all(st);
	if (st->oom)
		return -ENOMEM;
	h.snap_len = st->len - sizeof(h);
	h.sum = crc32c(0, &h, sizeof(h));
	/* The header last: until it is there, the slot is not valid and the other one is current. */
	if (ftruncate(fd, 0) < 0)
		return neg_errno();
	ret = pwrite_all(fd, st->buf + sizeof(h), st->len - sizeof(h), sizeof(h));
	if (ret == 0)
		ret = pwrite_all(fd, (const uint8_t *)&h, sizeof(h), 0);
	if (ret < 0)
		return ret;
	st->gen = h.gen;
	st->end = st->len;
	return 0;
}

/* The marked records and the deletions, appended to the current slot. */
static int append(struct state *st)
{
	struct state_handle *h;
	int ret;

	st->len = 0;
	st->oom = false;
	st->entry_gen = st->gen;
	list_for_each_entry (h, &st->dirty, dirty)
		save_one(st, h);
	for (size_t i = 0; i < st->n_dels; i++) {
		struct entry_header eh = { .key = st->dels[i], .op = ENTRY_DEL };
		size_t at = st->len;

		put(st, &eh, sizeof(eh));
		entry_seal(st, at);
	}
	if (st->oom)
		return -ENOMEM;
	/* Too long for what it holds: the snapshot has the records just marked, too. */
	if (st->end + st->len > 2 * st->live_bytes + JOURNAL_FLOOR + sizeof(struct state_header))
		return snapshot(st);
	unmark_all(st);
	ret = pwrite_all(st->fd[st->gen & 1], st->buf, st->len, (off_t)st->end);
	if (ret < 0)
		return ret;
	st->end += st->len;
	return 0;
}

/* Append what changed, or write a snapshot if @whole. */
static void write_out(struct state *st, bool whole)
{
	int ret = whole ? snapshot(st) : append(st);

	st->broken = ret < 0;
	if (ret < 0)
		log_limited(LOG_WARNING, "saving the tables: %s", strerror(-ret));
}

/**
 * state_flush() - save what was marked or forgotten since the last flush
 * @d: the daemon; nothing is done without an fd store
 */
void state_flush(struct daemon *d)
{
	struct state *st = d->state;

	if (!st || d->restoring || (!st->broken && list_empty(&st->dirty) && !st->n_dels))
		return;
	write_out(st, st->broken);
}

/* One entry of a slot: what it does to its key, and where its fields are. */
struct entry {
	uint64_t key;
	size_t at; /* of the fields in the slot, also the order of the entries */
	uint32_t len;
	uint16_t op, type;
};

/*
 * The valid contents of a slot, or NULL: its header in @h, its entries in @*out (@*n of them). A
 * slot of another version is said so in @*other_version.
 */
static uint8_t *slot_read(int fd, struct state_header *h, struct entry **out, size_t *n,
			  bool *other_version)
{
	struct entry *v = NULL;
	size_t at = sizeof(*h), cap = 0;
	struct stat sb;
	uint32_t sum;
	uint8_t *buf;

	*n = 0;
	if (fd < 0 || fstat(fd, &sb) < 0 || (size_t)sb.st_size < sizeof(*h) ||
	    pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) || h->magic != STATE_MAGIC)
		return NULL;
	if (h->version != STATE_VERSION) {
		*other_version = true;
		return NULL;
	}
	sum = h->sum;
	h->sum = 0;
	if (crc32c(0, h, sizeof(*h)) != sum || h->snap_len > (uint64_t)sb.st_size - sizeof(*h))
		return NULL;
	buf = malloc((size_t)sb.st_size);
	if (!buf || pread(fd, buf, (size_t)sb.st_size, 0) != (ssize_t)sb.st_size)
		goto fail;
	while (at + sizeof(struct entry_header) <= (size_t)sb.st_size) {
		struct entry_header eh;

		memcpy(&eh, buf + at, sizeof(eh));
		if (eh.len > (size_t)sb.st_size - at - sizeof(eh) ||
		    entry_sum(buf + at, sizeof(eh) + eh.len, h->gen) != eh.sum)
			break; /* a torn tail: what follows was never complete */
		if (*n == cap) {
			struct entry *w = realloc(v, (cap = MAX(cap * 2, 256)) * sizeof(*v));

			if (!w)
				goto fail;
			v = w;
		}
		v[(*n)++] = (struct entry){ eh.key, at + sizeof(eh), eh.len, eh.op, eh.type };
		at += sizeof(eh) + eh.len;
	}
	if (at < sizeof(*h) + h->snap_len)
		goto fail; /* the snapshot itself is torn */
	*out = v;
	return buf;
fail:
	free(v);
	free(buf);
	return NULL;
}

static int by_key_then_place(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

static int by_kind_then_key(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* Rebuild the tables from the entries of a slot: the last PUT of each key not deleted since. */
static void load_all(struct daemon *d, struct state *st, const uint8_t *buf, struct entry *v,
		     size_t n, struct fdstore_passed *p)
{
	struct state_field fields[MAX_FIELDS];
	size_t kept = 0;

	qsort(v, n, sizeof(*v), by_key_then_place);
	for (size_t i = 0; i < n; i++)
		if ((i + 1 == n || v[i + 1].key != v[i].key) && v[i].op == ENTRY_PUT)
			v[kept++] = v[i];
	qsort(v, kept, sizeof(*v), by_kind_then_key);
	for (size_t i = 0; i < kept; i++) {
		struct state_io io = { .in = fields };
		size_t f = v[i].at, end = v[i].at + v[i].len;

		while (f + sizeof(struct field_header) <= end && io.n_in < MAX_FIELDS) {
			struct field_header fh;

			memcpy(&fh, buf + f, sizeof(fh));
			f += sizeof(fh);
			if (f + fh.len > end)
				break;
			fields[io.n_in++] = (struct state_field){ fh.key, fh.len, buf + f };
			f += fh.len;
		}
		st->ops->load(d, (enum state_rec)v[i].type, &io, p);
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
	struct entry *entries[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 };
	bool other_version = false;
	uint8_t *slot[2];
	struct state *st;
	int cur, ret;

	if (!d->fdstore)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->ops = ops;
	list_init(&st->live);
	list_init(&st->dirty);
	st->fd[0] = fdstore_passed_take(passed, "st", 0);
	st->fd[1] = fdstore_passed_take(passed, "st", 1);
	slot[0] = slot_read(st->fd[0], &h[0], &entries[0], &n[0], &other_version);
	slot[1] = slot_read(st->fd[1], &h[1], &entries[1], &n[1], &other_version);
	cur = slot[1] && (!slot[0] || h[1].gen > h[0].gen) ? 1 : 0;
	if (slot[cur]) {
		d->restoring = true;
		load_all(d, st, slot[cur], entries[cur], n[cur], passed);
		d->restoring = false;
		st->gen = h[cur].gen;
		log_info("took over %u clients, %u spaces, %u objects from the previous daemon",
			 d->n_sessions, d->n_spaces, d->cache.n_objects);
	} else if (other_version) {
		log_error(
			"the saved tables are of another version than %u; clients of the previous "
			"daemon are lost",
			STATE_VERSION);
	} else if (st->fd[0] >= 0 || st->fd[1] >= 0) {
		log_error(
			"the saved tables cannot be read; clients of the previous daemon are lost");
	}
	for (unsigned i = 0; i < 2; i++) {
		free(slot[i]);
		free(entries[i]);
	}
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
	/* Every record anew, in the order of their kinds, as a snapshot in the other slot. */
	d->state = st;
	d->cache.state = st;
	d->save = state_flush;
	ops->mark_all(d);
	write_out(st, true);
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
	free(st->dels);
	free(st);
	d->state = NULL;
	d->cache.state = NULL;
	d->save = NULL;
}
