// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl list: the live mappings of every client the caller may see. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static uint32_t list_pid; /* --pid; 0 for every process */

struct list_out {
	bool json;
	unsigned int n;
};

static int list_row(const struct upager_list_entry *e, void *arg)
{
	struct list_out *o = arg;

	if (o->json)
		ctl_mapping_json_item(e, o->n);
	else
		ctl_mapping_table_row(e);
	o->n++;
	return 0;
}

static int list_option(int ch, const char *arg)
{
	if (ch == 'p' && ctl_parse_uint(arg, &list_pid) < 0)
		return ctl_usage_error(&ctl_list_command, "'%s' is not a process id", arg);
	return 0;
}

static int list_run(struct ctl *c, char **args)
{
	struct list_out o = { .json = c->json };
	int r;

	(void)args;
	if (ctl_connect(c) < 0)
		return CTL_EXIT_FAIL;
	if (!o.json)
		ctl_mapping_table_header();
	r = ctl_mappings_each(c, list_pid, list_row, &o);
	if (o.json)
		ctl_mapping_json_end(o.n);
	if (r < 0) {
		fprintf(stderr, "upagerctl: list: %s\n", strerror(-r));
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

const struct ctl_command ctl_list_command = {
	.name = "list",
	.args = "[--pid PID] [--json]",
	.summary = "Print the live mappings of every client you may see, one a line.",
	.options = "  -p, --pid PID           only the mappings of process PID (0: every process)\n"
		   "  -j, --json              print a JSON array of objects instead of a table\n",
	.opts = (const struct option[]){ { "pid", required_argument, NULL, 'p' }, {} },
	.option = list_option,
	.run = list_run,
};
