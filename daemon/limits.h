/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-user limits: what one user may hold of the daemon (upagerd(8), "LIMITS"). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "context.h" /* struct user_limits */

int limits_connection(struct daemon *d, uid_t uid, unsigned have);
int limits_object(struct daemon *d, uid_t uid, uint64_t size);
int limits_view(struct daemon *d, uid_t uid);
int limits_process(struct daemon *d, uid_t uid);
int limits_mapping(struct daemon *d, uid_t uid, uint64_t length);
/* The chunks of private page tables a user's processes may have together, per chunk of --max-mapped. */
#define LIMITS_FORK_CHUNKS 2
#define LIMITS_FORK_CHUNKS_MIN 4096

int limits_fork(struct daemon *d, uid_t uid, uint64_t count, uint64_t chunks);
