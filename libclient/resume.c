// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Going on after the daemon died (docs/design.md, "When the daemon dies"). The library keeps a
 * record of each live mapping, with a descriptor of the file and of the memfd it maps, and a
 * watcher thread waits for the connection to end. Then it connects again every 100 ms; once a
 * new upagerd listens on the socket, it sends HELLO with RESUME and our userfaultfd, which still
 * holds every registration, then one RESUME per record, with its descriptors. Meanwhile a fault
 * on a page not yet served waits, as on an NFS hard mount; with UPAGER_DAEMON_TIMEOUT=SECONDS,
 * after that long the watcher answers such faults itself with SIGBUS (UFFDIO_POISON on our own
 * userfaultfd), as a soft mount answers EIO, until a daemon is back.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/avl.h"
#include "common/macro.h"
#include "common/mman.h"
#include "common/uffd.h"
#include "internal.h"
#include "upager.h"

#define RETRY_MS 100

/*
 * The descriptors of one object as its mappings were made (the file's, and the memfd's, each with
 * its access), shared by all its records: mmap(2) holds no descriptor, so a process mapping the
 * same file many times must not run out of them (with one pair per mapping, 340 mappings took
 * the 1024 descriptors of a default limit).
 */
struct held {
	int fd; /* the file, or -1 */
	int memfd; /* the memfd mapped */
	dev_t dev; /* the memfd's */
	ino_t ino;
	int fd_mode, memfd_mode; /* O_ACCMODE of each */
	bool shared; /* of MAP_SHARED mappings */
	/*
	 * A page of the file itself, mapped MAP_SHARED and PROT_NONE, while shared mappings of a
	 * sealable file (a memfd) open for writing live: the kernel then refuses F_SEAL_WRITE with
	 * EBUSY, as for its own mappings (the pages are the daemon's cache, another memfd). NULL
	 * if none.
	 */
	void *pin;
	unsigned refs; /* records */
	struct avl_node node; /* in rec.held */
};

struct mapping {
	uintptr_t start;
	size_t length;
	int prot, flags;
	off_t offset;
	uint32_t kind; /* UPAGER_RESUME_ANON_PRIVATE, UPAGER_OBJECT_FILE or _ANON_SHARED */
	struct held *h; /* NULL for private anonymous memory */
	/* A new daemon refused it: what was written to it since is nowhere, and upager_msync()
	 * says so (EIO) until it is unmapped. */
	bool lost;
	struct avl_node node; /* in rec.tree, by start */
};

static int held_cmp_key(const struct held *x, const struct held *y)
{
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->fd_mode != y->fd_mode)
		return x->fd_mode < y->fd_mode ? -1 : 1;
	if (x->shared != y->shared)
		return x->shared ? 1 : -1;
	return (x->memfd_mode > y->memfd_mode) - (x->memfd_mode < y->memfd_mode);
}

static int by_key(const struct avl_node *a, const struct avl_node *b)
{
	return held_cmp_key(container_of(a, struct held, node), container_of(b, struct held, node));
}

