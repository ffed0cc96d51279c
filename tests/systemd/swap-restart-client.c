// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The client of swap-restart-test.py: anonymous memory of PAGES pages through upager_mmap(), shared
 * (or private with a second argument "private"; or with "private-file" a private mapping of a new
 * sparse file, whose pages the writes copy), larger than the daemon's budget, so that most of it
 * is in the daemon's swap store. It reads
 * commands on stdin, one a line, and answers on stdout:
 *   write R   every page gets the pattern of round R; says "at R N" every PROGRESS pages
 *             written, and answers "written R"
 *   check R   every page is compared with the pattern of round R; answers "checked R bad=N",
 *             after a "FAIL" line for each of the first few pages that differ
 * and exits with 0 at the end of its input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "upager.h"

#define PAGE 4096UL
#define PROGRESS 2048UL

/* Page p of round r: its number, its round and a mark, then one byte repeated. */
static void pattern(uint8_t *buf, uint64_t p, unsigned r)
{
	uint64_t head = 0x5a5a000000000000ULL | ((uint64_t)r << 32) | p;

	memcpy(buf, &head, 8);
	memset(buf + 8, (int)((p * 7 + 5 + r * 31) & 0xff), PAGE - 8);
}

int main(int argc, char **argv)
{
	uint64_t pages = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
	static uint8_t want[PAGE];
	char line[64], cmd[16];
	const char *kind = argc > 2 ? argv[2] : "shared";
	int type = strcmp(kind, "shared") ? MAP_PRIVATE : MAP_SHARED, fd = -1;
	char path[] = "/var/tmp/upager-swap-restart-XXXXXX";
	uint8_t *mem;
	unsigned r;

	if (pages == 0) {
		fprintf(stderr, "usage: %s PAGES\n", argv[0]);
		return 2;
	}
	if (!strcmp(kind, "private-file")) {
		fd = mkstemp(path);
		if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) < 0) {
			printf("FAIL %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	mem = upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			  type | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
	if (mem == MAP_FAILED) {
		printf("FAIL upager_mmap: %s\n", strerror(errno));
		return 1;
	}
	printf("mapped\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t bad = 0;

		if (sscanf(line, "%15s %u", cmd, &r) != 2)
			continue;
		for (uint64_t p = 0; p < pages; p++) {
			pattern(want, p, r);
			if (!strcmp(cmd, "write")) {
				memcpy(mem + p * PAGE, want, PAGE);
				if ((p + 1) % PROGRESS == 0) {
					printf("at %u %lu\n", r, (unsigned long)(p + 1));
					fflush(stdout);
				}
			} else if (memcmp(mem + p * PAGE, want, PAGE) != 0 && bad++ < 5) {
				uint64_t head;

				memcpy(&head, mem + p * PAGE, 8);
				printf("FAIL page %lu of round %u begins with %016lx\n",
				       (unsigned long)p, r, (unsigned long)head);
			}
		}
		if (!strcmp(cmd, "write"))
			printf("written %u\n", r);
		else
			printf("checked %u bad=%lu\n", r, (unsigned long)bad);
		fflush(stdout);
	}
	if (fd >= 0)
		unlink(path);
	return 0;
}
