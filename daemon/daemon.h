/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon as a whole: setting its context up, running, stopping (daemon.c). */
#pragma once

#include <uv.h>

#include "context.h"

int daemon_init(struct daemon *d, uv_loop_t *loop, const char *socket_path);
void daemon_deinit(struct daemon *d);
void daemon_stop(struct daemon *d);
