// SPDX-License-Identifier: LGPL-2.1-or-later
/* Logging to stderr with a syslog priority prefix, which journald understands. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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

/** log_now_ms() - a monotonic clock in milliseconds, for rate limits */
uint64_t log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/**
 * log_ratelimit_pass() - whether a line of @rl's call site may be written at @now_ms
 * @rl: the call site's state
 * @now_ms: log_now_ms()
 *
 * When a new interval begins, the lines left out in the last one are reported first.
 *
 * Return: true if the line may be written.
 */
bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms)
{
	if (rl->start_ms == 0 || now_ms - rl->start_ms >= LOG_INTERVAL_MS) {
		if (rl->suppressed)
			log_msg(LOG_WARNING, "%u lines like the next were left out",
				rl->suppressed);
		rl->start_ms = now_ms ? now_ms : 1;
		rl->printed = rl->suppressed = 0;
	}
	if (rl->printed < LOG_BURST) {
		rl->printed++;
		return true;
	}
	rl->suppressed++;
	return false;
}
