/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon as a whole: its loop, its tables and its figures. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/list.h"

struct ring;

struct daemon_stats {
	uint64_t faults;
	uint64_t pages_read;
	uint64_t bytes_read;
	uint64_t bytes_written;
};

struct daemon {
	uv_loop_t *loop;
	uv_poll_t listen_poll;
	int listen_fd;
	char *socket_path;
	uv_signal_t sigterm, sigint;
	uv_timer_t liveness;
	struct ring *ring;

	uint64_t uffd_features; /* what the kernel offers */
	uint64_t next_object_id;
	uint64_t start_ms;

	struct list_head sessions;
	struct list_head spaces;
	struct list_head objects;
	unsigned n_sessions, n_spaces, n_objects;

	struct daemon_stats stats;
	bool stopping;
};

int daemon_init(struct daemon *d, uv_loop_t *loop, const char *socket_path);
void daemon_deinit(struct daemon *d);
void daemon_stop(struct daemon *d);
unsigned daemon_count_regions(struct daemon *d);
