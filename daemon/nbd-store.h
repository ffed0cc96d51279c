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
int nbd_store_open(uv_loop_t *loop, const char *uri, uint64_t max_bytes, struct store **out);
