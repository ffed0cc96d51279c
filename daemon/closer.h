/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors that came from clients are closed off the loop: a close(2) can wait. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The closes of one user's descriptors not over yet past which its messages wait. */
#define CLOSER_BACKLOG_MAX 1024

int closer_start(void);
uid_t closer_set_owner(uid_t uid);
void closer_close_owned(int fd, uid_t owner);
void closer_close(int fd);
size_t closer_backlog(uid_t owner);
void closer_drain(int sock);
