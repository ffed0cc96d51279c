// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerctl watch: the daemon's figures and its mapping table, refreshed like top. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "ctl.h"

#define INTERVAL_MIN 0.1
#define INTERVAL_MAX 86400.0

struct watch {
	bool json, tty;
	unsigned int rows_max; /* table rows that fit the terminal; 0: no limit */
	unsigned int n; /* mappings of this refresh */
};

static int watch_row(const struct upager_list_entry *e, void *arg)
{
	struct watch *w = arg;

	if (w->json) {
		if (w->n)
			fputs(", ", stdout);
		ctl_mapping_json(e);
	} else if (!w->rows_max || w->n < w->rows_max) {
		ctl_mapping_table_row(e);
	}
	w->n++;
	return 0;
}

/*
 * Faults per second between two STATS replies, timed by the daemon's own clock (its uptime), which
 * is the clock its counts were taken on. The first refresh counts from the daemon's start.
 */
static double fault_rate(const struct upager_msg *prev, const struct upager_msg *cur)
{
	uint64_t faults = cur->u.stats_reply.faults, ms = cur->u.stats_reply.uptime_ms;

	if (prev && prev->u.stats_reply.faults <= faults && prev->u.stats_reply.uptime_ms <= ms) {
		faults -= prev->u.stats_reply.faults;
		ms -= prev->u.stats_reply.uptime_ms;
	}
	return ms ? (double)faults * 1000.0 / (double)ms : 0.0;
}

static void print_head(const struct upager_msg *rep, double rate)
{
	const __typeof__(rep->u.stats_reply) *s = &rep->u.stats_reply;
	uint64_t up = s->uptime_ms / 1000;
	char rd[32], wr[32];

	printf("up: %" PRIu64 ":%02u:%02u, clients: %u, address spaces: %u, mappings: %u, "
	       "objects: %u, cached pages: %" PRIu64 "\n",
	       up / 3600, (unsigned int)(up / 60 % 60), (unsigned int)(up % 60), s->sessions,
	       s->spaces, s->regions, s->objects, s->cached_pages);
	printf("faults: %" PRIu64 ", faults/s: %.1f, fault latency p50: %.1f us, p99: %.1f us, "
	       "bytes read: %s, written back: %s\n\n",
	       s->faults, rate, s->latency_p50_ns / 1e3, s->latency_p99_ns / 1e3,
	       ctl_size_str(s->bytes_read, rd, sizeof(rd)),
	       ctl_size_str(s->bytes_written, wr, sizeof(wr)));
}

/* The table rows a terminal has room for under the head, the table header and a "more" line. */
static unsigned int terminal_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0)
		return 0;
	return ws.ws_row > 7 ? ws.ws_row - 6U : 1U;
}

/* One refresh: a STATS request, then the mapping table. Return: 0 or a negative errno. */
static int refresh(struct ctl *c, struct watch *w, const struct upager_msg *prev,
		   struct upager_msg *cur)
{
	struct upager_msg req = { .op = UPAGER_OP_STATS };
	double rate;
	int r;

	r = ctl_call(c, &req, cur);
	if (r < 0)
		return r;
	rate = fault_rate(prev, cur);
	w->n = 0;
	if (w->json) {
		fputs("{\"stats\": ", stdout);
		ctl_stats_json(cur);
		printf(", \"faults_per_second\": %.1f, \"mappings\": [", rate);
	} else {
		if (w->tty)
			fputs("\033[H\033[2J", stdout);
		w->rows_max = w->tty ? terminal_rows() : 0;
		print_head(cur, rate);
		ctl_mapping_table_header();
	}
	r = ctl_mappings_each(c, 0, watch_row, w);
	if (w->json)
		puts("]}");
	else if (w->rows_max && w->n > w->rows_max)
		printf("(%u more mappings)\n", w->n - w->rows_max);
	fflush(stdout);
	return r;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000 + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
	struct timespec t = { .tv_sec = (time_t)(ns / 1000000000),
			      .tv_nsec = (long)(ns % 1000000000) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

static int parse_interval(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= INTERVAL_MIN && v <= INTERVAL_MAX))
		return -EINVAL;
	*out = v;
	return 0;
}

static double watch_interval = 1.0; /* --interval, in seconds */
static uint32_t watch_count; /* --count; 0 for no end */

static int watch_option(int ch, const char *arg)
{
	if (ch == 'i' && parse_interval(arg, &watch_interval) < 0)
		return ctl_usage_error(
			&ctl_watch_command,
			"the interval must be a number of seconds from 0.1 to 86400, "
			"not '%s'",
			arg);
	if (ch == 'c' && (ctl_parse_uint(arg, &watch_count) < 0 || watch_count == 0))
		return ctl_usage_error(&ctl_watch_command,
				       "the count must be a positive number, not '%s'", arg);
	return 0;
}

static int watch_run(struct ctl *c, char **args)
{
	struct upager_msg prev, cur;
	struct watch w = { .json = c->json, .tty = isatty(STDOUT_FILENO) };
	uint64_t next;
	int r;

	(void)args;
	if (ctl_connect(c) < 0)
		return CTL_EXIT_FAIL;
	next = now_ns();
	for (uint32_t i = 0; !watch_count || i < watch_count; i++) {
		if (i) {
			uint64_t now = now_ns();

			/* A refresh that took longer than the interval brings no burst of them. */
			next = MAX(next + (uint64_t)(watch_interval * 1e9), now);
			sleep_until(next);
			if (!w.json && !w.tty)
				putchar('\n');
		}
		r = refresh(c, &w, i ? &prev : NULL, &cur);
		if (r < 0) {
			fprintf(stderr, "upagerctl: watch: %s\n", strerror(-r));
			return CTL_EXIT_FAIL;
		}
		prev = cur;
	}
	return CTL_EXIT_OK;
}

const struct ctl_command ctl_watch_command = {
	.name = "watch",
	.args = "[--interval SECONDS] [--count N] [--json]",
	.summary = "Print the daemon's figures and its mapping table again and again, like top:\n"
		   "faults per second over each interval, fault latency, bytes read and written,\n"
		   "then one line per mapping as list does. The screen is cleared first when\n"
		   "standard output is a terminal.",
	.options = "  -i, --interval SECONDS  time between refreshes, 0.1 to 86400 (default 1)\n"
		   "  -c, --count N           stop after N refreshes (default: never)\n"
		   "  -j, --json              print one JSON object a line for each refresh\n",
	.opts =
		(const struct option[]){
			{ "interval", required_argument, NULL, 'i' },
			{ "count", required_argument, NULL, 'c' },
			{},
		},
	.option = watch_option,
	.run = watch_run,
};
