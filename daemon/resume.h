/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caches handed back by clients of a daemon that died with no fd store. */
#pragma once

#include <stdbool.h>

#include "object.h"

struct file_access;
int resume_object(struct daemon *d, enum object_kind kind, const struct file_access *fa, int memfd,
		  bool writer, struct object **out);
