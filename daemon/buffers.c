// SPDX-License-Identifier: LGPL-2.1-or-later
/* Buffers of page-outs and page-ins, a few kept for reuse (buffers.h). */
#include <stdlib.h>
#include <sys/mman.h>

#include "buffers.h"

/**
 * buffer_get() - a buffer of BUFFER_BYTES, page-aligned: one kept, else a new mapping
 *
 * Return: the buffer, or NULL if memory is short.
 */
void *buffer_get(struct buffers *b)
{
	void *p;

	if (b->n)
		return b->kept[--b->n];
	p = mmap(NULL, BUFFER_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/** buffer_put() - @buf, of buffer_get() (or NULL), is free: kept if there is room, else unmapped */
void buffer_put(struct buffers *b, void *buf)
{
	if (!buf)
		return;
	if (b->n < BUFFERS_KEPT)
		b->kept[b->n++] = buf;
	else
		munmap(buf, BUFFER_BYTES);
}

/** buffers_release() - the buffers kept go back to the system */
void buffers_release(struct buffers *b)
{
	while (b->n)
		munmap(b->kept[--b->n], BUFFER_BYTES);
}
