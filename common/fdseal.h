/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File seals (see fcntl(2)), as mmap(2) honours them. */
#pragma once

#include <fcntl.h>
#include <stdbool.h>

/* Whether fd's file is sealed against writes (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE): mmap(2)
 * then refuses a shared writable mapping with EPERM. */
static inline bool fd_write_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE));
}
