// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A program that knows nothing of upager, run by test-preload under upager-run. It maps what it is
 * told to with the plain calls, says on stdout what it sees of itself, waits for a line on stdin
 * (the test looks at the daemon's tables meanwhile), then unmaps and says whether the kernel's
 * mapping is gone.
 *
 *   preload-probe anon         malloc()s 8 MiB and mmap()s 1 MiB of anonymous memory
 *   preload-probe file PATH    mmap()s PATH shared, and 1 MiB of anonymous memory
 *
 * Output: "ready MAPPED MALLOCED sum=N upager=U uffd=F", then "gone=G": MAPPED the address of the
 * mapping of PATH (anon: of the anonymous memory), N the sum of its bytes, U whether
 * /proc/self/maps shows it as a memfd of upager's, F whether the process holds a userfaultfd, G
 * whether both mappings left /proc/self/maps after munmap().
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ANON_SIZE (1UL << 20)

/* The line of /proc/self/maps whose range holds p, into line; false if none. */
static bool maps_line(const void *p, char *line, size_t size)
{
	FILE *f = fopen("/proc/self/maps", "r");
	uintptr_t a = (uintptr_t)p, start, end;
	bool found = false;

	while (f && fgets(line, (int)size, f))
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2 && start <= a &&
		    a < end) {
			found = true;
			break;
		}
	if (f)
		fclose(f);
	return found;
}

static bool has_userfaultfd(void)
{
	char path[64], target[64];

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "userfaultfd"))
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	bool file = argc == 3 && !strcmp(argv[1], "file");
	char line[512], go[16];
	unsigned char *mapped, *anon, *big;
	size_t length = ANON_SIZE;
	uint64_t sum = 0;
	struct stat st;
	bool upager;
	int fd = -1;

	if (!file && !(argc == 2 && !strcmp(argv[1], "anon"))) {
		fprintf(stderr, "usage: preload-probe anon | file PATH\n");
		return 2;
	}
	big = malloc(8UL << 20); /* glibc's malloc() maps this much with its own mmap */
	anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!big || anon == MAP_FAILED)
		return 1;
	memset(big, 1, 8UL << 20);
	memset(anon, 2, ANON_SIZE);
	mapped = anon;
	if (file) {
		fd = open(argv[2], O_RDWR);
		if (fd < 0 || fstat(fd, &st) < 0)
			return 1;
		length = (size_t)st.st_size;
		mapped = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (mapped == MAP_FAILED)
			return 1;
		close(fd);
	}
	for (size_t i = 0; i < length; i++)
		sum += mapped[i];
	upager = maps_line(mapped, line, sizeof(line)) && strstr(line, "memfd:upager");
	printf("ready %p %p sum=%" PRIu64 " upager=%d uffd=%d\n", (void *)mapped, (void *)big, sum,
	       upager, has_userfaultfd());
	fflush(stdout);
	if (!fgets(go, sizeof(go), stdin))
		return 1;
	if (munmap(anon, ANON_SIZE) < 0 || (file && munmap(mapped, length) < 0))
		return 1;
	printf("gone=%d\n", !maps_line(anon, line, sizeof(line)) &&
				    !(file && maps_line(mapped, line, sizeof(line))));
	free(big);
	return 0;
}
