/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the daemon, the library and the CLI. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define UPAGER_PAGE_SIZE 4096UL
#define UPAGER_PAGE_SHIFT 12

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* <sys/param.h> has the same two. */
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define ALIGN_UP(x, a) ALIGN_DOWN((x) + (a)-1, (a))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a)-1)) == 0)

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _public_ __attribute__((visibility("default")))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
	}
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand a descriptor out of a _cleanup_close_ variable. */
static inline int fd_take(int *fd)
{
	int r = *fd;

	*fd = -1;
	return r;
}

/* -errno of the last failed call, never 0. */
static inline int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}
