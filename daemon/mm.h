/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which process's memory a space's userfaultfd is: a mark the daemon puts in the client's token
 * page through the userfaultfd, looked for through the pid (mm.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The mark of a space: its token page's address and the seed of the page's bytes. */
struct mm_mark {
	pid_t pid; /* the process taken for the owner; 0 if none */
	uint64_t token; /* the token page, 0 if none */
	uint64_t seed[2]; /* 0, 0: no mark put yet */
	uid_t uid; /* the client's user: one whose reads of the mark stalled waits no more */
};

void mm_mark_page(const struct mm_mark *m, void *page);
int mm_mark_put(struct mm_mark *m, int uffd, bool wake);
bool mm_mark_seen(const struct mm_mark *m, pid_t pid);
bool mm_mark_check(const struct mm_mark *m, const void *page);
int mm_open(const struct mm_mark *m, const char *name);
int mm_open_waiting(const struct mm_mark *m, const char *name);
uint64_t mm_present_pages(int pagemap, uint64_t start, uint64_t pages);
