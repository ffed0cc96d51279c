/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's memfds: what a client that is handed one can do with it. */
#pragma once

#include <fcntl.h>
#include <stdint.h>

int memfd_new(const char *name, uint64_t size, unsigned seals, int *out);
int memfd_protect(int fd, unsigned seals);

/* The seals of a memfd whose size never changes. */
#define MEMFD_FIXED_SIZE (F_SEAL_SHRINK | F_SEAL_GROW)
