/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CRC32C (Castagnoli), the checksum of the pages the daemon keeps outside memory. */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);
