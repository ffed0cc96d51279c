// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-demo: a client that shows what upager does. It maps anonymous and file memory through
 * upagerd, shows the data it reads, writes a shared file mapping back, shares memory with a child,
 * remaps a file mapping nonlinearly, grows a MAP_GROWSDOWN mapping, then holds its mappings until a
 * line arrives on standard input (so that upagerctl can list them).
 *
 * Usage: upager-demo DIR   (DIR: where to make the demo's file)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upager.h"

#define PAGE 4096

static void die(const char *what)
{
	fprintf(stderr, "upager-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	char path[512], line[64], buf[32];
	char *anon, *shared, *file, *priv, *pop, *stack;
	int fd, status;
	pid_t child;

	if (argc != 2) {
		fprintf(stderr, "usage: upager-demo DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/demo.txt", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open");
	dprintf(fd, "upager serves this file's pages from its own cache.\n");
	if (ftruncate(fd, 3 * PAGE + 100) < 0)
		die("ftruncate");

	anon = upager_mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			   0);
	if (anon == MAP_FAILED)
		die("upager_mmap anonymous");
	strcpy(anon + 5 * PAGE, "written into private anonymous memory");
	printf("private anonymous, 1 MiB: page 0 reads %d, page 5 holds \"%s\"\n", anon[0],
	       anon + 5 * PAGE);

	shared = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			     0);
	if (shared == MAP_FAILED)
		die("upager_mmap shared anonymous");
	child = fork();
	if (child == 0) {
		strcpy(shared, "hello from the child");
		_exit(0);
	}
	waitpid(child, &status, 0);
	printf("shared anonymous: the parent reads what its child wrote: \"%s\"\n", shared);

	file = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (file == MAP_FAILED)
		die("upager_mmap file");
	printf("shared file mapping of %s: \"%.*s\"\n", path, (int)strcspn(file, "\n"), file);
	memcpy(file, "UPAGER", 6);
	if (upager_msync(file, 4 * PAGE, MS_SYNC) < 0)
		die("upager_msync");
	if (pread(fd, buf, 6, 0) != 6)
		die("pread");
	printf("after upager_msync(MS_SYNC) the file begins with \"%.6s\"\n", buf);
	printf("bytes past end of file in the last page read %d\n", file[3 * PAGE + 200]);

	priv = upager_mmap2(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (priv == MAP_FAILED)
		die("upager_mmap2");
	priv[0] = 'p';
	printf("private file mapping: a write stays private (mapping '%c', file '%c')\n", priv[0],
	       file[0]);

	pop = upager_mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (pop == MAP_FAILED)
		die("upager_mmap MAP_POPULATE");
	printf("MAP_POPULATE: all 3 pages were mapped before the call returned (see RESIDENT)\n");

	/* A nonlinear mapping: its first page shows page 2 of the file, in the same single VMA. */
	if (upager_remap_file_pages(file, PAGE, 0, 2, 0) < 0)
		die("upager_remap_file_pages");
	file[2 * PAGE] = 'Q';
	printf("upager_remap_file_pages: page 0 of the shared mapping now shows file page 2; a "
	       "write "
	       "through file page 2's own place is seen there: '%c'\n",
	       file[0]);

	/* A mapping that grows down, page by page, as its guard page below is touched. */
	stack = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	if (stack == MAP_FAILED)
		die("upager_mmap MAP_GROWSDOWN");
	for (int i = 1; i <= 64; i++)
		stack[-i * PAGE] = (char)i;
	printf("MAP_GROWSDOWN: 4 pages mapped, 64 pages below them touched one by one: the mapping "
	       "grew by them (see LENGTH)\n");

	/* Hold the mappings for upagerctl list. */
	snprintf(path, sizeof(path), "%s/ready", argv[1]);
	close(open(path, O_WRONLY | O_CREAT, 0644));
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;
	if (upager_munmap(file, 4 * PAGE) < 0)
		die("upager_munmap");
	return 0;
}
