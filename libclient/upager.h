/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libupager: memory mappings whose page faults are served by upagerd.
 *
 * The calls take the <sys/mman.h> constants and behave as mmap(2), mmap2(2), munmap(2), msync(2)
 * and remap_file_pages(2): they return MAP_FAILED or -1 and set errno on failure. The daemon is
 * reached at $UPAGER_SOCKET, else UPAGER_DEFAULT_SOCKET, on the first call of a process.
 */
#ifndef UPAGER_H
#define UPAGER_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPAGER_DEFAULT_SOCKET "/run/upager/upager.sock"

void *upager_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
void *upager_mmap2(void *addr, size_t length, int prot, int flags, int fd, off_t pgoffset);
int upager_munmap(void *addr, size_t length);
int upager_msync(void *addr, size_t length, int flags);
int upager_remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags);
int upager_set_growth_limit(void *addr, size_t max_length);

#ifdef __cplusplus
}
#endif

#endif /* UPAGER_H */
