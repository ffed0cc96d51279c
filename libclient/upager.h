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

/*
 * NetBSD's mmap(2) extensions, in bits of flags that no Linux MAP_ flag uses on x86-64 (up to
 * Linux 6.18): see upager_mmap(3). UPAGER_MAP_ALIGNED(n) aligns the mapping to 2^n bytes, n from 12
 * to 41; any other n but 0 makes the call fail with EINVAL.
 */
#define UPAGER_MAP_TRYFIXED 0x200
#define UPAGER_MAP_WIRED 0x400
#define UPAGER_MAP_ALIGNMENT_SHIFT 21
#define UPAGER_MAP_ALIGNMENT_MASK (0x1f << UPAGER_MAP_ALIGNMENT_SHIFT)
#define UPAGER_MAP_ALIGNED(n)                                                                   \
	((n) == 0		  ? 0                                                           \
	 : (n) >= 12 && (n) <= 41 ? (int)(((unsigned int)(n)-11) << UPAGER_MAP_ALIGNMENT_SHIFT) \
				  : UPAGER_MAP_ALIGNMENT_MASK)
#define UPAGER_MAP_ALIGNMENT_64KB UPAGER_MAP_ALIGNED(16)
#define UPAGER_MAP_ALIGNMENT_16MB UPAGER_MAP_ALIGNED(24)
#define UPAGER_MAP_ALIGNMENT_4GB UPAGER_MAP_ALIGNED(32)
#define UPAGER_MAP_ALIGNMENT_1TB UPAGER_MAP_ALIGNED(40)

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
