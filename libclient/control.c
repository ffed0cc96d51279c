// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The control thread. Only a process can change its own address space, so a process that makes a
 * mapping the daemon may need to change (MAP_GROWSDOWN, which grows; private anonymous, whose pages
 * the daemon pages out) starts one thread that waits on a control socket and does what the daemon
 * asks: a growth (grow.c), or dropping pages that are in the daemon's swap store now (DROP).
 *
 * The thread blocks every signal, keeps no lock of the library, and touches no pager memory, so it
 * runs while any other thread of the process waits in a page fault. It ends the process when the
 * program's own threads have all ended (ending.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/page-set.h"
#include "common/uffd.h"
#include "internal.h"

/* The spare area: 4 parts, one per page-out the daemon may have under way. */
#define SPARE_BYTES (4 * UPAGER_DROP_MAX_PAGES * UPAGER_PAGE_SIZE)

static struct {
	pid_t pid; /* the process whose thread serves the channel; 0 if none */
	uintptr_t spare; /* the spare area, or 0 */
	int pagemap; /* this process's /proc/self/pagemap, from the daemon; -1 if none */
	pthread_once_t once; /* watch_forks() */
} control = { .pagemap = -1, .once = PTHREAD_ONCE_INIT };

/*
 * The thread's stack. Not from mmap(): a stack mapped when the first MAP_GROWSDOWN mapping is
 * made would be placed by the kernel in the first hole that fits, quite possibly the very room
 * left free below a MAP_GROWSDOWN mapping to grow into.
 */
static uint8_t control_stack[128 * 1024] __attribute__((aligned(4096)));

/*
 * The pages [addr, addr + pages) (pagemap entries @e; UPAGER_DROP_IN_PLACE) of a private mapping
 * of a file or shared memory, or of a private anonymous mapping made read-only, which UFFDIO_MOVE
 * refuses, are dropped in place: those that are this process's own (anonymous, bit 61 clear, and
 * mapped here only, bit 56), with MADV_DONTNEED. The file's page (or nothing) shows there again
 * for the kernel, and the daemon, told by *moved (bits from @rank on), reads the page back from its
 * swap store at the next touch.
 */
static void drop_in_place(const uint64_t *e, uint64_t addr, uint64_t pages, uint64_t rank,
			  uint64_t *moved)
{
	for (uint64_t i = 0; i < pages;) {
		uint64_t run = 0;

		while (i + run < pages && !(e[i + run] >> 61 & 1) && (e[i + run] >> 56 & 1))
			run++;
		if (run && madvise((void *)(uintptr_t)(addr + (i << UPAGER_PAGE_SHIFT)),
				   run << UPAGER_PAGE_SHIFT, MADV_DONTNEED) == 0)
			for (uint64_t k = rank + i; k < rank + i + run; k++)
				moved[k / 64] |= 1ULL << (k % 64);
		i += run ? run : 1;
	}
}

/*
 * DROP: of the pages of the message's set, those present and still write-protected by the daemon
 * (pagemap bit 57: no write since it read them) have their data in its swap store: they move,
 * packed in address order, to a part of the spare area (the set's k-th page to its k-th page),
 * which is then emptied with one madvise(); pages UFFDIO_MOVE refuses (UPAGER_DROP_IN_PLACE)
 * are dropped where they are (drop_in_place()). A page written meanwhile, or an address that holds another mapping
 * by now, is not write-protected and stays. *moved: a bit per page that moved, in the same order.
 */
static int drop(const struct upager_msg *m, uintptr_t spare, uint64_t *moved)
{
	static uint64_t entries[UPAGER_DROP_WINDOW_PAGES]; /* only this thread uses it */
	struct page_set ps = { .base = m->u.drop.addr, .n = m->u.drop.pages };
	uint64_t dst = m->u.drop.spare, n = m->u.drop.pages, span, bits = 0;
	uint64_t len = n << UPAGER_PAGE_SHIFT;
	struct page_set_run r = { 0 };
	int uffd = upager__uffd(), fd;
	ssize_t got;

	memcpy(ps.map, m->u.drop.map, sizeof(ps.map));
	for (size_t k = 0; k < ARRAY_SIZE(ps.map); k++)
		bits += (uint64_t)__builtin_popcountll(ps.map[k]);
	span = UPAGER_DROP_WINDOW_PAGES;
	while (span && !(ps.map[(span - 1) / 64] >> ((span - 1) % 64) & 1))
		span--;
	if (bits != n || !spare || dst < spare || len > SPARE_BYTES ||
	    dst - spare > SPARE_BYTES - len || !IS_ALIGNED(dst, UPAGER_PAGE_SIZE) ||
	    !IS_ALIGNED(ps.base, UPAGER_PAGE_SIZE) ||
	    ps.base + (span << UPAGER_PAGE_SHIFT) < ps.base)
		return -EINVAL;
	if (uffd < 0)
		return -EBADF;
	/* A process that changed its user ID without an execve(2) may not open its own. */
	fd = control.pagemap >= 0 ? control.pagemap
				  : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	got = pread(fd, entries, span * sizeof(entries[0]),
		    (off_t)(ps.base >> UPAGER_PAGE_SHIFT) * 8);
	if (fd != control.pagemap)
		close(fd);
	if (got != (ssize_t)(span * sizeof(entries[0])))
		return -EIO;
	while (page_set_next_run(&ps, &r)) {
		uint64_t first = (r.addr - ps.base) >> UPAGER_PAGE_SHIFT;

		for (uint64_t i = 0; i < r.pages;) {
			struct uffdio_move mv = { .mode = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES };
			uint64_t run = 0, e, rank = r.rank + i;

			while (i + run < r.pages && (e = entries[first + i + run], e >> 63 & 1) &&
			       (e >> 57 & 1))
				run++;
			if (run == 0) {
				i++;
				continue;
			}
			mv.dst = dst + (rank << UPAGER_PAGE_SHIFT);
			mv.src = r.addr + (i << UPAGER_PAGE_SHIFT);
			mv.len = run << UPAGER_PAGE_SHIFT;
			if (m->u.drop.flags & UPAGER_DROP_IN_PLACE) {
				drop_in_place(&entries[first + i], mv.src, run, rank, moved);
				i += run;
				continue;
			}
			if (ioctl(uffd, UFFDIO_MOVE, &mv) < 0 && mv.move <= 0)
				mv.move = 0;
			for (uint64_t k = 0; k < (uint64_t)mv.move >> UPAGER_PAGE_SHIFT; k++)
				moved[(rank + k) / 64] |= 1ULL << ((rank + k) % 64);
			/* A page that would not move (shared with a fork) stays, and those after it
			 * are tried again. */
			i += ((uint64_t)mv.move >> UPAGER_PAGE_SHIFT) +
			     ((uint64_t)mv.move < mv.len);
		}
	}
	return madvise((void *)(uintptr_t)dst, len, MADV_DONTNEED) < 0 ? neg_errno() : 0;
}

