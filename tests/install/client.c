// SPDX-License-Identifier: LGPL-2.1-or-later
/* A client built against the installed libupager with pkg-config. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <upager.h>

int main(int argc, char **argv)
{
	int fd = open(argv[argc - 1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *p, buf[6] = { 0 };

	if (fd < 0 || ftruncate(fd, 4096) < 0)
		return 1;
	p = upager_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("upager_mmap");
		return 1;
	}
	memcpy(p, "hello", 5);
	if (upager_msync(p, 4096, MS_SYNC) < 0 || pread(fd, buf, 5, 0) != 5)
		return 1;
	printf("%s\n", buf);
	return strcmp(buf, "hello") != 0;
}
