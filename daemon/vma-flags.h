/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The flags of a process's mappings (proc(5), /proc/PID/smaps, "VmFlags") that the kernel tells
 * the daemon of no other way: what a fork leaves out of the child, which pages are locked, and
 * whether a mapping is writable (mprotect(2) tells no one).
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum {
	VMA_WIPEONFORK = 1 << 0, /* "wf": the child gets zeroes (MADV_WIPEONFORK) */
	VMA_DONTCOPY = 1 << 1, /* "dc": the child does not get the mapping (MADV_DONTFORK) */
	VMA_LOCKED = 1 << 2, /* "lo": its pages stay in memory (mlock(2), MAP_LOCKED) */
};

/* A mapping [start, end) with some of the flags asked for (VMA_*). */
typedef void (*vma_flags_fn)(void *arg, uint64_t start, uint64_t end, unsigned flags);

int vma_flags_scan(FILE *f, unsigned want, vma_flags_fn fn, void *arg);
struct mm_mark;
int vma_flags_of(const struct mm_mark *m, unsigned want, vma_flags_fn fn, void *arg);
int vma_maps_writable(FILE *f, uint64_t addr);
int vma_writable(const struct mm_mark *m, uint64_t addr);
