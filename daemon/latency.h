/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The monotonic clock, and a histogram of fault latencies with its percentiles. */
#pragma once

#include <stdint.h>
#include <time.h>

#define LATENCY_BUCKETS 496 /* 8 per power of two: within 12.5% */

struct latency {
	uint64_t hist[LATENCY_BUCKETS]; /* faults by latency, see latency_record() */
	uint64_t max_ns;
};

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void latency_record(struct latency *l, uint64_t ns);
uint64_t latency_percentile(const struct latency *l, unsigned pct);
