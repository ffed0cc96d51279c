/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's tables, saved in memfds of the fd store so that a new daemon can take them over. */
#pragma once

struct daemon;
struct fdstore_passed;

int state_init(struct daemon *d, struct fdstore_passed *passed);
void state_flush(struct daemon *d);
void state_free(struct daemon *d);
