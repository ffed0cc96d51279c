/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A file as the page store of its object (file-store.c). */
#pragma once

#include <stdint.h>

#include "store.h"

struct ring;
struct stat;
struct worker_pool;

/* On the loop, before the completions of the writes it follows: the file's status after them. */
typedef void (*file_store_written_fn)(void *userdata, const struct stat *st);

struct store *file_store_new(struct ring *ring, struct worker_pool *workers, uint32_t owner, int fd,
			     const int *fd_write, file_store_written_fn written, void *userdata);
void file_store_free(struct store *st);
