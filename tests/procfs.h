/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What /proc tells the tests of a process (the integration harness and the soak use it). */
#pragma once

#include <dirent.h>
#include <stdbool.h>
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

/*
 * The first line of /proc/@pid/status that @format (one conversion of an unsigned long long,
 * "RssAnon: %llu") reads, into *@out. Return: whether one did; false once the process is gone.
 */
static inline bool procfs_status(pid_t pid, const char *format, unsigned long long *out)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, format, out) == 1;
	fclose(f);
	return found;
}
