/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An NBD server for a test's swap store, started by the test and ended with it: nbdkit's memory
 * plugin on a Unix socket, on TCP loopback, or on a Unix socket with TLS required (a pre-shared key
 * of its own), or its file plugin; or qemu-nbd serving a new qcow2 file on a Unix socket.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum nbd_server_kind {
	NBD_SERVER_UNIX,
	NBD_SERVER_TCP,
	NBD_SERVER_TLS,
	NBD_SERVER_QCOW2
};

/* The kind a test's environment names ("unix", "tcp", "tls", "qcow2"); unix if none matches. */
enum nbd_server_kind nbd_server_kind_of(const char *name);
/* Start the server; its URI (for upagerd --swap) in @uri. Asserts that it started. */
void nbd_server_start(enum nbd_server_kind kind, char *uri, size_t size);
/* nbdkit's file plugin on @file (which must outlive the server), on a Unix socket, or on TCP
 * loopback for NBD_SERVER_TCP. */
void nbd_server_start_file(enum nbd_server_kind kind, const char *file, char *uri, size_t size);
/* nbdkit's memory plugin on a Unix socket with filters: @extra, NULL-terminated, "--filter=..."
 * arguments (before the plugin) and their "key=value" parameters (after it). */
void nbd_server_start_filtered(const char *const *extra, char *uri, size_t size);
/* The URI as upagerctl stats shows it: without the TLS user name and key file. */
const char *nbd_server_uri_shown(void);
/* The TLS server's URI without TLS (a plain connection it refuses). */
const char *nbd_server_uri_plain(void);
/* Stop it (SIGTERM, waited for); again with the same URI by nbd_server_restart(). */
void nbd_server_stop(void);
void nbd_server_restart(void);
bool nbd_server_running(void);