static int by_start(const struct avl_node *a, const struct avl_node *b)
{
	const struct mapping *x = container_of(a, struct mapping, node);
	const struct mapping *y = container_of(b, struct mapping, node);

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Under the connection lock: the records, in a tree so that forgetting a range costs
 * O(log n) whatever the number of mappings. */
static struct {
	struct avl_tree tree;
	struct avl_tree held; /* struct held, by object and access */
	pid_t watcher; /* the process that has a watcher thread, 0 if none */
} rec = { .tree.cmp = by_start, .held.cmp = by_key };

/* The watcher's stack: never pager memory, so that it runs while every fault waits. */
static uint8_t watch_stack[64 * 1024] __attribute__((aligned(4096)));

static void held_put(struct held *h)
{
	if (!h || --h->refs > 0)
		return;
	avl_remove(&rec.held, &h->node);
	if (h->pin)
		munmap(h->pin, UPAGER_PAGE_SIZE);
	upager__fd_unkeep(h->fd);
	close(h->memfd);
	free(h);
}

static bool at_or_past(const struct avl_node *n, const void *key)
{
	return held_cmp_key(container_of(n, struct held, node), key) >= 0;
}

/* The held descriptors of the object whose memfd is @memfd, mapped through the file @fd (-1 for
 * shared anonymous memory), @shared or not: found, or dup()ed; NULL if out of descriptors or
 * memory. */
static struct held *held_get(int fd, int memfd, bool shared)
{
	struct held key = { .fd_mode = -1, .shared = shared }, *h;
	struct avl_node *n;
	struct stat st;
	int fl;

	if (fstat(memfd, &st) < 0 || (fl = fcntl(memfd, F_GETFL)) < 0)
		return NULL;
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	key.memfd_mode = fl & O_ACCMODE;
	if (fd >= 0) {
		if ((fl = fcntl(fd, F_GETFL)) < 0)
			return NULL;
		key.fd_mode = fl & O_ACCMODE;
	}
	n = avl_first_where(&rec.held, at_or_past, &key);
	if (n && held_cmp_key(container_of(n, struct held, node), &key) == 0) {
		h = container_of(n, struct held, node);
		h->refs++;
		return h;
	}
	h = malloc(sizeof(*h));
	if (!h)
		return NULL;
	*h = key;
	h->refs = 1;
	h->memfd = upager__fd_dup(memfd);
	h->fd = fd >= 0 ? upager__fd_keep(fd) : -1;
	if (h->memfd < 0 || (fd >= 0 && h->fd < 0)) {
		if (h->memfd >= 0)
			close(h->memfd);
		upager__fd_unkeep(h->fd);
		free(h);
		return NULL;
	}
	if (shared && h->fd_mode == O_RDWR && fcntl(h->fd, F_GET_SEALS) >= 0) {
		h->pin = mmap(NULL, UPAGER_PAGE_SIZE, PROT_NONE, MAP_SHARED, h->fd, 0);
		if (h->pin == MAP_FAILED)
			h->pin = NULL;
	}
	avl_insert(&rec.held, &h->node);
	return h;
}

static void mapping_close(struct mapping *m)
{
	held_put(m->h);
	m->h = NULL;
}

static int append(const struct mapping *m)
{
	struct mapping *copy = malloc(sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	*copy = *m;
	avl_insert(&rec.tree, &copy->node);
	return 0;
}

static void drop(struct mapping *m)
{
	avl_remove(&rec.tree, &m->node);
	mapping_close(m);
	free(m);
}

static bool ends_above(const struct avl_node *n, const void *key)
{
	const struct mapping *m = container_of(n, const struct mapping, node);

	return m->start + m->length > *(const uintptr_t *)key;
}

/* The first record that ends above addr, or NULL. */
static struct mapping *first_above(uintptr_t addr)
{
	struct avl_node *n = avl_first_where(&rec.tree, ends_above, &addr);

	return n ? container_of(n, struct mapping, node) : NULL;
}

/**
 * upager__resume_lost() - whether any of [addr, addr+length) is a mapping a new daemon refused,
 * whose writes since went nowhere (lock held)
 */
bool upager__resume_lost(uintptr_t addr, size_t length)
{
	uintptr_t end = addr + ALIGN_UP(length, UPAGER_PAGE_SIZE);

	for (struct mapping *m = first_above(addr); m && m->start < end;
	     m = first_above(m->start + m->length))
		if (m->lost)
			return true;
	return false;
}

/**
 * upager__resume_forget() - forget what the records hold of [addr, addr+length) (lock held)
 * @addr: start, page-aligned
 * @length: bytes
 */
void upager__resume_forget(uintptr_t addr, size_t length)
{
	uintptr_t end = addr + ALIGN_UP(length, UPAGER_PAGE_SIZE);
	struct mapping *m, *next;

	for (m = first_above(addr); m && m->start < end; m = next) {
		uintptr_t m_end = m->start + m->length;

		next = first_above(m_end);
		if (m->start < addr && m_end > end) {
			/* A hole in the middle: the part above is a record of its own. */
			struct mapping above = *m;

			above.start = end;
			above.length = m_end - end;
			above.offset += (off_t)(end - m->start);
			if (above.h)
				above.h->refs++;
			m->length = addr - m->start;
			if (append(&above) < 0)
				mapping_close(&above);
			return;
		}
		if (m->start < addr) {
			m->length = addr - m->start;
		} else if (m_end > end) {
			/* The tail stays: its start moves up, still below the next record's. */
			m->offset += (off_t)(end - m->start);
			m->length = m_end - end;
			m->start = end;
		} else {
			drop(m);
		}
	}
}

static int resume_send(void);

/* Forget every record: a forked child resumes nothing. */
static void forget_all(void)
{
	struct mapping *m;

	while ((m = first_above(0)))
		drop(m);
	rec.watcher = 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answer one fault ourselves: SIGBUS for a missing page, the write let through for a WP one. */
static void answer(int uffd, const struct uffd_msg *msg)
{
	struct uffdio_range range = {
		.start = msg->arg.pagefault.address & ~(uint64_t)(UPAGER_PAGE_SIZE - 1),
		.len = UPAGER_PAGE_SIZE,
	};

	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		struct uffdio_writeprotect wp = { .range = range };

		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0)
			return;
	} else {
		struct uffdio_poison p = { .range = range };

		if (ioctl(uffd, UFFDIO_POISON, &p) == 0)
			return;
	}
	ioctl(uffd, UFFDIO_WAKE, &range); /* served meanwhile: the thread faults again */
}

/*
 * With no daemon past the bound: read our userfaultfd for up to @ms and answer what waits. The
 * kernel's events are ours to read now too: an unmap or a move ends a record; a fork gives a
 * userfaultfd of the child's that is kept open, so that the child's faults wait (closed, they
 * would fill its shared pages with zeroes).
 */
static void serve_alone(int uffd, int ms)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msgs[16];
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return;
	n = read(uffd, msgs, sizeof(msgs));
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
		const struct uffd_msg *m = &msgs[i];

		switch (m->event) {
		case UFFD_EVENT_PAGEFAULT:
			answer(uffd, m);
			break;
		case UFFD_EVENT_UNMAP:
			upager__lock();
			upager__resume_forget(m->arg.remove.start,
					      m->arg.remove.end - m->arg.remove.start);
			upager__unlock();
			break;
		case UFFD_EVENT_REMAP:
			upager__lock();
			upager__resume_forget(m->arg.remap.from, m->arg.remap.len);
			upager__unlock();
			break;
		default:
			break;
		}
	}
}

