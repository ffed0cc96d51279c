// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The files behind the cache, changed by processes other than the daemon (write(2), ftruncate(2),
 * fallocate(2), copy_file_range(2), by anyone): the cache follows them. Two kernel interfaces:
 *
 * - inotify (no privilege, every file system): IN_MODIFY after any change of a file's data or
 *   size. The daemon then reads the file's status and the cache follows it (object_follow_file():
 *   new size, clean pages dropped). It comes after the change: live mappings follow within the
 *   time the loop takes to read it.
 * - the files' status, read once a second (fstat_cached()): a write through another process's
 *   own mmap(2) of the file sends no inotify event, but moves the file's times (at its first
 *   write to a clean page). Live mappings follow it within a second or two.
 * - fanotify pre-content events (FAN_PRE_ACCESS, Linux 6.14, CAP_SYS_ADMIN, file systems that
 *   allow them, such as ext4, xfs, btrfs): before another process's read(2), write(2), truncate
 *   or fallocate of a range goes ahead, which waits for the daemon's answer. The daemon first
 *   writes back the pages of the range that mappings may have written, so that a read(2) sees
 *   them and a write(2) is not overwritten later.
 *   The kernel decides whether a file generates them when it is opened: descriptors opened before
 *   the daemon marked the file never do (nor do the daemon's own, opened before it marks), and
 *   their accesses are followed through inotify only. The daemon's own accesses through a
 *   descriptor opened later (a writer that came with a later client) are allowed at once.
 *   Events are read by a thread of their own (fan_main()), which answers the daemon's own at
 *   once and passes the others to the loop: the loop's own read of a file can wait for an answer
 *   (a description opened while another fanotify group, another upagerd, had marked the file
 *   gets events; this daemon then marks it too, not knowing), and only another thread can give
 *   it. Read on the loop, the daemon waited for itself for ever.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/stat.h"
#include "common/macro.h"
#include "cache.h"
#include "log.h"
#include "object.h"
#include "watch.h"

/* Linux 6.14's, which older headers lack. */
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif

struct fan_range {
	struct fanotify_event_info_header hdr;
	uint32_t pad;
	uint64_t offset, count;
};

#define RETRY_MS 10
#define POLL_MS 1000

/* Another process's access, passed from the reader thread to the loop. */
struct fan_access {
	int fd;
	uint64_t off, len;
};

struct watch {
	struct cache *c;
	pid_t self;
	int ino_fd;
	uv_poll_t ino_poll;
	int fan_fd; /* -1: no pre-content events */
	int fan_efd; /* the reader thread passed accesses on (fan_queue) */
	int fan_stop; /* an eventfd that ends the reader thread */
	uv_poll_t fan_poll; /* of fan_efd */
	pthread_t fan_thread;
	pthread_mutex_t fan_lock;
	struct fan_access *fan_queue; /* under fan_lock */
	size_t fan_n, fan_cap;
	uv_timer_t retry; /* objects whose change could not be followed yet */
	uv_timer_t poll; /* every file's status, read again (POLL_MS) */
	bool retrying;
	uint64_t forgets; /* marks taken off files so far (watch_epoch()) */
	unsigned open_handles; /* freed when the last is closed */
};

/* A pre-content event that waits for write-backs before it is answered. */
struct pre_wait {
	struct wb_wait wb;
	struct watch *w;
	struct object *obj; /* a reference */
	int fd; /* the event's, closed with the answer */
};

static void answer(struct watch *w, int fd, bool allow)
{
	struct fanotify_response r = { .fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY };

	/* After watch_free() the kernel let every access waiting for the group go ahead. */
	if (w->fan_fd >= 0 && write(w->fan_fd, &r, sizeof(r)) < 0)
		log_limited(LOG_WARNING, "fanotify: answering an access: %m");
	close(fd);
}

static void on_retry(uv_timer_t *t);

/* Read the file's status again and follow it; later if the object is busy. */
static void follow(struct watch *w, struct object *o)
{
	struct stat st;
	int ret;

	o->watch_stale = false;
	if (o->fd_read < 0 || fstat_cached(o->fd_read, &st) < 0)
		return;
	ret = object_follow_file(o, &st);
	if (ret == -EBUSY) {
		o->watch_stale = true;
		if (!w->retrying) {
			w->retrying = true;
			uv_timer_start(&w->retry, on_retry, RETRY_MS, 0);
		}
	} else if (ret < 0) {
		log_limited(LOG_WARNING, "%s changed and the cache cannot follow: %s", o->path,
			    strerror(-ret));
	}
}

static void on_retry(uv_timer_t *t)
{
	struct watch *w = t->data;
	struct object *o;

	w->retrying = false;
	list_for_each_entry (o, &w->c->objects, link)
		if (o->watch_stale)
			follow(w, o);
}

static void read_inotify(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(w->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			struct object *o;

			p += sizeof(*ev) + ev->len;
			list_for_each_entry (o, &w->c->objects, link)
				if (o->kind == OBJECT_FILE && o->watch_wd == ev->wd)
					o->watch_stale = true;
		}
	}
}

