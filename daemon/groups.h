/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The caps of the clients' memory cgroups on their private pages in memory (groups.c). */
#pragma once

#include "private-pages.h" /* struct groups_over */

struct daemon;

void groups_sum(const struct group_use *u, size_t n, struct groups_over *out);
void groups_follow(struct daemon *d);
void groups_over(struct daemon *d, struct groups_over *out);
