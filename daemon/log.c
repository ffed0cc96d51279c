// SPDX-License-Identifier: LGPL-2.1-or-later
/* Logging to stderr with a syslog priority prefix, which journald understands. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

int log_max_level = LOG_INFO;

/**
 * log_msg() - write one line to stderr if @level is within log_max_level
 * @level: a LOG_* priority
 * @fmt: printf format, without the trailing newline
 */
void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_max_level)
		return;
	fprintf(stderr, "<%d>upagerd: ", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
