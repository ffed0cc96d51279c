// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Per-user limits: a user (65534) past its connections, caches, mappings or bytes mapped gets
 * the errno mmap(2) gives for the like, and root is not limited; a daemon out of descriptors
 * neither spins nor floods its log, and serves again once descriptors are free.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "harness.h"
#include "upager.h"

static void start_with_small_limits(void)
{
	static const char *const args[] = { "--max-connections",
					    "4",
					    "--max-processes",
					    "4",
					    "--max-caches",
					    "3",
					    "--max-mappings",
					    "6",
					    "--max-mapped",
					    "64K",
					    NULL };

	harness_start_args(args);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
}

TestSuite(limits, .init = start_with_small_limits, .fini = harness_stop, .timeout = 60);

static void become_nobody(void)
{
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
}

static void child_passes(void (*fn)(void *))
{
	int status = run_child(fn, NULL);

	cr_assert(WIFEXITED(status), "status %x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed", WEXITSTATUS(status));
}

/* Whether the daemon closed connection @fd within a second. */
static bool closed_by_daemon(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&p, 1, 1000) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static void connections_child(void *arg)
{
	int fds[20], kept = 0, closed = 0;

	(void)arg;
	become_nobody();
	for (int i = 0; i < 20; i++) {
		fds[i] = harness_connect_raw();
		if (fds[i] < 0)
			_exit(1);
	}
	for (int i = 0; i < 20; i++) {
		if (closed_by_daemon(fds[i]))
			closed++;
		else
			kept++;
	}
	_exit(kept == 4 && closed == 16 ? 0 : 2);
}

static bool back_to(void *arg)
{
	return harness_count_fds(harness_daemon_pid()) <= *(int *)arg;
}

Test(limits, a_user_has_only_so_many_connections)
{
	int before = harness_count_fds(harness_daemon_pid());
	char *p;

	child_passes(connections_child);
	/* The connections the daemon kept close as it sees the child's go. */
	cr_assert(wait_until(back_to, &before, 2000), "the daemon holds %d descriptors, %d before",
		  harness_count_fds(harness_daemon_pid()), before);
	/* Root is not limited. */
	p = upager_mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(p[0], 0);
}

static void *map_shared_anon(void)
{
	return upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static void caches_child(void *arg)
{
	char *m[3];

	(void)arg;
	become_nobody();
	for (int i = 0; i < 3; i++) {
		m[i] = map_shared_anon();
		if (m[i] == MAP_FAILED)
			_exit(1);
		m[i][0] = (char)i;
	}
	errno = 0;
	if (map_shared_anon() != MAP_FAILED || errno != ENFILE)
		_exit(2);
	if (upager_munmap(m[1], PAGE) < 0)
		_exit(3);
	m[1] = map_shared_anon();
	if (m[1] == MAP_FAILED || m[0][0] != 0 || m[2][0] != 2)
		_exit(4);
	_exit(0);
}

Test(limits, a_user_has_only_so_many_caches)
{
	child_passes(caches_child);
}

static void *map_shared_anon_pages(size_t pages)
{
	return upager_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			   -1, 0);
}

/* A nonlinear view of @p (2 pages): its pages swapped. */
static int swap_pages(char *p)
{
	return upager_remap_file_pages(p, PAGE, 0, 1, 0) < 0 ||
			       upager_remap_file_pages(p + PAGE, PAGE, 0, 0, 0) < 0
		       ? -1
		       : 0;
}

static void views_child(void *arg)
{
	char *a, *b;

	(void)arg;
	become_nobody();
	a = map_shared_anon_pages(2);
	b = map_shared_anon_pages(2);
	if (a == MAP_FAILED || b == MAP_FAILED)
		_exit(1);
	a[0] = 'a';
	a[PAGE] = 'A';
	b[0] = 'b';
	b[PAGE] = 'B';
	/* Two caches and a view: as many as --max-caches 3. */
	if (swap_pages(a) < 0 || a[0] != 'A' || a[PAGE] != 'a')
		_exit(2);
	errno = 0;
	if (upager_remap_file_pages(b, PAGE, 0, 1, 0) == 0 || errno != ENOMEM)
		_exit(3);
	if (b[0] != 'b' || b[PAGE] != 'B')
		_exit(4);
	/* The first cache and its view gone, the second mapping may have its view. */
	if (upager_munmap(a, 2 * PAGE) < 0 || swap_pages(b) < 0 || b[0] != 'B' || b[PAGE] != 'b')
		_exit(5);
	_exit(0);
}

/* A user's nonlinear views count with its caches: many views of one file took every descriptor
 * the daemon had (three a view), and every other user's next mapping failed. */