/* Follow every object inotify named. */
static void follow_stale(struct watch *w)
{
	struct object *o, *tmp;

	list_for_each_entry_safe (o, tmp, &w->c->objects, link)
		if (o->watch_stale)
			follow(w, o);
}

/* Changes no event told of: another process's writes through its own mapping of the file. */
static void on_poll(uv_timer_t *t)
{
	struct watch *w = t->data;
	struct object *o, *tmp;

	list_for_each_entry_safe (o, tmp, &w->c->objects, link)
		if (o->kind == OBJECT_FILE && o->watch_wd >= 0)
			follow(w, o);
}

static void on_inotify(uv_poll_t *h, int status, int events)
{
	struct watch *w = h->data;

	(void)status;
	(void)events;
	read_inotify(w);
	follow_stale(w);
}

static void pre_done(struct wb_wait *wb)
{
	struct pre_wait *pw = container_of(wb, struct pre_wait, wb);

	answer(pw->w, pw->fd, true);
	object_unref(pw->obj);
	free(pw);
}

/* Another process is about to access [off, off+len) of the file @fd names. */
static void pre_access(struct watch *w, int fd, uint64_t off, uint64_t len)
{
	uint64_t first = off >> UPAGER_PAGE_SHIFT, count;
	struct pre_wait *pw;
	struct object *o;
	struct stat st;

	if (fstat_cached(fd, &st) < 0 || !(o = object_find_file(w->c, &st))) {
		answer(w, fd, true);
		return;
	}
	/* A file no mapping may have written: the kernel lets others' reads go ahead unheard until
	 * a page may be dirty again (watch_listen()). A write-back under way is not in the file. */
	if (!o->watch_quiet && object_wb_idle(o) && !object_maybe_dirty(o, 0, object_pages(o)) &&
	    fanotify_mark(w->fan_fd,
			  FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_PRE_ACCESS, fd, NULL) == 0)
		o->watch_quiet = true;
	count = len ? (ALIGN_UP(off + len, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT) - first
		    : object_pages(o);
	if (first >= object_pages(o) || !object_maybe_dirty(o, first, count) ||
	    !(pw = calloc(1, sizeof(*pw)))) {
		answer(w, fd, true);
		return;
	}
	count = MIN(count, object_pages(o) - first);
	*pw = (struct pre_wait){
		.wb = { .pending = 1, .done = pre_done }, .w = w, .obj = object_ref(o), .fd = fd
	};
	object_writeback(o, first, count, false, &pw->wb);
	wb_wait_put(&pw->wb, 0);
}

/* From the reader thread: pass @a on to the loop. Return: false if it could not. */
static bool fan_pass(struct watch *w, const struct fan_access *a)
{
	bool ok = true;

	pthread_mutex_lock(&w->fan_lock);
	if (w->fan_n == w->fan_cap) {
		size_t cap = w->fan_cap ? 2 * w->fan_cap : 64;
		struct fan_access *q = realloc(w->fan_queue, cap * sizeof(*q));

		if (q) {
			w->fan_queue = q;
			w->fan_cap = cap;
		}
	}
	if (w->fan_n < w->fan_cap)
		w->fan_queue[w->fan_n++] = *a;
	else
		ok = false;
	pthread_mutex_unlock(&w->fan_lock);
	if (ok)
		(void)!eventfd_write(w->fan_efd, 1);
	return ok;
}

/* The reader thread's turn: every event read; the daemon's own answered, the others passed on. */
static void read_fanotify(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	ssize_t n;

	while ((n = read(w->fan_fd, buf, sizeof(buf))) > 0) {
		struct fanotify_event_metadata *m = (void *)buf;

		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			struct fan_access a = { .fd = m->fd };

			if (m->fd < 0)
				continue;
			if (!(m->mask & FAN_PRE_ACCESS)) {
				close(m->fd);
				continue;
			}
			if (m->pid == w->self) {
				answer(w, m->fd, true);
				continue;
			}
			for (char *q = (char *)m + m->metadata_len; q < (char *)m + m->event_len;) {
				const struct fan_range *r = (const void *)q;

				if (r->hdr.len == 0)
					break;
				if (r->hdr.info_type == FAN_EVENT_INFO_TYPE_RANGE) {
					a.off = r->offset;
					a.len = r->count;
				}
				q += r->hdr.len;
			}
			/* No room to pass it on: the access goes ahead unheard, as without fanotify. */
			if (!fan_pass(w, &a))
				answer(w, m->fd, true);
		}
	}
}

