/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The status of an open file as the kernel holds it, without asking the file's server: statx(2)
 * with AT_STATX_DONT_SYNC, which FUSE and NFS answer from their cached attributes (a local file
 * system's are always current). The daemon's loop calls this on clients' files, and must never
 * wait for a server that stopped answering.
 */
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/macro.h"

static inline int fstat_cached(int fd, struct stat *st)
{
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx) < 0)
		return neg_errno();
	*st = (struct stat){
		.st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
		.st_ino = sx.stx_ino,
		.st_mode = sx.stx_mode,
		.st_nlink = sx.stx_nlink,
		.st_uid = sx.stx_uid,
		.st_gid = sx.stx_gid,
		.st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
		.st_size = (off_t)sx.stx_size,
		.st_blksize = (blksize_t)sx.stx_blksize,
		.st_blocks = (blkcnt_t)sx.stx_blocks,
		.st_atim = { sx.stx_atime.tv_sec, sx.stx_atime.tv_nsec },
		.st_mtim = { sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec },
		.st_ctim = { sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec },
	};
	return 0;
}
