/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ranges of a process that the preload mapped through libupager. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct range {
	uintptr_t start, end;
	off_t offset; /* the file offset of start */
	int fd; /* the preload's duplicate of the file's descriptor; -1 for anonymous memory */
	dev_t dev; /* the file's, so that pieces of one mapping join up */
	ino_t ino;
	int prot, flags;
	bool writable; /* the file's descriptor was O_RDWR */
};

/* Where a range of a file shows bytes of it, and whether it may write them (ranges_of_file()); or
 * a part of a range (ranges_parts()), and whether it is private and writable, and for a file its
 * descriptor and the offset the part starts at. */
struct span {
	uintptr_t start, end;
	bool shared_writable, private_writable;
	int fd;
	off_t offset;
};

bool ranges_empty(void);
unsigned ranges_files_added(void);
size_t ranges_of_file(dev_t dev, ino_t ino, off_t off, off_t len, struct span *out, size_t max);
void ranges_lock(void);
void ranges_unlock(void);
int ranges_add(const struct range *r);
bool ranges_forget(uintptr_t start, size_t length);
bool ranges_overlap(uintptr_t start, size_t length, bool (*which)(const struct range *));
void ranges_protect(uintptr_t start, size_t length, int prot);
struct range *ranges_find(uintptr_t addr);
/* The parts of [start, start+length) in ranges whose protection has all of @prot, in order: up
 * to @max into @out. Return: how many. */
size_t ranges_parts(uintptr_t start, size_t length, int prot, struct span *out, size_t max);
/* The parts of ranges_parts() a batch of RANGES_BATCH at a time, each to @fn, the lock not held. */
#define RANGES_BATCH 16
void ranges_each_part(uintptr_t start, size_t length, int prot,
		      void (*fn)(const struct span *sp, void *arg), void *arg);
