// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Flags of mmap(2) beyond the common ones, each checked against what the kernel's own mmap(2) does
 * with the same call: MAP_FIXED at address 0, MAP_DROPPABLE; and NetBSD's MAP_ALIGNED, MAP_TRYFIXED and MAP_WIRED.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mman.h"
#include "harness.h"
#include "upager.h"

TestSuite(flags, .init = harness_start, .fini = harness_stop, .timeout = 60);

/*
 * A mapping of 4 pages at address 0 through map, written and read back; 0 or the errno. Address 0
 * is what is tested: the sanitizer must not take its use for a null pointer's.
 */
__attribute__((no_sanitize("undefined"))) static int
map_at_zero(void *(*map)(void *, size_t, int, int, int, off_t), int (*unmap)(void *, size_t),
	    int flags)
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

/* In a child: the droppable mapping reads zeroes (MADV_WIPEONFORK, as Linux's). */
static void droppable_child(void *arg)
{
	volatile char *p = arg;

	_exit(p[0] == 0 && p[PAGE] == 0 ? 0 : 1);
}

/*
 * MAP_DROPPABLE (Linux 6.11): private anonymous memory, refused (EINVAL) for a file, with
 * MAP_LOCKED and with MAP_GROWSDOWN, as by the kernel; a forked child sees zeroes. Its pages
 * going first under the budget is test-pageout's.
 */
Test(flags, map_droppable_is_private_anonymous_memory)
{
	int fd = make_pattern_file("droppable", PAGE, NULL);
	const struct {
		int flags, fd;
	} bad[] = {
		{ MAP_DROPPABLE, fd },
		{ MAP_DROPPABLE | MAP_ANONYMOUS | MAP_LOCKED, -1 },
		{ MAP_DROPPABLE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1 },
	};
	char *p;
	int status;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert_eq(mmap(NULL, PAGE, PROT_READ, bad[i].flags, bad[i].fd, 0), MAP_FAILED);
		cr_assert_eq(errno, EINVAL);
		errno = 0;
		cr_assert_eq(upager_mmap(NULL, PAGE, PROT_READ, bad[i].flags, bad[i].fd, 0),
			     MAP_FAILED, "flags %#x accepted", bad[i].flags);
		cr_assert_eq(errno, EINVAL, "flags %#x: %s", bad[i].flags, strerror(errno));
	}
	p = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1,
			0);
	cr_assert_neq(p, MAP_FAILED, "%s", strerror(errno));
	cr_assert_eq(p[PAGE], 0);
	p[0] = 'd';
	p[PAGE] = 'e';
	cr_assert_eq(p[0] + p[PAGE], 'd' + 'e');
	status = run_child(droppable_child, p);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child saw the parent's pages");
	cr_assert_eq(p[0], 'd');
	cr_assert_eq(upager_munmap(p, 2 * PAGE), 0);
}

/* The bytes of PROT_NONE mappings in /proc/self/maps (a reservation left behind shows here). */
static uint64_t prot_none_bytes(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long lo, hi;
	char perms[5], line[512];
	uint64_t sum = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && !strcmp(perms, "---p"))
			sum += hi - lo;
	fclose(f);
	return sum;
}