Test(limits, a_user_has_only_so_many_views_with_its_caches)
{
	char *p;

	child_passes(views_child);
	/* Root is not limited. */
	p = map_shared_anon_pages(2);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(swap_pages(p), 0);
	cr_assert_eq(upager_munmap(p, 2 * PAGE), 0);
}

static void *map_private(size_t len)
{
	return upager_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void mappings_child(void *arg)
{
	char *m[6];

	(void)arg;
	become_nobody();
	for (int i = 0; i < 6; i++)
		if ((m[i] = map_private(PAGE)) == MAP_FAILED)
			_exit(1);
	errno = 0;
	if (map_private(PAGE) != MAP_FAILED || errno != ENOMEM)
		_exit(2);
	if (upager_munmap(m[0], PAGE) < 0 || map_private(PAGE) == MAP_FAILED)
		_exit(3);
	_exit(0);
}

Test(limits, a_user_has_only_so_many_mappings)
{
	child_passes(mappings_child);
}

static void bytes_child(void *arg)
{
	char *big;

	(void)arg;
	become_nobody();
	big = map_private(60 * 1024);
	if (big == MAP_FAILED)
		_exit(1);
	errno = 0;
	if (map_private(2 * PAGE) != MAP_FAILED || errno != ENOMEM)
		_exit(2);
	if (map_private(PAGE) == MAP_FAILED)
		_exit(3);
	big[0] = 1;
	_exit(0);
}

Test(limits, a_user_maps_only_so_many_bytes)
{
	child_passes(bytes_child);
	/* Root is not limited. */
	cr_assert_neq(map_private(1 << 20), MAP_FAILED);
}

static unsigned long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	cr_assert(f);
	cr_assert(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	cr_assert(p);
	/* Fields 14 and 15: utime, stime; p points before field 3. */
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
		     2);
	return ut + st;
}

static int count_lines(const char *needle)
{
	char path[400], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/upagerd.log", harness_tmpdir());
	f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

Test(limits, a_daemon_out_of_descriptors_neither_spins_nor_floods_its_log)
{
	struct rlimit rl, old;
	pid_t d = harness_daemon_pid();
	unsigned long t0;
	int fds[80], n = 0;
	char *p;

	cr_assert_eq(prlimit(d, RLIMIT_NOFILE, NULL, &old), 0);
	rl = (struct rlimit){ 48, old.rlim_max };
	cr_assert_eq(prlimit(d, RLIMIT_NOFILE, &rl, NULL), 0);
	/* Root has no connection limit: the daemon runs out of descriptors. */
	for (; n < 80; n++)
		if ((fds[n] = harness_connect_raw()) < 0)
			break;
	usleep(200 * 1000);
	t0 = cpu_ticks(d);
	sleep(2);
	cr_assert_lt(cpu_ticks(d) - t0, 40, "the daemon spun: %lu ticks in 2 s", cpu_ticks(d) - t0);
	cr_assert_gt(count_lines("accept:"), 0);
	cr_assert_leq(count_lines("accept:"), 12, "%d lines", count_lines("accept:"));
	for (int i = 0; i < n; i++)
		close(fds[i]);
	cr_assert_eq(prlimit(d, RLIMIT_NOFILE, &old, NULL), 0, "%m");
	usleep(300 * 1000);
	p = map_private(PAGE);
	cr_assert_neq(p, MAP_FAILED, "%m");
	cr_assert_eq(p[0], 0);
}

/* The descriptors of @d once no close is under way (the daemon closes some in threads of its
 * own, daemon/closer.c: a connection that ended may still count for a moment). */
static int settled_fds(pid_t d)
{
	int n = harness_count_fds(d);

	for (int i = 0; i < 40; i++) {
		int again;

		usleep(50 * 1000);
		again = harness_count_fds(d);
		if (again == n)
			break;
		n = again;
	}
	return n;
}

Test(limits, a_cache_costs_the_daemon_two_or_three_descriptors)
{
	pid_t d = harness_daemon_pid();
	int fd = make_pattern_file("f", 4 * PAGE, NULL), base;
	char *file, *anon;

	/* The connection and the userfaultfd first. */
	cr_assert_neq(map_private(PAGE), MAP_FAILED);
	base = settled_fds(d);
	file = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(file, MAP_FAILED);
	file[0] = 'x';
	/* The cache, one description of the file, which reads and writes back, and the page
	 * states the keeper keeps for a next daemon. */
	cr_assert_eq(settled_fds(d), base + 3);
	anon = map_shared_anon();
	cr_assert_neq(anon, MAP_FAILED);
	anon[0] = 'y';
	cr_assert_eq(settled_fds(d), base + 5,
		     "a shared anonymous area: its cache and its page states only");
}

/*
 * A user's processes past --max-processes: each forked child of a client is a userfaultfd the
 * daemon holds, so a user forking without end would take all its descriptors from everyone. Past
 * the share a child is not followed (the daemon logs it); its parent, root and the daemon go on.
 */
static void forks_child(void *arg)
{
	char *p;
	pid_t kids[8];
	int n = 0, status;

	(void)arg;
	become_nobody();
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	p[0] = 1;
	for (; n < 8; n++) {
		kids[n] = fork();
		if (kids[n] == 0) {
			pause();
			_exit(0);
		}
		if (kids[n] < 0)
			_exit(2);
	}
	/* The parent is served still. */
	p[1] = 2;
	if (p[0] != 1 || p[1] != 2)
		_exit(3);
	for (int i = 0; i < n; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], &status, 0);
	}
	_exit(0);
}

