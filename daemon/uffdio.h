/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Thin wrappers of the userfaultfd ioctls: 0 or a negative errno, never errno. */
#pragma once

#include "mm.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Read what is queued on @uffd and keep it for later: the number of messages read, or a negative
 * errno; -ESTALE if a message read and kept takes part of [start, start+len) from the mm (len 0:
 * no range), where the ioctl must not map anything (see uffdio_set_drain()). */
typedef int (*uffdio_drain_fn)(void *data, int uffd, uint64_t start, uint64_t len);

void uffdio_set_drain(uffdio_drain_fn fn, void *data);
int uffdio_drain(int uffd);
int uffdio_pagemap_entry(int fd, uint64_t addr, uint64_t *e);

int uffdio_api(int uffd, uint64_t want, uint64_t *features);
int uffdio_register(int uffd, uint64_t start, uint64_t len, uint64_t mode);
int uffdio_continue(int uffd, uint64_t start, uint64_t len, bool wp);
int uffdio_copy(int uffd, uint64_t start, const void *src, uint64_t len, bool wp);
int uffdio_copy_zeroes(int uffd, uint64_t start, uint64_t len, uint64_t *done);
int uffdio_writeprotect(int uffd, uint64_t start, uint64_t len, bool wp);
int uffdio_zeropage(int uffd, uint64_t start, uint64_t len);
int uffdio_zeropage_run(int uffd, uint64_t start, uint64_t len, uint64_t *done);
int uffdio_poison(int uffd, uint64_t start, uint64_t len);
int uffdio_resolve_zero(int uffd, uint64_t start, uint64_t len);
int uffdio_resolve_continue(int uffd, uint64_t start, uint64_t len, bool wp);
int uffdio_resolve_unprotect(int uffd, uint64_t start, uint64_t len);
void uffdio_sigbus(int uffd, uint64_t addr, struct mm_mark m);
int uffdio_wake(int uffd, uint64_t start, uint64_t len);
int uffdio_alive(int uffd, uint64_t addr);
uint64_t uffdio_lowest_addr(void);
uint64_t uffdio_probe_features(void);
bool uffdio_feature_allowed(uint64_t feature);
