/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The flags of a process's mappings that a fork follows (proc(5), /proc/PID/smaps, "VmFlags"):
 * the daemon is told of a fork by one event, and must itself leave out of the child what the
 * kernel left out of it.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum {
	VMA_WIPEONFORK = 1 << 0, /* "wf": the child gets zeroes (MADV_WIPEONFORK) */
	VMA_DONTCOPY = 1 << 1, /* "dc": the child does not get the mapping (MADV_DONTFORK) */
};

/* A mapping [start, end) with some of the flags asked for (VMA_*). */
typedef void (*vma_flags_fn)(void *arg, uint64_t start, uint64_t end, unsigned flags);

int vma_flags_scan(FILE *f, unsigned want, vma_flags_fn fn, void *arg);
int vma_flags_of(pid_t pid, unsigned want, vma_flags_fn fn, void *arg);
