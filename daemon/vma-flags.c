// SPDX-License-Identifier: LGPL-2.1-or-later
/* The flags of a process's mappings the daemon follows, from /proc/PID/smaps and maps. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/macro.h"
#include "mm.h"
#include "vma-flags.h"

/* The VMA_* flags that the two-letter names of a "VmFlags:" line's @names say. */
static unsigned parse_names(const char *names)
{
	static const struct {
		char name[3];
		unsigned flag;
	} known[] = { { "wf", VMA_WIPEONFORK }, { "dc", VMA_DONTCOPY }, { "lo", VMA_LOCKED } };
	unsigned flags = 0;

	for (const char *s = names; *s;) {
		size_t n;

		s += strspn(s, " \t\n");
		n = strcspn(s, " \t\n");
		for (size_t k = 0; n == 2 && k < sizeof(known) / sizeof(known[0]); k++)
			if (memcmp(s, known[k].name, 2) == 0)
				flags |= known[k].flag;
		s += n;
	}
	return flags;
}

/**
 * vma_flags_scan() - call @fn for each mapping of @f (a /proc/PID/smaps) with a flag of @want
 * @f: the text, read to its end
 * @want: VMA_* flags
 * @fn: called with the mapping's range and those of its flags that are in @want
 * @arg: for @fn
 *
 * A mapping starts at a line "START-END ..." (hexadecimal, as in /proc/PID/maps); its flags are
 * on its "VmFlags:" line. Lines too long for the buffer (a long path) go on in the next read,
 * which is not taken for the start of a line.
 *
 * Return: 0, or -EIO when @f could not be read to its end.
 */
int vma_flags_scan(FILE *f, unsigned want, vma_flags_fn fn, void *arg)
{
	char line[512];
	uint64_t start = 0, end = 0;
	bool line_start = true, in_vma = false;

	while (fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') != NULL;
		uint64_t lo, hi;
		unsigned flags;

		if (line_start && sscanf(line, "%" SCNx64 "-%" SCNx64 " ", &lo, &hi) == 2 &&
		    lo < hi) {
			start = lo;
			end = hi;
			in_vma = true;
		} else if (line_start && in_vma && strncmp(line, "VmFlags:", 8) == 0) {
			flags = parse_names(line + 8) & want;
			if (flags)
				fn(arg, start, end, flags);
			in_vma = false;
		}
		line_start = whole;
	}
	return ferror(f) ? -EIO : 0;
}

/**
 * vma_flags_of() - vma_flags_scan() of the /proc/PID/smaps of @m's process (mm_open())
 *
 * Return: 0, or a negative errno (-ENOENT: no such process any more; -ESRCH: not known).
 */
int vma_flags_of(const struct mm_mark *m, unsigned want, vma_flags_fn fn, void *arg)
{
	int fd = mm_open(m, "smaps"), ret;
	FILE *f;

	if (fd < 0)
		return fd;
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	ret = vma_flags_scan(f, want, fn, arg);
	fclose(f);
	return ret;
}

/* PROCMAP_QUERY (Linux 6.11, <linux/fs.h>): one mapping of /proc/PID/maps by address. */
struct vma_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define VMA_QUERY _IOWR('f', 17, struct vma_query)
#define VMA_QUERY_WRITABLE 0x02

/**
 * vma_maps_writable() - whether the mapping of @f (a /proc/PID/maps) that holds @addr is writable
 * Return: 1 if it is, 0 if not, -ENOENT if no mapping holds @addr, -EIO if @f could not be read.
 */
int vma_maps_writable(FILE *f, uint64_t addr)
{
	char line[512];
	bool line_start = true;

	while (fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') != NULL;
		uint64_t lo, hi;
		char perms[5];

		if (line_start &&
		    sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s", &lo, &hi, perms) == 3 &&
		    addr >= lo && addr < hi)
			return perms[1] == 'w';
		line_start = whole;
	}
	return ferror(f) ? -EIO : -ENOENT;
}

/**
 * vma_writable() - whether the mapping of @m's process (mm_open()) that holds @addr is writable
 * now: the kernel's PROCMAP_QUERY, or the text of /proc/PID/maps where the kernel lacks it
 *
 * Return: 1 if it is, 0 if not, or a negative errno (-ENOENT: no mapping there; -ESRCH: the
 * process is not known).
 */
int vma_writable(const struct mm_mark *m, uint64_t addr)
{
	struct vma_query q = { .size = sizeof(q), .query_addr = addr };
	int fd = mm_open(m, "maps"), ret;
	FILE *f;

	if (fd < 0)
		return fd;
	if (ioctl(fd, VMA_QUERY, &q) == 0) {
		close(fd);
		return (q.vma_flags & VMA_QUERY_WRITABLE) != 0;
	}
	if (errno != ENOTTY && errno != EINVAL) {
		ret = neg_errno();
		close(fd);
		return ret;
	}
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	ret = vma_maps_writable(f, addr);
	fclose(f);
	return ret;
}
