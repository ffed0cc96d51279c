// SPDX-License-Identifier: LGPL-2.1-or-later
/* A histogram of fault latencies: exact below 8 ns, then 8 buckets for each power of two. */
#include "common/macro.h"
#include "latency.h"

/* Histogram buckets: exact below 8 ns, then 8 buckets for each power of two. */
static unsigned latency_bucket(uint64_t ns)
{
	unsigned e;

	if (ns < 8)
		return (unsigned)ns;
	e = 63 - (unsigned)__builtin_clzll(ns);
	return (e - 2) * 8 + (unsigned)((ns >> (e - 3)) & 7);
}

static uint64_t latency_bucket_top(unsigned b)
{
	unsigned e = b / 8 + 2;

	if (b < 8)
		return b;
	return ((uint64_t)(8 + b % 8 + 1) << (e - 3)) - 1;
}

/** latency_record() - count one served fault that took @ns */
void latency_record(struct latency *l, uint64_t ns)
{
	l->hist[latency_bucket(ns)]++;
	if (ns > l->max_ns)
		l->max_ns = ns;
}

/**
 * latency_percentile() - fault latency below which @pct percent of faults fell
 * Return: the upper bound of the histogram bucket (within 12.5%), in ns; 0 before any fault.
 */
uint64_t latency_percentile(const struct latency *l, unsigned pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned b = 0; b < LATENCY_BUCKETS; b++)
		total += l->hist[b];
	if (total == 0)
		return 0;
	for (unsigned b = 0; b < LATENCY_BUCKETS; b++) {
		seen += l->hist[b];
		if (seen * 100 >= total * pct)
			return MIN(latency_bucket_top(b), l->max_ns);
	}
	return l->max_ns;
}
