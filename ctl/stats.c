// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl stats: the daemon's figures. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const char *store_kind(uint32_t kind)
{
	return kind == UPAGER_STORE_NBD ? "nbd" : kind == UPAGER_STORE_FILE ? "file" : "none";
}

/** ctl_stats_json() - a STATS reply as a JSON object, without a newline */
void ctl_stats_json(const struct upager_msg *rep)
{
	const __typeof__(rep->u.stats_reply) *s = &rep->u.stats_reply;

	printf("{\"sessions\": %u, \"spaces\": %u, \"regions\": %u, \"objects\": %u, "
	       "\"cached_pages\": %" PRIu64 ", \"faults\": %" PRIu64 ", \"pages_read\": %" PRIu64
	       ", \"bytes_read\": %" PRIu64 ", \"bytes_written\": %" PRIu64
	       ", \"uptime_ms\": %" PRIu64 ", \"pages_populated\": %" PRIu64
	       ", \"bytes_from_page_cache\": %" PRIu64 ", \"fault_latency_p50_ns\": %" PRIu64
	       ", \"fault_latency_p99_ns\": %" PRIu64 ", \"fault_latency_max_ns\": %" PRIu64,
	       s->sessions, s->spaces, s->regions, s->objects, s->cached_pages, s->faults,
	       s->pages_read, s->bytes_read, s->bytes_written, s->uptime_ms, s->pages_populated,
	       s->bytes_from_page_cache, s->latency_p50_ns, s->latency_p99_ns, s->latency_max_ns);
	printf(", \"budget_bytes\": %" PRIu64 ", \"memory_pages\": %" PRIu64
	       ", \"pages_out\": %" PRIu64 ", \"pages_written_out\": %" PRIu64
	       ", \"pages_in\": %" PRIu64 ", \"refaults\": %" PRIu64 ", \"over_budget\": %" PRIu64
	       ", \"swap_bytes\": %" PRIu64 ", \"swap_used_bytes\": %" PRIu64
	       ", \"writeback_errors\": %" PRIu64,
	       s->budget_bytes, s->memory_pages, s->pages_out, s->pages_written_out, s->pages_in,
	       s->refaults, s->over_budget, s->swap_bytes, s->swap_used_bytes, s->writeback_errors);
	printf(", \"store\": {\"kind\": \"%s\", \"where\": ", store_kind(s->store_kind));
	ctl_json_string(s->store_where ? s->store_where : "", s->store_where_len);
	printf(", \"requests_in_flight\": %u, \"bytes_out\": %" PRIu64 ", \"bytes_in\": %" PRIu64
	       ", \"errors\": %" PRIu64 ", \"reconnects\": %" PRIu64 ", \"connections\": %u}}",
	       s->store_inflight, s->store_bytes_out, s->store_bytes_in, s->store_errors,
	       s->store_reconnects, s->store_connections);
}

static void stats_text(const struct upager_msg *rep)
{
	const __typeof__(rep->u.stats_reply) *s = &rep->u.stats_reply;
	char budget[32], swap[32], used[32];

	printf("clients (connections): %u\n"
	       "address spaces:        %u\n"
	       "mappings:              %u\n"
	       "objects:               %u\n"
	       "cached pages:          %" PRIu64 "\n"
	       "faults served:         %" PRIu64 "\n"
	       "pages read:            %" PRIu64 "\n"
	       "bytes read:            %" PRIu64 "\n"
	       "bytes written back:    %" PRIu64 "\n"
	       "uptime:                %" PRIu64 " ms\n"
	       "pages populated:       %" PRIu64 "\n"
	       "from the page cache:   %" PRIu64 " bytes\n"
	       "fault latency:         p50 %.1f us, p99 %.1f us, max %.1f us\n",
	       s->sessions, s->spaces, s->regions, s->objects, s->cached_pages, s->faults,
	       s->pages_read, s->bytes_read, s->bytes_written, s->uptime_ms, s->pages_populated,
	       s->bytes_from_page_cache, s->latency_p50_ns / 1e3, s->latency_p99_ns / 1e3,
	       s->latency_max_ns / 1e3);
	printf("memory budget:         %s\n"
	       "pages in memory:       %" PRIu64 "\n"
	       "pages paged out:       %" PRIu64 "\n"
	       "pages written out:     %" PRIu64 "\n"
	       "pages paged in:        %" PRIu64 "\n"
	       "refaults:              %" PRIu64 "\n"
	       "over budget:           %" PRIu64 " times\n"
	       "swap store size:       %s\n"
	       "swap store used:       %s\n"
	       "write-back errors:     %" PRIu64 "\n",
	       s->budget_bytes ? ctl_size_str(s->budget_bytes, budget, sizeof(budget)) : "none",
	       s->memory_pages, s->pages_out, s->pages_written_out, s->pages_in, s->refaults,
	       s->over_budget,
	       s->swap_bytes ? ctl_size_str(s->swap_bytes, swap, sizeof(swap)) : "none",
	       ctl_size_str(s->swap_used_bytes, used, sizeof(used)), s->writeback_errors);
	if (s->store_kind != UPAGER_STORE_NONE)
		printf("swap store:            %s %.*s\n"
		       "store requests:        %u in flight, %" PRIu64 " errors, %" PRIu64
		       " reconnects, %u connections\n"
		       "store bytes:           %" PRIu64 " out, %" PRIu64 " in\n",
		       store_kind(s->store_kind), (int)s->store_where_len,
		       s->store_where ? s->store_where : "", s->store_inflight, s->store_errors,
		       s->store_reconnects, s->store_connections, s->store_bytes_out,
		       s->store_bytes_in);
}

static int stats_run(struct ctl *c, char **args)
{
	struct upager_msg req = { .op = UPAGER_OP_STATS }, rep;
	int r;

	(void)args;
	if (ctl_connect(c) < 0)
		return CTL_EXIT_FAIL;
	r = ctl_call(c, &req, &rep);
	if (r < 0) {
		fprintf(stderr, "upagerctl: stats: %s\n", strerror(-r));
		return CTL_EXIT_FAIL;
	}
	if (c->json) {
		ctl_stats_json(&rep);
		putchar('\n');
	} else {
		stats_text(&rep);
	}
	return CTL_EXIT_OK;
}

const struct ctl_command ctl_stats_command = {
	.name = "stats",
	.args = "[--json]",
	.summary = "Print the daemon's figures, one a line.",
	.options = "  -j, --json              print one JSON object instead of text\n",
	.run = stats_run,
};
