// SPDX-License-Identifier: LGPL-2.1-or-later
/* Errors as mmap(2): each bad call fails as the kernel's own mmap(2) fails, with the same errno. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(errors, .init = harness_start, .fini = harness_stop, .timeout = 60);

struct call {
	void *addr;
	size_t length;
	int prot, flags, fd;
	off_t offset;
	int expect;
	const char *what;
};

/* The kernel and upager fail the same call with the same errno. */
static void check_same(const struct call *c)
{
	void *k, *u;
	int kerr, uerr;

	errno = 0;
	k = mmap(c->addr, c->length, c->prot, c->flags, c->fd, c->offset);
	kerr = errno;
	errno = 0;
	u = upager_mmap(c->addr, c->length, c->prot, c->flags, c->fd, c->offset);
	uerr = errno;
	cr_assert_eq(k, MAP_FAILED, "%s: the kernel accepted it", c->what);
	cr_assert_eq(u, MAP_FAILED, "%s: upager accepted it", c->what);
	cr_assert_eq(kerr, c->expect, "%s: kernel errno %s", c->what, strerror(kerr));
	cr_assert_eq(uerr, c->expect, "%s: upager errno %s, expected %s", c->what, strerror(uerr),
		     strerror(c->expect));
}

Test(errors, bad_calls_fail_as_mmap_fails)
{
	int rw = make_pattern_file("f", 4 * PAGE, NULL);
	char path[400];
	int ro, wo, dir, pfd[2], sealed, future_sealed, ro_zero, null = open("/dev/null", O_RDWR);
	void *taken;

	snprintf(path, sizeof(path), "%s/f", harness_tmpdir());
	ro = open(path, O_RDONLY);
	wo = open(path, O_WRONLY);
	dir = open(harness_tmpdir(), O_RDONLY | O_DIRECTORY);
	cr_assert_eq(pipe(pfd), 0);
	sealed = memfd_create("sealed", MFD_ALLOW_SEALING);
	future_sealed = memfd_create("future", MFD_ALLOW_SEALING);
	ro_zero = open("/dev/zero", O_RDONLY);
	cr_assert(sealed >= 0 && future_sealed >= 0 && ro_zero >= 0);
	cr_assert_eq(ftruncate(sealed, 4 * PAGE), 0);
	cr_assert_eq(ftruncate(future_sealed, 4 * PAGE), 0);
	cr_assert_eq(fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE), 0);
	cr_assert_eq(fcntl(future_sealed, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
	taken = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	const struct call calls[] = {
		{ NULL, 0, PROT_READ, MAP_SHARED, rw, 0, EINVAL, "length 0" },
		{ NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, EINVAL, "anon length 0" },
		/* Length 0 is refused before the file is looked at, but after the descriptor. */
		{ NULL, 0, PROT_READ, MAP_PRIVATE, dir, 0, EINVAL, "length 0, a directory" },
		{ NULL, 0, PROT_READ, MAP_PRIVATE, pfd[0], 0, EINVAL, "length 0, a pipe" },
		{ NULL, 0, PROT_READ, MAP_PRIVATE, wo, 0, EINVAL, "length 0, fd write-only" },
		{ NULL, 0, PROT_READ, MAP_SHARED, -1, 0, EBADF, "length 0, fd -1" },
		{ NULL, 0, PROT_READ, MAP_PRIVATE, 9999, 0, EBADF, "length 0, fd not open" },
		{ NULL, PAGE, PROT_READ, MAP_SHARED, rw, 100, EINVAL, "unaligned offset" },
		{ NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 4095, EINVAL,
		  "anon unaligned offset" },
		{ (char *)taken + 1, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, rw, 0, EINVAL,
		  "MAP_FIXED unaligned addr" },
		{ NULL, PAGE, PROT_READ, 0, rw, 0, EINVAL, "neither shared nor private" },
		{ NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0, EINVAL, "anon, no type" },
		{ NULL, PAGE, PROT_READ, MAP_SHARED, -1, 0, EBADF, "fd -1" },
		{ NULL, PAGE, PROT_READ, MAP_PRIVATE, 9999, 0, EBADF, "fd not open" },
		{ NULL, PAGE, PROT_READ, MAP_PRIVATE, wo, 0, EACCES, "fd write-only" },
		{ NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0, EACCES,
		  "shared writable on a read-only fd" },
		{ NULL, PAGE, PROT_READ, MAP_PRIVATE, dir, 0, ENODEV, "a directory" },
		{ NULL, PAGE, PROT_READ, MAP_PRIVATE, pfd[0], 0, ENODEV, "a pipe" },
		{ NULL, PAGE, PROT_READ, MAP_PRIVATE, pfd[1], 0, EACCES, "a pipe's write end" },
		{ NULL, PAGE, PROT_READ, MAP_SHARED, null, 0, ENODEV,
		  "a device that maps nothing" },
		{ taken, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, rw, 0, EEXIST,
		  "MAP_FIXED_NOREPLACE over a mapping" },
		{ taken, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0,
		  EEXIST, "anon MAP_FIXED_NOREPLACE over a mapping" },
		{ NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, rw, 0, EOPNOTSUPP,
		  "MAP_SHARED_VALIDATE with an unknown flag" },
		{ NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, rw, 0, EOPNOTSUPP,
		  "MAP_SYNC on a file that is not DAX" },
		{ NULL, PAGE, PROT_READ, MAP_SHARED, rw, -4096, EOVERFLOW, "negative offset" },
		{ NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sealed, 0, EPERM,
		  "shared writable, sealed against writes" },
		{ NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, future_sealed, 0, EPERM,
		  "shared writable, sealed against future writes" },
		{ NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro_zero, 0, EACCES,
		  "/dev/zero read-only, shared writable" },
		{ NULL, (size_t)-1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, ENOMEM,
		  "length too large" },
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		check_same(&calls[i]);

	/* munmap of an unaligned address, or of length 0. */
	errno = 0;
	cr_assert_eq(upager_munmap((char *)taken + 10, PAGE), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(upager_munmap(taken, 0), -1);
	cr_assert_eq(errno, EINVAL);
	/* msync: unknown flags, both MS_SYNC and MS_ASYNC, unaligned address, unmapped range. */
	errno = 0;
	cr_assert_eq(upager_msync(taken, PAGE, MS_SYNC | MS_ASYNC), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(upager_msync(taken, PAGE, 0x100), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(upager_msync((char *)taken + 1, PAGE, MS_SYNC), -1);
	cr_assert_eq(errno, EINVAL);
	munmap(taken, 2 * PAGE);
	errno = 0;
	cr_assert_eq(upager_msync(taken, PAGE, MS_SYNC), -1);
	cr_assert_eq(errno, ENOMEM);
}

/* msync(2)'s length is rounded up to pages first: past SIZE_MAX it is 0 and the call syncs
 * nothing and succeeds; a length that wraps around the address space once rounded is ENOMEM. */
Test(errors, msync_of_a_length_that_rounds_up_to_nothing_succeeds_as_linux)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	void *m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	void *k = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_neq(k, MAP_FAILED);
	cr_assert_eq(msync(k, SIZE_MAX, MS_SYNC), 0);
	cr_assert_eq(upager_msync(m, SIZE_MAX, MS_SYNC), 0, "%s", strerror(errno));
	errno = 0;
	cr_assert_eq(msync(k, SIZE_MAX - 2 * PAGE + 1, MS_SYNC), -1);
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_eq(upager_msync(m, SIZE_MAX - 2 * PAGE + 1, MS_SYNC), -1);
	cr_assert_eq(errno, ENOMEM);
	munmap(k, 4 * PAGE);
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	close(fd);
}

Test(errors, map_fixed_replaces_an_existing_mapping)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	struct region_info v[8];
	uint64_t *a = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *b;
	int n;

	cr_assert_neq(a, MAP_FAILED);
	a[0] = 42;
	a[PAGE / 8 * 3] = 43;
	b = upager_mmap(a + PAGE / 8, 2 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 2 * PAGE);
	cr_assert_eq(b, a + PAGE / 8, "%m");
	cr_assert_eq(a[0], 42);
	cr_assert_eq(b[0], pattern_at(2 * PAGE));
	cr_assert_eq(b[PAGE / 8], pattern_at(3 * PAGE));
	cr_assert_eq(a[PAGE / 8 * 3], 43);
	n = harness_list(getpid(), v, 8);
	cr_assert_eq(n, 3, "regions: %d", n);
	cr_assert_eq(v[0].start, (uintptr_t)a);
	cr_assert_eq(v[0].length, PAGE);
	cr_assert_eq(v[1].start, (uintptr_t)b);
	cr_assert_eq(v[1].length, 2 * PAGE);
	cr_assert_eq(v[1].offset, 2 * PAGE);
	cr_assert_str_neq(v[1].backing, "anon");
	cr_assert_eq(v[2].start, (uintptr_t)(a + 3 * PAGE / 8));
	cr_assert_eq(v[2].offset, 0);
}

/*
 * A munmap(2) the kernel refuses (a range past the end of the user address space) changes
 * nothing: the daemon still serves the mapping. Before, it forgot the mapping first, and the
 * pages not yet touched then raised SIGBUS.
 */
Test(errors, a_munmap_the_kernel_refuses_leaves_the_mapping_served)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	uint64_t *m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	struct region_info info;

	cr_assert_neq(m, MAP_FAILED);
	errno = 0;
	cr_assert_eq(upager_munmap(m, (size_t)1 << 62), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(upager_munmap(m, ((size_t)1 << 57) - (uintptr_t)m), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert(harness_region(getpid(), m, &info), "the daemon forgot the mapping");
	for (uint64_t i = 0; i < 4; i++)
		cr_assert_eq(m[i * PAGE / 8], pattern_at(i * PAGE));
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	close(fd);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void map_without_daemon(void *p)
{
	const char *sock = p;
	double t0;
	void *m;

	setenv("UPAGER_SOCKET", sock, 1);
	t0 = now();
	errno = 0;
	m = upager_mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED)
		_exit(10);
	if (now() - t0 > 1.0)
		_exit(11);
	_exit(errno == ECONNREFUSED ? 1 : errno == ENOENT ? 2 : 12);
}

Test(errors, no_daemon_fails_at_once)
{
	char missing[400], dead[400];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, status;

	snprintf(missing, sizeof(missing), "%s/nobody.sock", harness_tmpdir());
	status = run_child(map_without_daemon, missing);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 2, "exit %d", WEXITSTATUS(status));

	/* A socket file that nobody listens on. */
	snprintf(dead, sizeof(dead), "%s/dead.sock", harness_tmpdir());
	s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	strcpy(sa.sun_path, dead);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	status = run_child(map_without_daemon, dead);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 1, "exit %d", WEXITSTATUS(status));
}

Test(errors, a_file_sealed_against_writes_maps_shared_for_reading)
{
	int fd = memfd_create("sealed", MFD_ALLOW_SEALING);
	uint64_t word = 0x1234;
	const uint64_t *m;

	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, 4 * PAGE), 0);
	cr_assert_eq(pwrite(fd, &word, 8, PAGE), 8);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
	m = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED, "%m");
	cr_assert_eq(m[PAGE / 8], 0x1234);
	cr_assert_eq(m[0], 0);
	/* Nothing to write back, and nothing that could be. */
	cr_assert_eq(upager_msync((void *)m, 4 * PAGE, MS_SYNC), 0);
	cr_assert_eq(upager_munmap((void *)m, 4 * PAGE), 0);
}

