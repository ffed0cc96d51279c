// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The library's descriptors (its connection, the userfaultfd, the control socket, memfds, the
 * duplicates of mapped files it keeps) live at high numbers. A program expects the numbers it
 * did not take to be free: open(2) gives the lowest free one, so a process started with its
 * standard input closed finds fstat(0) failing with EBADF, and one that closes 0 and opens
 * /dev/null gets 0; a descriptor of the library taken at 0, or at the next low number, would
 * break both. So each is moved up to FDS_FLOOR, or where the soft RLIMIT_NOFILE is below twice
 * that (a program that keeps its table small and may fill it) to the lowest free number from 3;
 * it never stays at 0, 1 or 2 while a number at 3 or more is free.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

#define FDS_FLOOR 512

/* Where the library's descriptors start: past the standard three only, in a small table. */
static int floor_fd(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= 2 * FDS_FLOOR)
		return FDS_FLOOR;
	return 3;
}

/**
 * upager__fd_dup() - a duplicate of @fd (close-on-exec) for the library to keep
 *
 * Return: the new descriptor at a high number (at 3 or more if none is free there), or -1.
 */
int upager__fd_dup(int fd)
{
	int high;

	if (fd < 0)
		return -1;
	high = fcntl(fd, F_DUPFD_CLOEXEC, floor_fd());
	return high >= 0 ? high : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/**
 * upager__fd_park() - move the library's own @fd to a high number
 *
 * Return: the descriptor the library keeps: the moved one (@fd is closed), or @fd itself if it is
 * high already, negative, or cannot move.
 */
int upager__fd_park(int fd)
{
	int high;

	if (fd < 0 || fd >= floor_fd())
		return fd;
	high = upager__fd_dup(fd);
	if (high < 0)
		return fd;
	close(fd);
	return high;
}
