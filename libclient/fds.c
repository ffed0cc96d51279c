// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The library's descriptors (its connection, the userfaultfd, the control socket, memfds, the
 * duplicates of mapped files it keeps) live at high numbers. A program expects the numbers it
 * did not take to be free: open(2) gives the lowest free one, so a process started with its
 * standard input closed finds fstat(0) failing with EBADF, and one that closes 0 and opens
 * /dev/null gets 0; a descriptor of the library taken at 0, or at the next low number, would
 * break both. So each is moved up to FDS_FLOOR, or where the soft RLIMIT_NOFILE is below twice
 * that (a program that keeps its table small and may fill it) to the lowest free number from 3;
 * it never stays at 0, 1 or 2 while a number at 3 or more is free.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

#define FDS_FLOOR 512

/* Where the library's descriptors start: past the standard three only, in a small table. */
static int floor_fd(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= 2 * FDS_FLOOR)
		return FDS_FLOOR;
	return 3;
}

/**
 * upager__fd_dup() - a duplicate of @fd (close-on-exec) for the library to keep
 *
 * Return: the new descriptor at a high number (at 3 or more if none is free there), or -1.
 */
int upager__fd_dup(int fd)
{
	int high;

	if (fd < 0)
		return -1;
	high = fcntl(fd, F_DUPFD_CLOEXEC, floor_fd());
	return high >= 0 ? high : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/**
 * upager__fd_park() - move the library's own @fd to a high number
 *
 * Return: the descriptor the library keeps: the moved one (@fd is closed), or @fd itself if it is
 * high already, negative, or cannot move.
 */
int upager__fd_park(int fd)
{
	int high;

	if (fd < 0 || fd >= floor_fd())
		return fd;
	high = upager__fd_dup(fd);
	if (high < 0)
		return fd;
	close(fd);
	return high;
}

/*
 * The library's duplicates of mapped files. Closing any descriptor of a file drops every POSIX
 * (fcntl) record lock the process holds on it: a duplicate closed when a mapping went (munmap,
 * or mremap, which maps anew) took the locks of a program that maps its file (SQLite grows its
 * mapping with mremap(), and two processes then wrote at once). So one duplicate per file and
 * access mode is kept, shared by whoever needs it (upager__fd_keep()). Once no one needs it, it
 * is closed at once if the process holds no POSIX lock on the file (/proc/locks), as a mapping
 * of the kernel's lets go of its file when it goes (a file system unmounts then); else it stays
 * open (idle) until the program itself closes a descriptor of that file, which drops the locks
 * anyway (upager__fd_file_closed(), from the preload's close()), or more than kept_idle_max()
 * are idle (the oldest is closed: a program that holds locks on each of so many files it no longer
 * maps may lose those of the oldest), or the program execs (close-on-exec).
 */
#define KEPT_IDLE_MAX 256

/* At most 256 idle, and an eighth of the descriptors the process may have. */
static size_t kept_idle_max(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return KEPT_IDLE_MAX;
	return rl.rlim_cur / 8 < KEPT_IDLE_MAX ? (size_t)rl.rlim_cur / 8 : KEPT_IDLE_MAX;
}

struct kept {
	dev_t dev;
	ino_t ino;
	int acc; /* O_RDONLY, O_WRONLY or O_RDWR */
	int fd;
	unsigned refs;
	uint64_t idle_since; /* an order among the idle, for the oldest */
};

static struct {
	pthread_mutex_t lock;
	struct kept *v;
	size_t n, cap, idle;
	uint64_t clock;
} kept = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * fork() while another thread holds the table's lock: the child's copy stays locked for ever, and
 * the child's fork handler (resume.c's forget_all(), which gives back the records' descriptors)
 * waits on it. So fork() waits for the lock, and the child gets a fresh one
 * (upager__fd_forked(): its own child handler, and conn.c's, which gives descriptors back).
 * Registered before any other handler of the library or the preload, so that fork() takes the
 * table's lock last (prepare handlers run in the reverse order): their locks are taken before it,
 * never after, as a thread that forgets a range does.
 */
static void kept_prepare(void)
{
	pthread_mutex_lock(&kept.lock);
}

static void kept_parent(void)
{
	pthread_mutex_unlock(&kept.lock);
}

__attribute__((constructor(101))) static void kept_init(void)
{
	pthread_atfork(kept_prepare, kept_parent, upager__fd_forked);
}

/** upager__fd_forked() - in a forked child: the table's lock, held across fork(), is free */
void upager__fd_forked(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	kept.lock = fresh;
}

/* Under the table's lock: by the system call, not through a close() that a preload wraps (which
 * comes back here). */
static void kept_close_at(size_t i)
{
	syscall(SYS_close, kept.v[i].fd);
	kept.v[i] = kept.v[--kept.n];
	kept.idle--;
}

/* Whether this process holds a POSIX (fcntl) record lock on the file @dev, @ino (/proc/locks);
 * if that cannot be read, it is taken to. */
static bool holds_posix_lock(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	unsigned long long lino;
	unsigned maj, min;
	char line[256], kind[16];
	bool held = false;
	int pid;

	if (!f)
		return true;
	while (!held && fgets(line, sizeof(line), f))
		held = sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", kind, &pid, &maj, &min,
			      &lino) == 5 &&
		       strcmp(kind, "POSIX") == 0 && pid == getpid() && makedev(maj, min) == dev &&
		       lino == (unsigned long long)ino;
	fclose(f);
	return held;
}

/**
 * upager__fd_keep() - a descriptor of @fd's file, with its access mode, for the library to keep
 * (close-on-exec, at a high number); give it back with upager__fd_unkeep(), never close() it
 *
 * Return: the descriptor, or -1 with errno set.
 */
int upager__fd_keep(int fd)
{
	int acc = fcntl(fd, F_GETFL), ret = -1;
	struct stat st;

	if (acc < 0 || fstat(fd, &st) < 0)
		return -1;
	acc &= O_ACCMODE;
	pthread_mutex_lock(&kept.lock);
	for (size_t i = 0; i < kept.n; i++) {
		struct kept *k = &kept.v[i];

		if (k->dev == st.st_dev && k->ino == st.st_ino && k->acc == acc) {
			kept.idle -= k->refs == 0;
			k->refs++;
			ret = k->fd;
			goto out;
		}
	}
	if (kept.n == kept.cap) {
		size_t cap = kept.cap ? 2 * kept.cap : 16;
		struct kept *v = realloc(kept.v, cap * sizeof(*v));

		if (!v) {
			errno = ENOMEM;
			goto out;
		}
		kept.v = v;
		kept.cap = cap;
	}
	ret = upager__fd_dup(fd);
	if (ret >= 0)
		kept.v[kept.n++] = (struct kept){ st.st_dev, st.st_ino, acc, ret, 1, 0 };
out:
	pthread_mutex_unlock(&kept.lock);
	return ret;
}

/** upager__fd_unkeep() - give back a descriptor of upager__fd_keep(); -1 is ignored */
void upager__fd_unkeep(int kfd)
{
	if (kfd < 0)
		return;
	pthread_mutex_lock(&kept.lock);
	for (size_t i = 0; i < kept.n; i++) {
		struct kept *k = &kept.v[i];

		if (k->fd != kfd || k->refs == 0)
			continue;
		if (--k->refs == 0) {
			k->idle_since = ++kept.clock;
			kept.idle++;
			if (!holds_posix_lock(k->dev, k->ino))
				kept_close_at(i);
		}
		break;
	}
	for (size_t most = kept_idle_max(); kept.idle > most;) {
		size_t oldest = kept.n;

		for (size_t i = 0; i < kept.n; i++)
			if (kept.v[i].refs == 0 &&
			    (oldest == kept.n || kept.v[i].idle_since < kept.v[oldest].idle_since))
				oldest = i;
		kept_close_at(oldest);
	}
	pthread_mutex_unlock(&kept.lock);
}

/**
 * upager__fd_file_closed() - the program closed a descriptor of the file @dev, @ino: its locks on
 * it are gone, and the idle duplicates of it may go too
 */
void upager__fd_file_closed(dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&kept.lock);
	for (size_t i = 0; i < kept.n;) {
		if (kept.v[i].refs == 0 && kept.v[i].dev == dev && kept.v[i].ino == ino)
			kept_close_at(i);
		else
			i++;
	}
	pthread_mutex_unlock(&kept.lock);
}