/*
 * A call with several faults fails as the kernel's does: do_mmap() looks at the length, the
 * address and MAP_FIXED_NOREPLACE, then at MAP_LOCKED, and only then at the type, the
 * descriptor's access and the file. Each call here is over a mapping already there.
 */
Test(errors, a_call_with_several_faults_fails_with_the_kernel_s_first)
{
	char path[400];
	int rw = make_pattern_file("f", 4 * PAGE, path), ro = open(path, O_RDONLY);
	int wo = open(path, O_WRONLY), dir = open(harness_tmpdir(), O_RDONLY | O_DIRECTORY);
	void *taken = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const int nr = MAP_FIXED_NOREPLACE;

	cr_assert(ro >= 0 && wo >= 0 && dir >= 0 && taken != MAP_FAILED);
	const struct call calls[] = {
		{ taken, PAGE, PROT_READ, nr, rw, 0, EEXIST, "no type" },
		{ taken, PAGE, PROT_READ, MAP_SHARED | nr, wo, 0, EEXIST, "write-only" },
		{ taken, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | nr, ro, 0, EEXIST,
		  "read-only, shared writable" },
		{ taken, PAGE, PROT_READ, MAP_SHARED | nr, dir, 0, EEXIST, "a directory" },
		{ taken, PAGE, PROT_READ, MAP_SHARED_VALIDATE | nr | 0x200000, rw, 0, EEXIST,
		  "an unknown flag validated" },
		{ taken, PAGE, PROT_READ, MAP_SHARED | nr, rw, -4096, EEXIST, "a negative offset" },
		{ (char *)taken + 1, PAGE, PROT_READ, nr, rw, 0, EINVAL, "unaligned, no type" },
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		check_same(&calls[i]);
	munmap(taken, 2 * PAGE);
	close(ro);
	close(wo);
	close(dir);
	close(rw);
}

/*
 * The address space's own faults come before the descriptor's and the file's, as mmap(2) asks
 * get_unmapped_area() first: a length it cannot hold, a fixed range past its end (ENOMEM, before
 * an unaligned address's EINVAL), and, for a user without CAP_SYS_RAWIO, a fixed address below
 * vm.mmap_min_addr (EPERM).
 */
static void below_min_child(void *arg)
{
	int wo = *(int *)arg;
	const struct call calls[] = {
		{ NULL, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, wo, 0, EPERM,
		  "fixed at 0, write-only" },
		{ NULL, PAGE, PROT_READ, MAP_FIXED, wo, 0, EPERM, "fixed at 0, no type" },
	};

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		check_same(&calls[i]);
	_exit(0);
}

Test(errors, the_address_space_s_faults_come_before_the_file_s)
{
	char path[400];
	int rw = make_pattern_file("f", 4 * PAGE, path), wo = open(path, O_WRONLY);
	int dir = open(harness_tmpdir(), O_RDONLY | O_DIRECTORY), status;
	void *end = (void *)((1UL << 47) - PAGE);
	const size_t huge = (1UL << 47) - PAGE;
	const struct call calls[] = {
		{ NULL, huge, PROT_READ, MAP_SHARED, wo, 0, ENOMEM, "huge, write-only" },
		{ NULL, huge, PROT_READ, MAP_SHARED, dir, 0, ENOMEM, "huge, a directory" },
		{ NULL, huge, PROT_READ, 0, rw, 0, ENOMEM, "huge, no type" },
		{ NULL, huge, PROT_READ, MAP_SHARED, rw, -4096, ENOMEM, "huge, a negative offset" },
		{ end, 2 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, wo, 0, ENOMEM,
		  "fixed past the end, write-only" },
		{ end, 2 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, dir, 0, ENOMEM,
		  "fixed past the end, a directory" },
		{ (char *)end + 1, 2 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, rw, 0, ENOMEM,
		  "fixed past the end, unaligned" },
	};

	cr_assert(wo >= 0 && dir >= 0);
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		check_same(&calls[i]);
	status = run_child(below_min_child, &wo);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as nobody: %#x", status);
	close(wo);
	close(dir);
	close(rw);
}

/* A regular file that the kernel cannot map (/proc, /sys) fails as the kernel's mmap(2) fails it,
 * rather than map and raise SIGBUS at the first touch. */
Test(errors, a_file_the_kernel_cannot_map_is_not_mapped)
{
	const char *files[] = { "/proc/self/status", "/proc/version", "/sys/kernel/notes" };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd = open(files[i], O_RDONLY);
		void *k, *u;
		int kerr;

		if (fd < 0)
			continue;
		errno = 0;
		k = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		kerr = errno;
		cr_assert_eq(k, MAP_FAILED, "%s: the kernel maps it", files[i]);
		errno = 0;
		u = upager_mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		cr_assert_eq(u, MAP_FAILED, "%s: upager maps it", files[i]);
		cr_assert_eq(errno, kerr, "%s: upager errno %s, the kernel's %s", files[i],
			     strerror(errno), strerror(kerr));
		close(fd);
	}
}

