// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl's connection to the daemon and the helpers its subcommands share: usage errors,
 * numbers in arguments, formatting. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/macro.h"
#include "common/mman.h"
#include "ctl.h"

/**
 * ctl_call() - send a request, wait for its reply
 * Return: the reply's status, or a negative errno if the exchange failed.
 */
int ctl_call(struct ctl *c, struct upager_msg *req, struct upager_msg *rep)
{
	int fds[FDMSG_MAX_FDS];
	size_t n_fds;
	ssize_t n;
	int len, ret;

	req->seq = ++c->seq;
	len = upager_msg_encode(c->buf, sizeof(c->buf), req);
	if (len < 0)
		return len;
	ret = fdmsg_send(c->fd, c->buf, (size_t)len, NULL, 0);
	if (ret < 0)
		return ret;
	do {
		n = fdmsg_recv(c->fd, c->buf, sizeof(c->buf), fds, &n_fds);
		fdmsg_close_fds(fds, n_fds);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return (int)n;
		ret = upager_msg_decode(c->buf, (size_t)n, rep);
		if (ret < 0)
			return ret;
		/* A daemon that took over from a crashed one may answer an earlier request again. */
	} while ((int32_t)(rep->seq - req->seq) < 0);
	if (rep->op != (req->op | UPAGER_OP_REPLY) || rep->seq != req->seq)
		return -EBADMSG;
	return rep->status;
}

static int connect_hello(struct ctl *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct upager_msg req = { .op = UPAGER_OP_HELLO }, rep;

	if (strlen(c->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, c->path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return neg_errno();
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return neg_errno();
	req.u.hello.version_min = UPAGER_PROTO_VERSION_MIN;
	req.u.hello.version_max = UPAGER_PROTO_VERSION;
	req.u.hello.flags = UPAGER_HELLO_CTL;
	return ctl_call(c, &req, &rep);
}

/**
 * ctl_connect() - connect to the daemon at @c->path as an inspection client
 *
 * A failure is reported on stderr here, the same for every subcommand.
 * Return: 0 or a negative errno.
 */
int ctl_connect(struct ctl *c)
{
	int r = connect_hello(c);

	if (r < 0)
		fprintf(stderr, "upagerctl: cannot reach upagerd at %s: %s\n", c->path,
			strerror(-r));
	return r;
}

/**
 * ctl_usage_error() - report wrong usage of @cmd (NULL: of the tool) on stderr
 * Return: CTL_EXIT_USAGE.
 */
int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("upagerctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'upagerctl%s%s --help'.\n", cmd ? " " : "", cmd ? cmd->name : "");
	return CTL_EXIT_USAGE;
}

/**
 * ctl_parse_uint() - read a number of decimal digits only (no sign, no space), at most INT_MAX
 * Return: 0, or -EINVAL if @s is not one.
 */
int ctl_parse_uint(const char *s, uint32_t *out)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > INT_MAX)
			return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/** ctl_prot_str() - "rwx" form of a protection; @buf holds at least 4 bytes */
const char *ctl_prot_str(uint32_t prot, char *buf)
{
	buf[0] = prot & PROT_READ ? 'r' : '-';
	buf[1] = prot & PROT_WRITE ? 'w' : '-';
	buf[2] = prot & PROT_EXEC ? 'x' : '-';
	buf[3] = 0;
	return buf;
}

/** ctl_flags_str() - mmap flags as names joined by '|' */
const char *ctl_flags_str(uint32_t flags, char *buf, size_t size)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} names[] = {
		{ MAP_FIXED, "FIXED" },		 { MAP_ANONYMOUS, "ANONYMOUS" },
		{ MAP_POPULATE, "POPULATE" },	 { MAP_NONBLOCK, "NONBLOCK" },
		{ MAP_NORESERVE, "NORESERVE" },	 { MAP_GROWSDOWN, "GROWSDOWN" },
		{ MAP_LOCKED, "LOCKED" },	 { MAP_STACK, "STACK" },
		{ 0x100000, "FIXED_NOREPLACE" },
	};
	uint32_t type = flags & MAP_TYPE;
	size_t n;

	n = (size_t)snprintf(buf, size, "%s",
			     type == MAP_PRIVATE     ? "PRIVATE"
			     : type == MAP_SHARED    ? "SHARED"
			     : type == 3	     ? "SHARED_VALIDATE"
			     : type == MAP_DROPPABLE ? "DROPPABLE"
						     : "?");
	for (size_t i = 0; i < ARRAY_SIZE(names) && n < size; i++)
		if (flags & names[i].flag)
			n += (size_t)snprintf(buf + n, size - n, "|%s", names[i].name);
	return buf;
}

/** ctl_size_str() - a byte count in B, KiB, MiB or GiB */
const char *ctl_size_str(uint64_t bytes, char *buf, size_t size)
{
	if (bytes >= (1ULL << 30) && bytes % (1ULL << 20) == 0)
		snprintf(buf, size, "%.1fGiB", (double)bytes / (1ULL << 30));
	else if (bytes >= (1ULL << 20))
		snprintf(buf, size, "%.1fMiB", (double)bytes / (1ULL << 20));
	else if (bytes >= 1024)
		snprintf(buf, size, "%lluKiB", (unsigned long long)(bytes / 1024));
	else
		snprintf(buf, size, "%lluB", (unsigned long long)bytes);
	return buf;
}

/** ctl_json_string() - print @len bytes of @s as a JSON string */
void ctl_json_string(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}
