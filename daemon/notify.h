/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* systemd integration: the service manager's notifications. */
#pragma once

struct daemon;

void notify_ready(struct daemon *d);
void notify_status(struct daemon *d);
void notify_stopping(void);
