// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Every memfd of the daemon is made here, so that one rule holds for all of them:
 *
 * - mode 0600: a memfd is mode 0777 when made, and any process that holds a descriptor of it,
 *   even an O_RDONLY one, can open /proc/self/fd/N again with O_RDWR. With 0600 only the daemon's
 *   own user can, so the access a client was handed is all it ever has;
 * - sealed against shrinking (and, where its size is fixed, growing), then against further
 *   seals: the daemon maps each memfd it hands out and touches those pages itself, and a client
 *   that could shrink one would kill it with SIGBUS, or with F_SEAL_FUTURE_WRITE stop its writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "memfd.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/**
 * memfd_protect() - make @fd a memfd that only the daemon's user may reopen, with @seals
 * @fd: a memfd
 * @seals: F_SEAL_* to add; F_SEAL_SEAL is added too
 *
 * Return: 0; -EPERM if @fd is sealed against new seals and lacks some of @seals (one made
 * without MFD_ALLOW_SEALING, by an older daemon); or another negative errno.
 */
int memfd_protect(int fd, unsigned seals)
{
	if (fchmod(fd, 0600) < 0)
		return neg_errno();
	if (fcntl(fd, F_ADD_SEALS, seals | F_SEAL_SEAL) < 0) {
		int have = fcntl(fd, F_GET_SEALS);

		if (have < 0)
			return neg_errno();
		if (((unsigned)have & seals) != seals)
			return -EPERM;
	}
	return 0;
}

/**
 * memfd_new() - a memfd of @size bytes, protected as memfd_protect() says
 * @name: its name, shown as memfd:NAME in /proc/PID/fd and maps
 * @size: its size in bytes
 * @seals: F_SEAL_SHRINK, F_SEAL_GROW: what no one may do to it from now on
 * @out: the descriptor, O_CLOEXEC
 *
 * Return: 0, or a negative errno.
 */
int memfd_new(const char *name, uint64_t size, unsigned seals, int *out)
{
	_cleanup_close_ int fd = -1;
	int ret;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL) /* before Linux 6.3 */
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return neg_errno();
	if (ftruncate(fd, (off_t)size) < 0)
		return neg_errno();
	ret = memfd_protect(fd, seals);
	if (ret < 0)
		return ret;
	*out = fd_take(&fd);
	return 0;
}
