/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors passed to a daemon at start, each with its name in the fd store. */
#pragma once

#include <stddef.h>

/* What the service manager ($LISTEN_FDS, $LISTEN_FDNAMES) or the keeper passed. */
struct fdstore_passed {
	int *fds; /* -1 once taken */
	char **names;
	size_t n;
};
