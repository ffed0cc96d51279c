/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An fd store of the daemon's own, for a daemon started without a service manager (keeper.c). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "passed.h"

/* A message the keeper's channel had no room for, with a duplicate of its descriptor or -1. */
struct keeper_pending {
	char *msg;
	int fd;
};

/* The keeper as the daemon sees it: its channel, and what it passed back at start. */
struct keeper {
	int fd; /* -1: no keeper */
	pid_t pid; /* a keeper this daemon started; 0 for one taken over */
	struct fdstore_passed passed;
	/* Messages waiting for room in the channel, in order: [head, n) (keeper_flush()). */
	struct keeper_pending *pending;
	size_t head, n, cap;
};

int keeper_attach(const char *socket_path, char *const *argv, struct keeper *k);
int keeper_send(struct keeper *k, const char *msg, int fd);
void keeper_flush(struct keeper *k);
void keeper_stop(struct keeper *k);
