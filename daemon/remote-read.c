// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A page-out reads the client's pages with process_vm_readv() after it saw them in the client's
 * page tables (pagemap). Between the two calls the client may move them with
 * mremap(MREMAP_DONTUNMAP): the old range stays, empty and registered, and the read's touch of it
 * is a fault on the client's userfaultfd, which only the daemon's loop serves, the very thread
 * that waits in the read; and the client waits in mremap() until that loop reads the move's event.
 * Neither would go on.
 *
 * So a watcher thread looks at a read that has lasted WATCH_NS: when the reading thread waits
 * in handle_userfault (its wchan), it reads the client's userfaultfd itself, one message at a
 * time. The kernel hands out page faults before events, and the read's fault is pending: so the
 * watcher meets only faults until it meets that one. Another thread's fault it wakes (the thread
 * faults again, and the loop reads that fault later); the read's own (its thread id is the
 * loop's) it answers with the zero page, what the client's emptied range shows anyway for
 * anonymous memory, once the move's event is read (the kernel fails the answer until then):
 * uffdio_drain() reads it into the space's queue, where the loop dispatches it after the read, as
 * it does with what an ioctl that met an event drained (the loop's thread waits in the read all
 * that time, so the queue is the watcher's alone). The read then ends, and its result is not taken for the pages'
 * data (*raced): the page-out does not go on. In a private mapping of a file the zero page then
 * stands in the old range where the file's page would (a known limit of this rare case).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "latency.h"
#include "log.h"
#include "mm.h"
#include "common/uffd.h"
#include "remote-read.h"
#include "uffdio.h"

#define WATCH_NS (50 * 1000 * 1000ULL) /* a read lasting this long is looked at */

static struct {
	pthread_mutex_t lock;
	pthread_once_t once;
	bool armed; /* a read is under way */
	bool raced;
	int uffd;
	pid_t tid; /* of the thread that reads */
	uint64_t since;
} watch = { .lock = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT };

/* Whether thread @tid of this process waits for a client's userfaultfd. */
static bool in_userfault(pid_t tid)
{
	char path[64], wchan[64] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, wchan, sizeof(wchan) - 1);
	close(fd);
	return n > 0 && strncmp(wchan, "handle_userfault", 16) == 0;
}

/* Wake the thread of the fault at @addr, answered with the zero page first if @zero: past a
 * move's event that the client is yet to see read (mmap_changing), within a second. */
static void answer(int uffd, uint64_t addr, bool zero)
{
	uint64_t page = addr & ~(uint64_t)(UPAGER_PAGE_SIZE - 1);
	uint64_t deadline = now_ns() + 1000 * 1000 * 1000ULL;
	struct uffdio_range r = { page, UPAGER_PAGE_SIZE };

	while (zero) {
		struct uffdio_zeropage z = { .range = r };

		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0 || errno != EAGAIN || now_ns() > deadline)
			break;
		/* The move's event: read into the space's queue, for the loop to dispatch in
		 * order once the read is over (the loop's thread waits in it meanwhile). */
		uffdio_drain(uffd);
		nanosleep(&(struct timespec){ 0, 100 * 1000 }, NULL);
	}
	(void)ioctl(uffd, UFFDIO_WAKE, &r);
}

/* Read the client's faults up to the reader's own, and answer them. Return: whether it met the
 * reader's own. */
