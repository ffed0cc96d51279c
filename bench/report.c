// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The report: one row per figure (ours, the reference, their ratio, the target and whether it is
 * met), notes that explain rows, and the final line. Progress goes to stderr as the run goes; the
 * table goes to stdout at the end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

enum verdict {
	V_MET,
	V_NOT_MET,
	V_INFO,
	V_ERROR,
	V_NOT_COLD
};

struct row {
	char name[48];
	char ours[48];
	char ref[64];
	double ratio; /* < 0: none */
	char target[24];
	enum verdict v;
};

static struct row rows[96];
static int n_rows;
static char notes[16384];
static bool failed;

/** progress() - say on stderr what the run is doing now */
void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "upager-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/** note() - add a line to the notes printed under the table */
void note(const char *fmt, ...)
{
	size_t len = strlen(notes);
	va_list ap;

	if (len + 8 >= sizeof(notes))
		return;
	memcpy(notes + len, "  ", 3);
	len += 2;
	va_start(ap, fmt);
	vsnprintf(notes + len, sizeof(notes) - len - 1, fmt, ap);
	va_end(ap);
	len = strlen(notes);
	notes[len] = '\n';
	notes[len + 1] = '\0';
}

/** fmt_time() - @ns as "12.3 us", "45.67 ms" or "1.23 s" in @buf; returns @buf */
const char *fmt_time(char *buf, size_t size, double ns)
{
	if (ns < 10e3)
		snprintf(buf, size, "%.2f us", ns / 1e3);
	else if (ns < 1e6)
		snprintf(buf, size, "%.1f us", ns / 1e3);
	else if (ns < 10e9)
		snprintf(buf, size, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, size, "%.2f s", ns / 1e9);
	return buf;
}

/** fmt_rate() - "1234 MB/s 0.87 s": decimal megabytes per second and the time; returns @buf */
const char *fmt_rate(char *buf, size_t size, size_t bytes, double ns)
{
	snprintf(buf, size, "%.0f MB/s %.2f s", (double)bytes / (ns / 1e9) / 1e6, ns / 1e9);
	return buf;
}

/**
 * add_row() - add a row to the table
 * @op: '<' (met when ratio <= @x), '>' (met when ratio >= @x) or 0 (information only)
 * @ok: false for wrong data or a failed call: the row is an error
 * @cold: false if the caches were not as the figure needs: the row says "not cold"
 * @extra: false if a condition besides the ratio failed (a note says which): not met
 */
void add_row(const char *name, const char *ours, const char *ref, double ratio, char op, double x,
	     bool ok, bool cold, bool extra)
{
	struct row *r;

	if (n_rows >= (int)(sizeof(rows) / sizeof(rows[0])))
		return;
	r = &rows[n_rows++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->ours, sizeof(r->ours), "%s", ours);
	snprintf(r->ref, sizeof(r->ref), "%s", ref);
	r->ratio = ok ? ratio : -1;
	if (op)
		snprintf(r->target, sizeof(r->target), "%s %gx", op == '<' ? "<=" : ">=", x);
	else
		snprintf(r->target, sizeof(r->target), "-");
	if (!ok) {
		r->v = V_ERROR;
		failed = true;
	} else if (!op) {
		r->v = V_INFO;
	} else if (!cold) {
		r->v = V_NOT_COLD;
	} else {
		bool met = op == '<' ? ratio <= x : ratio >= x;

		r->v = met && extra ? V_MET : V_NOT_MET;
	}
}

/** add_error_row() - a row for a figure that could not be measured, and a note saying why */
void add_error_row(const char *name, const char *what, int err)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "error: %s", strerror(-err));
	add_row(name, buf, "", -1, 0, 0, false, true, true);
	note("%s: %s failed: %s", name, what, strerror(-err));
}

/**
 * add_rate_row() - a row for reads, from cfg.repeat run times (ns) of ours reading @ours_bytes per
 * run and of the reference reading @ref_bytes; the medians are shown, the ratio is of the MB/s
 */
void add_rate_row(const char *name, const double *ours, size_t ours_bytes, const double *ref,
		  size_t ref_bytes, const char *ref_name, char op, double x, bool ok, bool cold)
{
	double ma = median(ours, cfg.repeat), mb = median(ref, cfg.repeat);
	char o[48], r[64], t[32];

	fmt_rate(o, sizeof(o), ours_bytes, ma);
	snprintf(r, sizeof(r), "%s %s", fmt_rate(t, sizeof(t), ref_bytes, mb), ref_name);
	add_row(name, o, r, ((double)ours_bytes / ma) / ((double)ref_bytes / mb), op, x, ok, cold,
		true);
}

/** report_fail() - mark the run as failed (exit status 1) without a row */
void report_fail(void)
{
	failed = true;
}

/** report_failed() - whether a row was an error or report_fail() was called */
bool report_failed(void)
{
	return failed;
}

static const char *verdict_name(enum verdict v)
{
	switch (v) {
	case V_MET:
		return "met";
	case V_NOT_MET:
		return "NOT MET";
	case V_INFO:
		return "info";
	case V_NOT_COLD:
		return "not cold";
	default:
		return "ERROR";
	}
}

/** print_table() - the table, the notes and the final line, on stdout */
void print_table(void)
{
	int met = 0, targets = 0;
	char date[64];
	time_t t = time(NULL);

	strftime(date, sizeof(date), "%Y-%m-%d %H:%M", localtime(&t));
	printf("\n%-36s %-20s %-32s %8s %8s  %s\n", "figure", "ours", "reference", "ratio",
	       "target", "result");
	for (int i = 0; i < n_rows; i++) {
		struct row *r = &rows[i];
		char ratio[16] = "-";

		if (r->ratio >= 0)
			snprintf(ratio, sizeof(ratio), "%.2fx", r->ratio);
		printf("%-36s %-20s %-32s %8s %8s  %s\n", r->name, r->ours, r->ref, ratio,
		       r->target, verdict_name(r->v));
		if (r->v != V_INFO) {
			targets++;
			met += r->v == V_MET;
		}
	}
	printf("\nratio: ours/reference (times and latencies: lower is better; MB/s: higher is "
	       "better).\n");
	if (notes[0])
		printf("notes:\n%s", notes);
	printf("upager-bench: %d of %d targets met (%s run, %s)%s\n", met, targets,
	       cfg.quick ? "quick" : "full", date, failed ? "; ERRORS, see the notes" : "");
}