static void *fan_main(void *arg)
{
	struct watch *w = arg;
	struct pollfd p[2] = { { .fd = w->fan_fd, .events = POLLIN },
			       { .fd = w->fan_stop, .events = POLLIN } };

	while (!(p[1].revents & POLLIN)) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN)
			read_fanotify(w);
	}
	return NULL;
}

/* The loop's turn: the accesses the reader thread passed on. */
static void on_fanotify(uv_poll_t *h, int status, int events)
{
	struct watch *w = h->data;
	struct fan_access *q;
	eventfd_t v;
	size_t n;

	(void)status;
	(void)events;
	(void)!eventfd_read(w->fan_efd, &v);
	pthread_mutex_lock(&w->fan_lock);
	q = w->fan_queue;
	n = w->fan_n;
	w->fan_queue = NULL;
	w->fan_n = w->fan_cap = 0;
	pthread_mutex_unlock(&w->fan_lock);
	for (size_t i = 0; i < n; i++)
		pre_access(w, q[i].fd, q[i].off, q[i].len);
	free(q);
}

/* The reader thread, its eventfds and lock; false (and fanotify given up) if it did not start. */
static bool fan_start(struct watch *w)
{
	sigset_t all, old;
	int ret;

	w->fan_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->fan_stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fan_efd < 0 || w->fan_stop < 0)
		goto fail;
	pthread_mutex_init(&w->fan_lock, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&w->fan_thread, NULL, fan_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == 0)
		return true;
	pthread_mutex_destroy(&w->fan_lock);
fail:
	if (w->fan_efd >= 0)
		close(w->fan_efd);
	if (w->fan_stop >= 0)
		close(w->fan_stop);
	close(w->fan_fd);
	w->fan_fd = -1;
	return false;
}

/**
 * watch_new() - start following files: inotify always, fanotify's pre-content events where the
 * kernel and the daemon's privileges allow them
 * @loop: the event loop
 * @c: the cache whose objects it follows
 * @out: the watch
 *
 * Return: 0 or a negative errno (no inotify).
 */
int watch_new(uv_loop_t *loop, struct cache *c, struct watch **out)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->c = c;
	w->self = getpid();
	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ino_fd < 0) {
		int ret = neg_errno();

		free(w);
		return ret;
	}
	uv_poll_init(loop, &w->ino_poll, w->ino_fd);
	w->ino_poll.data = w;
	uv_poll_start(&w->ino_poll, UV_READABLE, on_inotify);
	uv_timer_init(loop, &w->retry);
	w->retry.data = w;
	uv_timer_init(loop, &w->poll);
	w->poll.data = w;
	uv_timer_start(&w->poll, on_poll, POLL_MS, POLL_MS);
	uv_unref((uv_handle_t *)&w->poll);
	w->fan_fd = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
				  O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (w->fan_fd < 0) {
		/* Without CAP_SYS_ADMIN at start, in a container whose filter refuses fanotify,
		 * or before Linux 6.14: inotify alone. */
		log_debug("no fanotify pre-content events: read(2) and write(2) of mapped files "
			  "by other processes are followed after they return");
	} else if (fan_start(w)) {
		uv_poll_init(loop, &w->fan_poll, w->fan_efd);
		w->fan_poll.data = w;
		uv_poll_start(&w->fan_poll, UV_READABLE, on_fanotify);
	}
	*out = w;
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct watch *w = h->data;

	if (--w->open_handles == 0)
		free(w);
}

