/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Buffers of system calls touched from user mode first, for a user-mode-only userfaultfd. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Touch the pages of a buffer that upager serves: for a write into it if @into, else a read. */
size_t buffer_touch(const void *buf, size_t len, bool into);
void buffer_touch_iov(const struct iovec *iov, size_t cnt, bool into);
/* The C library's function @name (dlsym(RTLD_NEXT)), looked up once into @slot; or NULL. */
void *libc_fn(const char *name, void **slot);
