/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What is in memory of the files upager maps: mincore(2), MADV_WILLNEED and MADV_REMOVE. */
#pragma once

#include <stddef.h>

void residency_will_need(void *addr, size_t len);
int residency_remove(void *addr, size_t len);
