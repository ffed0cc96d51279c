// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl show: mappings in detail, those of one process or the one that holds an address. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

struct show {
	bool json, by_addr;
	uint64_t addr;
	uint32_t pid;
	unsigned int n; /* mappings shown */
};

static int show_one(const struct upager_list_entry *e, void *arg)
{
	struct show *s = arg;

	if (s->by_addr ? s->addr < e->start || s->addr - e->start >= e->length : e->pid != s->pid)
		return 0;
	if (s->json) {
		ctl_mapping_json_item(e, s->n);
	} else {
		if (s->n)
			putchar('\n');
		ctl_mapping_detail(e);
	}
	s->n++;
	return 0;
}

/* "0x" and hex digits: an address; decimal digits: a process id. */
static int parse_target(const char *arg, struct show *s)
{
	char *end;

	if (!strncasecmp(arg, "0x", 2)) {
		if (!isxdigit((unsigned char)arg[2]))
			return -EINVAL;
		errno = 0;
		s->addr = strtoull(arg + 2, &end, 16);
		if (errno || *end)
			return -EINVAL;
		s->by_addr = true;
		return 0;
	}
	return ctl_parse_uint(arg, &s->pid);
}

static int show_run(struct ctl *c, char **args)
{
	struct show s = { .json = c->json };
	int r;

	if (parse_target(args[0], &s) < 0)
		return ctl_usage_error(&ctl_show_command,
				       "'%s' is neither an address (0x...) nor a process id",
				       args[0]);
	if (ctl_connect(c) < 0)
		return CTL_EXIT_FAIL;
	/* pid 0 asks LIST for every process; the children it stands for are picked out here. */
	r = ctl_mappings_each(c, s.by_addr ? 0 : s.pid, show_one, &s);
	if (s.json)
		ctl_mapping_json_end(s.n);
	if (r < 0) {
		fprintf(stderr, "upagerctl: show: %s\n", strerror(-r));
		return CTL_EXIT_FAIL;
	}
	if (!s.n) {
		if (s.by_addr)
			fprintf(stderr, "upagerctl: no mapping contains 0x%" PRIx64 "\n", s.addr);
		else
			fprintf(stderr, "upagerctl: pid %u has no mapping\n", s.pid);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

const struct ctl_command ctl_show_command = {
	.name = "show",
	.args = "ADDR|PID [--json]",
	.summary =
		"Print mappings in detail: with an ADDR (0x and hexadecimal digits), the mapping\n"
		"that contains it, in each process that has one; with a PID (decimal), every\n"
		"mapping of that process.",
	.options = "  -j, --json              print a JSON array of objects, as list --json does\n",
	.n_args = 1,
	.run = show_run,
};
