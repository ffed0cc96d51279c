// SPDX-License-Identifier: LGPL-2.1-or-later
/* The options of the paging benchmarks, and sizes from an option or the environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "options.h"

/** size_parse() - a size with an optional K, M or G suffix (powers of 1024); 0 if it is not one */
uint64_t size_parse(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	case 'M':
	case 'm':
		v <<= 20;
		end++;
		break;
	case 'G':
	case 'g':
		v <<= 30;
		end++;
		break;
	}
	return *end || end == s ? 0 : v;
}

/**
 * size_option() - the size @arg, else the one in the environment variable @env, else @none
 *
 * Exits with status 2 and a message naming @prog if the size is not a multiple of 4 KiB.
 */
uint64_t size_option(const char *prog, const char *arg, const char *env, uint64_t none)
{
	const char *s = arg ? arg : getenv(env);
	uint64_t v;

	if (!s)
		return none;
	v = size_parse(s);
	if (v == 0 || v % PAGE) {
		fprintf(stderr, "%s: bad size '%s' (a multiple of 4 KiB; K, M, G)\n", prog, s);
		exit(2);
	}
	return v;
}

/**
 * options_parse() - set the values of @opts (a table ended by a NULL name) from @argv
 *
 * --quick is allowed and left to daemon_args(); --help prints @usage to stdout and exits with 0;
 * anything else, or an option without its value, prints @usage to stderr and exits with 2.
 */
void options_parse(int argc, char **argv, const struct option_value *opts, void (*usage)(FILE *f))
{
	for (int i = 1; i < argc; i++) {
		const struct option_value *o = opts;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		}
		while (o->name && strcmp(argv[i], o->name))
			o++;
		if (o->name && i + 1 < argc)
			*o->value = argv[++i];
		else if (strcmp(argv[i], "--quick")) {
			usage(stderr);
			exit(2);
		}
	}
}