/*
 * A file of memfd_secret(2), whose pages no process but the one that maps it may read (the daemon
 * included): not mapped, ENODEV, where it was mapped and every touch raised SIGBUS.
 */
Test(errors, a_secret_memory_file_is_not_mapped)
{
	int fd = (int)syscall(SYS_memfd_secret, 0);

	if (fd < 0)
		cr_skip_test("no memfd_secret(2) here: %s", strerror(errno));
	cr_assert_eq(ftruncate(fd, 2 * PAGE), 0);
	errno = 0;
	cr_assert_eq(upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
		     MAP_FAILED);
	cr_assert_eq(errno, ENODEV, "%s", strerror(errno));
	close(fd);
}

/* As a user with no right to lock memory, then with too little: MAP_LOCKED's EPERM and EAGAIN
 * come before what the descriptor allows. */
static void locked_child(void *arg)
{
	const char *path = arg;
	struct rlimit none = { 0, PAGE }, small = { PAGE, PAGE };
	int wo = open(path, O_WRONLY), rw = open(path, O_RDWR);
	const struct call calls[] = {
		{ NULL, PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, wo, 0, EPERM,
		  "no lock, O_WRONLY" },
		{ NULL, PAGE, PROT_READ, MAP_LOCKED, rw, 0, EPERM, "no lock, no type" },
	};
	const struct call more[] = {
		{ NULL, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, wo, 0, EAGAIN,
		  "past the limit, O_WRONLY" },
		{ NULL, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_LOCKED, rw, 0, EAGAIN,
		  "past the limit" },
	};

	if (wo < 0 || rw < 0 || setgid(65534) < 0 || setuid(65534) < 0 ||
	    setrlimit(RLIMIT_MEMLOCK, &none) < 0)
		_exit(20);
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		check_same(&calls[i]);
	if (setrlimit(RLIMIT_MEMLOCK, &small) < 0)
		_exit(21);
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		check_same(&more[i]);
	_exit(0);
}