Test(limits, a_user_s_forked_children_past_its_processes_are_not_followed)
{
	char *p;

	child_passes(forks_child);
	cr_assert(harness_daemon_logged("processes: not followed"),
		  "every child was followed past the limit");
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon died");
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	p[0] = 1;
	cr_assert_eq(upager_munmap(p, PAGE), 0);
}

/*
 * A forked child's copies of its parent's mappings are each a region of the daemon's: a user who
 * mapped as many as it may and forked over and over took the daemon's memory with copies of its
 * tables (21 MB a child for 65,000 mappings) until the kernel killed the daemon. A child that
 * would take its user past --max-mappings is not followed, as one past --max-processes.
 */
static void fork_mappings_child(void *arg)
{
	char *p[4];
	pid_t kid;
	int status;

	(void)arg;
	become_nobody();
	for (int i = 0; i < 4; i++) {
		p[i] = map_private(PAGE);
		if (p[i] == MAP_FAILED)
			_exit(1);
		p[i][0] = (char)i;
	}
	kid = fork();
	if (kid == 0)
		_exit(0);
	if (kid < 0 || waitpid(kid, &status, 0) != kid)
		_exit(2);
	for (int i = 0; i < 4; i++)
		if (p[i][0] != (char)i)
			_exit(3);
	_exit(0);
}

Test(limits, a_user_s_forked_child_past_its_mappings_is_not_followed)
{
	child_passes(fork_mappings_child);
	cr_assert(harness_daemon_logged("mappings or their page tables: not followed"),
		  "a child with 4 more mappings than the 6 its user may have was followed");
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon died");
}

/* As nobody: a page of a file of 32 KiB, then one of a sparse file of 1 MiB (its cache: past the
 * 64 KiB this suite lets a user map). */
