/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How a page goes into a client's mapping: writable, or write-protected until a write. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct region;
struct space;
struct view;

/* What decides whether a page goes in write-protected (resolve_protect()). */
enum {
	/* The mapping may write the object but was made without PROT_WRITE (region.wp): a write
	 * after mprotect() must reach the daemon. */
	RESOLVE_READ_ONLY = 1,
	/* The mapping's writes are tracked (region_tracks_writes(), region_keeps_copies()): a
	 * page goes in protected until its first write, which the daemon then sees. */
	RESOLVE_TRACKED = 2,
	/* The page goes in for a write fault: that write is its first. */
	RESOLVE_WRITE = 4,
	/* The page has copies in nonlinear mappings, or is such a copy and not the one writable
	 * copy: a write must reach the daemon, which drops the other copies (view.c). */
	RESOLVE_COPIES = 8,
};

/* Why pages go into a mapping (resolve_linear()). */
enum resolve_for {
	RESOLVE_FOR_READ,
	RESOLVE_FOR_WRITE, /* a write fault on the first page, which is written now */
	RESOLVE_FOR_WINDOW, /* a writer's window: as for a write, but none written yet */
};

bool resolve_protect(unsigned facts);
bool resolve_linear(const struct space *s, struct region *r, uint64_t p, enum resolve_for why,
		    uint64_t *n);
bool resolve_view(const struct view *v, uint64_t i);