Test(errors, map_locked_is_refused_before_the_descriptor_is_looked_at)
{
	char path[400];
	int fd = make_pattern_file("f", 4 * PAGE, path), status;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(fchmod(fd, 0666), 0);
	status = run_child(locked_child, path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	close(fd);
}

/* Executable mappings of a file on a file system mounted noexec: EPERM, as the kernel's. */
Test(errors, prot_exec_on_a_noexec_mount_fails_with_eperm)
{
	char dir[400], path[450];
	int fd;

	snprintf(dir, sizeof(dir), "%s/noexec", harness_tmpdir());
	cr_assert_eq(mkdir(dir, 0755), 0);
	if (mount("none", dir, "tmpfs", MS_NOEXEC, "size=1m") < 0)
		cr_skip_test("mount: %m");
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, PAGE), 0);
	const struct call calls[] = {
		{ NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0, EPERM, "private" },
		{ NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0, EPERM, "shared" },
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		check_same(&calls[i]);
	close(fd);
	umount2(dir, MNT_DETACH);
}

/* Map a page of @fd with @flags through the kernel and through upager: both fail alike or both map. */
static void same_answer(int fd, int flags, const char *what, unsigned bit)
{
	void *k, *u;
	int kerr, uerr;

	errno = 0;
	k = mmap(NULL, PAGE, PROT_READ, flags, fd, 0);
	kerr = errno;
	errno = 0;
	u = upager_mmap(NULL, PAGE, PROT_READ, flags, fd, 0);
	uerr = errno;
	cr_assert_eq(k == MAP_FAILED, u == MAP_FAILED, "%s %#x: kernel %s, upager %s", what, bit,
		     k == MAP_FAILED ? strerror(kerr) : "mapped",
		     u == MAP_FAILED ? strerror(uerr) : "mapped");
	if (k == MAP_FAILED)
		cr_assert_eq(uerr, kerr, "%s %#x: kernel %s, upager %s", what, bit, strerror(kerr),
			     strerror(uerr));
	else
		cr_assert_eq(upager_munmap(u, PAGE), 0);
	if (k != MAP_FAILED)
		munmap(k, PAGE);
}

