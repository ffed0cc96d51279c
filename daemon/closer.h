/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors that came from clients are closed off the loop: a close(2) can wait. */
#pragma once

int closer_start(void);
void closer_close(int fd);
void closer_drain(int sock);
