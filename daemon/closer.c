// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Descriptors that came from clients are closed here, in threads of their own, never on the loop.
 * The last close of a file runs its release, and a client chooses what that does: a TCP socket
 * with unsent data and SO_LINGER waits for its peer up to the time the client set (forever, near
 * INT_MAX), a socket holds other descriptors in its queue that are closed with it, a userfaultfd
 * takes its process's mmap lock, a FUSE file asks its server. A socket is first made to close at
 * once (SO_LINGER with no time: its unsent data is dropped, which is the client's); whatever
 * still waits holds one thread, and the next close starts another, up to MAX_THREADS. Past
 * them, closes queue until a thread is free (docs/design.md, "Bad clients").
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "closer.h"
#include "common/fdmsg.h"

#define MAX_THREADS 8

/* How many queued datagrams closer_drain() takes off a socket at most. */
#define DRAIN_MAX 4096

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int *queue; /* a ring of descriptors to close */
	size_t head, len, cap;
	unsigned threads, idle;
	bool started;
} closer = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static void close_now(int fd)
{
	/* On a socket, a close that drops what was not sent; on anything else, ENOTSOCK. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1, .l_linger = 0 },
		   sizeof(struct linger));
	close(fd);
}

static void *closer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		int fd;

		if (closer.len == 0) {
			closer.idle++;
			pthread_cond_wait(&closer.wake, &closer.lock);
			closer.idle--;
			continue;
		}
		fd = closer.queue[closer.head];
		closer.head = (closer.head + 1) % closer.cap;
		closer.len--;
		pthread_mutex_unlock(&closer.lock);
		close_now(fd);
		pthread_mutex_lock(&closer.lock);
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

/* Under the lock: room for one more in the ring. Return: 0 or -ENOMEM. */
static int make_room(void)
{
	size_t cap = closer.cap ? closer.cap * 2 : 64;
	int *q;

	if (closer.len < closer.cap)
		return 0;
	q = malloc(cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < closer.len; i++)
		q[i] = closer.queue[(closer.head + i) % closer.cap];
	free(closer.queue);
	closer.queue = q;
	closer.head = 0;
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
 * closer_close() - close @fd, which a client may have chosen, without waiting for it
 * @fd: a descriptor, owned from now on; negative: nothing
 */
void closer_close(int fd)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&closer.lock);
	if (closer.started && make_room() == 0) {
		/* No thread more to be had: the queue waits for one that is. */
		grow_pool();
		closer.queue[(closer.head + closer.len) % closer.cap] = fd;
		closer.len++;
		pthread_cond_signal(&closer.wake);
		fd = -1;
	}
	pthread_mutex_unlock(&closer.lock);
	if (fd >= 0)
		close_now(fd);
}

/**
 * closer_drain() - end a client's socket: nothing more comes in, and what it holds queued (datagrams
 * and their descriptors, whose close the socket's own would run on this thread) is taken off and
 * closed here
 * @sock: the daemon's end of a connection of a client's; stays open, the caller closes it
 */
void closer_drain(int sock)
{
	shutdown(sock, SHUT_RDWR);
	fdmsg_drain(sock, DRAIN_MAX);
}
