// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Per-user limits. upagerd serves every user of the machine from one process, so each user may
 * hold only so much of it: connections, caches (objects, each of which costs the daemon
 * descriptors), mappings and bytes mapped. The figures are counted when a request would add to
 * them, from the daemon's own tables, so they can never drift from what the user holds. A request
 * over a limit fails with the errno mmap(2) gives for the like: ENOMEM for mappings and bytes,
 * ENFILE for caches; a connection over the limit is closed at once.
 */
#include <errno.h>

#include "common/macro.h"
#include "context.h"
#include "limits.h"
#include "object.h"
#include "space.h"
#include "view.h"

static const struct user_limits *limits_of(struct daemon *d, uid_t uid)
{
	static const struct user_limits none;

	return uid == 0 ? &none : &d->config.limits;
}

/**
 * limits_connection() - whether user @uid, which has @have connections, may have one more
 * Return: 0, or -EMFILE if it has as many as it may.
 */
int limits_connection(struct daemon *d, uid_t uid, unsigned have)
{
	unsigned max = limits_of(d, uid)->connections;

	return !max || have < max ? 0 : -EMFILE;
}

/**
 * limits_process() - whether user @uid may have one more process served (a space: a client, or
 * a forked child of one, each a userfaultfd the daemon holds)
 * Return: 0, or -EMFILE if it has as many as it may.
 */
int limits_process(struct daemon *d, uid_t uid)
{
	unsigned max = limits_of(d, uid)->processes, n = 0;
	struct space *s;

	if (!max)
		return 0;
	list_for_each_entry (s, &d->spaces, link)
		n += s->uid == uid && !s->dead;
	return n < max ? 0 : -EMFILE;
}

/* The caches charged to user @uid; their sizes added to *@bytes. */
static unsigned objects_of(struct daemon *d, uid_t uid, uint64_t *bytes)
{
	struct object *o;
	unsigned n = 0;

	list_for_each_entry (o, &d->cache.objects, link) {
		if (o->owner != uid)
			continue;
		n++;
		*bytes += o->size;
	}
	return n;
}

/**
 * limits_object() - whether user @uid may have the daemon make one more cache, of a file or shared
 * anonymous memory of @size bytes
 *
 * The daemon maps each cache whole (and twice its size, for growth), and its tables follow the
 * size: a user's caches together may be as large as its mappings together may be (--max-mapped),
 * whatever little of them it maps. A sparse file of terabytes cost no disk and took the daemon's
 * address space from everyone.
 *
 * Return: 0, -ENFILE if it made as many as it may, or -ENOMEM if their sizes would pass its
 * bytes.
 */
int limits_object(struct daemon *d, uid_t uid, uint64_t size)
{
	const struct user_limits *l = limits_of(d, uid);
	uint64_t bytes = size;
	unsigned n;

	if (!l->objects && !l->mapped)
		return 0;
	n = objects_of(d, uid, &bytes);
	if (l->objects && n >= l->objects)
		return -ENFILE;
	return l->mapped && bytes > l->mapped ? -ENOMEM : 0;
}

/**
 * limits_view() - whether user @uid may have one more nonlinear view (the first remap of a
 * mapping, upager_remap_file_pages(3))
 *
 * A view costs the daemon three descriptors (its memfd, its table and its copies), as many as a
 * cache: the views of a user's processes count with its caches (--max-caches). Many views of one
 * file, counted nowhere, took every descriptor the daemon had, and every other user's next
 * mapping failed.
 *
 * Return: 0, or -ENOMEM if its caches and views are as many as its caches may be.
 */
int limits_view(struct daemon *d, uid_t uid)
{
	const struct user_limits *l = limits_of(d, uid);
	const struct region *r;
	uint64_t bytes = 0;
	struct space *s;
	unsigned n;

	if (!l->objects)
		return 0;
	n = objects_of(d, uid, &bytes);
	/* Each view once: in the space that hosts it (forks share their parent's). */
	list_for_each_entry (s, &d->spaces, link)
		if (s->uid == uid && !s->dead)
			region_for_each(r, &s->regions) n += r->view && r->view->host.id == s->id;
	return n < l->objects ? 0 : -ENOMEM;
}

/* What user @uid's processes hold: their mappings, the bytes of those, and the chunks of their
 * private page tables (ptable.c). */
struct user_use {
	uint64_t n, bytes, chunks;
};

static struct user_use user_use(struct daemon *d, uid_t uid)
{
	struct user_use u = { 0 };
	struct space *s;

	list_for_each_entry (s, &d->spaces, link) {
		if (s->uid != uid || s->dead)
			continue;
		u.n += s->regions.n;
		u.bytes += s->regions.bytes;
		u.chunks += s->priv.table.n_chunks;
	}
	return u;
}

/**
 * limits_mapping() - whether user @uid may map @length bytes more, in one more mapping
 * Return: 0, or -ENOMEM if that would take it past its mappings or bytes.
 */
int limits_mapping(struct daemon *d, uid_t uid, uint64_t length)
{
	const struct user_limits *l = limits_of(d, uid);
	struct user_use u;

	if (!l->mappings && !l->mapped)
		return 0;
	u = user_use(d, uid);
	if ((l->mappings && u.n + 1 > l->mappings) || (l->mapped && u.bytes + length > l->mapped))
		return -ENOMEM;
	return 0;
}

/**
 * limits_fork() - whether user @uid may have a forked child with @count mappings, copies of its
 * parent's, and a private page table of @chunks chunks, the copy of its parent's: each mapping
 * costs the daemon a region, each chunk about 400 bytes. The child's bytes cost it nothing more
 * (the caches are the parent's), so a fork is not held to the user's bytes; but the chunks of all
 * its processes are held to two per 256 KiB of them (LIMITS_FORK_CHUNKS), as many as two dense
 * processes of that size have, or one that paged out a page in every chunk and forked once, and
 * never to fewer than LIMITS_FORK_CHUNKS_MIN (under 2 MiB of the daemon's memory).
 * Return: 0, or -ENOMEM if they would take it past its mappings or chunks.
 */
int limits_fork(struct daemon *d, uid_t uid, uint64_t count, uint64_t chunks)
{
	const struct user_limits *l = limits_of(d, uid);
	struct user_use u;

	if (!l->mappings && !l->mapped)
		return 0;
	u = user_use(d, uid);
	if (l->mappings && u.n + count > l->mappings)
		return -ENOMEM;
	if (l->mapped && chunks &&
	    u.chunks + chunks > MAX(LIMITS_FORK_CHUNKS * (l->mapped / PTABLE_CHUNK_BYTES),
				    (uint64_t)LIMITS_FORK_CHUNKS_MIN))
		return -ENOMEM;
	return 0;
}
