/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cache alone, for the tests of its modules (cache-fixture.c). */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "daemon/cache.h"

#define PAGES 40

struct object;

extern uv_loop_t loop;
extern struct cache cache;
/* What the hooks were told: descriptors stored and let go, changes, pages write-protected. */
extern unsigned stored, unstored, touched, protected_pages;

void cache_fixture_setup(void);
void cache_fixture_teardown(void);
/* The pattern of byte @i of file page @page. */
uint8_t pattern(uint64_t page, uint64_t i);
/* A file of PAGES pages and a tail of 100 bytes, each page its own pattern; its object. */
struct object *file_object(int *fdp);
/* The same, a file of that name: another object. */
struct object *file_object_named(const char *name, int *fdp);
