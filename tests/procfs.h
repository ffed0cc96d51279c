/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What /proc tells the tests of a process (the integration harness and the soak use it). */
#pragma once

#include <dirent.h>
#include <stdio.h>
#include <sys/types.h>

/* How many descriptors process @pid has open, or -1 if /proc does not say. */
static inline int procfs_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}
