/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A swap store on an NBD server (nbd-store.c): nbdkit, qemu-nbd or any other, reached through
 * libnbd by a URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct store;

bool nbd_store_is_uri(const char *where);
bool nbd_store_available(void);
struct nbd_store_opts {
	uint64_t max_bytes; /* the most it holds */
	uint64_t timeout_ms; /* how long requests wait for a server that went away */
	unsigned connections; /* how many, if the server offers multi-conn (else one) */
	bool kept; /* its tables in a memfd (nbd_store_tables_fd()), for the fd store */
	int tables_fd; /* the tables of a previous daemon's store on the same export, or -1 */
};

int nbd_store_open(uv_loop_t *loop, const char *uri, const struct nbd_store_opts *opts,
		   struct store **out);
int nbd_store_tables_fd(struct store *st);
