/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

extern int log_max_level;

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)

/*
 * A call site's share of the log: at most LOG_BURST lines per LOG_INTERVAL_MS, then one line that
 * says how many were left out. What a client can make the daemon say often goes through it, so
 * that no client can flood the log.
 */
#define LOG_BURST 10
#define LOG_INTERVAL_MS 5000

struct log_ratelimit {
	uint64_t start_ms;
	unsigned printed, suppressed;
};

bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms);

#define log_limited(level, ...)                                                         \
	do {                                                                            \
		static struct log_ratelimit rl_;                                        \
		if ((level) <= log_max_level && log_ratelimit_pass(&rl_, log_now_ms())) \
			log_msg(level, __VA_ARGS__);                                    \
	} while (0)

uint64_t log_now_ms(void);
