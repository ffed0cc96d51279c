/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mmap(2) definitions newer than the build machine's headers (Debian 12 ships 6.1), with the
 * kernel's values.
 */
#pragma once

#include <stdbool.h>
#include <sys/mman.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08 /* Linux 6.11: a private anonymous mapping whose pages may go */
#endif

/* Whether mmap @flags make private anonymous memory: MAP_PRIVATE or MAP_DROPPABLE. */
static inline bool map_private_anon(int flags)
{
	return (flags & MAP_ANONYMOUS) &&
	       ((flags & MAP_TYPE) == MAP_PRIVATE || (flags & MAP_TYPE) == MAP_DROPPABLE);
}
