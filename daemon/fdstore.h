/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors passed by the service manager at start, and kept in its fd store while running. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "passed.h"

struct daemon;

void fdstore_init(struct daemon *d);
int fdstore_add(struct daemon *d, int fd, const char *kind, uint64_t id);
void fdstore_remove(struct daemon *d, const char *kind, uint64_t id);

int fdstore_passed_collect(struct daemon *d, struct fdstore_passed *p);
int fdstore_passed_take(struct fdstore_passed *p, const char *kind, uint64_t id);
int fdstore_passed_listen(struct fdstore_passed *p);
void fdstore_passed_release(struct daemon *d, struct fdstore_passed *p);
