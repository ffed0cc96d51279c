// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerd: arguments, then the loop until SIGTERM or SIGINT. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

#define DEFAULT_SOCKET "/run/upager/upager.sock"

static void usage(FILE *f)
{
	fprintf(f, "Usage: upagerd [--socket PATH] [--verbose]\n"
		   "Serve the page faults of libupager mappings.\n\n"
		   "  -s, --socket PATH  listen on PATH (default " DEFAULT_SOCKET ")\n"
		   "  -v, --verbose      log every client and space\n"
		   "  -h, --help         show this help\n"
		   "      --version      show the version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *socket_path = DEFAULT_SOCKET;
	struct daemon d = { 0 };
	int c, ret;

	while ((c = getopt_long(argc, argv, "s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'v':
			log_max_level = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("upagerd " UPAGER_VERSION "\n");
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	ret = daemon_init(&d, uv_default_loop(), socket_path);
	if (ret < 0)
		return EXIT_FAILURE;
	uv_run(d.loop, UV_RUN_DEFAULT);
	daemon_deinit(&d);
	uv_loop_close(d.loop);
	return EXIT_SUCCESS;
}
