/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The soak: processes of threads, each thread with its own MAP_SHARED upager mapping of one file,
 * each page written by the one thread that owns it, every page checked while running and against
 * the file at the end. The suite runs it briefly (test-soak.c), scripts/soak for as long as asked
 * (upager-soak.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct soak_config {
	const char *dir; /* where the file goes */
	const char *socket; /* the daemon's socket, for upagerctl */
	const char *ctl; /* upagerctl's path */
	pid_t daemon_pid; /* for its RSS and descriptors */
	unsigned seconds, procs, threads;
	uint64_t file_size; /* bytes, a multiple of the page size */
	bool remaps; /* the 4% of upager_remap_file_pages(); without them those are writes */
	unsigned seed;
};

struct soak_result {
	/* Operations, over every thread. */
	uint64_t writes, verifies, reads, msyncs, remaps, remaps_failed, remounts, errors;
	/* Reads of an owned page that found another version, reads of any page that found an
	 * older version than its owner had finished writing (or another page), pages of the file
	 * at the end that do not hold their last version. */
	uint64_t stale_own, stale_any, stale_file;
	unsigned procs_died; /* killed by a signal (SIGBUS) or exited with an error */
	long rss_start_kb, rss_end_kb;
	int fds_start, fds_end;
	uint64_t bytes_written; /* what the daemon wrote back during the run */
};

int soak_run(const struct soak_config *c, struct soak_result *r);
void soak_report(FILE *f, const struct soak_config *c, const struct soak_result *r);
bool soak_ok(const struct soak_result *r);
