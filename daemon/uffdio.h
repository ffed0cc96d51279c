/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Thin wrappers of the userfaultfd ioctls: 0 or a negative errno, never errno. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

int uffdio_api(int uffd, uint64_t want, uint64_t *features);
int uffdio_register(int uffd, uint64_t start, uint64_t len, uint64_t mode);
int uffdio_continue(int uffd, uint64_t start, uint64_t len, bool wp);
int uffdio_copy(int uffd, uint64_t start, const void *src, uint64_t len, bool wp);
int uffdio_writeprotect(int uffd, uint64_t start, uint64_t len, bool wp);
int uffdio_zeropage(int uffd, uint64_t start, uint64_t len);
int uffdio_poison(int uffd, uint64_t start, uint64_t len);
int uffdio_wake(int uffd, uint64_t start, uint64_t len);
int uffdio_alive(int uffd, uint64_t addr);
uint64_t uffdio_lowest_addr(void);
uint64_t uffdio_probe_features(void);
bool uffdio_feature_allowed(uint64_t feature);
