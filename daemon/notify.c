// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * systemd notifications, through libsystemd: READY=1 once serving, a one-line STATUS= as the
 * figures change, STOPPING=1. Socket activation and the fd store are in fdstore.c.
 * Without $NOTIFY_SOCKET (started by hand) every call here does nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "context.h"
#include "log.h"
#include "notify.h"
#include "object.h"
#include "space.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

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

	list_for_each_entry (o, &d->cache.objects, link)
		cached += object_cached_pages(o);
	snprintf(status, sizeof(status),
		 "STATUS=%u clients, %u mappings, %llu cached pages, %llu faults served",
		 d->n_sessions, space_count_regions(d), (unsigned long long)cached,
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
