/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* systemd integration: socket activation and the service manager's notifications. */
#pragma once

struct daemon;

int notify_listen_fd(void);
void notify_ready(struct daemon *d);
void notify_status(struct daemon *d);
void notify_stopping(void);