/* Connect again until a daemon takes us back; past the bound, answer faults meanwhile. */
static void reconnect(void)
{
	double bound = upager__daemon_timeout(), since = now();
	int ret, uffd;

	for (;;) {
		upager__lock();
		ret = upager__connect();
		uffd = upager__uffd();
		upager__unlock();
		if (ret == 0 || uffd < 0)
			return;
		if (bound > 0 && now() - since >= bound)
			serve_alone(uffd, RETRY_MS);
		else
			poll(NULL, 0, RETRY_MS);
		(void)upager__ending_look();
	}
}

static void *watch(void *arg)
{
	int look_ms = upager__ending_look();

	(void)arg;
	for (;;) {
		struct pollfd p = { .events = POLLRDHUP };
		unsigned gen;
		int ret;

		upager__lock();
		p.fd = upager__watch_fd(&gen);
		upager__unlock();
		/* Each while, whether the process's own threads have all ended (ending.c). */
		while (p.fd >= 0 && !(p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) {
			ret = poll(&p, 1, look_ms);
			if (ret == 0)
				look_ms = upager__ending_look();
			else if (ret < 0 && errno != EINTR)
				break;
		}
		if (p.fd >= 0)
			close(p.fd);
		upager__lock();
		upager__disconnect(gen);
		upager__unlock();
		reconnect();
	}
	return NULL;
}

/**
 * upager__resume_record() - keep what a new daemon needs to serve a new mapping (lock held)
 * @addr: the mapping
 * @length: its length
 * @prot: its protection
 * @flags: its mmap flags
 * @offset: its offset in the file
 * @fd: the file, borrowed (-1 for anonymous memory)
 * @memfd: the memfd mapped, borrowed (-1 for private anonymous memory)
 *
 * The first record of a process starts its watcher thread.
 *
 * Return: 0 or a negative errno.
 */
int upager__resume_record(void *addr, size_t length, int prot, int flags, off_t offset, int fd,
			  int memfd)
{
	struct mapping m = {
		.start = (uintptr_t)addr,
		.length = ALIGN_UP(length, UPAGER_PAGE_SIZE),
		.prot = prot,
		.flags = flags,
		.offset = offset,
		.kind = !(flags & MAP_ANONYMOUS)  ? UPAGER_OBJECT_FILE
			: map_private_anon(flags) ? UPAGER_RESUME_ANON_PRIVATE
						  : UPAGER_OBJECT_ANON_SHARED,
	};
	int ret;

	upager__resume_forget(m.start, m.length);
	if (m.kind != UPAGER_RESUME_ANON_PRIVATE) {
		m.h = held_get(m.kind == UPAGER_OBJECT_FILE ? fd : -1, memfd,
			       (flags & MAP_TYPE) != MAP_PRIVATE);
		if (!m.h)
			return -EMFILE;
	}
	ret = append(&m);
	if (ret < 0) {
		mapping_close(&m);
		return ret;
	}
	upager__conn_hooks(resume_send, forget_all);
	if (rec.watcher != getpid()) {
		ret = upager__thread_start("watch", watch, NULL, watch_stack, sizeof(watch_stack));
		if (ret < 0)
			return ret;
		rec.watcher = getpid();
	}
	return 0;
}

/*
 * Declare every recorded mapping to a new daemon, after HELLO with RESUME
 * (lock held, connected)
 *
 * A mapping the daemon refuses is lost: its faults get SIGBUS from then on, its record stays (without
 * its descriptors) for upager_msync() to fail with EIO, and no later daemon is asked again.
 *
 * Return: 0, or a negative errno if the connection broke.
 */
static int resume_send(void)
{
	struct upager_msg req = { .op = UPAGER_OP_RESUME }, rep;
	struct mapping *m, *next;
	int ret;

	for (m = first_above(0); m; m = next) {
		int fds[2] = { m->h ? m->h->fd : -1, m->h ? m->h->memfd : -1 };

		next = first_above(m->start + m->length);
		if (m->lost)
			continue;
		req.u.resume.kind = m->kind;
		req.u.resume.prot = (uint32_t)m->prot;
		req.u.resume.flags = (uint32_t)m->flags;
		req.u.resume.addr = m->start;
		req.u.resume.length = m->length;
		req.u.resume.offset = (uint64_t)m->offset;
		ret = upager__call(&req, fds[0] >= 0 ? fds : &fds[1], (fds[0] >= 0) + (fds[1] >= 0),
				   &rep, NULL, 0);
		if (ret < 0 && !upager__connected())
			return ret;
		if (ret < 0) {
			mapping_close(m);
			m->lost = true;
		}
	}
	memset(&req.u.resume, 0, sizeof(req.u.resume));
	req.u.resume.kind = UPAGER_RESUME_END;
	return upager__call(&req, NULL, 0, &rep, NULL, 0);
}
