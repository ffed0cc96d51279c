// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-soak: the soak of soak.h against a running upagerd, for as long as asked (scripts/soak
 * starts the daemon and runs this). Exits 0 if nothing was found wrong, 1 otherwise.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: upager-soak --socket PATH --daemon-pid PID --ctl UPAGERCTL --dir DIR\n"
		"                   [--seconds N] [--procs N] [--threads N] [--mib N]\n"
		"                   [--no-remaps] [--seed N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "daemon-pid", required_argument, NULL, 'p' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 't' },
		{ "procs", required_argument, NULL, 'P' },
		{ "threads", required_argument, NULL, 'T' },
		{ "mib", required_argument, NULL, 'm' },
		{ "no-remaps", no_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 'S' },
		{ 0 },
	};
	struct soak_config c = { .seconds = 600,
				 .procs = 4,
				 .threads = 4,
				 .file_size = 16 << 20,
				 .remaps = true,
				 .seed = 1 };
	struct soak_result r;
	int o, ret;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			c.socket = optarg;
			break;
		case 'p':
			c.daemon_pid = atoi(optarg);
			break;
		case 'c':
			c.ctl = optarg;
			break;
		case 'd':
			c.dir = optarg;
			break;
		case 't':
			c.seconds = (unsigned)atoi(optarg);
			break;
		case 'P':
			c.procs = (unsigned)atoi(optarg);
			break;
		case 'T':
			c.threads = (unsigned)atoi(optarg);
			break;
		case 'm':
			c.file_size = (uint64_t)atoi(optarg) << 20;
			break;
		case 'n':
			c.remaps = false;
			break;
		case 'S':
			c.seed = (unsigned)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (!c.socket || !c.daemon_pid || !c.ctl || !c.dir || optind != argc)
		usage();
	setenv("UPAGER_SOCKET", c.socket, 1);
	ret = soak_run(&c, &r);
	if (ret < 0) {
		fprintf(stderr, "upager-soak: %s\n", strerror(-ret));
		return 2;
	}
	soak_report(stdout, &c, &r);
	return soak_ok(&r) ? 0 : 1;
}
