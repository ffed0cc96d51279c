// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Figures of the benchmark's own upagerd from `upagerctl stats --json` (UPAGER_SOCKET points at
 * it), for those that daemon.c's STATS call does not carry. upagerctl runs in a child: call this
 * only while this process has no upager mapping, so that no fork reaches the daemon.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/** ctl_find() - $UPAGERCTL, or upagerctl next to @upagerd; NULL if neither */
const char *ctl_find(const char *upagerd)
{
	static char path[4096];
	const char *slash = strrchr(upagerd, '/');

	if (getenv("UPAGERCTL"))
		return getenv("UPAGERCTL");
	if (!slash)
		return NULL;
	snprintf(path, sizeof(path), "%.*supagerctl", (int)(slash - upagerd + 1), upagerd);
	return path;
}

/**
 * ctl_stat() - the figure @key of `@upagerctl stats --json` into *@out
 *
 * Return: 0, -ENOENT if the reply has no such figure (or there is no upagerctl), or another
 * negative errno.
 */
int ctl_stat(const char *upagerctl, const char *key, uint64_t *out)
{
	char cmd[512], line[4096], name[128], *at;
	bool found = false;
	FILE *f;

	if (!upagerctl || access(upagerctl, X_OK) < 0)
		return -ENOENT;
	snprintf(cmd, sizeof(cmd), "'%s' stats --json 2>/dev/null", upagerctl);
	snprintf(name, sizeof(name), "\"%s\":", key);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!found && (at = strstr(line, name))) {
			*out = strtoull(at + strlen(name), NULL, 10);
			found = true;
		}
	pclose(f);
	return found ? 0 : -ENOENT;
}
