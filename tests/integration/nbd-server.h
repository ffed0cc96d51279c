/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An NBD server for a test's swap store: nbdkit's memory plugin, on a Unix socket or on TCP
 * loopback, or its file plugin, started by the test and ended with it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum nbd_server_kind {
	NBD_SERVER_UNIX,
	NBD_SERVER_TCP
};

/* Start the server; its URI (for upagerd --swap) in @uri. Asserts that it started. */
void nbd_server_start(enum nbd_server_kind kind, char *uri, size_t size);
/* The same on a Unix socket with nbdkit's file plugin on @file (which must outlive the server). */
void nbd_server_start_file(const char *file, char *uri, size_t size);
/* Stop it (SIGTERM, waited for); again with the same URI by nbd_server_restart(). */
void nbd_server_stop(void);
void nbd_server_restart(void);
bool nbd_server_running(void);
