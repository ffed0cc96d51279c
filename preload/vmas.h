/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A range that is one mapping to the program may be several of the kernel's (a mapping grown by
 * upager is its first pages and a mapping of the new ones): mremap(2) of it moves each of them.
 */
#pragma once

#include <stddef.h>

#include <stdint.h>

/* The most mappings a range may be made of here. */
#define VMAS_MAX 64

struct vma {
	uintptr_t start, end;
};

int vmas_find(uintptr_t lo, uintptr_t hi, struct vma *out);
void *vmas_remap(void *old, size_t len, int flags, void *dst);
