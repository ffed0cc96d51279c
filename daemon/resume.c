// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Caches handed back by clients of a daemon that died with no fd store (docs/design.md, "When the
 * daemon dies"). A client maps each object's memfd, so the memfd outlives the daemon with every
 * page the clients wrote and nobody wrote back; the client sends it again on RESUME, and the new
 * daemon takes it as the object's cache instead of making a new one.
 *
 * A memfd from a client is trusted for nothing it does not prove:
 *
 * - it is one a daemon made: a memfd (it has seals), owned by the daemon's user with mode 0600
 *   (so no other user made it or wrote it but through a descriptor a daemon handed out), sealed
 *   as memfd_new() seals an object's cache (so it cannot shrink under the daemon's mapping), and
 *   named after the very file it caches (object_file_name(): device, inode, and the birth time
 *   and generation that tell it from a file that took its inode number after it was deleted; a
 *   client keeps its own copy of a cache's descriptor as long as it likes);
 * - where the file system tells neither birth nor generation, a cache is taken back only from a
 *   client that may write the file (a reader could hand back the cache of a deleted file of its
 *   own as that of a file it may not write, which took the same inode);
 * - there is one cache per file: a memfd of a file whose object has another cache is refused;
 * - only a client that may write the file (an O_RDWR descriptor) makes the pages it finds in the
 *   memfd write-back candidates and takes the file's times as they are. A cache first handed back
 *   by a reader is adopted with unknown times, so a new mapping of the file through OBJECT_OPEN
 *   drops every page no writer has vouched for and reads it again: a reader that kept an old
 *   cache of the file does not get its stale pages written back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "context.h"
#include "fdstore.h"
#include "log.h"
#include "memfd.h"
#include "object.h"
#include "resume.h"

/* Whether @fd is a memfd a daemon made for @name ("upager:NAME"), sealed with @seals. */
static bool genuine_cache(int fd, const char *name, unsigned seals, struct stat *st)
{
	int have = fcntl(fd, F_GET_SEALS);
	char want[128], *target;
	bool same;

	if (have < 0 || ((unsigned)have & (seals | F_SEAL_SEAL)) != (seals | F_SEAL_SEAL))
		return false;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_uid != geteuid() ||
	    (st->st_mode & 07777) != 0600)
		return false;
	snprintf(want, sizeof(want), "/memfd:upager:%s (deleted)", name);
	target = fd_path(fd);
	same = target && strcmp(target, want) == 0;
	free(target);
	return same;
}

/* The object whose cache is the memfd of @st, or NULL. */
static struct object *find_by_cache(struct daemon *d, const struct stat *st)
{
	struct object *o;
	struct stat ost;

	list_for_each_entry (o, &d->cache.objects, link)
		if (fstat(o->memfd, &ost) == 0 && ost.st_dev == st->st_dev &&
		    ost.st_ino == st->st_ino)
			return o;
	return NULL;
}

/*
 * Every page in the cache is one the dead daemon filled, or a client wrote: ready, and for a
 * writer a write-back candidate. A page being filled now is left to its fill.
 */
