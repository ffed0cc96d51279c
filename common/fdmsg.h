/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One datagram with file descriptors attached, over a SOCK_SEQPACKET socket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define FDMSG_MAX_FDS 4

int fdmsg_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);
ssize_t fdmsg_recv(int sock, void *buf, size_t size, int *fds, size_t *n_fds);
ssize_t fdmsg_recv_nonblock(int sock, void *buf, size_t size, int *fds, size_t *n_fds);
ssize_t fdmsg_peek(int sock, void *buf, size_t size, int *fds, size_t *n_fds);
ssize_t fdmsg_recv_uid(int sock, void *buf, size_t size, int *fds, size_t *n_fds, bool peek,
		       uid_t *uid);
int fdmsg_drop(int sock);
void fdmsg_drain(int sock, unsigned max, void (*close_fn)(int fd));
void fdmsg_set_closer(void (*fn)(int fd));
void fdmsg_close_fds(int *fds, size_t n_fds);