static void sparse_child(void *arg)
{
	const char *dir = arg;
	char small[600], big[600];
	int fd;

	become_nobody();
	snprintf(small, sizeof(small), "%s/small", dir);
	snprintf(big, sizeof(big), "%s/sparse", dir);
	fd = open(small, O_RDONLY);
	if (fd < 0 || upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		_exit(1);
	fd = open(big, O_RDONLY);
	errno = 0;
	if (fd < 0 || upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED ||
	    errno != ENOMEM)
		_exit(2);
	_exit(0);
}

/*
 * The daemon maps each cache whole, twice its size, and keeps tables of its pages: the sizes of
 * the caches a user makes count against its bytes (--max-mapped), however little of them it maps.
 * A user mapping a page each of sparse files of terabytes took the daemon's address space (20
 * files: every later mapping of anyone failed with ENOMEM), and a nonlinear view of one made the
 * daemon allocate gigabytes.
 */
Test(limits, the_caches_a_user_makes_count_their_whole_size)
{
	char small[600], big[600];
	int fd, status;

	snprintf(small, sizeof(small), "%s/small", harness_tmpdir());
	snprintf(big, sizeof(big), "%s/sparse", harness_tmpdir());
	fd = open(small, O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0 && ftruncate(fd, 32 * 1024) == 0);
	close(fd);
	fd = open(big, O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	status = run_child(sparse_child, (void *)harness_tmpdir());
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "step %d failed",
		  WEXITSTATUS(status));
	/* Root is not limited: a page of a sparse file of 1 TiB. */
	fd = open(big, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(truncate(big, 1LL << 40), 0);
	cr_assert_neq(upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
	close(fd);
}

/*
 * Under a memory limit of the daemon's cgroup, a user's default bytes mapped follow it (64 times
 * the limit): the tables and the page tables its mappings cost the daemon are charged there. A
 * user that mapped a sparse file of 90 GiB and read a byte every 2 MiB of it got a daemon in a
 * cgroup of 160 MiB killed. In 32 MiB, a user maps 1 GiB of a file of 1.5 GiB, not 3 GiB.
 */
static struct cgroup limited, home;

static bool in_cgroup;

static void start_in_cgroup(void)
{
	/* A sanitized daemon's shadow memory alone would pass 32 MiB. */
	if (RUNNING_UNDER_SANITIZER)
		cr_skip_test("a sanitized daemon does not fit in the cgroup");
	in_cgroup = true;
	cr_assert(cgroup_home(&home));
	cgroup_new(&limited, "upager-test-limits");
	cgroup_limit(&limited, 32UL << 20);
	cgroup_enter(&limited, getpid()); /* the daemon started next is in it too */
	harness_start();
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
}

static void stop_in_cgroup(void)
{
	if (!in_cgroup)
		return;
	harness_stop();
	cgroup_enter(&home, getpid());
	cgroup_remove(&limited, 0);
}

static void sparse_mappings_child(void *arg)
{
	char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/sparse", (const char *)arg);
	become_nobody();
	fd = open(path, O_RDONLY);
	if (fd < 0)
		_exit(1);
	errno = 0;
	if (upager_mmap(NULL, 3UL << 30, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED ||
	    errno != ENOMEM)
		_exit(2);
	if (upager_mmap(NULL, 1UL << 30, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		_exit(3);
	_exit(0);
}

Test(limits, a_user_maps_what_the_daemon_s_cgroup_limit_allows, .init = start_in_cgroup,
     .fini = stop_in_cgroup)
{
	char path[600];
	int fd, status;

	snprintf(path, sizeof(path), "%s/sparse", harness_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 3L << 29), 0);
	close(fd);
	status = run_child(sparse_mappings_child, (void *)harness_tmpdir());
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "step %d failed",
		  WEXITSTATUS(status));
}

/*
 * A forked child's copy of its parent's private page table costs the daemon about 400 bytes a
 * chunk of 64 pages: a user that touched a page every 256 KiB of 16 GiB and forked got the daemon
 * killed by the second child (28 MiB each). Its processes' chunks are held to two per 256 KiB it
 * may map: here 768 MiB, so 6,144 chunks. A parent with 2,560 has one child followed, not two.
 */
static void start_with_768m_mapped(void)
{
	static const char *const args[] = { "--max-mapped", "768M", NULL };

	harness_start_args(args);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
}

static void sparse_fork_child(void *arg)
{
	size_t len = 640UL << 20;
	pid_t kids[2];
	int go[2], status;
	char *p;

	(void)arg;
	become_nobody();
	p = upager_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || pipe(go) < 0)
		_exit(1);
	for (size_t off = 0; off < len; off += 256 << 10)
		p[off] = 1;
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			char c;

			close(go[1]);
			_exit(read(go[0], &c, 1) == 0 && p[0] == 1 ? 0 : 1);
		}
		if (kids[i] < 0)
			_exit(2);
	}
	close(go[1]); /* the children end */
	for (int i = 0; i < 2; i++)
		if (waitpid(kids[i], &status, 0) != kids[i])
			_exit(3);
	_exit(p[256 << 10] == 1 ? 0 : 4);
}

Test(limits, a_fork_whose_page_table_copy_passes_its_user_s_share_is_not_followed,
     .init = start_with_768m_mapped)
{
	child_passes(sparse_fork_child);
	cr_assert(harness_daemon_logged("mappings or their page tables: not followed"),
		  "a second child of a parent with 2,560 chunks of the 6,144 its user may have was "
		  "followed");
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon died");
}

/*
 * A budget not given follows the limit of the daemon's cgroup, also one the daemon is moved into
 * after it started (half of it): it kept the budget it started with, half of the machine's memory,
 * and a client streaming a file got the daemon killed by its cgroup.
 */
Test(limits, a_default_budget_follows_the_cgroup_the_daemon_is_moved_into)
{
	struct upager_msg st;
	struct cgroup cg;
	uint64_t budget = 0;

	if (getenv("UPAGER_TEST_MEMORY_MAX"))
		cr_skip_test("the budget is given");
	cgroup_new(&cg, "upager-test-budget");
	cgroup_limit(&cg, 64UL << 20);
	cgroup_enter(&cg, harness_daemon_pid());
	for (int i = 0; i < 50 && budget != 32UL << 20; i++) {
		usleep(100 * 1000);
		cr_assert_eq(harness_stats(&st), 0);
		budget = st.u.stats_reply.budget_bytes;
	}
	cgroup_remove(&cg, harness_daemon_pid());
	cr_assert_eq(budget, 32UL << 20, "the budget is %llu KiB in a cgroup of 64 MiB",
		     (unsigned long long)budget >> 10);
}
