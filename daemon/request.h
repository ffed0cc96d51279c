/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handlers of clients' requests (request.c). */
#pragma once

#include <stddef.h>

struct session;
struct upager_msg;

int request_handle(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds);
