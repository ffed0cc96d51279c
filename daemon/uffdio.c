// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "uffdio.h"

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? neg_errno() : 0;
}

/**
 * uffdio_api() - UFFDIO_API on a client's userfaultfd
 * @uffd: the descriptor
 * @want: features to enable
 * @features: set to the features in force
 *
 * Return: 0, -EINVAL if @uffd had its API set already or is no userfaultfd, -EPERM for features
 * that need privilege the daemon lacks.
 */
int uffdio_api(int uffd, uint64_t want, uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	int r;

	r = xioctl(uffd, UFFDIO_API, &api);
	if (r < 0)
		return r;
	*features = want;
	return 0;
}

/**
 * uffdio_register() - register [start, start+len) of the descriptor's mm
 * Return: 0 or a negative errno from UFFDIO_REGISTER.
 */
int uffdio_register(int uffd, uint64_t start, uint64_t len, uint64_t mode)
{
	struct uffdio_register reg = { .range = { start, len }, .mode = mode };

	return xioctl(uffd, UFFDIO_REGISTER, &reg);
}

/**
 * uffdio_continue() - map cache pages that exist already and wake the waiters
 * @wp: map them write-protected (a write then faults to the daemon)
 * Return: 0, -EEXIST if a page was mapped already, -EFAULT if a page is not in the cache,
 * -ESRCH if the mm is gone, or another negative errno.
 */
int uffdio_continue(int uffd, uint64_t start, uint64_t len, bool wp)
{
	struct uffdio_continue c = { .range = { start, len },
				     .mode = wp ? UFFDIO_CONTINUE_MODE_WP : 0 };

	return xioctl(uffd, UFFDIO_CONTINUE, &c);
}

/**
 * uffdio_copy() - allocate pages for the range, copy @src into them, map them and wake the waiters
 * @wp: map them write-protected
 *
 * In a shared mapping of a memfd the pages go into the memfd, as a write(2) would put them.
 *
 * Return: 0, -EEXIST if a page was there already, -ESRCH if the mm is gone, or another negative
 * errno.
 */
int uffdio_copy(int uffd, uint64_t start, const void *src, uint64_t len, bool wp)
{
	struct uffdio_copy c = { .dst = start,
				 .src = (uintptr_t)src,
				 .len = len,
				 .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };

	return xioctl(uffd, UFFDIO_COPY, &c);
}

/**
 * uffdio_writeprotect() - write-protect a range, or lift the protection and wake its waiters
 * Return: 0 or a negative errno.
 */
int uffdio_writeprotect(int uffd, uint64_t start, uint64_t len, bool wp)
{
	struct uffdio_writeprotect w = { .range = { start, len },
					 .mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };

	return xioctl(uffd, UFFDIO_WRITEPROTECT, &w);
}

/**
 * uffdio_zeropage() - map the zero page (private anonymous memory)
 * Return: 0 or a negative errno (-EEXIST if already present).
 */
int uffdio_zeropage(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_zeropage z = { .range = { start, len } };

	return xioctl(uffd, UFFDIO_ZEROPAGE, &z);
}

/**
 * uffdio_poison() - make the range raise SIGBUS when touched
 * Return: 0 or a negative errno.
 */
int uffdio_poison(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_poison p = { .range = { start, len } };

	return xioctl(uffd, UFFDIO_POISON, &p);
}

/**
 * uffdio_wake() - wake threads waiting on faults in the range
 * Return: 0 or a negative errno.
 */
int uffdio_wake(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { start, len };

	return xioctl(uffd, UFFDIO_WAKE, &r);
}

/**
 * uffdio_lowest_addr() - the lowest address a process may map (vm.mmap_min_addr, at least a page)
 */
uint64_t uffdio_lowest_addr(void)
{
	static uint64_t lowest;

	if (lowest == 0) {
		unsigned long v = 0x10000;
		FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "re");

		if (f) {
			if (fscanf(f, "%lu", &v) != 1)
				v = 0x10000;
			fclose(f);
		}
		lowest = ALIGN_UP((uint64_t)MAX(v, UPAGER_PAGE_SIZE), UPAGER_PAGE_SIZE);
	}
	return lowest;
}

/**
 * uffdio_alive() - whether the mm behind a userfaultfd still exists
 * @uffd: the descriptor
 * @addr: a page that no range registered on @uffd holds
 *
 * Asks for a zero page at @addr: the kernel checks the mm before it looks for the address, and
 * then finds nothing of the descriptor's there and maps nothing.
 *
 * Return: 1 while the mm lives, 0 once it is gone.
 */
int uffdio_alive(int uffd, uint64_t addr)
{
	return uffdio_zeropage(uffd, addr, UPAGER_PAGE_SIZE) != -ESRCH;
}

/**
 * uffdio_probe_features() - features this kernel offers, asked on a throw-away userfaultfd
 * Return: the UFFD_FEATURE_* mask, 0 if userfaultfd is not available at all.
 */
uint64_t uffdio_probe_features(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	_cleanup_close_ int fd = -1;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return 0;
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return 0;
	return api.features;
}

/**
 * uffdio_feature_allowed() - whether this process may enable @feature (EVENT_FORK needs
 * CAP_SYS_PTRACE), asked on a throw-away userfaultfd
 * Return: true if UFFDIO_API with @feature succeeds.
 */
bool uffdio_feature_allowed(uint64_t feature)
{
	struct uffdio_api api = { .api = UFFD_API, .features = feature };
	_cleanup_close_ int fd = -1;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	return fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0;
}
