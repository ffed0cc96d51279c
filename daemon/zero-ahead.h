/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Zero pages ahead of a program that writes new anonymous memory in order, private (private.c) or
 * shared (fault.c): the rule of the window, in one place. A run is the pages of a mapping written
 * in order, a fault each at first; once it is long, each write fault at its end maps a window of
 * zero pages, so that the program takes one fault per window rather than per page. A shorter run,
 * a random write or a read maps its own page only: a program that writes a few pages has those in
 * memory and no others, as with the kernel (mincore(2)).
 */
#pragma once

#include <stdint.h>

#include "context.h"

#define ZERO_AHEAD_AFTER_PAGES 256 /* a run written in order this long gets zero pages ahead */
#define ZERO_AHEAD_MAX_PAGES 256 /* 1 MiB of them at most at once */

uint64_t zero_ahead_window(const struct daemon_config *cfg, uint32_t run);
uint32_t zero_ahead_run(uint32_t run, uint64_t pages);
void zero_ahead_step(uint64_t *next, uint32_t *run, uint64_t at, uint64_t pages, uint64_t unit);
