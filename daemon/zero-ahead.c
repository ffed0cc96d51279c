// SPDX-License-Identifier: LGPL-2.1-or-later
/* The window of zero pages ahead of a writer in order (zero-ahead.h). */
#include "common/macro.h"
#include "zero-ahead.h"

/**
 * zero_ahead_window() - how many pages a write fault at the end of a run of @run pages maps
 * @cfg: the read-ahead settings: the window starts at their minimum and stays within their
 *       maximum; a maximum of 0 turns it off
 * @run: the pages written in order so far, zero_ahead_run()'s
 *
 * Return: 1 until the run has ZERO_AHEAD_AFTER_PAGES pages, then the pages past that (at least the
 * read-ahead minimum), up to ZERO_AHEAD_MAX_PAGES; the caller bounds it by the mapping, the room
 * the budget has and the pages not made yet.
 */
uint64_t zero_ahead_window(const struct daemon_config *cfg, uint32_t run)
{
	uint64_t n;

	if (!cfg->readahead_max_pages || run < ZERO_AHEAD_AFTER_PAGES)
		return 1;
	n = MAX((uint64_t)run - ZERO_AHEAD_AFTER_PAGES, MAX((uint64_t)cfg->readahead_min_pages, 1));
	return MIN(MIN(n, (uint64_t)ZERO_AHEAD_MAX_PAGES), (uint64_t)cfg->readahead_max_pages);
}

/** zero_ahead_run() - the run once @pages more pages are written in order at its end */
uint32_t zero_ahead_run(uint32_t run, uint64_t pages)
{
	return (uint32_t)MIN((uint64_t)run + pages, ZERO_AHEAD_AFTER_PAGES + ZERO_AHEAD_MAX_PAGES);
}

/**
 * zero_ahead_step() - @pages more pages touched in order from @at: the run ending at *@next goes
 * on if @at is that end, else a new one starts there
 * @next: the page after the run: an address, or an object page
 * @run: its pages
 * @unit: what a page is in @next's terms (its size for an address, 1 for an object page)
 */
void zero_ahead_step(uint64_t *next, uint32_t *run, uint64_t at, uint64_t pages, uint64_t unit)
{
	if (at != *next)
		*run = 0;
	*next = at + pages * unit;
	*run = zero_ahead_run(*run, pages);
}
