// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A FUSE file system that stalls on demand, for the tests of a daemon that must not wait on a
 * client's file: it holds one file, "data", of 16 pages whose 8-byte words hold their own
 * offsets, as the harness's pattern files do (pattern_at()). While the file named by $STALLFS_FLAG exists, every
 * open, read, write, fsync and utimens waits until the flag is gone; lookup and getattr answer,
 * so that a descriptor opened before the stall can still be handed to the daemon (libupager
 * reads its status first). While the file named by $STALLFS_FAIL exists, every write and fsync
 * fails with EIO, as a failing disk's would; while the file named by $STALLFS_FLUSH exists, every
 * flush (sent at each close of a descriptor of the file) waits.
 *
 *   STALLFS_FLAG=/tmp/stall [STALLFS_FAIL=/tmp/fail] stallfs MOUNTPOINT
 *   (foreground; fusermount3 -u to stop)
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fuse.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_SIZE (16 * 4096)

static const char *flag, *fail, *attr, *flush;
static uint8_t data[FILE_SIZE];

static void stall(void)
{
	while (access(flag, F_OK) == 0)
		usleep(10000);
}

/* Whether writes fail now (-EIO), or 0. */
static int failing(void)
{
	return fail && access(fail, F_OK) == 0 ? -EIO : 0;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/data") != 0)
		return -ENOENT;
	/* A server that stops answering altogether: its file's status too, while STALLFS_ATTR
	 * names a file that exists. */
	while (attr && access(attr, F_OK) == 0)
		usleep(10000);
	st->st_mode = S_IFREG | 0666;
	st->st_nlink = 1;
	st->st_size = FILE_SIZE;
	st->st_ino = 2;
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	stall();
	return strcmp(path, "/data") == 0 ? 0 : -ENOENT;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	stall();
	if (off >= FILE_SIZE)
		return 0;
	if (size > (size_t)(FILE_SIZE - off))
		size = (size_t)(FILE_SIZE - off);
	memcpy(buf, data + off, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	stall();
	if (failing())
		return failing();
	if (off >= FILE_SIZE)
		return -EFBIG;
	if (size > (size_t)(FILE_SIZE - off))
		size = (size_t)(FILE_SIZE - off);
	memcpy(data + off, buf, size);
	return (int)size;
}

/* A flush, which the kernel sends at every close(2) of a descriptor of the file: a server that
 * never answers it while $STALLFS_FLUSH names a file that exists. */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	while (flush && access(flush, F_OK) == 0)
		usleep(10000);
	return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	stall();
	return failing();
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)path;
	(void)tv;
	(void)fi;
	stall();
	return 0;
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.flush = fs_flush,
	.utimens = fs_utimens,
};

int main(int argc, char **argv)
{
	char *args[] = { argv[0],
			 "-f",
			 "-o",
			 "attr_timeout=0,entry_timeout=0,allow_other",
			 argc > 1 ? argv[1] : NULL,
			 NULL };

	flag = getenv("STALLFS_FLAG");
	fail = getenv("STALLFS_FAIL");
	attr = getenv("STALLFS_ATTR");
	flush = getenv("STALLFS_FLUSH");
	if (!flag || argc != 2)
		return 2;
	for (uint64_t off = 0; off < FILE_SIZE; off += 8) {
		uint64_t word = off ^ 0x5a5a5a5a00000000ULL;

		memcpy(data + off, &word, 8);
	}
	return fuse_main(5, args, &ops, NULL);
}
