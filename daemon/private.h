/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private pages of a space (private.c), those of its private anonymous mappings and its copies of
 * the pages its private mappings of objects wrote: which are in memory, which the swap store
 * holds, their page-out and their page-in.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "private-pages.h"

struct daemon;
struct space;
struct state_io;
struct users_over;

void private_free(struct space *s);
int private_set_spare(struct space *s, uint64_t addr, uint64_t len);
bool private_fault(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0);
bool private_copy_fault(struct space *s, uint64_t addr, uint64_t flags, uint64_t t0);
void private_copied(struct space *s, uint64_t addr);
uint64_t private_object_run(struct space *s, uint64_t addr, uint64_t n);
void private_remove(struct space *s, uint64_t start, uint64_t end);
void private_filled(struct space *s, uint64_t addr, uint64_t len);
void private_forget(struct space *s, uint64_t start, uint64_t end);
void private_move(struct space *s, uint64_t from, uint64_t to, uint64_t len);
void private_unmap(struct space *s, uint64_t start, uint64_t end);
void private_fork_read(struct space *s, int ufd);
void private_fork(struct space *parent, struct space *child, int ufd);
void private_fork_abandon(struct space *parent, int ufd);
void private_watch_answers(struct daemon *d);
void private_serve_waits(struct daemon *d);
void private_follow_cuts(struct daemon *d);
void private_balance(struct daemon *d, struct users_over *over, const struct groups_over *groups);
uint64_t private_use(const struct space *s);
void private_mark_all(struct space *s);
void private_load(struct daemon *d, struct state_io *io);
void private_adopt(struct daemon *d);
