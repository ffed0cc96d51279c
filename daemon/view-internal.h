/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What view.c and view-copy.c share: the entries of the shared table and the index of copies. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct object;
struct view;

uint64_t view_encode(const struct view *v, uint64_t i, uint64_t p);
bool view_hold(struct view *v, uint64_t i, uint64_t p);
void view_release(struct view *v, uint64_t i);
void view_punch(int memfd, uint64_t page, uint64_t count);
int view_copies_add(struct object *o, uint64_t p, struct view *v, uint64_t index);
void view_settle(struct view *v, uint64_t p, uint64_t i, bool all);
