/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel's own memory calls, made with syscall(2): what the preload calls for every range that
 * is not upager's, and what the copy of libupager inside it calls instead of the interposed names.
 */
#pragma once

#include <signal.h>

#include <stddef.h>
#include <sys/types.h>

void *kernel_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
int kernel_munmap(void *addr, size_t length);
int kernel_msync(void *addr, size_t length, int flags);
void *kernel_mremap(void *old, size_t old_length, size_t new_length, int flags, void *new_addr);
int kernel_mprotect(void *addr, size_t length, int prot);
int kernel_madvise(void *addr, size_t length, int advice);
int kernel_sigaltstack(const stack_t *ss, stack_t *old);
int kernel_ioctl(int fd, unsigned long request, void *arg);
int kernel_remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags);
