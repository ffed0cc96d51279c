// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Descriptors that came from clients are closed here, in threads of their own, never on the loop.
 * The last close of a file runs its release, and a client chooses what that does: a TCP socket
 * with unsent data and SO_LINGER waits for its peer up to the time the client set (forever, near
 * INT_MAX), a socket holds other descriptors in its queue that are closed with it, a userfaultfd
 * takes its process's mmap lock, a FUSE file asks its server. A socket is first made to close at
 * once (SO_LINGER with no time: its unsent data is dropped, which is the client's); whatever
 * still waits holds one thread, and the next close starts another, up to MAX_THREADS, and up to
 * OWNER_THREADS for the descriptors of one user. Past them, closes queue until a thread is free;
 * a user with CLOSER_BACKLOG_MAX of them is read from no more until they are closed, so that its
 * descriptors cannot fill the daemon's table (docs/design.md, "Bad clients").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "closer.h"
#include "common/fdmsg.h"

#define MAX_THREADS 16
/* The threads one owner's closes may hold at once: a user whose closes wait (a FUSE file whose
 * server never answers its flush, sent at every close) holds these, not the pool. */
#define OWNER_THREADS 2

/* How many queued datagrams closer_drain() takes off a socket at most. */
#define DRAIN_MAX 4096

struct owner {
	uid_t uid;
	size_t queued, running;
};

struct pending {
	int fd;
	uid_t owner;
	bool drain; /* a socket whose queued datagrams go first (closer_drain()) */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pending *queue; /* in the order they came */
	size_t len, cap;
	struct owner *owners; /* those with closes queued or running */
	size_t n_owners, owners_cap;
	unsigned threads, idle;
	bool started;
} closer = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

/* The owner of this thread's closer_close() descriptors: the loop sets it, others' are root's. */
static __thread uid_t current_owner;

static void close_now(int fd)
{
	/* On a socket, a close that drops what was not sent; on anything else, ENOTSOCK. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1, .l_linger = 0 },
		   sizeof(struct linger));
	close(fd);
}

/* Under the lock: @uid's figures, made if @make; NULL if none (or no memory). */
static struct owner *owner_of(uid_t uid, bool make)
{
	for (size_t i = 0; i < closer.n_owners; i++)
		if (closer.owners[i].uid == uid)
			return &closer.owners[i];
	if (!make)
		return NULL;
	if (closer.n_owners == closer.owners_cap) {
		size_t cap = closer.owners_cap ? 2 * closer.owners_cap : 8;
		struct owner *v = realloc(closer.owners, cap * sizeof(*v));

		if (!v)
			return NULL;
		closer.owners = v;
		closer.owners_cap = cap;
	}
	closer.owners[closer.n_owners] = (struct owner){ .uid = uid };
	return &closer.owners[closer.n_owners++];
}

/* Under the lock: @o has nothing queued or running any more. */
static void owner_drop_if_idle(struct owner *o)
{
	if (o->queued || o->running)
		return;
	*o = closer.owners[--closer.n_owners];
}

/* Under the lock: the first queued close whose owner may hold one more thread, or -1. */
static long next_takeable(void)
{
	for (size_t i = 0; i < closer.len; i++) {
		struct owner *o = owner_of(closer.queue[i].owner, false);

		if (o && o->running < OWNER_THREADS)
			return (long)i;
	}
	return -1;
}

static void *closer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		long i = next_takeable();
		struct pending p;
		struct owner *o;

		if (i < 0) {
			closer.idle++;
			pthread_cond_wait(&closer.wake, &closer.lock);
			closer.idle--;
			continue;
		}
		p = closer.queue[i];
		memmove(closer.queue + i, closer.queue + i + 1,
			(closer.len - (size_t)i - 1) * sizeof(*closer.queue));
		closer.len--;
		o = owner_of(p.owner, false);
		o->queued--;
		o->running++;
		pthread_mutex_unlock(&closer.lock);
		/* What a drained socket held is closed here, one after the other: a close that
		 * waits holds this thread with what is left of its datagram (253 at most). */
		if (p.drain)
			fdmsg_drain(p.fd, DRAIN_MAX, close_now);
		close_now(p.fd);
		pthread_mutex_lock(&closer.lock);
		o = owner_of(p.owner, false);
		o->running--;
		owner_drop_if_idle(o);
		/* Closes of this owner that waited for its threads may go now. */
		pthread_cond_broadcast(&closer.wake);
	}
	return NULL;
}

