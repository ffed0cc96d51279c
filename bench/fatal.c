// SPDX-License-Identifier: LGPL-2.1-or-later
/* The end of a paging benchmark on an error (status 1) or on a signal (status 2). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "fatal.h"

static const char *prog_name = "upager-bench", *log_dir = "";
static void (*cleanup_fn)(void);

/**
 * fatal_init() - what fatal() and fatal_on_signal() say and do: @prog in messages, @dir as the
 * folder of the daemon's log (kept: only a normal exit removes it), @cleanup run before _exit()
 * (it must be safe in a signal handler)
 */
void fatal_init(const char *prog, const char *dir, void (*cleanup)(void))
{
	prog_name = prog;
	log_dir = dir;
	cleanup_fn = cleanup;
}

/**
 * fatal_start_daemon() - our upagerd @bin in a folder made from @dir_template
 * (daemon_start_private()), and fatal_init() for @prog with that folder; fatal() if it did not
 * start
 */
void fatal_start_daemon(const char *prog, const char *bin, char *dir_template)
{
	int ret = daemon_start_private(bin, dir_template);

	fatal_init(prog, dir_template, NULL);
	if (ret < 0)
		fatal("starting upagerd: %s", strerror(-ret));
}

/** fatal() - print the message, clean up, and _exit(1) */
void fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (the daemon's log: %s/upagerd.log)\n", log_dir);
	if (cleanup_fn)
		cleanup_fn();
	/* The folder with the log stays: daemon.c's exit handler would remove it. */
	_exit(1);
}

/** fatal_on_signal() - a handler of SIGALRM, SIGINT, SIGTERM: say so, clean up, _exit(2) */
void fatal_on_signal(int sig)
{
	static const char msg[] = ": timed out or interrupted; the daemon's log is kept in ";

	(void)sig;
	(void)!write(2, prog_name, strlen(prog_name));
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, log_dir, strlen(log_dir));
	(void)!write(2, "\n", 1);
	if (cleanup_fn)
		cleanup_fn();
	_exit(2);
}
