// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl: global options, then one subcommand. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "upager.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: upagerctl [--socket PATH] COMMAND [OPTIONS]\n"
		   "Show what upagerd serves.\n\n"
		   "Commands:\n"
		   "  list [--pid PID] [--json]  live mappings of every client you may see\n"
		   "  stats [--json]             the daemon's figures\n\n"
		   "Options:\n"
		   "  -s, --socket PATH  the daemon's socket (default $UPAGER_SOCKET, "
		   "else " UPAGER_DEFAULT_SOCKET ")\n"
		   "  -h, --help         show this help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static struct ctl c = { .fd = -1 };
	const char *path = getenv("UPAGER_SOCKET");
	int ch, r;

	if (!path || !*path)
		path = UPAGER_DEFAULT_SOCKET;
	while ((ch = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "list") && strcmp(argv[0], "stats")) {
		fprintf(stderr, "upagerctl: unknown command '%s'\n", argv[0]);
		usage(stderr);
		return 2;
	}
	r = ctl_connect(&c, path);
	if (r < 0) {
		fprintf(stderr, "upagerctl: cannot reach upagerd at %s: %s\n", path, strerror(-r));
		return 1;
	}
	if (!strcmp(argv[0], "list"))
		return ctl_list(&c, argc, argv);
	return ctl_stats(&c, argc, argv);
}