/* Under the lock: a thread more, if none is idle and the pool has room. Return: 0 or -errno. */
static int grow_pool(void)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	if (closer.idle > 0 || closer.threads >= MAX_THREADS)
		return 0;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	ret = pthread_create(&t, &attr, closer_main, NULL);
	pthread_attr_destroy(&attr);
	if (ret)
		return -ret;
	closer.threads++;
	return 0;
}

/* Under the lock: room for one more in the queue. Return: 0 or -ENOMEM. */
static int make_room(void)
{
	size_t cap = closer.cap ? closer.cap * 2 : 64;
	struct pending *q;

	if (closer.len < closer.cap)
		return 0;
	q = realloc(closer.queue, cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	closer.queue = q;
	closer.cap = cap;
	return 0;
}

/**
 * closer_start() - close descriptors from now on in the closer's threads
 *
 * fdmsg's descriptors that nobody took go there too. Without it (unit tests of other modules),
 * closer_close() closes at once.
 *
 * Return: 0 or a negative errno.
 */
int closer_start(void)
{
	int ret;

	pthread_mutex_lock(&closer.lock);
	ret = grow_pool();
	if (ret == 0)
		closer.started = true;
	pthread_mutex_unlock(&closer.lock);
	if (ret == 0)
		fdmsg_set_closer(closer_close);
	return ret;
}

/**
 * closer_set_owner() - whose descriptors closer_close() closes from now on (the loop's: the user
 * whose message, connection or process the loop is dealing with; 0, root's, at the start)
 * Return: the owner before, to set again after.
 */
uid_t closer_set_owner(uid_t uid)
{
	uid_t before = current_owner;

	current_owner = uid;
	return before;
}

/* Queue @fd of @owner, to be drained first if @drain. Return: whether it was queued. */
static bool enqueue(int fd, uid_t owner, bool drain)
{
	struct owner *o;
	bool queued = false;

	pthread_mutex_lock(&closer.lock);
	if (closer.started && make_room() == 0 && (o = owner_of(owner, true))) {
		/* No thread more to be had: the queue waits for one that is. */
		grow_pool();
		closer.queue[closer.len++] = (struct pending){ fd, owner, drain };
		o->queued++;
		pthread_cond_broadcast(&closer.wake);
		queued = true;
	}
	pthread_mutex_unlock(&closer.lock);
	return queued;
}

/**
 * closer_close_owned() - close @fd, which a client of user @owner may have chosen, without waiting
 * for it; an owner's closes hold OWNER_THREADS threads at most, the others queue
 * @fd: a descriptor, owned from now on; negative: nothing
 */
void closer_close_owned(int fd, uid_t owner)
{
	if (fd >= 0 && !enqueue(fd, owner, false))
		close_now(fd);
}

/**
 * closer_close() - closer_close_owned() for the owner closer_set_owner() named
 * @fd: a descriptor, owned from now on; negative: nothing
 */
void closer_close(int fd)
{
	closer_close_owned(fd, current_owner);
}

/**
 * closer_backlog() - the closes of @owner's descriptors not over yet, queued or running: past
 * CLOSER_BACKLOG_MAX the daemon reads nothing more from that user until they are
 */
size_t closer_backlog(uid_t owner)
{
	struct owner *o;
	size_t n;

	pthread_mutex_lock(&closer.lock);
	o = owner_of(owner, false);
	n = o ? o->queued + o->running : 0;
	pthread_mutex_unlock(&closer.lock);
	return n;
}

/**
 * closer_drain() - end a client's socket: nothing more comes in, and what it holds queued (datagrams
 * and their descriptors, whose close the socket's own last close would run wherever that is: the
 * fd store's keeper holds it too) is taken off and closed in a closer's thread, as one of
 * closer_set_owner()'s owner's closes (taken off on the loop, a flood of them each closed with a
 * flush that a FUSE server never answered filled the daemon's table)
 * @sock: the daemon's end of a connection of a client's; stays open, the caller closes it
 */
void closer_drain(int sock)
{
	int dup;

	shutdown(sock, SHUT_RDWR);
	dup = fcntl(sock, F_DUPFD_CLOEXEC, 3);
	if (dup < 0 || !enqueue(dup, current_owner, true)) {
		fdmsg_drain(sock, DRAIN_MAX, NULL);
		if (dup >= 0)
			close(dup);
	}
}