/*
 * MAP_SYNC on a file of a file system that refuses it for files not on DAX (ext4, xfs) fails as
 * the kernel's, with every mapping type; where the kernel maps it (tmpfs but with validation), so
 * does upager.
 */
Test(errors, map_sync_fails_where_the_kernel_s_does)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	int shm = memfd_create("sync", 0);
	const int types[] = { MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE };

	cr_assert_eq(ftruncate(shm, PAGE), 0);
	for (size_t i = 0; i < 3; i++) {
		same_answer(fd, types[i] | MAP_SYNC, "a file, MAP_SYNC with type",
			    (unsigned)types[i]);
		same_answer(shm, types[i] | MAP_SYNC, "a memfd, MAP_SYNC with type",
			    (unsigned)types[i]);
	}
	close(shm);
	close(fd);
}

/*
 * Each flag bit with MAP_SHARED_VALIDATE is accepted or refused as the kernel does: MAP_ABOVE4G is
 * known, the top bit of the huge page size is not.
 */
Test(errors, map_shared_validate_knows_the_flags_the_kernel_knows)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);

	for (unsigned bit = 4; bit; bit <<= 1) {
		/* Where the mapping goes, or what it asks of the machine: not one page of a file. */
		if (bit == MAP_FIXED || bit == MAP_FIXED_NOREPLACE || bit == MAP_HUGETLB)
			continue;
		same_answer(fd, MAP_SHARED_VALIDATE | (int)bit, "MAP_SHARED_VALIDATE with", bit);
	}
	close(fd);
}

