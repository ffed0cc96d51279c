// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl list: the live mappings of every client the caller may see. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void print_row(const struct ctl *c, const struct upager_list_entry *e, bool first)
{
	char prot[4], flags[128], len[32];

	if (c->json) {
		printf("%s\n  {\"pid\": %u, \"uid\": %u, \"start\": %" PRIu64
		       ", \"length\": %" PRIu64 ", \"prot\": %u, \"flags\": %u, \"backing\": ",
		       first ? "" : ",", e->pid, e->uid, e->start, e->length, e->prot, e->flags);
		ctl_json_string(e->path, e->path_len);
		printf(", \"offset\": %" PRIu64 ", \"resident_pages\": %" PRIu64
		       ", \"faults\": %" PRIu64 ", \"object\": %" PRIu64
		       ", \"pages_populated\": %" PRIu64 ", \"pages_read\": %" PRIu64
		       ", \"bytes_read\": %" PRIu64 ", \"fault_latency_avg_ns\": %" PRIu64
		       ", \"fault_latency_max_ns\": %" PRIu64
		       ", \"nonlinear\": %s, \"remapped_ranges\": %u}",
		       e->offset, e->resident_pages, e->faults, e->object_id, e->pages_populated,
		       e->pages_read, e->bytes_read, e->latency_avg_ns, e->latency_max_ns,
		       e->nonlinear ? "true" : "false", e->remapped_ranges);
		return;
	}
	printf("%-7u %-14" PRIx64 " %9s %-4s %-24s %9" PRIu64 " %9" PRIu64 " %10" PRIu64 "  %.*s",
	       e->pid, e->start, ctl_size_str(e->length, len, sizeof(len)),
	       ctl_prot_str(e->prot, prot), ctl_flags_str(e->flags, flags, sizeof(flags)),
	       e->offset, e->resident_pages, e->faults, (int)e->path_len, e->path);
	if (e->nonlinear)
		printf(" (nonlinear, %u remapped ranges)", e->remapped_ranges);
	putchar('\n');
}

/**
 * ctl_list() - "upagerctl list [--pid PID] [--json]"
 * Return: a process exit code.
 */
int ctl_list(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{},
	};
	uint32_t cursor = 0, pid = 0;
	bool first = true;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "jp:", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			c->json = true;
			break;
		case 'p':
			pid = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (c->json)
		printf("[");
	else
		printf("%-7s %-14s %9s %-4s %-24s %9s %9s %10s  %s\n", "PID", "START", "LENGTH",
		       "PROT", "FLAGS", "OFFSET", "RESIDENT", "FAULTS", "BACKING");
	do {
		struct upager_msg req = { .op = UPAGER_OP_LIST }, rep;
		struct upager_list_entry e;
		const uint8_t *pos;
		size_t left;
		int r;

		req.u.list.cursor = cursor;
		req.u.list.pid = pid;
		r = ctl_call(c, &req, &rep);
		if (r < 0) {
			fprintf(stderr, "upagerctl: list: %s\n", strerror(-r));
			return 1;
		}
		pos = rep.u.list_reply.entries;
		left = rep.u.list_reply.entries_len;
		while ((r = upager_list_entry_next(&pos, &left, &e)) > 0) {
			print_row(c, &e, first);
			first = false;
		}
		if (r < 0) {
			fprintf(stderr, "upagerctl: list: malformed reply\n");
			return 1;
		}
		cursor = rep.u.list_reply.next_cursor;
	} while (cursor);
	if (c->json)
		printf("%s]\n", first ? "" : "\n");
	return 0;
}