static void *control_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uintptr_t spare = control.spare;
	uint8_t buf[512]; /* a DROP is the largest: 168 bytes */
	int look_ms = upager__ending_look();

	for (;;) {
		uint64_t moved[UPAGER_DROP_MAX_PAGES / 64] = { 0 };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct upager_msg m;
		ssize_t n;
		int len, ret;

		/* Each while, whether the process's own threads have all ended (ending.c). */
		ret = poll(&p, 1, look_ms);
		if (ret == 0)
			look_ms = upager__ending_look();
		if (ret <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* the daemon is gone */
		if (upager_msg_decode(buf, (size_t)n, &m) < 0)
			break;
		if (m.op == UPAGER_OP_GROW)
			ret = upager__grow_act(&m);
		else if (m.op == UPAGER_OP_DROP) {
			upager__maps_lock();
			ret = drop(&m, spare, moved);
			upager__maps_unlock();
		} else
			ret = -EOPNOTSUPP;
		m.status = MIN(ret, 0);
		if (m.op == UPAGER_OP_DROP)
			memcpy(m.u.drop_reply.moved, moved, sizeof(moved));
		if (m.op == UPAGER_OP_GROW)
			m.u.grow_reply.sentinel = ret > 0;
		m.op |= UPAGER_OP_REPLY;
		len = upager_msg_encode(buf, sizeof(buf), &m);
		if (len < 0 || send(fd, buf, (size_t)len, MSG_NOSIGNAL) < 0)
			break;
	}
	close(fd);
	return NULL;
}

/*
 * A child forked by a process with a control thread has none (fork copies one thread), yet it
 * holds the same private pages, which the daemon pages out through that thread, and the same
 * MAP_GROWSDOWN mappings, which grow through it. So the child connects and starts its own before
 * fork() returns in it: from its first instruction it is served as its parent is. A child made
 * by posix_spawn(3) or vfork(2) runs no fork handler and pays nothing.
 */
static void forked(void)
{
	if (!control.pid)
		return;
	control.pid = 0;
	upager__lock();
	if (upager__connect() == 0)
		upager__control_start();
	upager__unlock();
}

/* After conn.c's own handler, which makes the library usable in the child (registered first). */
static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forked);
}

/**
 * upager__control_start() - make sure this process has its control thread (lock held, connected)
 *
 * Return: 0 or a negative errno.
 */
int upager__control_start(void)
{
	struct upager_msg req = { .op = UPAGER_OP_CONTROL }, rep;
	void *spare;
	int sv[2], ret;

	if (control.pid == getpid())
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return neg_errno();
	sv[0] = upager__fd_park(sv[0]);
	if (control.spare) {
		/* A forked child's copy of its parent's, emptied: a DROP may have been under way. */
		spare = (void *)control.spare;
		madvise(spare, SPARE_BYTES, MADV_DONTNEED);
	} else {
		spare = mmap(NULL, SPARE_BYTES, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		control.spare = spare == MAP_FAILED ? 0 : (uintptr_t)spare;
	}
	req.u.range.addr = control.spare;
	req.u.range.length = control.spare ? SPARE_BYTES : 0;
	/* A forked child's is its parent's: its own comes with the reply. */
	if (control.pagemap >= 0)
		close(control.pagemap);
	ret = upager__call(&req, &sv[1], 1, &rep, &control.pagemap, 1);
	close(sv[1]);
	if (ret < 0) {
		close(sv[0]);
		if (control.spare)
			munmap(spare, SPARE_BYTES);
		control.spare = 0;
		return ret;
	}

	ret = upager__thread_start("control", control_thread, (void *)(intptr_t)sv[0],
				   control_stack, sizeof(control_stack));
	if (ret < 0) {
		close(sv[0]); /* the daemon sees the channel close and refuses every growth */
		return ret;
	}
	control.pid = getpid();
	pthread_once(&control.once, watch_forks);
	return 0;
}
