// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One mapping as the daemon's LIST reports it: walking every one the caller may see, and printing
 * one as a table row, as a JSON object or in detail. list, show and watch print through these, so
 * the three agree on names, units and the JSON schema.
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/**
 * ctl_mappings_each() - call @fn for each mapping of @pid (0: of every process) the caller may see
 *
 * Pages through the daemon's table with LIST until its cursor comes back 0.
 * Return: 0, a negative errno if a request failed or a reply was malformed (-EBADMSG), or the
 * negative errno @fn stopped the walk with.
 */
int ctl_mappings_each(struct ctl *c, uint32_t pid, ctl_mapping_fn fn, void *arg)
{
	uint32_t cursor = 0;

	do {
		struct upager_msg req = { .op = UPAGER_OP_LIST }, rep;
		struct upager_list_entry e;
		const uint8_t *pos;
		size_t left;
		int r;

		req.u.list.cursor = cursor;
		req.u.list.pid = pid;
		r = ctl_call(c, &req, &rep);
		if (r < 0)
			return r;
		pos = rep.u.list_reply.entries;
		left = rep.u.list_reply.entries_len;
		while ((r = upager_list_entry_next(&pos, &left, &e)) > 0) {
			r = fn(&e, arg);
			if (r < 0)
				return r;
		}
		if (r < 0)
			return -EBADMSG;
		cursor = rep.u.list_reply.next_cursor;
	} while (cursor);
	return 0;
}

/** ctl_mapping_table_header() - the header line of the mapping table */
void ctl_mapping_table_header(void)
{
	printf("%-7s %-14s %9s %-4s %-28s %9s %9s %10s %9s %7s  %s\n", "PID", "START", "LENGTH",
	       "PROT", "FLAGS", "OFFSET", "RESIDENT", "FAULTS", "OUT", "REFLT", "BACKING");
}

/* A figure of the mapping's object, or "-" for private anonymous memory, which has none. */
static const char *object_figure(const struct upager_list_entry *e, uint64_t figure, char *buf,
				 size_t size)
{
	if (!e->object_id)
		return "-";
	snprintf(buf, size, "%" PRIu64, figure);
	return buf;
}

/* The table's figure: the object's, or for private anonymous memory the mapping's own pages'. */
static const char *table_figure(const struct upager_list_entry *e, uint64_t object, uint64_t own,
				char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64, e->object_id ? object : own);
	return buf;
}

/** ctl_mapping_table_row() - one line of the mapping table */
void ctl_mapping_table_row(const struct upager_list_entry *e)
{
	char prot[4], flags[128], len[32], out[24], refaults[24];

	printf("%-7u %-14" PRIx64 " %9s %-4s %-28s %9" PRIu64 " %9" PRIu64 " %10" PRIu64
	       " %9s %7s  %.*s",
	       e->pid, e->start, ctl_size_str(e->length, len, sizeof(len)),
	       ctl_prot_str(e->prot, prot), ctl_flags_str(e->flags, flags, sizeof(flags)),
	       e->offset, e->resident_pages, e->faults,
	       table_figure(e, e->object_pages_out, e->private_pages_out, out, sizeof(out)),
	       table_figure(e, e->object_refaults, e->private_pages_in, refaults, sizeof(refaults)),
	       (int)e->path_len, e->path);
	if (e->nonlinear)
		printf(" (nonlinear, %u remapped ranges)", e->remapped_ranges);
	if (e->flags & MAP_GROWSDOWN)
		printf(" (grown by %" PRIu64 " pages)", e->grown_pages);
	if (e->object_writeback_error)
		printf(" (write-back failed: %s, not reported yet)",
		       strerror((int)e->object_writeback_error));
	putchar('\n');
}

