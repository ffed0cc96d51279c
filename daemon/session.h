/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A session: one client connection and the requests it sends. */
#pragma once

struct daemon;

int session_accept(struct daemon *d, int fd);
void session_free_all(struct daemon *d);
