// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Moving a range made of several of the kernel's mappings. The kernel's mremap(2) takes one
 * mapping at a time (EFAULT across two); the range's mappings, read from /proc/self/maps, move one
 * after the other to their places at the destination, and back where they were if one cannot. No
 * allocation: the preload may run inside malloc's own mmap(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/macro.h"
#include "kernel.h"
#include "vmas.h"

static bool hex(const char **s, const char *end, uintptr_t *out)
{
	uintptr_t v = 0;
	const char *p = *s;

	for (; p < end; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else
			break;
		v = v << 4 | d;
	}
	if (p == *s)
		return false;
	*s = p;
	*out = v;
	return true;
}

/**
 * vmas_find() - the kernel's mappings that make up [@lo, @hi), clipped to it, in order
 * @lo: the range's start
 * @hi: its end
 * @out: VMAS_MAX of them at most
 *
 * Return: how many, or a negative errno: -EFAULT where a page of the range is not mapped, -E2BIG
 * past VMAS_MAX.
 */
int vmas_find(uintptr_t lo, uintptr_t hi, struct vma *out)
{
	char buf[4096];
	size_t have = 0;
	uintptr_t next = lo;
	int n = 0, fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t got = read(fd, buf + have, sizeof(buf) - have);
		const char *s = buf, *end, *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
		end = buf + have;
		while ((nl = memchr(s, '\n', (size_t)(end - s)))) {
			uintptr_t a, b;
			const char *q = s;

			if (hex(&q, nl, &a) && q < nl && *q++ == '-' && hex(&q, nl, &b) && b > lo &&
			    a < hi && next < hi) {
				if (a > next || n == VMAS_MAX) {
					close(fd);
					return a > next ? -EFAULT : -E2BIG;
				}
				out[n].start = MAX(a, lo);
				out[n].end = MIN(b, hi);
				next = out[n++].end;
			}
			s = nl + 1;
		}
		have = (size_t)(end - s);
		memmove(buf, s, have);
	}
	close(fd);
	return next < hi ? -EFAULT : n;
}

/**
 * vmas_remap() - mremap(@old, @len, @len, @flags, @dst) of a range that may be several of the
 * kernel's mappings
 * @old: the range
 * @len: its length, which it keeps
 * @flags: MREMAP_MAYMOVE | MREMAP_FIXED, and MREMAP_DONTUNMAP if wanted
 * @dst: where it goes
 *
 * Return: @dst, or MAP_FAILED with errno set (the range as it was).
 */
void *vmas_remap(void *old, size_t len, int flags, void *dst)
{
	uintptr_t o = (uintptr_t)old, d = (uintptr_t)dst;
	struct vma v[VMAS_MAX];
	void *p = kernel_mremap(old, len, len, flags, dst);
	int n, i, err;

	if (p != MAP_FAILED || errno != EFAULT)
		return p;
	n = vmas_find(o, o + len, v);
	if (n <= 1) {
		errno = n < 0 ? -n : EFAULT;
		return MAP_FAILED;
	}
	for (i = 0; i < n; i++)
		if (kernel_mremap((void *)v[i].start, v[i].end - v[i].start, v[i].end - v[i].start,
				  flags, (void *)(d + (v[i].start - o))) == MAP_FAILED)
			break;
	if (i == n)
		return dst;
	err = errno;
	/* Back where they were, as a failed mremap(2) leaves them; left in place with
	 * MREMAP_DONTUNMAP, whose copies go. */
	while (i-- > 0) {
		void *at = (void *)(d + (v[i].start - o));
		size_t l = v[i].end - v[i].start;

		if (flags & MREMAP_DONTUNMAP)
			kernel_munmap(at, l);
		else
			kernel_mremap(at, l, l, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)v[i].start);
	}
	errno = err;
	return MAP_FAILED;
}
