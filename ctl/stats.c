// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl stats: the daemon's figures. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/**
 * ctl_stats() - "upagerctl stats [--json]"
 * Return: a process exit code.
 */
int ctl_stats(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, {} };
	struct upager_msg req = { .op = UPAGER_OP_STATS }, rep;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (ch != 'j')
			return 2;
		c->json = true;
	}
	r = ctl_call(c, &req, &rep);
	if (r < 0) {
		fprintf(stderr, "upagerctl: stats: %s\n", strerror(-r));
		return 1;
	}
#define S rep.u.stats_reply
	if (c->json)
		printf("{\"sessions\": %u, \"spaces\": %u, \"regions\": %u, \"objects\": %u, "
		       "\"cached_pages\": %" PRIu64 ", \"faults\": %" PRIu64
		       ", \"pages_read\": %" PRIu64 ", \"bytes_read\": %" PRIu64
		       ", \"bytes_written\": %" PRIu64 ", \"uptime_ms\": %" PRIu64
		       ", \"pages_populated\": %" PRIu64 ", \"bytes_from_page_cache\": %" PRIu64
		       ", \"fault_latency_p50_ns\": %" PRIu64 ", \"fault_latency_p99_ns\": %" PRIu64
		       ", \"fault_latency_max_ns\": %" PRIu64 "}\n",
		       S.sessions, S.spaces, S.regions, S.objects, S.cached_pages, S.faults,
		       S.pages_read, S.bytes_read, S.bytes_written, S.uptime_ms, S.pages_populated,
		       S.bytes_from_page_cache, S.latency_p50_ns, S.latency_p99_ns,
		       S.latency_max_ns);
	else
		printf("clients (connections): %u\naddress spaces:        %u\nmappings:            "
		       "  %u\n"
		       "objects:               %u\ncached pages:          %" PRIu64
		       "\nfaults served:         %" PRIu64 "\npages read:            %" PRIu64
		       "\nbytes read:            %" PRIu64 "\nbytes written back:    %" PRIu64
		       "\nuptime:                %" PRIu64 " ms\npages populated:       %" PRIu64
		       "\nfrom the page cache:   %" PRIu64
		       " bytes\nfault latency:         p50 %.1f us, "
		       "p99 %.1f us, max %.1f us\n",
		       S.sessions, S.spaces, S.regions, S.objects, S.cached_pages, S.faults,
		       S.pages_read, S.bytes_read, S.bytes_written, S.uptime_ms, S.pages_populated,
		       S.bytes_from_page_cache, S.latency_p50_ns / 1e3, S.latency_p99_ns / 1e3,
		       S.latency_max_ns / 1e3);
#undef S
	return 0;
}
