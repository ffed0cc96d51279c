// SPDX-License-Identifier: LGPL-2.1-or-later
/* Reads of a process's memory (remote-read.c) where nothing blocks them: the data, or the error. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/remote-read.h"
#include "self-mark.h"

Test(remote_read, a_read_of_mapped_pages_gets_their_bytes_and_no_race)
{
	static char src[3 * 4096], dst[2 * 4096];
	struct iovec local = { dst, sizeof(dst) };
	struct iovec remote[2] = { { src, 4096 }, { src + 2 * 4096, 4096 } };
	struct mm_mark self = self_mark();
	bool raced = true;

	memset(src, 'a', 4096);
	memset(src + 2 * 4096, 'c', 4096);
	cr_assert_eq(remote_read(&self, -1, &local, remote, 2, &raced), (int)sizeof(dst));
	cr_assert_not(raced);
	cr_assert_eq(dst[0], 'a');
	cr_assert_eq(dst[4096], 'c');
}

Test(remote_read, a_read_of_an_unmapped_range_fails_with_efault)
{
	char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), dst[4096];
	struct iovec local = { dst, sizeof(dst) }, remote = { p, 4096 };
	struct mm_mark self = self_mark();
	bool raced = true;

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(munmap(p, 4096), 0);
	cr_assert_eq(remote_read(&self, -1, &local, &remote, 1, &raced), -EFAULT);
	cr_assert_not(raced);
}

/* Memory that does not show the mark of the process it is taken for is another process's: its
 * bytes are not returned (daemon/mm.c). */
Test(remote_read, a_read_of_memory_without_its_mark_fails_with_esrch)
{
	static char src[4096], dst[4096];
	struct iovec local = { dst, sizeof(dst) }, remote = { src, 4096 };
	struct mm_mark other = self_mark();
	bool raced = true;

	other.seed[1]++;
	cr_assert_eq(remote_read(&other, -1, &local, &remote, 1, &raced), -ESRCH);
	other.pid = 0;
	cr_assert_eq(remote_read(&other, -1, &local, &remote, 1, &raced), -ESRCH);
}
