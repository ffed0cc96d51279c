// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The service manager's fd store, through libsystemd. Under systemd ($NOTIFY_SOCKET set) every
 * descriptor the daemon needs to carry on serving is stored with FDSTORE=1 as it is made, under a
 * name "upager.KIND.ID" (see docs/design.md for the kinds), and removed with FDSTOREREMOVE=1 when
 * it is closed. After a restart or a crash, systemd passes them back with their names in
 * $LISTEN_FDNAMES, after the listening socket of socket activation; state.c takes them over.
 * Without $NOTIFY_SOCKET (started by hand) the daemon's own keeper (keeper.c) stores them with
 * the same messages, and hands them to the next daemon; with neither, nothing is stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/macro.h"
#include "context.h"
#include "fdstore.h"
#include "keeper.h"
#include "log.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define NAME_PREFIX "upager."

static void fd_name(char *buf, size_t size, const char *kind, uint64_t id)
{
	snprintf(buf, size, NAME_PREFIX "%s.%llu", kind, (unsigned long long)id);
}

/** fdstore_init() - use the fd store if a service manager listens on $NOTIFY_SOCKET, else the
 * keeper's if the daemon has one */
void fdstore_init(struct daemon *d)
{
#ifdef HAVE_LIBSYSTEMD
	const char *e = getenv("NOTIFY_SOCKET");

	d->fdstore = (e && *e) || d->keeper.fd >= 0;
#else
	d->fdstore = d->keeper.fd >= 0;
#endif
}

/* Send @msg (with @fd if >= 0) to the store: the keeper's, or the service manager's. */
static int notify(struct daemon *d, const char *msg, int fd)
{
	if (d->keeper.fd >= 0)
		return keeper_send(&d->keeper, msg, fd);
#ifdef HAVE_LIBSYSTEMD
	if (fd >= 0)
		return sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	return sd_notify(0, msg);
#else
	return -EOPNOTSUPP;
#endif
}

/**
 * fdstore_add() - put a descriptor into the fd store as "upager.@kind.@id"
 * @d: the daemon; nothing is done without a store or while taking over (the store has them)
 * @fd: the descriptor, still the caller's
 * @kind: what it is
 * @id: whose it is
 *
 * Return: 0 or a negative errno (logged: the daemon serves on, but a crash then loses that one).
 */
int fdstore_add(struct daemon *d, int fd, const char *kind, uint64_t id)
{
	char name[96], msg[160];
	int ret;

	if (!d->fdstore || d->restoring)
		return 0;
	fd_name(name, sizeof(name), kind, id);
	/* Only a client's socket can hang up; polling the others would find nothing. */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s%s", name,
		 strcmp(kind, "cl") ? "\nFDPOLL=0" : "");
	ret = notify(d, msg, fd);
	if (ret < 0) {
		log_limited(LOG_WARNING, "storing %s: %s", name, strerror(-ret));
		return ret;
	}
	return 0;
}

/** fdstore_remove() - take "upager.@kind.@id" out of the fd store, if it is there */
void fdstore_remove(struct daemon *d, const char *kind, uint64_t id)
{
	char msg[128];

	if (!d->fdstore || d->stopping)
		return;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=");
	fd_name(msg + strlen(msg), sizeof(msg) - strlen(msg), kind, id);
	notify(d, msg, -1);
}

/**
 * fdstore_passed_collect() - take the descriptors the keeper or the service manager passed
 * @d: the daemon
 * @p: filled; the descriptors are made close-on-exec
 *
 * Return: 0 (none passed is no error) or a negative errno.
 */
int fdstore_passed_collect(struct daemon *d, struct fdstore_passed *p)
{
	*p = (struct fdstore_passed){ 0 };
	if (d->keeper.passed.n) {
		*p = d->keeper.passed;
		d->keeper.passed = (struct fdstore_passed){ 0 };
		return 0;
	}
#ifdef HAVE_LIBSYSTEMD
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	if (n <= 0)
		return n;
	p->fds = calloc((size_t)n, sizeof(*p->fds));
	p->names = calloc((size_t)n, sizeof(*p->names));
	if (!p->fds || !p->names) {
		free(p->fds);
		free(p->names);
		for (int i = 0; names && names[i]; i++)
			free(names[i]);
		free(names);
		*p = (struct fdstore_passed){ 0 };
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		p->fds[i] = SD_LISTEN_FDS_START + i;
		p->names[i] = names ? names[i] : NULL;
		fcntl(p->fds[i], F_SETFD, FD_CLOEXEC);
	}
	p->n = (size_t)n;
	free(names);
#endif
	return 0;
}

/**
 * fdstore_passed_take() - the passed descriptor "upager.@kind.@id"
 * Return: the descriptor, now the caller's, or -1 if it was not passed.
 */
int fdstore_passed_take(struct fdstore_passed *p, const char *kind, uint64_t id)
{
	char name[96];

	fd_name(name, sizeof(name), kind, id);
	for (size_t i = 0; i < p->n; i++)
		if (p->fds[i] >= 0 && p->names[i] && strcmp(p->names[i], name) == 0)
			return fd_take(&p->fds[i]);
	return -1;
}

static bool is_listening_seqpacket(int fd)
{
	int type = 0, listening = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
		return false;
	len = sizeof(int);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
}

/**
 * fdstore_passed_listen() - the listening socket among the passed descriptors
 *
 * Socket activation passes it first, under any name but ours. A daemon that bound its own socket
 * stored it as "upager.listen.0"; that one serves if systemd passed no other.
 *
 * Return: the descriptor (non-blocking, close-on-exec), -ENOENT if none was passed, -EINVAL if
 * what was passed besides our own descriptors is not exactly one listening SOCK_SEQPACKET socket.
 */
int fdstore_passed_listen(struct fdstore_passed *p)
{
	int found = -1, n_other = 0, fd;

	for (size_t i = 0; i < p->n; i++) {
		if (p->fds[i] < 0 || (p->names[i] && !strncmp(p->names[i], NAME_PREFIX, 7)))
			continue;
		n_other++;
		if (is_listening_seqpacket(p->fds[i]))
			found = (int)i;
	}
	if (n_other > 1 || (n_other == 1 && found < 0)) {
		log_error("socket activation: expected one listening SOCK_SEQPACKET socket, got %d "
			  "descriptors",
			  n_other);
		return -EINVAL;
	}
	if (found >= 0) {
		fd = fd_take(&p->fds[found]);
	} else {
		fd = fdstore_passed_take(p, "listen", 0);
		if (fd < 0)
			return -ENOENT;
		if (!is_listening_seqpacket(fd)) {
			close(fd);
			return -EINVAL;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int ret = neg_errno();

		close(fd);
		return ret;
	}
	return fd;
}

/**
 * fdstore_passed_release() - close what nobody took, and take it out of the store
 * @d: the daemon
 * @p: emptied
 */
void fdstore_passed_release(struct daemon *d, struct fdstore_passed *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->fds[i] >= 0) {
			log_info("dropping a stored descriptor no table names: %s",
				 p->names[i] ? p->names[i] : "?");
			close(p->fds[i]);
			if (d->fdstore && p->names[i] && !strncmp(p->names[i], NAME_PREFIX, 7)) {
				char msg[300];

				snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s",
					 p->names[i]);
				notify(d, msg, -1);
			}
		}
		free(p->names[i]);
	}
	free(p->fds);
	free(p->names);
	*p = (struct fdstore_passed){ 0 };
}