static bool rescue(void)
{
	struct uffd_msg m;

	if (!in_userfault(watch.tid))
		return false;
	while (read(watch.uffd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		bool own = (pid_t)m.arg.pagefault.feat.ptid == watch.tid;

		if (m.event != UFFD_EVENT_PAGEFAULT) {
			log_error("a userfaultfd event read by the watcher of reads is lost");
			break;
		}
		answer(watch.uffd, m.arg.pagefault.address, own);
		if (own) {
			watch.raced = true;
			return true;
		}
	}
	return false;
}

/* Once the read met a move, each of its pages in the old range faults in turn: the watcher
 * looks again at once (RESCUE_NS) while the read lasts. */
#define RESCUE_NS (100 * 1000ULL)

static void *watcher(void *arg)
{
	uint64_t wait = WATCH_NS / 2;

	(void)arg;
	for (;;) {
		nanosleep(&(struct timespec){ 0, (long)wait }, NULL);
		wait = WATCH_NS / 2;
		pthread_mutex_lock(&watch.lock);
		if (watch.armed && (watch.raced || now_ns() - watch.since > WATCH_NS)) {
			if (rescue() || watch.raced)
				wait = RESCUE_NS;
			watch.since = now_ns();
		}
		pthread_mutex_unlock(&watch.lock);
	}
	return NULL;
}

static void start(void)
{
	pthread_attr_t a;
	pthread_t t;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 * 1024);
	if (pthread_create(&t, &a, watcher, NULL) != 0)
		log_warning(
			"no watcher of reads of clients' memory: a move during one may block it");
	pthread_attr_destroy(&a);
}

#ifdef UPAGER_FAULT_INJECTION
/* Tests only: $UPAGER_SLOW_REMOTE_READ=US makes each read wait US microseconds before it starts,
 * so that a client's move can land between the page-out's look at its pages and the read. */
static void slow_down(void)
{
	const char *v = getenv("UPAGER_SLOW_REMOTE_READ");
	unsigned long us = v ? strtoul(v, NULL, 10) : 0;

	if (us)
		nanosleep(&(struct timespec){ (time_t)(us / 1000000), (long)(us % 1000000) * 1000 },
			  NULL);
}
#else
static void slow_down(void)
{
}
#endif

/**
 * remote_read() - process_vm_readv() of @remote (@n pieces) of @m's process into @local, whose
 * fault on the client's userfaultfd @uffd the watcher answers
 * @m: the process: its pid, and the mark of its memory (mm.c), read in the same call
 * @raced: set when it did: then the bytes read are not the client's data
 *
 * Return: the bytes read, or a negative errno (-ESRCH: no pid known, or the memory read was not
 * the one marked: another process's).
 */
int remote_read(const struct mm_mark *m, int uffd, const struct iovec *local,
		const struct iovec *remote, unsigned n, bool *raced)
{
	uint64_t mark[UPAGER_PAGE_SIZE / 8];
	struct iovec lv[2] = { { mark, sizeof(mark) }, *local };
	struct iovec rv[REMOTE_READ_MAX + 1];
	ssize_t got;
	int err;

	if (m->pid <= 0 || n > REMOTE_READ_MAX)
		return m->pid <= 0 ? -ESRCH : -EINVAL;
	/* A file the client mapped over its token page since would make the call below wait on its
	 * file system: read it first with a bound (mm_mark_seen()). */
	if (!mm_mark_seen(m, m->pid))
		return -ESRCH;
	/* The token page first: one call reads one mm, whatever the pid names meanwhile. */
	rv[0] = (struct iovec){ (void *)(uintptr_t)m->token, UPAGER_PAGE_SIZE };
	memcpy(rv + 1, remote, n * sizeof(*remote));

	pthread_once(&watch.once, start);
	pthread_mutex_lock(&watch.lock);
	watch.armed = true;
	watch.raced = false;
	watch.uffd = uffd;
	watch.tid = gettid();
	watch.since = now_ns();
	pthread_mutex_unlock(&watch.lock);
	slow_down();
	got = process_vm_readv(m->pid, lv, 2, rv, n + 1, 0);
	err = errno;
	pthread_mutex_lock(&watch.lock);
	watch.armed = false;
	*raced = watch.raced;
	pthread_mutex_unlock(&watch.lock);
	if (got < 0)
		return -err;
	if (got < (ssize_t)sizeof(mark) || !mm_mark_check(m, mark))
		return -ESRCH;
	got -= (ssize_t)sizeof(mark);
	/* As process_vm_readv(2): nothing read of what was asked is an error. */
	return got == 0 && n > 0 && remote[0].iov_len > 0 ? -EFAULT : (int)got;
}
