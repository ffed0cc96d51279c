/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-user limits: what one user may hold of the daemon (upagerd(8), "LIMITS"). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct daemon;

/* 0: no limit. The daemon's own user (root) has none. */
struct user_limits {
	unsigned connections;
	unsigned objects; /* caches the user made: each costs the daemon 2 to 4 descriptors */
	unsigned mappings;
	uint64_t mapped; /* bytes of all the user's mappings together */
};

int limits_connection(struct daemon *d, uid_t uid);
int limits_object(struct daemon *d, uid_t uid);
int limits_mapping(struct daemon *d, uid_t uid, uint64_t length);
