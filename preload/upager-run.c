// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-run: run a program with its file mappings served by upagerd, through
 * libupager-preload.so in LD_PRELOAD; see upager-run(1). The library next to this executable is
 * taken if there is one (the build tree), else the installed one.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRELOAD_NAME "libupager-preload.so"

static void usage(FILE *f)
{
	fprintf(f, "Usage: upager-run [--anonymous] [--debug] [--socket PATH] PROGRAM [ARG...]\n"
		   "Run PROGRAM with its file mappings served by upagerd.\n\n"
		   "  -a, --anonymous    its anonymous mappings too\n"
		   "  -d, --debug        say on stderr when the kernel maps instead of upagerd\n"
		   "  -s, --socket PATH  the daemon's socket (default $UPAGER_SOCKET, else "
		   "/run/upager/upager.sock)\n"
		   "  -h, --help         this text\n"
		   "  -V, --version      the version\n");
}

/* The build tree's library beside this executable, else the installed one. */
static int preload_path(char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			if ((size_t)snprintf(out, size, "%s/%s", exe, PRELOAD_NAME) < size &&
			    access(out, R_OK) == 0)
				return 0;
		}
	}
	if ((size_t)snprintf(out, size, "%s", UPAGER_PRELOAD_PATH) >= size)
		return -ENAMETOOLONG;
	return access(out, R_OK) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "anonymous", no_argument, NULL, 'a' },    { "debug", no_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	    {}
	};
	char lib[PATH_MAX], *preload;
	const char *old;
	int c, ret;

	/* '+': options end at the program's name, whose own options are its own. */
	while ((c = getopt_long(argc, argv, "+ads:hV", options, NULL)) != -1) {
		switch (c) {
		case 'a':
			setenv("UPAGER_ANONYMOUS", "1", 1);
			break;
		case 'd':
			setenv("UPAGER_DEBUG", "1", 1);
			break;
		case 's':
			setenv("UPAGER_SOCKET", optarg, 1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("upager-run %s\n", UPAGER_VERSION);
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
	ret = preload_path(lib, sizeof(lib));
	if (ret < 0) {
		fprintf(stderr, "upager-run: %s: %s\n", lib, strerror(-ret));
		return 127;
	}
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		if (asprintf(&preload, "%s:%s", lib, old) < 0)
			return 127;
	} else {
		preload = lib;
	}
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[optind], &argv[optind]);
	ret = errno;
	fprintf(stderr, "upager-run: %s: %s\n", argv[optind], strerror(ret));
	return ret == ENOENT ? 127 : 126;
}