/* An address range of length bytes that nothing maps now. */
static char *free_range(size_t length)
{
	char *p = mmap(NULL, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	munmap(p, length);
	return p;
}

/* NetBSD's MAP_ALIGNED(n): the mapping starts at a multiple of 2^n, with nothing left around it. */
Test(flags, map_aligned_aligns_to_two_to_the_n)
{
	const int shifts[] = { 12, 16, 21, 24, 30 };
	int fd = make_pattern_file("aligned", 8 * PAGE, NULL);

	for (size_t i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
		size_t align = (size_t)1 << shifts[i];
		uint64_t none = prot_none_bytes();
		uint64_t *f = upager_mmap(NULL, 8 * PAGE, PROT_READ,
					  MAP_SHARED | UPAGER_MAP_ALIGNED(shifts[i]), fd, 0);
		char *a = upager_mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | UPAGER_MAP_ALIGNED(shifts[i]),
				      -1, 0);

		cr_assert_neq(f, MAP_FAILED, "n=%d: %s", shifts[i], strerror(errno));
		cr_assert_neq(a, MAP_FAILED, "n=%d: %s", shifts[i], strerror(errno));
		cr_assert_eq((uintptr_t)f % align, 0, "n=%d: file mapping at %p", shifts[i], f);
		cr_assert_eq((uintptr_t)a % align, 0, "n=%d: anonymous mapping at %p", shifts[i],
			     a);
		cr_assert_eq(f[5 * PAGE / 8 + 3], pattern_at(5 * PAGE + 24));
		cr_assert_eq(a[2 * PAGE], 0);
		a[2 * PAGE] = 7;
		cr_assert_eq(a[2 * PAGE], 7);
#ifndef UPAGER_SANITIZED /* the sanitizer's runtime maps and unmaps reserved ranges of its own */
		cr_assert_eq(prot_none_bytes(), none, "n=%d: the reservation stayed", shifts[i]);
#else
		(void)none;
#endif
		cr_assert_eq(upager_munmap(f, 8 * PAGE), 0);
		cr_assert_eq(upager_munmap(a, 3 * PAGE), 0);
	}
}

/* n below the page size's, or beyond what the flags can hold, is EINVAL; so is a fixed addr
 * that is not a multiple of 2^n. */
Test(flags, map_aligned_refuses_what_it_cannot_align)
{
	const int bad[] = { 1, 11, 42, 63, -1 };
	char *hole = free_range(4 << 20);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert_eq(upager_mmap(NULL, PAGE, PROT_READ,
					 MAP_PRIVATE | MAP_ANONYMOUS | UPAGER_MAP_ALIGNED(bad[i]),
					 -1, 0),
			     MAP_FAILED, "n=%d accepted", bad[i]);
		cr_assert_eq(errno, EINVAL, "n=%d: %s", bad[i], strerror(errno));
	}
	hole = (char *)(((uintptr_t)hole + (1 << 20) - 1) & ~(uintptr_t)((1 << 20) - 1));
	errno = 0;
	cr_assert_eq(upager_mmap(hole + PAGE, PAGE, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | UPAGER_MAP_ALIGNED(20),
				 -1, 0),
		     MAP_FAILED);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(upager_mmap(hole, PAGE, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | UPAGER_MAP_ALIGNED(20),
				 -1, 0),
		     hole);
	cr_assert_eq(upager_munmap(hole, PAGE), 0);
}

/*
 * NetBSD's MAP_TRYFIXED: the hint is taken whenever it is free, also in the gap the kernel keeps
 * below a stack (a plain hint there is moved), and replaced when anything is mapped there, which
 * stays as it was; a hint that cannot be mapped at all is as no hint.
 */
Test(flags, map_tryfixed_takes_a_free_hint_and_clobbers_nothing)
{
	char *hole = free_range(8 << 20);
	char *stack = mmap(hole + (4 << 20), 4 * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
	char *below = stack - 16 * PAGE, *other = hole + PAGE, *p;

	cr_assert_eq(stack, hole + (4 << 20));
	p = mmap(below, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, below, "the kernel took a hint in the stack's gap");
	munmap(p, 4 * PAGE);
	p = upager_mmap(below, 4 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | UPAGER_MAP_TRYFIXED, -1, 0);
	cr_assert_eq(p, below, "a free hint was moved to %p", p);
	p[0] = 1;
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);

	cr_assert_eq(mmap(other, 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
		     other);
	other[PAGE] = 'k';
	p = upager_mmap(other - PAGE, 4 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | UPAGER_MAP_TRYFIXED, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "%s", strerror(errno));
	cr_assert(p + 4 * PAGE <= other || p >= other + 2 * PAGE, "mapped over %p at %p", other, p);
	cr_assert_eq(other[PAGE], 'k');
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);
	munmap(other, 2 * PAGE);
	munmap(stack, 4 * PAGE);
	/* A hint that is "otherwise unavailable", past the address space's end: as if there were
	 * no MAP_TRYFIXED (it failed with ENOMEM). */
	p = upager_mmap((void *)(1UL << 48), 4 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | UPAGER_MAP_TRYFIXED, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "a hint past the end: %s", strerror(errno));
	p[0] = 1;
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);
}

