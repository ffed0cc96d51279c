/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading a client's memory (process_vm_readv()) that a move of its mappings cannot block for
 * ever (remote-read.c).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

int remote_read(pid_t pid, int uffd, const struct iovec *local, const struct iovec *remote,
		unsigned n, bool *raced);
