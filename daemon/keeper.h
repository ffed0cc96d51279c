/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An fd store of the daemon's own, for a daemon started without a service manager (keeper.c). */
#pragma once

#include <stdbool.h>

#include "passed.h"

/* The keeper as the daemon sees it: its channel, and what it passed back at start. */
struct keeper {
	int fd; /* -1: no keeper */
	struct fdstore_passed passed;
};

int keeper_attach(const char *socket_path, char *const *argv, struct keeper *k);
int keeper_send(struct keeper *k, const char *msg, int fd);
void keeper_stop(struct keeper *k);
