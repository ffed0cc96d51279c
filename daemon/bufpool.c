// SPDX-License-Identifier: LGPL-2.1-or-later
/* Buffers of page-outs and page-ins, a few kept for reuse (bufpool.h). */
#include <sys/mman.h>

#include "bufpool.h"

/**
 * bufpool_get() - a buffer of BUFPOOL_BYTES, page-aligned: one kept, else a new mapping
 *
 * Return: the buffer, or NULL if memory is short.
 */
void *bufpool_get(struct bufpool *b)
{
	void *p;

	if (b->n)
		return b->kept[--b->n];
	p = mmap(NULL, BUFPOOL_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/** bufpool_put() - @buf, of bufpool_get() (or NULL), is free: kept if there is room, else unmapped */
void bufpool_put(struct bufpool *b, void *buf)
{
	if (!buf)
		return;
	if (b->n < BUFPOOL_KEPT)
		b->kept[b->n++] = buf;
	else
		(void)munmap(buf, BUFPOOL_BYTES);
}

/** bufpool_release() - the buffers kept go back to the system */
void bufpool_release(struct bufpool *b)
{
	while (b->n)
		(void)munmap(b->kept[--b->n], BUFPOOL_BYTES);
}