/* A call that succeeds leaves errno as it found it, as the system calls do: LMDB reads errno after
 * a successful mmap(2) of its lock file, which upager's look at the file's seals had set. */
Test(errors, a_call_that_succeeds_leaves_errno_alone)
{
	int fd = make_pattern_file("f", 4 * PAGE, NULL);
	char *m;

	errno = EAGAIN;
	m = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(errno, EAGAIN, "errno %s after a successful upager_mmap()", strerror(errno));
	m[0] = 1;
	errno = EAGAIN;
	cr_assert_eq(upager_msync(m, PAGE, MS_SYNC), 0);
	cr_assert_eq(errno, EAGAIN);
	errno = EAGAIN;
	cr_assert_eq(upager_remap_file_pages(m, PAGE, 0, 2, 0), 0);
	cr_assert_eq(errno, EAGAIN);
	errno = EAGAIN;
	cr_assert_eq(upager_munmap(m, 4 * PAGE), 0);
	cr_assert_eq(errno, EAGAIN);
	close(fd);
}

/* /dev/zero takes any offset the page offset does not wrap at, as the kernel's file_mmap_size_max()
 * lets a character device: a negative one too (upager refused it with EOVERFLOW, as for a file). */
Test(errors, dev_zero_maps_at_any_offset_as_linux)
{
	const off_t offsets[] = { -(1LL << 40), (off_t)(((uint64_t)1 << 63) - PAGE) };
	int zero = open("/dev/zero", O_RDWR);

	cr_assert_geq(zero, 0);
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		char *k = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, zero, offsets[i]);
		char *u = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, zero,
				      offsets[i]);

		cr_assert_neq(k, MAP_FAILED, "offset %lld: the kernel: %s", (long long)offsets[i],
			      strerror(errno));
		cr_assert_neq(u, MAP_FAILED, "offset %lld: upager: %s", (long long)offsets[i],
			      strerror(errno));
		cr_assert_eq(u[10], 0);
		u[10] = 1;
		munmap(k, PAGE);
		cr_assert_eq(upager_munmap(u, PAGE), 0);
	}
	close(zero);
}
