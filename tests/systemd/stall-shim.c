// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fault injection for restart-test.py, loaded into upagerd with LD_PRELOAD. Once the file named by
 * $UPAGER_STALL exists, the next call named by $UPAGER_STALL_CALL never returns, and
 * "$UPAGER_STALL.stalled" is made; the harness then kills the daemon:
 *   continue   UFFDIO_CONTINUE: a fault is read and never resolved; its thread waits until a new
 *              daemon wakes it
 *   fdatasync  a write-back for msync(MS_SYNC): a request is read and never answered, nor are the
 *              tables saved; a new daemon must do it again
 *   sendmsg    the reply to a REGION_ADD: the request is done and the tables saved, the reply
 *              never sent; a new daemon must send it again (doing it again fails: the
 *              OBJECT_OPEN it claims is claimed)
 *   grow       the answer of a client's growth thread, once read: the client mapped a new guard
 *              page and sentinel below its MAP_GROWSDOWN mapping, and the daemon neither
 *              registered them nor woke the faulting thread; a new daemon must grow on from there
 *   grown      the saving of the tables after an answer of the growth thread was read: the
 *              daemon registered the new guard page and sentinel and let the faulting thread go
 *              on, but the tables a new daemon reads have the mapping as it was before
 *   pageout    the return of the punch of shared anonymous pages out of their cache once their
 *              write to the swap store is over: they are out of memory, and the daemon has not
 *              yet taken them for absent; a new daemon must take the store over and find them
 *              in their slots (swap-restart-test.py)
 *   drop       the return of the send of a DROP to a client's control thread: the client moves
 *              the private pages out while no daemon lives; a new daemon must find them in
 *              their slots (swap-restart-test.py)
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int ioctl(int fd, unsigned long req, ...);
int fdatasync(int fd);
ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t recv(int fd, void *buf, size_t len, int flags);
ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t send(int fd, const void *buf, size_t len, int flags);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
int fallocate(int fd, int mode, off_t off, off_t len);

static int grown; /* a growth answer was read once the stall file existed */

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/* Whether call is the one to stall in, and the stall file exists. */
static int armed(const char *call)
{
	const char *stall = getenv("UPAGER_STALL"), *which = getenv("UPAGER_STALL_CALL");

	return stall && which && !strcmp(which, call) && access(stall, F_OK) == 0;
}

static void maybe_stall(const char *call)
{
	char path[4096];

	if (!armed(call))
		return;
	snprintf(path, sizeof(path), "%s.stalled", getenv("UPAGER_STALL"));
	close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	for (;;)
		pause();
}

int ioctl(int fd, unsigned long req, ...)
{
	int (*real)(int, unsigned long, ...) = next("ioctl");
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == UFFDIO_CONTINUE)
		maybe_stall("continue");
	return real(fd, req, arg);
}

int fdatasync(int fd)
{
	int (*real)(int) = next("fdatasync");

	maybe_stall("fdatasync");
	return real(fd);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t (*real)(int, const struct msghdr *, int) = next("sendmsg");
	const unsigned char *m = msg->msg_iov[0].iov_base;
	int type = 0;
	socklen_t len = sizeof(type);

	/* Replies to REGION_ADD (op 0x8003 at offset 6), not the notifications to systemd. */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET &&
	    msg->msg_iov[0].iov_len >= 8 && m[6] == 0x03 && m[7] == 0x80)
		maybe_stall("sendmsg");
	return real(fd, msg, flags);
}

/* A datagram read: if it is an answer of a growth thread (op 0x800a at offset 6), maybe stall. */
static void read_datagram(const unsigned char *m, ssize_t n)
{
	if (n >= 8 && m[6] == 0x0a && m[7] == 0x80) {
		maybe_stall("grow");
		grown = grown || armed("grown");
	}
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t (*real)(int, void *, size_t, int) = next("recv");
	ssize_t n = real(fd, buf, len, flags);

	read_datagram(buf, n);
	return n;
}

/* The control channel is read with recvmsg(2) (common/fdmsg.c); requests are never answers. */
ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t (*real)(int, struct msghdr *, int) = next("recvmsg");
	ssize_t n = real(fd, msg, flags);

	if (msg->msg_iovlen > 0 && msg->msg_iov[0].iov_len >= 8)
		read_datagram(msg->msg_iov[0].iov_base, n);
	return n;
}

/* Whether fd is a memfd of the daemon's named name. */
static int is_memfd(int fd, const char *name)
{
	char path[64], target[256] = "";

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return readlink(path, target, sizeof(target) - 1) > 0 && strstr(target, name) != NULL;
}

/* Whether fd is one of the daemon's memfds of its tables. */
static int is_state(int fd)
{
	return is_memfd(fd, "memfd:upager:state");
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	ssize_t (*real)(int, const void *, size_t, off_t) = next("pwrite");

	if (grown && is_state(fd))
		maybe_stall("grown");
	return real(fd, buf, n, off);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	int (*real)(int, int, off_t, off_t) = next("fallocate");
	int ret = real(fd, mode, off, len);

	if ((mode & FALLOC_FL_PUNCH_HOLE) && armed("pageout") && is_memfd(fd, "memfd:upager:anon"))
		maybe_stall("pageout");
	return ret;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t (*real)(int, const void *, size_t, int) = next("send");
	ssize_t ret = real(fd, buf, len, flags);
	uint16_t op;

	/* The op of the wire header: after its magic and version (proto/upager-proto.h). */
	if (ret > 0 && len >= 8 && armed("drop")) {
		memcpy(&op, (const char *)buf + 6, sizeof(op));
		if (op == 13) /* UPAGER_OP_DROP */
			maybe_stall("drop");
	}
	return ret;
}
