// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Fault injection for restart-test.py, loaded into upagerd with LD_PRELOAD: once the file named
 * by $UPAGER_STALL exists, the next UFFDIO_CONTINUE never returns. The daemon has then read a
 * fault that it will never resolve, and the harness kills it: the thread that faulted waits until
 * a new daemon wakes it. "$UPAGER_STALL.stalled" is made when that happens.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int ioctl(int fd, unsigned long req, ...);

int ioctl(int fd, unsigned long req, ...)
{
	static int (*real)(int, unsigned long, ...);
	const char *stall = getenv("UPAGER_STALL");
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (req == UFFDIO_CONTINUE && stall && access(stall, F_OK) == 0) {
		char path[4096];

		snprintf(path, sizeof(path), "%s.stalled", stall);
		close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
		for (;;)
			pause();
	}
	return real(fd, req, arg);
}
