// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Copies of nonlinear mappings against writes through linear mappings of the same file, made at
 * the same time by another process: a write is never lost and a copy never shows a page as it
 * was before a write that came first (docs/design.md, "Nonlinear mappings").
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(coherence, .init = harness_start, .fini = harness_stop, .timeout = 120);

enum {
	PAGES = 4,
	RUN_MS = 3000,
};

/* What the writer and the test share: when to stop, and what the writer found. */
struct shared {
	volatile int stop;
	uint64_t rounds, lost, last_page, last_want, last_found;
};

/*
 * The writer: round after round, it writes the round's number into word 1 or 2 of each page, in
 * turn, after checking that both words still hold what it wrote there last. A write that the
 * cache dropped shows as an older round, or as the file's own data: the store that faults is done
 * again once the fault is served, the word written the round before is not.
 */
static void write_rounds(int fd, struct shared *sh)
{
	volatile uint64_t *l =
		upager_mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t v, want[PAGES][2] = { { 0 } };

	alarm(60);
	if (l == MAP_FAILED)
		_exit(2);
	for (uint64_t p = 0; p < PAGES; p++)
		l[p * PAGE / 8 + 1] = l[p * PAGE / 8 + 2] = 0;
	for (v = 1; !sh->stop; v++) {
		for (uint64_t p = 0; p < PAGES; p++) {
			for (int k = 0; k < 2; k++) {
				uint64_t was = l[p * PAGE / 8 + 1 + k];

				if (was != want[p][k]) {
					sh->lost++;
					sh->last_page = p;
					sh->last_want = want[p][k];
					sh->last_found = was;
					want[p][k] = was;
				}
			}
			l[p * PAGE / 8 + 1 + (v & 1)] = v;
			want[p][v & 1] = v;
		}
	}
	sh->rounds = v;
	_exit(0);
}

Test(coherence, a_write_through_a_linear_mapping_while_the_first_copy_of_its_page_is_made_stays)
{
	int fd = make_pattern_file("f", PAGES * PAGE, NULL);
	struct shared *sh =
		mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile uint64_t *m;
	uint64_t copies = 0, t0;
	pid_t writer;
	int status;

	cr_assert_neq(sh, MAP_FAILED);
	writer = harness_fork();
	cr_assert(writer >= 0);
	if (writer == 0)
		write_rounds(fd, sh);
	/* A view of its own, and in it one page that shows each page in turn: each remap drops
	 * the copy before and makes a first copy of a page that the writer holds writable. */
	m = upager_mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, 1, MAP_NONBLOCK), 0, "%m");
	t0 = harness_now_ms();
	while (harness_now_ms() - t0 < RUN_MS) {
		for (size_t p = 0; p < PAGES; p++) {
			cr_assert_eq(upager_remap_file_pages((void *)m, PAGE, 0, p, 0), 0, "%m");
			cr_assert_eq(m[0], pattern_at(p * PAGE));
			copies++;
		}
	}
	sh->stop = 1;
	cr_assert_eq(waitpid(writer, &status, 0), writer);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer: status %x", status);
	cr_log_info("%lu rounds written, %lu copies made", (unsigned long)sh->rounds,
		    (unsigned long)copies);
	cr_assert_gt(sh->rounds, 100);
	cr_assert_eq(sh->lost, 0,
		     "%lu writes lost in %lu rounds; the last: page %lu held round %lu, not %lu",
		     (unsigned long)sh->lost, (unsigned long)sh->rounds,
		     (unsigned long)sh->last_page, (unsigned long)sh->last_found,
		     (unsigned long)sh->last_want);
}