/*
 * MAP_TRYFIXED with Linux's MAP_32BIT: a free hint above the first 2 GiB is not taken, as the
 * kernel's own MAP_32BIT takes no hint there: the mapping lies in the first 2 GiB all the same.
 */
Test(flags, map_tryfixed_with_map_32bit_stays_in_the_first_two_gigabytes)
{
	char *hint = free_range(8 << 20), *p;

	cr_assert_gt((uintptr_t)hint, 1UL << 31);
	p = upager_mmap(hint, 4 * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT | UPAGER_MAP_TRYFIXED, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "%s", strerror(errno));
	cr_assert_leq((uintptr_t)p + 4 * PAGE, 1UL << 31, "mapped at %p", p);
	p[0] = 1;
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);
}

/* VmLck of /proc/self/status, in bytes. */
static uint64_t locked_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long kb = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* NetBSD's MAP_WIRED: the whole mapping is in memory and locked when the call returns. */
Test(flags, map_wired_is_locked_and_populated)
{
	int fd = make_pattern_file("wired", 16 * PAGE, NULL);
	uint64_t before = locked_bytes();
	uint64_t *f = upager_mmap(NULL, 16 * PAGE, PROT_READ, MAP_SHARED | UPAGER_MAP_WIRED, fd, 0);
	char *a = upager_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | UPAGER_MAP_WIRED, -1, 0);

	cr_assert_neq(f, MAP_FAILED, "%s", strerror(errno));
	cr_assert_neq(a, MAP_FAILED, "%s", strerror(errno));
	cr_assert_eq(locked_bytes() - before, 32 * PAGE);
	for (size_t i = 0; i < 16; i++) {
		cr_assert(page_present((char *)f + i * PAGE), "file page %zu not present", i);
		cr_assert(page_present(a + i * PAGE), "anonymous page %zu not present", i);
	}
	cr_assert_eq(f[9 * PAGE / 8], pattern_at(9 * PAGE));
	cr_assert_eq(upager_munmap(f, 16 * PAGE), 0);
	cr_assert_eq(upager_munmap(a, 16 * PAGE), 0);
}

/*
 * MAP_32BIT puts the mapping in the first 2 GiB, as mmap(2) says, also with MAP_GROWSDOWN and
 * UPAGER_MAP_ALIGNED(n), whose areas the library reserves first (they were placed above).
 */
Test(flags, map_32bit_holds_with_growsdown_and_aligned)
{
	const uintptr_t two_gib = 1UL << 31;
	char *g = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT | MAP_GROWSDOWN, -1, 0);
	char *a = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT | UPAGER_MAP_ALIGNED(16), -1,
			      0);

	cr_assert_neq(g, MAP_FAILED, "%s", strerror(errno));
	cr_assert_neq(a, MAP_FAILED, "%s", strerror(errno));
	cr_assert_lt((uintptr_t)g + 4 * PAGE, two_gib, "MAP_GROWSDOWN at %p", (void *)g);
	cr_assert_lt((uintptr_t)a + 4 * PAGE, two_gib, "UPAGER_MAP_ALIGNED(16) at %p", (void *)a);
	cr_assert_eq((uintptr_t)a % (1UL << 16), 0);
	g[0] = a[0] = 1;
	cr_assert_eq(upager_munmap(g, 4 * PAGE), 0);
	cr_assert_eq(upager_munmap(a, 4 * PAGE), 0);
}
