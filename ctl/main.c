// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl: global options, then one subcommand, whose options are parsed here too. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "ctl.h"
#include "upager.h"

#define OPTIONS_MAX 8

static const struct ctl_command *const commands[] = {
	&ctl_list_command,
	&ctl_show_command,
	&ctl_stats_command,
	&ctl_watch_command,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: upagerctl [--socket PATH] COMMAND [OPTIONS]\n"
		   "Show what upagerd serves.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %s %s\n", commands[i]->name, commands[i]->args);
	fprintf(f, "\nOptions:\n"
		   "  -s, --socket PATH       the daemon's socket (default $UPAGER_SOCKET, "
		   "else " UPAGER_DEFAULT_SOCKET ")\n"
		   "  -h, --help              show this help\n\n"
		   "'upagerctl COMMAND --help' tells what a command does and its options.\n"
		   "Exit status: 0 success, 1 failure or nothing found, 2 wrong usage.\n");
}

static int command_help(const struct ctl_command *cmd)
{
	printf("Usage: upagerctl [--socket PATH] %s %s\n%s\n\nOptions:\n%s"
	       "  -h, --help              show this help\n",
	       cmd->name, cmd->args, cmd->summary, cmd->options);
	return CTL_EXIT_OK;
}

/* What getopt_long() refused: ':' (the option string starts with ':') for a missing argument. */
static int bad_option(const struct ctl_command *cmd, int ch, char **argv)
{
	const char *arg = argv[optind - 1];
	bool is_long = !strncmp(arg, "--", 2);

	/*
	 * optopt is 0 for an unknown long option and the option's letter otherwise; a long option
	 * that lacks its argument was the last word, one given an argument it takes not has a '='.
	 */
	if (is_long && !optopt)
		return ctl_usage_error(cmd, "unknown option '%s'", arg);
	if (is_long && ch == ':')
		return ctl_usage_error(cmd, "option '%s' needs an argument", arg);
	if (is_long && strchr(arg, '='))
		return ctl_usage_error(cmd, "option '%.*s' takes no argument",
				       (int)(strchr(arg, '=') - arg), arg);
	if (ch == ':')
		return ctl_usage_error(cmd, "option '-%c' needs an argument", optopt);
	return ctl_usage_error(cmd, "unknown option '-%c'", optopt);
}

/*
 * The command's own options, --json and --help, then exactly n_args words.
 * Return: -1 to run the command with the words from argv[optind], else the exit code to end with.
 */
static int parse_command(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
	struct option opts[OPTIONS_MAX + 3] = { 0 };
	char shortopts[2 * OPTIONS_MAX + 4] = ":";
	size_t n = 0, len = 1;
	int ch, r;

	for (const struct option *o = cmd->opts; o && o->name && n < OPTIONS_MAX; o++) {
		opts[n++] = *o;
		shortopts[len++] = (char)o->val;
		if (o->has_arg == required_argument)
			shortopts[len++] = ':';
	}
	opts[n++] = (struct option){ "json", no_argument, NULL, 'j' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	strcpy(shortopts + len, "jh");
	optind = 0; /* start afresh: permute again, unlike the global options */
	while ((ch = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			c->json = true;
			break;
		case 'h':
			return command_help(cmd);
		case ':':
		case '?':
			return bad_option(cmd, ch, argv);
		default:
			r = cmd->option(ch, optarg);
			if (r)
				return r;
		}
	}
	if (argc - optind < cmd->n_args)
		return ctl_usage_error(cmd, "missing argument for '%s'", cmd->name);
	if (argc - optind > cmd->n_args)
		return ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + cmd->n_args]);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static struct ctl c = { .fd = -1 };
	int ch, r;

	c.path = getenv("UPAGER_SOCKET");
	if (!c.path || !*c.path)
		c.path = UPAGER_DEFAULT_SOCKET;
	/* '+': the options after the command are the command's own. */
	while ((ch = getopt_long(argc, argv, "+:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			c.path = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		default:
			return bad_option(NULL, ch, argv);
		}
	}
	if (optind >= argc)
		return ctl_usage_error(NULL, "missing command");
	argc -= optind;
	argv += optind;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[0], commands[i]->name))
			continue;
		r = parse_command(&c, commands[i], argc, argv);
		return r >= 0 ? r : commands[i]->run(&c, argv + optind);
	}
	return ctl_usage_error(NULL, "unknown command '%s'", argv[0]);
}