/** watch_free() - stop following files; what waits for an answer goes ahead */
void watch_free(struct watch *w)
{
	if (!w)
		return;
	close(w->ino_fd);
	w->open_handles = w->fan_fd >= 0 ? 4 : 3;
	uv_close((uv_handle_t *)&w->ino_poll, on_closed);
	uv_close((uv_handle_t *)&w->retry, on_closed);
	uv_close((uv_handle_t *)&w->poll, on_closed);
	if (w->fan_fd >= 0) {
		uv_close((uv_handle_t *)&w->fan_poll, on_closed);
		(void)!eventfd_write(w->fan_stop, 1);
		pthread_join(w->fan_thread, NULL);
		/* What the loop did not take goes ahead (as all waiting does once the group ends). */
		for (size_t i = 0; i < w->fan_n; i++)
			close(w->fan_queue[i].fd);
		free(w->fan_queue);
		pthread_mutex_destroy(&w->fan_lock);
		close(w->fan_efd);
		close(w->fan_stop);
		close(w->fan_fd);
		w->fan_fd = -1;
	}
}

/**
 * watch_object() - follow the file of @o (once; nothing for shared anonymous memory)
 * @w: the watch
 * @o: the object, whose descriptors are open already
 * @pre_content: whether the object's reader was opened while no mark was on the file. The kernel
 *	gives a description opened while the file is marked pre-content events, and the daemon's
 *	loop would then wait for its own answer to its own reads: such an object is followed
 *	through inotify alone.
 */
void watch_object(struct watch *w, struct object *o, bool pre_content)
{
	char path[64];

	if (!w || o->kind != OBJECT_FILE || o->watch_wd >= 0 || o->fd_read < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", o->fd_read);
	o->watch_wd = inotify_add_watch(w->ino_fd, path, IN_MODIFY);
	if (o->watch_wd < 0)
		log_limited(LOG_WARNING, "%s: inotify: %m; changes by others are not followed",
			    o->path);
	if (w->fan_fd >= 0 && pre_content &&
	    fanotify_mark(w->fan_fd, FAN_MARK_ADD, FAN_PRE_ACCESS, o->fd_read, NULL) < 0)
		log_limited(LOG_DEBUG, "%s: no pre-content events on its file system", o->path);
}

/**
 * watch_listen() - others' reads of the file of @o wait for the daemon again: a page of it may
 * become dirty (object_may_dirty())
 * @w: the watch, or NULL
 * @o: the object, whose watch_quiet was set
 */
void watch_listen(struct watch *w, struct object *o)
{
	if (w && w->fan_fd >= 0 && o->fd_read >= 0 &&
	    fanotify_mark(w->fan_fd, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, FAN_PRE_ACCESS,
			  o->fd_read, NULL) < 0)
		log_limited(LOG_WARNING,
			    "%s: fanotify: %m; others' reads may miss mappings' writes", o->path);
}

/** watch_forget() - stop following the file of @o, which goes */
void watch_forget(struct watch *w, struct object *o)
{
	if (!w || o->watch_wd < 0)
		return;
	if (o->watch_quiet)
		object_may_dirty(o);
	inotify_rm_watch(w->ino_fd, o->watch_wd);
	o->watch_wd = -1;
	if (w->fan_fd >= 0 && o->fd_read >= 0 &&
	    fanotify_mark(w->fan_fd, FAN_MARK_REMOVE, FAN_PRE_ACCESS, o->fd_read, NULL) == 0)
		w->forgets++;
}

/**
 * watch_epoch() - how many pre-content marks were taken off files so far: a description opened
 * (in a worker) while the epoch moves may have been opened while its file was marked
 * @w: the watch, or NULL
 */
uint64_t watch_epoch(const struct watch *w)
{
	return w ? w->forgets : 0;
}

/**
 * watch_sync() - follow every change queued by now (an msync with MS_INVALIDATE): a change
 * whose call returned before this one is in the cache when it returns
 * @w: the watch
 */
void watch_sync(struct watch *w)
{
	if (!w)
		return;
	read_inotify(w);
	follow_stale(w);
}
