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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
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

/**
 * mm_mark_seen() - whether process @pid's memory shows @m's mark at its token page now
 *
 * Read through /proc/PID/mem, whose reads never wait for a userfaultfd (the kernel's access to
 * another mm cannot retry a fault there, and a missing page registered with one fails the read):
 * a client may have mapped anything at the token's address, an upager mapping too, whose fault
 * only this thread would serve; process_vm_readv() waited in it, and the daemon with it.
 */
bool mm_mark_seen(const struct mm_mark *m, pid_t pid)
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
	got = pread(fd, page, sizeof(page), (off_t)m->token);
	close(fd);
	return got == (ssize_t)sizeof(page) && mm_mark_check(m, page);
}

/**
 * mm_open() - open /proc/PID/@name of @m's process, a file that holds the mm it was opened on
 * (pagemap, maps, smaps), once the process shows the mark after the open
 *
 * Return: the descriptor, or a negative errno (-ESRCH: no process known, or not the mm's).
 */
int mm_open(const struct mm_mark *m, const char *name)
{
	char path[64];
	int fd;

	if (m->pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)m->pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (!mm_mark_seen(m, m->pid)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}
