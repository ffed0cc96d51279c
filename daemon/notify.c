// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * systemd integration, through libsystemd: the listening socket from socket activation
 * (sd_listen_fds), READY=1 once serving, a one-line STATUS= as the figures change, STOPPING=1.
 * Without $NOTIFY_SOCKET and $LISTEN_FDS (started by hand) every call here does nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "object.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

/**
 * notify_listen_fd() - the listening socket systemd passed, if it passed one
 * Return: the descriptor (non-blocking, close-on-exec), -ENOENT if none was passed, -EINVAL if the
 * passed descriptors are not exactly one SOCK_SEQPACKET Unix socket that listens.
 */
int notify_listen_fd(void)
{
#ifdef HAVE_LIBSYSTEMD
	int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START;

	if (n <= 0)
		return n < 0 ? n : -ENOENT;
	if (n != 1 || sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
		log_error("socket activation: expected one listening SOCK_SEQPACKET socket, got %d "
			  "descriptors",
			  n);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return fd;
#else
	return -ENOENT;
#endif
}

/** notify_ready() - tell the service manager the daemon serves */
void notify_ready(struct daemon *d)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
	notify_status(d);
#else
	(void)d;
#endif
}

/** notify_status() - a one-line summary in STATUS=, sent when it changed */
void notify_status(struct daemon *d)
{
#ifdef HAVE_LIBSYSTEMD
	static char last[160];
	char status[160];
	uint64_t cached = 0;
	struct object *o;

	list_for_each_entry (o, &d->objects, link)
		cached += object_cached_pages(o);
	snprintf(status, sizeof(status),
		 "STATUS=%u clients, %u mappings, %llu cached pages, %llu faults served",
		 d->n_sessions, daemon_count_regions(d), (unsigned long long)cached,
		 (unsigned long long)d->stats.faults);
	if (strcmp(status, last) == 0)
		return;
	strcpy(last, status);
	sd_notify(0, status);
#else
	(void)d;
#endif
}

/** notify_stopping() - tell the service manager the daemon is stopping */
void notify_stopping(void)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
}