/** ctl_mapping_json() - one mapping as a JSON object, without a newline */
void ctl_mapping_json(const struct upager_list_entry *e)
{
	printf("{\"pid\": %u, \"uid\": %u, \"start\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"prot\": %u, \"flags\": %u, \"backing\": ",
	       e->pid, e->uid, e->start, e->length, e->prot, e->flags);
	ctl_json_string(e->path, e->path_len);
	printf(", \"offset\": %" PRIu64 ", \"resident_pages\": %" PRIu64 ", \"faults\": %" PRIu64
	       ", \"object\": %" PRIu64 ", \"pages_populated\": %" PRIu64
	       ", \"pages_read\": %" PRIu64 ", \"bytes_read\": %" PRIu64
	       ", \"fault_latency_avg_ns\": %" PRIu64 ", \"fault_latency_max_ns\": %" PRIu64
	       ", \"nonlinear\": %s, \"remapped_ranges\": %u, \"grown_pages\": %" PRIu64
	       ", \"max_length\": %" PRIu64 ", \"object_pages_out\": %" PRIu64
	       ", \"object_refaults\": %" PRIu64 ", \"object_writeback_errors\": %" PRIu64
	       ", \"pages_out\": %" PRIu64 ", \"pages_in\": %" PRIu64
	       ", \"object_writeback_error\": ",
	       e->offset, e->resident_pages, e->faults, e->object_id, e->pages_populated,
	       e->pages_read, e->bytes_read, e->latency_avg_ns, e->latency_max_ns,
	       e->nonlinear ? "true" : "false", e->remapped_ranges, e->grown_pages, e->max_length,
	       e->object_pages_out, e->object_refaults, e->object_writeback_errors,
	       e->private_pages_out, e->private_pages_in);
	if (e->object_writeback_error)
		printf("\"%s\"}", strerrorname_np((int)e->object_writeback_error) ?: "?");
	else
		printf("null}");
}

/**
 * ctl_mapping_json_item() - element @index of a JSON array of mappings, one a line
 *
 * The first element opens the array; ctl_mapping_json_end() closes it.
 */
void ctl_mapping_json_item(const struct upager_list_entry *e, unsigned int index)
{
	printf("%s\n  ", index ? "," : "[");
	ctl_mapping_json(e);
}

/** ctl_mapping_json_end() - close an array of @count mappings ("[]" when empty) */
void ctl_mapping_json_end(unsigned int count)
{
	printf("%s]\n", count ? "\n" : "[");
}

/** ctl_mapping_detail() - one mapping, one "key: value" line for each figure */
void ctl_mapping_detail(const struct upager_list_entry *e)
{
	char prot[4], flags[128], len[32], max[32], out[24], refaults[24];

	printf("pid:               %u\n"
	       "uid:               %u\n"
	       "range:             0x%" PRIx64 "-0x%" PRIx64 "\n"
	       "length:            %s (%" PRIu64 " bytes)\n"
	       "prot:              %s\n"
	       "flags:             %s\n"
	       "backing:           %.*s\n"
	       "offset:            %" PRIu64 "\n"
	       "object:            %" PRIu64 "\n"
	       "resident pages:    %" PRIu64 "\n"
	       "faults:            %" PRIu64 "\n"
	       "pages populated:   %" PRIu64 "\n"
	       "pages read:        %" PRIu64 "\n"
	       "bytes read:        %" PRIu64 "\n"
	       "fault latency:     avg %.1f us, max %.1f us\n"
	       "nonlinear:         %s\n"
	       "remapped ranges:   %u\n"
	       "grown pages:       %" PRIu64 "\n"
	       "growth limit:      %s\n"
	       "object paged out:  %s\n"
	       "object refaults:   %s\n"
	       "private paged out: %" PRIu64 "\n"
	       "private paged in:  %" PRIu64 "\n"
	       "write-back error:  %s\n",
	       e->pid, e->uid, e->start, e->start + e->length,
	       ctl_size_str(e->length, len, sizeof(len)), e->length, ctl_prot_str(e->prot, prot),
	       ctl_flags_str(e->flags, flags, sizeof(flags)), (int)e->path_len, e->path, e->offset,
	       e->object_id, e->resident_pages, e->faults, e->pages_populated, e->pages_read,
	       e->bytes_read, e->latency_avg_ns / 1e3, e->latency_max_ns / 1e3,
	       e->nonlinear ? "yes" : "no", e->remapped_ranges, e->grown_pages,
	       !(e->flags & MAP_GROWSDOWN) ? "-"
	       : e->max_length		   ? ctl_size_str(e->max_length, max, sizeof(max))
					   : "none",
	       object_figure(e, e->object_pages_out, out, sizeof(out)),
	       object_figure(e, e->object_refaults, refaults, sizeof(refaults)),
	       e->private_pages_out, e->private_pages_in,
	       e->object_writeback_error ? strerror((int)e->object_writeback_error) : "none");
}
