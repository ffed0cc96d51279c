/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a space's userfaultfd and dispatching what it says. */
#pragma once

#include <uv.h>

struct space;

void events_on_uffd(uv_poll_t *h, int status, int events);
void events_dispatch_queued(struct space *s);
int events_drain(void *data, int uffd, uint64_t start, uint64_t len);
