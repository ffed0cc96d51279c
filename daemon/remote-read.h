/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading a client's memory (process_vm_readv()) that a move of its mappings cannot block for
 * ever (remote-read.c).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The most pieces one read takes (IOV_MAX less the mark's). */
#define REMOTE_READ_MAX 1023

struct mm_mark;
int remote_read(const struct mm_mark *m, int uffd, const struct iovec *local,
		const struct iovec *remote, unsigned n, bool *raced);
