// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The floor: the least a userfaultfd pager in another process can do per fault. The measuring
 * process maps private anonymous memory and creates a userfaultfd; a helper process (this program
 * run again, see spawn_helper()) gets the descriptor over a socket, registers the range for missing
 * faults (registration acts on the mm that created the descriptor) and serves every fault with one
 * UFFDIO_COPY of the aligned block around it, from its own copy of the file or from a pread() of
 * the file. No tables, no cache, no protocol: what upager costs beyond this is upager's own
 * overhead.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "common/fdmsg.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

struct floor_setup {
	uint64_t addr, length, block;
	uint32_t source;
	uint32_t reserved;
};

struct floor_reply {
	int32_t status;
};

static int new_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd < 0 ? -errno : fd;
}

/* Wait up to @timeout_ms for a datagram; return its length or a negative errno. */
static ssize_t recv_timeout(int sock, void *buf, size_t size, int *fds, size_t *n_fds,
			    int timeout_ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int r = poll(&pfd, 1, timeout_ms);

	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return fdmsg_recv(sock, buf, size, fds, n_fds);
}

/**
 * floor_start() - map @length bytes whose faults a new handler process serves
 * @f: filled in; f->area is the memory to touch
 * @file_fd: the file whose first @length bytes the area shows
 * @length: bytes, a multiple of the page size
 * @block: bytes per fault (a power of two, at least a page)
 * @src: where the handler takes the data from
 *
 * With FLOOR_MEMORY the handler reads the whole file into its memory first (not timed). Our copy of
 * the userfaultfd is closed once handed over: if the handler dies, faults get zero pages, which the
 * data check reports, instead of waiting forever.
 * Return: 0, or a negative errno (nothing is left behind).
 */
int floor_start(struct floor *f, int file_fd, size_t length, size_t block, enum floor_source src)
{
	struct floor_setup setup = { .length = length, .block = block, .source = src };
	struct floor_reply reply = { -EIO };
	int sv[2], fds[FDMSG_MAX_FDS];
	size_t n_fds = 0;
	ssize_t n;
	int ret;

	memset(f, 0, sizeof(*f));
	f->sock = f->uffd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fcntl(sv[1], F_SETFD, 0);
	f->pid = spawn_helper("--floor-handler", sv[1], NULL);
	close(sv[1]);
	f->sock = sv[0];
	if (f->pid < 0) {
		ret = (int)f->pid;
		goto fail;
	}
	f->area = mmap(NULL, length, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f->area == MAP_FAILED) {
		f->area = NULL;
		ret = -errno;
		goto fail;
	}
	f->length = length;
	madvise(f->area, length, MADV_NOHUGEPAGE);
	ret = new_uffd();
	if (ret < 0)
		goto fail;
	f->uffd = ret;
	setup.addr = (uintptr_t)f->area;
	fds[0] = f->uffd;
	fds[1] = file_fd;
	ret = fdmsg_send(f->sock, &setup, sizeof(setup), fds, 2);
	if (ret < 0)
		goto fail;
	close(f->uffd);
	f->uffd = -1;
	n = recv_timeout(f->sock, &reply, sizeof(reply), fds, &n_fds, 120000);
	fdmsg_close_fds(fds, n_fds);
	if (n != (ssize_t)sizeof(reply)) {
		ret = n < 0 ? (int)n : -EIO;
		goto fail;
	}
	if (reply.status < 0) {
		ret = reply.status;
		goto fail;
	}
	return 0;
fail:
	floor_stop(f);
	return ret;
}

/** floor_stop() - unmap the area and end the handler; @f may be half set up */
void floor_stop(struct floor *f)
{
	if (f->area)
		munmap(f->area, f->length);
	f->area = NULL;
	if (f->sock >= 0) {
		(void)!write(f->sock, "Q", 1);
		close(f->sock);
	}
	f->sock = -1;
	if (f->uffd >= 0)
		close(f->uffd);
	f->uffd = -1;
	if (f->pid > 0)
		wait_helper(f->pid, 10000);
	f->pid = 0;
}

