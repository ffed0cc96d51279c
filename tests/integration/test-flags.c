// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Flags of mmap(2) beyond the common ones, each checked against what the kernel's own mmap(2) does
 * with the same call: MAP_FIXED at address 0.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(flags, .init = harness_start, .fini = harness_stop, .timeout = 60);

/* A mapping of 4 pages at address 0 through map, written and read back; 0 or the errno. */
static int map_at_zero(void *(*map)(void *, size_t, int, int, int, off_t),
		       int (*unmap)(void *, size_t), int flags)
{
	volatile char *p = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			       flags | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	int ret = 0;

	if (p == MAP_FAILED)
		return errno;
	if (p != NULL)
		ret = -1;
	/* Hide from the compiler that p is NULL: it may trap there instead of writing. */
	__asm__ volatile("" : "+r"(p));
	if (p[3 * PAGE] != 0)
		ret = -2;
	p[0] = 'z';
	p[3 * PAGE + 1] = 'y';
	if (p[0] != 'z' || p[3 * PAGE + 1] != 'y')
		ret = -3;
	unmap((void *)p, 4 * PAGE);
	return ret;
}

static void *kernel_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
	return mmap(a, l, p, f, fd, o);
}

static void drop_sys_rawio(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		_exit(90);
	d[CAP_SYS_RAWIO / 32].effective &= ~(1u << (CAP_SYS_RAWIO % 32));
	if (syscall(SYS_capset, &h, d) < 0)
		_exit(91);
}

/* In a child without CAP_SYS_RAWIO: exits with the errno of each (kernel * 16 + upager), or 0. */
static void zero_without_rawio(void *arg)
{
	int flags = *(int *)arg, k, u;

	drop_sys_rawio();
	k = map_at_zero(kernel_mmap, munmap, flags);
	u = map_at_zero(upager_mmap, upager_munmap, flags);
	_exit(k == u ? 0 : 100 + (k > 0 ? k : 0));
}

/*
 * As the kernel: MAP_FIXED at 0 maps there for a caller with CAP_SYS_RAWIO when vm.mmap_min_addr
 * allows it; without the capability, an address below vm.mmap_min_addr is EPERM.
 */
Test(flags, map_fixed_at_zero_as_the_kernel)
{
	const int types[] = { MAP_PRIVATE, MAP_SHARED };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int k = map_at_zero(kernel_mmap, munmap, types[i]);
		int u = map_at_zero(upager_mmap, upager_munmap, types[i]);
		int status;

		cr_assert_eq(u, k, "type %#x: upager %d (%s), kernel %d (%s)", types[i], u,
			     u > 0 ? strerror(u) : "-", k, k > 0 ? strerror(k) : "-");
		status = run_child(zero_without_rawio, (void *)&types[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "type %#x without CAP_SYS_RAWIO: status %#x", types[i], status);
	}
}
