/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mark of this process's own memory (daemon/mm.c), for tests that read it through its pid. */
#pragma once

#include <unistd.h>

#include "daemon/mm.h"

static inline struct mm_mark self_mark(void)
{
	static uint64_t token[4096 / 8] __attribute__((aligned(4096)));
	struct mm_mark m = { getpid(), (uintptr_t)token, { 0x1234567, 0x89abcdef } };

	mm_mark_page(&m, token);
	return m;
}
