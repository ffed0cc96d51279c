// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Binding a space to the process whose memory it serves. A userfaultfd comes from a client, and
 * the daemon knows a pid (the socket's peer, or a forked child's faulting thread): nothing says
 * that the two are one process's, and the pid is what the daemon reads memory through
 * (process_vm_readv(), /proc/PID/pagemap, maps, smaps), with its CAP_SYS_PTRACE. A process that
 * connected and then exec()ed a set-user-ID program, or whose pid went to another process, or a
 * child in a pid namespace of its own, would have the daemon read someone else's memory for it.
 *
 * So the daemon marks the memory behind the userfaultfd: a page of bytes drawn from a random seed,
 * put into the client's token page (private anonymous, registered, never touched by the library)
 * with UFFDIO_COPY, which only that mm can receive. A pid is taken for the owner when its memory
 * shows the mark at the token's address (mm_mark_seen()), and every later use of the pid is checked
 * the same way after the fact: a process_vm_readv() of client pages reads the token page in the
 * same call (one mm for the whole call), and a /proc/PID file that holds the mm it was opened on
 * (pagemap, maps, smaps) is checked after it is opened (mm_open()): an mm, once replaced by
 * execve(), never comes back, so a pid that shows the mark after an open showed it at the open.
 * Nobody but the client itself can put the mark into another process's memory at that address.
 *
 * The read of the mark can wait: the client may have mapped any file over its token page since, a
 * FUSE file whose server never answers, and the read faults the page in. So it runs in a thread
 * of its own (bounded_pread()), and the loop waits for it MARK_WAIT_MS at most: then the mark
 * counts as not seen, the thread is left to its read, and the reads of the marks of that user's
 * processes fail at once for STALLED_NS (each wait would be the loop's again); of root's, that
 * process's only (root's are the system's, and root is no attacker of the daemon).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "log.h"
#include "mm.h"

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/** mm_mark_page() - the bytes of @m's mark, a page of them, into @page */
void mm_mark_page(const struct mm_mark *m, void *page)
{
	uint64_t s = m->seed[0], *w = page;

	for (size_t i = 0; i < UPAGER_PAGE_SIZE / 8; i++)
		w[i] = mix(&s) ^ m->seed[1];
}

/**
 * mm_mark_check() - whether @page holds @m's mark
 */
bool mm_mark_check(const struct mm_mark *m, const void *page)
{
	uint64_t want[UPAGER_PAGE_SIZE / 8];

	if (!m->seed[0] && !m->seed[1])
		return false;
	mm_mark_page(m, want);
	return memcmp(want, page, UPAGER_PAGE_SIZE) == 0;
}

/**
 * mm_mark_put() - draw a new mark for @m and put it into the token page of the mm behind @uffd
 * @m: the mark; its seed changes only if the page was put
 * @uffd: the userfaultfd, on which the token page is registered and not mapped
 * @wake: wake threads that wait on the token page
 *
 * Return: 0, or a negative errno (-EEXIST: the token page is mapped already).
 */
int mm_mark_put(struct mm_mark *m, int uffd, bool wake)
{
	uint64_t page[UPAGER_PAGE_SIZE / 8];
	struct mm_mark n = *m;
	struct uffdio_copy c = { .dst = m->token, .len = UPAGER_PAGE_SIZE, .src = (uintptr_t)page };

	if (!m->token)
		return -EINVAL;
	if (getrandom(n.seed, sizeof(n.seed), 0) != sizeof(n.seed))
		return -EIO;
	n.seed[0] |= 1; /* never 0, 0 */
	mm_mark_page(&n, page);
	c.mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE;
	if (ioctl(uffd, UFFDIO_COPY, &c) < 0)
		return c.copy < 0 ? (int)c.copy : neg_errno();
	m->seed[0] = n.seed[0];
	m->seed[1] = n.seed[1];
	return 0;
}

#define MARK_WAIT_MS 1000
#define STALLED_NS (10ULL * 1000 * 1000 * 1000)
#define STUCK_MAX 4 /* threads left in a read; past them, reads fail at once */
#define STALLED_USERS 16

/* A read handed to a reader thread; freed by whichever side is last. */
struct bounded_read {
	int fd; /* a duplicate, closed by the thread */
	off_t off;
	size_t len;
	ssize_t got;
	bool done, abandoned;
	uint8_t buf[UPAGER_PAGE_SIZE];
};

struct reader {
	struct bounded_read *r;
	bool quit; /* left in a read: it ends after it */
	pthread_cond_t wake;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct reader *current; /* the thread that takes the next read, or NULL */
	unsigned stuck;
	struct {
		uid_t uid;
		pid_t pid; /* root's: this process only */
		uint64_t until;
	} stalled[STALLED_USERS];
} rd = { .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static void *reader_main(void *arg)
{
	struct reader *w = arg;

	pthread_mutex_lock(&rd.lock);
	for (;;) {
		struct bounded_read *r;

		while (!w->r && !w->quit)
			pthread_cond_wait(&w->wake, &rd.lock);
		if (!w->r)
			break;
		r = w->r;
		pthread_mutex_unlock(&rd.lock);
		r->got = pread(r->fd, r->buf, r->len, r->off);
		close(r->fd);
		pthread_mutex_lock(&rd.lock);
		w->r = NULL;
		r->done = true;
		if (r->abandoned) {
			free(r);
			rd.stuck--;
		} else {
			pthread_cond_broadcast(&rd.done);
		}
		if (w->quit)
			break;
	}
	pthread_mutex_unlock(&rd.lock);
	pthread_cond_destroy(&w->wake);
	free(w);
	return NULL;
}

/* A reader thread for the next read (rd.lock held). Return: it, or NULL. */
static struct reader *reader_get(void)
{
	struct reader *w;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int ret;

	if (rd.current)
		return rd.current;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_cond_init(&w->wake, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&t, &attr, reader_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		pthread_cond_destroy(&w->wake);
		free(w);
		return NULL;
	}
	rd.current = w;
	return w;
}

static bool user_stalled(uid_t uid, pid_t pid, uint64_t now)
{
	for (size_t i = 0; i < STALLED_USERS; i++)
		if (rd.stalled[i].until > now && rd.stalled[i].uid == uid &&
		    (uid != 0 || rd.stalled[i].pid == pid))
			return true;
	return false;
}

static void user_stalls(uid_t uid, pid_t pid, uint64_t now)
{
	size_t k = 0;

	for (size_t i = 1; i < STALLED_USERS; i++)
		if (rd.stalled[i].until < rd.stalled[k].until)
			k = i;
	rd.stalled[k].uid = uid;
	rd.stalled[k].pid = pid;
	rd.stalled[k].until = now + STALLED_NS;
}

/*
 * pread(2) of @len bytes (a page at most) at @off of @fd into @buf, in a reader thread, waited for
 * @ms at most on behalf of user @uid's process @pid. Return: the bytes read, or a negative errno (-ETIMEDOUT:
 * the read still waits, and so would the next of that user's: they fail at once for a while).
 */
static ssize_t bounded_pread(int fd, void *buf, size_t len, off_t off, int ms, uid_t uid, pid_t pid)
{
	uint64_t now = mono_ns(), deadline_ns = now + (uint64_t)ms * 1000000ULL;
	struct timespec deadline;
	struct bounded_read *r;
	struct reader *w;
	ssize_t got;

	if (len > UPAGER_PAGE_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&rd.lock);
	if (user_stalled(uid, pid, now) || rd.stuck >= STUCK_MAX) {
		pthread_mutex_unlock(&rd.lock);
		return -ETIMEDOUT;
	}
	r = calloc(1, sizeof(*r));
	w = r ? reader_get() : NULL;
	if (!w || (r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		pthread_mutex_unlock(&rd.lock);
		free(r);
		return -ENOMEM;
	}
	r->off = off;
	r->len = len;
	w->r = r;
	pthread_cond_signal(&w->wake);
	deadline.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
	deadline.tv_nsec = (long)(deadline_ns % 1000000000ULL);
	while (!r->done)
		if (pthread_cond_clockwait(&rd.done, &rd.lock, CLOCK_MONOTONIC, &deadline) ==
			    ETIMEDOUT &&
		    !r->done)
			break;
	if (!r->done) {
		/* Left to its read: the thread ends after it, and frees it. */
		r->abandoned = true;
		w->quit = true;
		rd.current = NULL;
		rd.stuck++;
		user_stalls(uid, pid, mono_ns());
		pthread_mutex_unlock(&rd.lock);
		return -ETIMEDOUT;
	}
	got = r->got;
	if (got > 0)
		memcpy(buf, r->buf, (size_t)got);
	pthread_mutex_unlock(&rd.lock);
	free(r);
	return got;
}

/*
 * Whether process @pid's memory shows @m's mark at its token page now, read through /proc/PID/mem
 * in a reader thread the caller waits for a bound (bounded_pread(): the loop), or here (@wait:
 * a worker's thread, which may wait; bounded_pread() serves one caller at a time).
 */
static bool mark_seen(const struct mm_mark *m, pid_t pid, bool wait)
{
	uint64_t page[UPAGER_PAGE_SIZE / 8];
	char path[64];
	ssize_t got;
	int fd;

	if (pid <= 0 || !m->token)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	got = wait ? pread(fd, page, sizeof(page), (off_t)m->token)
		   : bounded_pread(fd, page, sizeof(page), (off_t)m->token, MARK_WAIT_MS, m->uid,
				   pid);
	close(fd);
	if (got == -ETIMEDOUT)
		log_limited(LOG_WARNING,
			    "the token page of pid %d (user %u) does not read: its mark counts as "
			    "not seen",
			    (int)pid, (unsigned)m->uid);
	return got == (ssize_t)sizeof(page) && mm_mark_check(m, page);
}

/**
 * mm_mark_seen() - whether process @pid's memory shows @m's mark at its token page now
 *
 * Read through /proc/PID/mem, whose reads never wait for a userfaultfd (the kernel's access to
 * another mm cannot retry a fault there, and a missing page registered with one fails the read):
 * a client may have mapped anything at the token's address, an upager mapping too, whose fault
 * only this thread would serve; process_vm_readv() waited in it, and the daemon with it. A file
 * mapped there can still make the read wait (its file system's): bounded_pread(), which serves
 * one thread, the loop.
 */
bool mm_mark_seen(const struct mm_mark *m, pid_t pid)
{
	return mark_seen(m, pid, false);
}

static int open_marked(const struct mm_mark *m, const char *name, bool wait)
{
	char path[64];
	int fd;

	if (m->pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)m->pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (!mark_seen(m, m->pid, wait)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

/**
 * mm_open() - open /proc/PID/@name of @m's process, a file that holds the mm it was opened on
 * (pagemap, maps, smaps), once the process shows the mark after the open; on the loop
 *
 * Return: the descriptor, or a negative errno (-ESRCH: no process known, or not the mm's).
 */
int mm_open(const struct mm_mark *m, const char *name)
{
	return open_marked(m, name, false);
}

/**
 * mm_open_waiting() - mm_open() in a worker's thread, which may wait for the read of the mark
 * (a file mapped over the token page whose file system does not answer)
 */
int mm_open_waiting(const struct mm_mark *m, const char *name)
{
	return open_marked(m, name, true);
}

/**
 * mm_present_pages() - how many of the @pages pages from @start are in the page tables of the
 * process whose pagemap is @pagemap (bit 63)
 *
 * Takes time in proportion to @pages (a page table walk, 8 bytes read a page): called from a
 * worker thread, not the loop. Return: the count; what cannot be read counts as not present.
 */
uint64_t mm_present_pages(int pagemap, uint64_t start, uint64_t pages)
{
	uint64_t buf[512], n = 0;

	for (uint64_t p = 0; p < pages;) {
		uint64_t want = MIN((uint64_t)ARRAY_SIZE(buf), pages - p);
		off_t off = (off_t)(((start >> UPAGER_PAGE_SHIFT) + p) * sizeof(uint64_t));
		ssize_t got = pread(pagemap, buf, want * sizeof(uint64_t), off);

		if (got <= 0)
			break;
		for (size_t i = 0; i < (size_t)got / sizeof(uint64_t); i++)
			n += buf[i] >> 63;
		p += (uint64_t)got / sizeof(uint64_t);
	}
	return n;
}
