/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A descriptor whose last close(2) waits: what an attacker hands the daemon (unit and integration tests). */
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A TCP socket on loopback whose peer reads nothing, its send queue full and SO_LINGER set to
 * @secs: the last close of it waits @secs for the peer to take the data. @peer, the peer, is
 * left open. Return: the socket, or -1.
 */
static inline int lingering_socket(int secs, int *peer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), ok;
	static char buf[65536];

	ok = l >= 0 && c >= 0 &&
	     setsockopt(l, SOL_SOCKET, SO_RCVBUF, &(int){ 4096 }, sizeof(int)) == 0 &&
	     bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0 &&
	     getsockname(l, (struct sockaddr *)&sa, &len) == 0 &&
	     connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	     (*peer = accept(l, NULL, NULL)) >= 0 && fcntl(c, F_SETFL, O_NONBLOCK) == 0;
	if (l >= 0)
		close(l);
	if (!ok) {
		if (c >= 0)
			close(c);
		return -1;
	}
	while (write(c, buf, sizeof(buf)) > 0)
		;
	if (setsockopt(c, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, secs },
		       sizeof(struct linger)) < 0) {
		close(c);
		close(*peer);
		return -1;
	}
	return c;
}
