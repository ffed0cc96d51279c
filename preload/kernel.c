// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kernel's own memory calls. They need no dlsym() and no constructor, so that they serve the
 * calls other libraries' constructors make before ours ran, and they never come back into the
 * preload. The build links the preload's copy of libupager with --wrap for each of these names:
 * its calls of mmap(), munmap() and the others land in the __wrap_ functions here, so that what the
 * library maps for itself (the memfd of a mapping, its token page, its threads' spare pages) goes
 * to the kernel, from any of its threads, never through the routing.
 */
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel.h"

void *kernel_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	return (void *)syscall(SYS_mmap, addr, length, prot, flags, fd, offset);
}

int kernel_munmap(void *addr, size_t length)
{
	return (int)syscall(SYS_munmap, addr, length);
}

int kernel_msync(void *addr, size_t length, int flags)
{
	return (int)syscall(SYS_msync, addr, length, flags);
}

void *kernel_mremap(void *old, size_t old_length, size_t new_length, int flags, void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, old_length, new_length, flags, new_addr);
}

int kernel_mprotect(void *addr, size_t length, int prot)
{
	return (int)syscall(SYS_mprotect, addr, length, prot);
}

int kernel_madvise(void *addr, size_t length, int advice)
{
	return (int)syscall(SYS_madvise, addr, length, advice);
}

int kernel_sigaltstack(const stack_t *ss, stack_t *old)
{
	return (int)syscall(SYS_sigaltstack, ss, old);
}

int kernel_ioctl(int fd, unsigned long request, void *arg)
{
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

int kernel_remap_file_pages(void *addr, size_t size, int prot, size_t pgoff, int flags)
{
	return (int)syscall(SYS_remap_file_pages, addr, size, prot, pgoff, flags);
}

/* The names libupager's objects call, renamed by the linker (see preload/meson.build). */
void *__wrap_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
void *__wrap_mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
int __wrap_munmap(void *addr, size_t length);
int __wrap_msync(void *addr, size_t length, int flags);
void *__wrap_mremap(void *old, size_t old_length, size_t new_length, int flags, ...);
int __wrap_mprotect(void *addr, size_t length, int prot);
int __wrap_madvise(void *addr, size_t length, int advice);
int __wrap_mlock2(const void *addr, size_t len, unsigned int flags);
ssize_t __wrap_read(int fd, void *buf, size_t count);
ssize_t __wrap_pread64(int fd, void *buf, size_t count, off_t offset);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);

void *__wrap_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	return kernel_mmap(addr, length, prot, flags, fd, offset);
}

void *__wrap_mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	return kernel_mmap(addr, length, prot, flags, fd, offset);
}

int __wrap_munmap(void *addr, size_t length)
{
	return kernel_munmap(addr, length);
}

int __wrap_msync(void *addr, size_t length, int flags)
{
	return kernel_msync(addr, length, flags);
}

void *__wrap_mremap(void *old, size_t old_length, size_t new_length, int flags, ...)
{
	void *new_addr = NULL;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	return kernel_mremap(old, old_length, new_length, flags, new_addr);
}

int __wrap_mprotect(void *addr, size_t length, int prot)
{
	return kernel_mprotect(addr, length, prot);
}

int __wrap_madvise(void *addr, size_t length, int advice)
{
	return kernel_madvise(addr, length, advice);
}

/* Its locks of the memory it maps (MAP_LOCKED), which it populates itself. */
int __wrap_mlock2(const void *addr, size_t len, unsigned int flags)
{
	return (int)syscall(SYS_mlock2, addr, len, flags);
}

/* Its reads and its socket's messages: its buffers are never on memory it serves (buffers.c). */
ssize_t __wrap_read(int fd, void *buf, size_t count)
{
	return syscall(SYS_read, fd, buf, count);
}

ssize_t __wrap_pread64(int fd, void *buf, size_t count, off_t offset)
{
	return syscall(SYS_pread64, fd, buf, count, offset);
}

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return syscall(SYS_recvmsg, fd, msg, flags);
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return syscall(SYS_sendmsg, fd, msg, flags);
}
