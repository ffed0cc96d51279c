/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A file as the page store of its object (file-store.c). */
#pragma once

#include "store.h"

struct ring;

struct store *file_store_new(struct ring *ring, int fd);
void file_store_free(struct store *st);
