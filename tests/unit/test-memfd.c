// SPDX-License-Identifier: LGPL-2.1-or-later
/* The daemon's memfds: mode 0600, sealed as asked, and never reopened by another user. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/memfd.h"

Test(memfd, a_new_memfd_is_the_owners_alone_and_sealed)
{
	struct stat st;
	int fd = -1;

	cr_assert_eq(memfd_new("upager:test", 8192, MEMFD_FIXED_SIZE, &fd), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 8192);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(fcntl(fd, F_GET_SEALS) &
			     (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | F_SEAL_WRITE),
		     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	cr_assert_eq(ftruncate(fd, 4096), -1);
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(ftruncate(fd, 16384), -1);
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	cr_assert_eq(errno, EPERM);
	/* Writes stay possible: the seals are on the size only. */
	cr_assert_eq(pwrite(fd, "x", 1, 0), 1);
	close(fd);
}

Test(memfd, a_memfd_that_may_grow_cannot_shrink)
{
	int fd = -1;

	cr_assert_eq(memfd_new("upager:test", 4096, F_SEAL_SHRINK, &fd), 0);
	cr_assert_eq(ftruncate(fd, 8192), 0);
	cr_assert_eq(ftruncate(fd, 0), -1);
	cr_assert_eq(errno, EPERM);
	close(fd);
}

Test(memfd, another_user_cannot_reopen_it)
{
	char path[64];
	int fd = -1, status;
	pid_t p;

	cr_assert_eq(memfd_new("upager:test", 4096, 0, &fd), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	p = fork();
	if (p == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		_exit(open(path, O_RDONLY) < 0 && errno == EACCES ? 0 : 1);
	}
	cr_assert_eq(waitpid(p, &status, 0), p);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
	close(fd);
}

Test(memfd, seals_a_memfd_cannot_take_are_an_error)
{
	int fd = memfd_create("upager:old", MFD_CLOEXEC); /* F_SEAL_SEAL from the start */

	cr_assert_geq(fd, 0);
	cr_assert_eq(memfd_protect(fd, F_SEAL_SHRINK), -EPERM);
	cr_assert_eq(memfd_protect(fd, 0), 0);
	close(fd);
}