/* The handler's side. */
struct handler {
	int uffd, file_fd;
	uint64_t base, length, block;
	uint32_t source;
	char *data; /* FLOOR_MEMORY: the file's first length bytes */
	char *bounce; /* FLOOR_PREAD: one block */
};

static int copy(int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t *copied)
{
	struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len };
	int ret = ioctl(uffd, UFFDIO_COPY, &c);

	*copied = c.copy > 0 ? (uint64_t)c.copy : 0;
	return ret < 0 ? -errno : 0;
}

static int serve(struct handler *h, uint64_t addr)
{
	uint64_t off = (addr - h->base) & ~(PAGE - 1);
	uint64_t boff = off & ~(h->block - 1);
	uint64_t len = h->length - boff < h->block ? h->length - boff : h->block;
	uint64_t copied;
	const char *src;
	int ret;

	if (h->source == FLOOR_MEMORY) {
		src = h->data + boff;
	} else {
		ssize_t r = pread(h->file_fd, h->bounce, len, (off_t)boff);

		if (r < (ssize_t)(off - boff + PAGE))
			return r < 0 ? -errno : -EIO;
		if ((uint64_t)r < len)
			memset(h->bounce + r, 0, len - (uint64_t)r);
		src = h->bounce;
	}
	ret = copy(h->uffd, h->base + boff, src, len, &copied);
	if (ret == 0 || off < boff + copied)
		return 0;
	/* Part of the block is mapped already (random faults): map the faulting page alone. */
	for (int tries = 0; tries < 100; tries++) {
		ret = copy(h->uffd, h->base + off, src + (off - boff), PAGE, &copied);
		if (ret != -EAGAIN)
			break;
	}
	if (ret == -EEXIST) {
		struct uffdio_range r = { .start = h->base + off, .len = PAGE };

		ret = ioctl(h->uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
	}
	return ret;
}

static int handler_setup(struct handler *h, int sock)
{
	struct floor_setup setup;
	int fds[FDMSG_MAX_FDS];
	size_t n_fds = 0;
	ssize_t n = fdmsg_recv(sock, &setup, sizeof(setup), fds, &n_fds);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (n != (ssize_t)sizeof(setup) || n_fds != 2) {
		fdmsg_close_fds(fds, n_fds);
		return -EBADMSG;
	}
	h->uffd = fds[0];
	h->file_fd = fds[1];
	h->base = setup.addr;
	h->length = setup.length;
	h->block = setup.block;
	h->source = setup.source;
	if (h->source == FLOOR_MEMORY) {
		h->data = mmap(NULL, h->length, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (h->data == MAP_FAILED)
			return -errno;
		for (uint64_t off = 0; off < h->length;) {
			ssize_t r = pread(h->file_fd, h->data + off, h->length - off, (off_t)off);

			if (r <= 0)
				break; /* past end of file the data stays zero */
			off += (uint64_t)r;
		}
	} else {
		h->bounce = aligned_alloc(PAGE, h->block);
		if (!h->bounce)
			return -ENOMEM;
		memset(h->bounce, 0, h->block);
	}
	if (ioctl(h->uffd, UFFDIO_API, &api) < 0)
		return -errno;
	reg.range.start = h->base;
	reg.range.len = h->length;
	if (ioctl(h->uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	return 0;
}

/**
 * floor_handler_main() - the handler process: set up from the first message on @sock, then serve
 * faults until @sock says "Q" or closes
 *
 * Return: the process's exit code.
 */
int floor_handler_main(int sock)
{
	struct handler h = { .uffd = -1, .file_fd = -1 };
	struct floor_reply reply;
	struct uffd_msg msgs[64];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;
	alarm(1800);
	reply.status = handler_setup(&h, sock);
	if (write(sock, &reply, sizeof(reply)) != sizeof(reply) || reply.status < 0)
		return 1;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = h.uffd, .events = POLLIN },
			{ .fd = sock, .events = POLLIN },
		};
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pfd[1].revents)
			return 0;
		if (!(pfd[0].revents & POLLIN))
			continue;
		n = read(h.uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return 1;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT &&
			    serve(&h, msgs[i].arg.pagefault.address) < 0)
				return 1;
	}
}