static void mark_present(struct object *o, bool dirty)
{
	off_t end = (off_t)o->size, data = 0, hole;

	while (data < end && (data = lseek(o->memfd, data, SEEK_DATA)) >= 0 && data < end) {
		hole = lseek(o->memfd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		for (uint64_t p = (uint64_t)data >> UPAGER_PAGE_SHIFT;
		     p < ALIGN_UP((uint64_t)hole, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT; p++) {
			uint8_t st = o->pages[p] & PAGE_STATE_MASK;

			if (st == PAGE_FILLING)
				continue;
			object_page_set(o, p,
					(uint8_t)(PAGE_READY | (dirty ? PAGE_WRITABLE : 0) |
						  (st == PAGE_READY ? o->pages[p] : 0)));
		}
		data = hole;
	}
	object_mark(o);
}

/* A writer vouches for the cache: its pages are candidates, the file's times are taken as now. */
static int vouch(struct object *o, const struct file_access *fa)
{
	const struct stat *fst = &fa->st;

	if (o->fd_write < 0) {
		if (!fa->rw)
			return -EACCES;
		o->fd_write = fcntl(fa->reader, F_DUPFD_CLOEXEC, 3);
		if (o->fd_write < 0) {
			o->fd_write = -1;
			return neg_errno();
		}
		fdstore_add(cache_daemon(o->c), o->fd_write, "wr", o->id);
	}
	o->file_size = (uint64_t)fst->st_size;
	o->mtime = fst->st_mtim;
	o->ctime = fst->st_ctim;
	mark_present(o, true);
	return 0;
}

/* Take @memfd (the client's descriptor, borrowed) as the cache of a new object. */
static int adopt(struct daemon *d, enum object_kind kind, int memfd, const struct stat *mst,
		 const struct file_access *fa, struct object **out)
{
	const struct stat *fst = fa ? &fa->st : NULL;
	struct object saved = { .kind = kind };
	int cache, pages_fd, rd = -1;
	struct object *o;
	int ret;

	saved.size = ALIGN_DOWN((uint64_t)mst->st_size, UPAGER_PAGE_SIZE);
	if (kind == OBJECT_FILE) {
		saved.size = MIN(saved.size, ALIGN_UP((uint64_t)fst->st_size, UPAGER_PAGE_SIZE));
		saved.dev = fst->st_dev;
		saved.ino = fst->st_ino;
		saved.file_size = (uint64_t)fst->st_size;
		/* Times unknown until a writer vouches: see the top of this file. */
		saved.path = strdup(fa->path ? fa->path : "?");
		rd = fcntl(fa->reader, F_DUPFD_CLOEXEC, 3);
		if (rd < 0) {
			free(saved.path);
			return neg_errno();
		}
	} else {
		saved.path = strdup("anon");
	}
	saved.reserve = object_reserve_for(saved.size);
	saved.id = ++d->cache.next_object_id;
	state_mark_daemon(d);
	cache = fd_reopen(memfd, true);
	ret = memfd_new("upager:pages", saved.reserve >> UPAGER_PAGE_SHIFT, MEMFD_FIXED_SIZE,
			&pages_fd);
	if (ret < 0 || cache < 0) {
		free(saved.path);
		closep(&rd);
		if (cache >= 0)
			close(cache);
		return ret < 0 ? ret : cache;
	}
	ret = object_adopt(&d->cache, &saved, cache, pages_fd, rd, -1, &o);
	free(saved.path);
	if (ret < 0)
		return ret;
	fdstore_add(d, o->memfd, "ob", o->id);
	fdstore_add(d, o->pages_fd, "pg", o->id);
	if (o->fd_read >= 0)
		fdstore_add(d, o->fd_read, "rd", o->id);
	mark_present(o, false);
	log_info("%s: took back the cache of a client of the daemon before", o->path);
	*out = o;
	return 0;
}

/**
 * resume_object() - the object whose cache a client of a dead daemon hands back
 * @d: the daemon
 * @kind: OBJECT_FILE or OBJECT_ANON
 * @fa: what a worker found of the client's descriptor of the file (file_access_probe()), for
 *      OBJECT_FILE; NULL for OBJECT_ANON
 * @memfd: the memfd the client maps, borrowed
 * @writer: the client may write the file (@file_fd is O_RDWR)
 * @out: a new reference to the object
 *
 * The memfd is checked as the top of this file says, then found as the cache of an object, or
 * taken as the cache of a new one.
 *
 * Return: 0; -EBADF for a memfd no daemon made for this object; -EEXIST if the file has an object
 * with another cache; or another negative errno.
 */
int resume_object(struct daemon *d, enum object_kind kind, const struct file_access *fa, int memfd,
		  bool writer, struct object **out)
{
	struct stat mst, fst = { 0 };
	char name[OBJECT_FILE_NAME_MAX] = OBJECT_ANON_NAME;
	struct object *o;
	int ret;

	if (kind == OBJECT_FILE) {
		if (!fa || fa->err < 0 || fa->reader < 0)
			return fa && fa->err < 0 ? fa->err : -EBADF;
		fst = fa->st;
		if (!S_ISREG(fst.st_mode))
			return -EACCES;
		if (!fa->born_known && !writer)
			return -EBADF;
		object_file_name(name, sizeof(name), fa);
	}
	if (!genuine_cache(memfd, name,
			   kind == OBJECT_ANON ? MEMFD_FIXED_SIZE : (unsigned)F_SEAL_SHRINK, &mst))
		return -EBADF;
	o = find_by_cache(d, &mst);
	if (o) {
		object_ref(o);
	} else {
		list_for_each_entry (o, &d->cache.objects, link)
			if (kind == OBJECT_FILE && o->kind == OBJECT_FILE && o->dev == fst.st_dev &&
			    o->ino == fst.st_ino)
				return -EEXIST;
		ret = adopt(d, kind, memfd, &mst, kind == OBJECT_FILE ? fa : NULL, &o);
		if (ret < 0)
			return ret;
	}
	if (kind == OBJECT_FILE && writer) {
		ret = vouch(o, fa);
		if (ret < 0) {
			object_unref(o);
			return ret;
		}
	}
	*out = o;
	return 0;
}
