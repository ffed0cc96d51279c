// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Programs that know nothing of upager, run under upager-run ($UPAGER_RUN) against the test's own
 * upagerd: the routing itself (preload-probe, $PRELOAD_PROBE), then sqlite3 and LMDB's tools from
 * Debian's packages, each compared with a plain run of the same program, and stress-ng's memory
 * testers and CPython's own tests of mmap, which check their own words. The daemon's figures and
 * tables show that their mappings went through it.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void start(void)
{
	harness_start();
	setenv("UPAGER_SOCKET", harness_socket(), 1);
}

TestSuite(preload, .init = start, .fini = harness_stop, .timeout = 120);

static char swap_path[256];

/* A daemon whose budget is @budget, a string that outlives it (the harness keeps the arguments);
 * anonymous pages go to a swap store of the test's own. */
static void start_budget(const char *budget)
{
	static const char *args[] = { "--memory-max", NULL, "--swap", swap_path, NULL };

	args[1] = budget;
	snprintf(swap_path, sizeof(swap_path), "/var/tmp/upager-preload-swap-%d", (int)getpid());
	unlink(swap_path);
	harness_start_args(args);
	setenv("UPAGER_SOCKET", harness_socket(), 1);
}

/* A budget (2 MiB) a fraction of the databases and of stress-ng's memory: their pages go and
 * come back. */
static void start_small(void)
{
	start_budget("2M");
}

/* A budget of 8 MiB: a program's pages go out, and it still runs at a fair pace. */
static void start_eight(void)
{
	start_budget("8M");
}

static void stop_small(void)
{
	harness_stop();
	unlink(swap_path);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v, "%s is not set; run the tests through meson test", name);
	return v;
}

static bool have(const char *program)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", program);
	return system(cmd) == 0;
}

/* Run a shell command line: its exit code (-1 if killed), its stdout into out. */
__attribute__((format(printf, 3, 4))) static int sh(char *out, size_t size, const char *fmt, ...)
{
	char cmd[2048];
	size_t n = 0;
	va_list ap;
	FILE *f;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	cr_assert(f);
	if (out) {
		n = fread(out, 1, size - 1, f);
		out[n] = 0;
	}
	/* Read to the end, so that no program of the line dies of SIGPIPE. */
	while (fgetc(f) != EOF)
		cr_assert(!out, "more output than %zu bytes from %s", size, cmd);
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *path_in_tmp(const char *name)
{
	static char paths[8][300];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, 300, "%s/%s", harness_tmpdir(), name);
	return p;
}

static uint64_t faults_served(void)
{
	struct upager_msg st;

	cr_assert_eq(harness_stats(&st), 0);
	return st.u.stats_reply.faults;
}

/* A program started with pipes on its stdin and stdout. */
struct child {
	pid_t pid;
	FILE *in, *out;
};

static void spawn(struct child *c, const char *const *argv)
{
	int in[2], out[2];

	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	c->pid = harness_fork();
	cr_assert(c->pid >= 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = fdopen(in[1], "w");
	c->out = fdopen(out[0], "r");
	cr_assert(c->in && c->out);
}

/* Close its stdin, read what is left of its stdout into rest; its exit code. */
static int finish(struct child *c, char *rest, size_t size)
{
	int status;
	size_t n;

	fclose(c->in);
	n = fread(rest, 1, size - 1, c->out);
	rest[n] = 0;
	fclose(c->out);
	cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct probe_seen {
	uintptr_t mapped, malloced;
	uint64_t sum;
	int upager, uffd;
};

static void probe_start(struct child *c, struct probe_seen *s, const char *const *argv)
{
	char line[256];

	spawn(c, argv);
	cr_assert(fgets(line, sizeof(line), c->out), "the probe said nothing");
	cr_assert_eq(sscanf(line,
			    "ready %" SCNxPTR " %" SCNxPTR " sum=%" SCNu64 " upager=%d uffd=%d",
			    &s->mapped, &s->malloced, &s->sum, &s->upager, &s->uffd),
		     5, "%s", line);
}

/* Let the probe unmap: whether the kernel's mappings went away, and that it exited 0. */
static void probe_finish(struct child *c)
{
	char rest[256];

	fputs("go\n", c->in);
	fflush(c->in);
	cr_assert_eq(finish(c, rest, sizeof(rest)), 0, "%s", rest);
	cr_assert_str_eq(rest, "gone=1\n");
}

/*
 * By default the program's anonymous memory is the kernel's: the probe connects to no daemon (no
 * userfaultfd), the daemon lists nothing of it, and its munmap() takes the mapping away.
 */
Test(preload, anonymous_memory_left_alone)
{
	const char *argv[] = { env("UPAGER_RUN"), env("PRELOAD_PROBE"), "anon", NULL };
	struct region_info r[4];
	struct probe_seen s;
	struct child c;

	probe_start(&c, &s, argv);
	cr_expect_eq(s.uffd, 0, "a program that maps no file connected to the daemon");
	cr_expect_eq(harness_list(c.pid, r, 4), 0);
	probe_finish(&c);
}

/*
 * With --anonymous, its own mmap() of anonymous memory goes to the daemon, and malloc()'s still
 * does not: glibc maps for itself with its internal names.
 */
Test(preload, anonymous_memory_on_request)
{
	const char *argv[] = { env("UPAGER_RUN"), "--anonymous", env("PRELOAD_PROBE"), "anon",
			       NULL };
	struct region_info r[4];
	struct probe_seen s;
	struct child c;
	int n;

	probe_start(&c, &s, argv);
	cr_expect_eq(s.uffd, 1);
	n = harness_list(c.pid, r, 4);
	cr_assert_eq(n, 1, "the daemon lists %d mappings of the probe", n);
	cr_expect_eq(r[0].start, s.mapped);
	cr_expect_eq(r[0].length, 1UL << 20);
	cr_expect(s.malloced < r[0].start || s.malloced >= r[0].start + r[0].length);
	probe_finish(&c);
	cr_expect_eq(harness_list(c.pid, r, 4), 0);
}

static const char *pattern_file(size_t size)
{
	char *path = path_in_tmp("pattern");

	close(make_pattern_file("pattern", size, path));
	return path;
}

/* The sum of the bytes of the pattern file, as the probe computes it. */
static uint64_t pattern_sum(size_t size)
{
	uint64_t sum = 0;

	for (uint64_t off = 0; off < size; off += 8) {
		uint64_t w = pattern_at(off);

		for (int i = 0; i < 8; i++)
			sum += (w >> (8 * i)) & 0xff;
	}
	return sum;
}

/*
 * A file mapping goes to the daemon: the probe maps upager's memfd, the daemon lists the mapping
 * with the file's name, the bytes are the file's; a munmap() of the anonymous range beside it
 * reaches the kernel, and one of the file's range leaves the daemon's table.
 */
Test(preload, file_mapping_routed)
{
	size_t size = 64 * PAGE;
	const char *path = pattern_file(size);
	const char *argv[] = { env("UPAGER_RUN"), env("PRELOAD_PROBE"), "file", path, NULL };
	struct region_info r[4];
	struct probe_seen s;
	struct child c;
	int n;

	probe_start(&c, &s, argv);
	cr_expect_eq(s.upager, 1, "the probe's mapping of the file is not upager's");
	cr_expect_eq(s.sum, pattern_sum(size));
	n = harness_list(c.pid, r, 4);
	cr_assert_eq(n, 1, "the daemon lists %d mappings of the probe", n);
	cr_expect_eq(r[0].start, s.mapped);
	cr_expect_eq(r[0].length, size);
	cr_expect(strstr(r[0].backing, path), "backing %s", r[0].backing);
	probe_finish(&c);
	cr_expect_eq(harness_list(c.pid, r, 4), 0);
}

/* The probe run under upager-run (@anon: -a) with @mode on a pattern file of @pages pages says
 * @want. */
static void probe_says(bool anon, const char *mode, size_t pages, const char *want)
{
	const char *path = pattern_file(pages * PAGE);
	char out[256];

	cr_assert_eq(sh(out, sizeof(out), "%s %s%s %s %s", env("UPAGER_RUN"), anon ? "-a " : "",
			env("PRELOAD_PROBE"), mode, path),
		     0, "%s", out);
	cr_expect_str_eq(out, want);
}

/*
 * A program's own write(2), pwrite(2), writev(2) and pwritev(2) on a descriptor opened before its
 * mapping show in the mapping when the call returns, a byte written through the mapping beside
 * one written with pwrite(2) stays, and a page past a shrinking ftruncate(2) raises SIGBUS at once
 * (preload/written.c).
 */
Test(preload, own_writes_show_in_the_mapping_at_once)
{
	probe_says(false, "writes", 64, "stale=0 sigbus=1\n");
}

/* Another process's write(2) shows in a mapping as soon as it returned, where the writer does not
 * map the page it wrote (preload/written.c, UPAGER_MSYNC_WRITTEN_FILE). */
Test(preload, a_write_shows_at_once_in_another_process_s_mapping)
{
	probe_says(false, "others", 64, "stale=0\n");
}

/*
 * A program's POSIX record locks on a file it maps survive the mapping's growth with mremap() and
 * its unmapping: the preload closed its duplicate of the file's descriptor each time, and closing
 * any descriptor of a file drops the process's locks on it (two SQLite processes then wrote at
 * once and corrupted their database). They go when the program closes a descriptor itself.
 */
Test(preload, a_program_s_record_locks_outlive_its_mappings)
{
	probe_says(false, "locks", 16, "lost=0 gone=1\n");
}

/*
 * A mapping grown with mremap() is its first pages and a mapping of the new ones: two of the
 * kernel's. The next mremap() of the whole, a growth or a move, failed with EFAULT (the kernel's,
 * across two mappings); the program knows one mapping. It moves as one now, grown any number of
 * times, for private anonymous memory and private and shared mappings of a file.
 */
Test(preload, a_mapping_grown_by_mremap_grows_and_moves_again)
{
	probe_says(true, "regrow", 256, "failed=none\n");
}

/*
 * mincore(2) of a file mapping says which pages the kernel holds, touched or not, and
 * MADV_WILLNEED reads the range ahead: upager's said only what the daemon's cache held, and its
 * MADV_WILLNEED read nothing.
 */
Test(preload, mincore_and_madv_willneed_see_the_file_s_page_cache)
{
	probe_says(false, "resident", 16, "fresh=16,16 dropped=0 willneed=16\n");
}

/*
 * MADV_REMOVE of a shared mapping of a file frees the file's range, as the kernel's does: it
 * punched only the daemon's cache, whose next touch read the file's old bytes again.
 */
Test(preload, madv_remove_frees_the_file_s_range)
{
	probe_says(false, "remove", 4, "mapping=4 file=4\n");
}

static void probe_as_ordinary_user(const char *mode, char *out, size_t size);

/*
 * Calls that populate, or that the kernel copies into, pages past the end of a mapped file fail as
 * the kernel's do: EFAULT (ENOMEM for mlock(2)). An ordinary user's program died of SIGBUS
 * (upager-run touched the pages first from user mode), and root's MADV_POPULATE_READ failed with
 * EHWPOISON (the daemon's SIGBUS marker read as a memory error).
 */
Test(preload, calls_past_the_end_of_a_file_fail_as_the_kernel_s)
{
	const char *want = "populate=EFAULT mlock=ENOMEM read=EFAULT\n";
	char out[256];

	cr_assert_eq(sh(out, sizeof(out), "%s %s pasteof", env("UPAGER_RUN"), env("PRELOAD_PROBE")),
		     0, "%s", out);
	cr_expect_str_eq(out, want, "as root");
	probe_as_ordinary_user("pasteof", out, sizeof(out));
	cr_expect_str_eq(out, want, "as an ordinary user");
}

/*
 * A part of a mapping made PROT_NONE, or a part of a PROT_NONE reservation made writable, is what
 * the preload's touches follow: an ordinary user's mlock(2), MADV_POPULATE_READ and read(2) over
 * them end as the kernel's (stress-ng --mlock's children died of SIGSEGV in the preload's touch of
 * a guard page, and a read into the writable part of a reservation failed with EFAULT).
 */
Test(preload, calls_over_a_part_of_a_mapping_made_inaccessible_or_accessible_end_as_the_kernel_s)
{
	char want[256], out[256];

	cr_assert_eq(sh(want, sizeof(want), "%s protpart", env("PRELOAD_PROBE")), 0, "%s", want);
	cr_assert_eq(
		sh(out, sizeof(out), "%s -a %s protpart", env("UPAGER_RUN"), env("PRELOAD_PROBE")),
		0, "%s", out);
	cr_expect_str_eq(out, want, "as root");
	probe_as_ordinary_user("protpart", out, sizeof(out));
	cr_expect_str_eq(out, want, "as an ordinary user");
}

/*
 * An ordinary user's O_DIRECT write of more than the preload touches (16 MiB) from a mapping
 * upager serves ends short there, as write(2) may, and the program writes on: direct I/O pins its
 * whole range, and failed whole with EFAULT (mdb_copy(1), python-lmdb's copy of an environment).
 */
Test(preload, an_ordinary_users_large_direct_write_from_a_mapping_ends_short_not_in_efault)
{
	char out[256];

	probe_as_ordinary_user("direct", out, sizeof(out));
	cr_assert_str_eq(out, "direct=ok\n");
}

/* With no daemon the kernel maps the file; --debug says so once on stderr, and only then. */
Test(preload, no_daemon_falls_back)
{
	size_t size = 16 * PAGE;
	const char *path = pattern_file(size);
	const char *err = path_in_tmp("probe.err");
	const char *quiet[] = { env("UPAGER_RUN"), env("PRELOAD_PROBE"), "file", path, NULL };
	const char *told[] = {
		env("UPAGER_RUN"), "--debug", env("PRELOAD_PROBE"), "file", path, NULL
	};
	const char *const *runs[] = { quiet, told };
	char said[512];
	struct probe_seen s;
	struct child c;

	setenv("UPAGER_SOCKET", path_in_tmp("nobody.sock"), 1);
	for (int i = 0; i < 2; i++) {
		cr_assert(freopen(err, "w", stderr));
		probe_start(&c, &s, runs[i]);
		cr_expect_eq(s.upager, 0);
		cr_expect_eq(s.uffd, 0);
		cr_expect_eq(s.sum, pattern_sum(size));
		probe_finish(&c);
		fflush(stderr);
		cr_assert_eq(sh(said, sizeof(said), "cat %s", err), 0);
		if (i == 0)
			cr_expect_str_empty(said);
		else
			cr_expect(strstr(said, "no upagerd") &&
					  !strstr(strstr(said, "no upagerd") + 1, "no upagerd"),
				  "stderr: %s", said);
	}
}

#define MMAP_ALL "PRAGMA mmap_size=268435456;"

/* A database of n rows built by a plain sqlite3. */
static const char *sqlite_db(const char *name, int n)
{
	const char *db = path_in_tmp(name);

	cr_assert_eq(sh(NULL, 0,
			"(echo 'CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);' 'BEGIN;'; "
			"seq %d | sed \"s/.*/INSERT INTO t VALUES(&, printf('%%0200d', &));/\"; "
			"echo 'COMMIT;') | sqlite3 %s",
			n, db),
		     0);
	return db;
}

/* What sqlite3 prints for the script, plainly (upager false) or under upager-run. */
static void sqlite_run(bool upager, const char *db, const char *script, char *out, size_t size)
{
	cr_assert_eq(sh(out, size, "%s sqlite3 %s < %s 2>&1", upager ? env("UPAGER_RUN") : "", db,
			script),
		     0, "%s", out);
}

/*
 * The script on db1 plainly and on db2 under upager-run: the same output, an integrity check that
 * passed, and faults served by the daemon meanwhile.
 */
static void sqlite_compare(const char *db1, const char *db2, const char *script)
{
	static char plain[65536], routed[65536];
	uint64_t before;

	sqlite_run(false, db1, script, plain, sizeof(plain));
	before = faults_served();
	sqlite_run(true, db2, script, routed, sizeof(routed));
	cr_expect_gt(faults_served(), before, "sqlite3's reads did not reach the daemon");
	cr_expect(strstr(routed, "\nok\n"), "%s", routed);
	cr_expect_str_eq(routed, plain);
}

/* sqlite_compare(), then the two databases' dumps are the same. */
static void sqlite_compare_dumps(const char *db1, const char *db2, const char *script)
{
	char sum1[128], sum2[128];

	sqlite_compare(db1, db2, script);
	cr_assert_eq(sh(sum1, sizeof(sum1), "sqlite3 %s .dump | md5sum", db1), 0);
	cr_assert_eq(sh(sum2, sizeof(sum2), "sqlite3 %s .dump | md5sum", db2), 0);
	cr_expect_str_eq(sum2, sum1, "the databases differ");
}

static const char *write_script(const char *name, const char *text)
{
	const char *path = path_in_tmp(name);
	FILE *f = fopen(path, "w");

	cr_assert(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Queries on a database a plain run built, through a mapping of the whole file. */
Test(preload, sqlite_queries)
{
	const char *db, *script;

	if (!have("sqlite3"))
		cr_skip_test("no sqlite3 (Debian package sqlite3)");
	db = sqlite_db("q.db", 3000);
	script = write_script("q.sql", MMAP_ALL "SELECT count(*), sum(length(b)) FROM t;\n"
						"SELECT a, b FROM t WHERE a % 97 = 5;\n"
						"SELECT sum(a) FROM t WHERE b LIKE '%12%';\n"
						"PRAGMA integrity_check;\n");
	sqlite_compare(db, db, script);
}

/*
 * Inserts, updates and queries with a page cache of 5 pages, so that pages written with pwrite(2)
 * are read back through the mapping (preload/written.c). SQLite maps the file again after most
 * transactions, but not after every one: the 17th INSERT rewrites the table's last leaf page with
 * pwrite(2) while the mapping made after the 17th UPDATE stays, and the 18th UPDATE reads that
 * page through it. Without the preload's write(2) path the 18th and every later SELECT differ from
 * the plain run, and the database keeps three stale rows (3957, 3970 and 3983).
 */
Test(preload, sqlite_writes)
{
	const char *script, *db1 = path_in_tmp("w1.db"), *db2 = path_in_tmp("w2.db");

	if (!have("sqlite3"))
		cr_skip_test("no sqlite3 (Debian package sqlite3)");
	script = path_in_tmp("w.sql");
	cr_assert_eq(
		sh(NULL, 0,
		   "(echo \"" MMAP_ALL " PRAGMA cache_size=5; PRAGMA synchronous=OFF;\"; "
		   "echo 'CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);' 'BEGIN;'; "
		   "seq 4000 | sed \"s/.*/INSERT INTO t VALUES(&, printf('%%0200d', &));/\"; "
		   "echo 'COMMIT;'; for i in $(seq 30); do "
		   "echo \"UPDATE t SET b = printf('%%0200d', a + $i) WHERE a %% 13 = $i %% 13;\"; "
		   "echo \"INSERT INTO t(b) VALUES('row $i');\"; "
		   "echo 'SELECT count(*), sum(substr(b, 190) + 0) FROM t;'; done; "
		   "echo 'PRAGMA integrity_check;') > %s",
		   script),
		0);
	sqlite_compare_dumps(db1, db2, script);
}

/* upagerctl list shows the database mapped while a sqlite3 session holds it. */
Test(preload, sqlite_session_listed)
{
	const char *db, *argv[] = { env("UPAGER_RUN"), "/usr/bin/sqlite3", NULL, NULL };
	char line[256], listed[16384], rest[256], pid[32];
	struct child c;

	if (access("/usr/bin/sqlite3", X_OK) != 0)
		cr_skip_test("no sqlite3 (Debian package sqlite3)");
	db = sqlite_db("s.db", 2000);
	argv[2] = db;
	spawn(&c, argv);
	fputs(MMAP_ALL "SELECT count(*) FROM t;\n", c.in);
	fflush(c.in);
	cr_assert(fgets(line, sizeof(line), c.out)); /* the pragma's answer */
	cr_assert(fgets(line, sizeof(line), c.out));
	cr_expect_str_eq(line, "2000\n");
	cr_assert_eq(sh(listed, sizeof(listed), "%s --socket %s list", env("UPAGERCTL"),
			harness_socket()),
		     0);
	snprintf(pid, sizeof(pid), "%d", (int)c.pid);
	cr_expect(strstr(listed, db) && strstr(listed, pid), "sqlite3 (pid %s) not in\n%s", pid,
		  listed);
	cr_expect_eq(finish(&c, rest, sizeof(rest)), 0);
}

/* A dump for mdb_load of n records, keys in order, values of varied lengths. */
static const char *lmdb_dump(int n)
{
	const char *path = path_in_tmp("records.txt");

	cr_assert_eq(sh(NULL, 0,
			"(printf 'VERSION=3\\nformat=print\\ntype=btree\\nmapsize=16777216\\n"
			"maxreaders=126\\nHEADER=END\\n'; "
			"seq %d | awk '{ printf \" key%%06d\\n value-%%d-%%s\\n\", $1, $1, "
			"substr(\"%0100d\", 1, $1 %% 100) }'; echo DATA=END) > %s",
			n, 0, path),
		     0);
	return path;
}

static void lmdb_load(bool upager, const char *dir, const char *records)
{
	char out[4096];

	cr_assert_eq(sh(out, sizeof(out), "mkdir -p %s && %s mdb_load -f %s %s 2>&1", dir,
			upager ? env("UPAGER_RUN") : "", records, dir),
		     0, "%s", out);
}

/* mdb_dump and mdb_stat of a database a plain mdb_load made, equal to their plain runs. */
Test(preload, lmdb_dump_and_stat)
{
	static char plain[1 << 20], routed[1 << 20];
	const char *tools[] = { "mdb_dump", "mdb_stat -a -e -f -r" };
	const char *dir = path_in_tmp("lmdb");
	uint64_t before;

	if (!have("mdb_load"))
		cr_skip_test("no LMDB tools (Debian package lmdb-utils)");
	lmdb_load(false, dir, lmdb_dump(5000));
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(sh(plain, sizeof(plain), "%s %s", tools[i], dir), 0);
		before = faults_served();
		cr_assert_eq(
			sh(routed, sizeof(routed), "%s %s %s", env("UPAGER_RUN"), tools[i], dir),
			0);
		cr_expect_gt(faults_served(), before, "%s's reads did not reach the daemon",
			     tools[i]);
		cr_expect(strlen(plain) > 1000 || i == 1);
		cr_expect_str_eq(routed, plain, "%s differs", tools[i]);
	}
}

/*
 * mdb_load under upager-run: LMDB writes its pages and meta pages with pwrite(2) and reads them
 * through its mapping. After each commit (mdb_load commits every 100 records) the next transaction
 * picks the newest meta page (mdb_env_pick_meta()) from the mapping; without the preload's write(2)
 * path it still shows both meta pages as the file had them when it was mapped: each batch starts
 * again from the empty tree, and the database ends with the last 100 records.
 */
Test(preload, lmdb_load)
{
	static char plain[1 << 20], routed[1 << 20];
	const char *records, *dir1 = path_in_tmp("lmdb1"), *dir2 = path_in_tmp("lmdb2");

	if (!have("mdb_load"))
		cr_skip_test("no LMDB tools (Debian package lmdb-utils)");
	records = lmdb_dump(5000);
	lmdb_load(false, dir1, records);
	lmdb_load(true, dir2, records);
	cr_assert_eq(sh(plain, sizeof(plain), "mdb_dump %s && mdb_stat %s", dir1, dir1), 0);
	cr_assert_eq(sh(routed, sizeof(routed), "mdb_dump %s && mdb_stat %s", dir2, dir2), 0);
	cr_expect_str_eq(routed, plain);
}

/* The pages the daemon has sent out of memory so far. */
static uint64_t pages_out(void)
{
	struct upager_msg st;

	cr_assert_eq(harness_stats(&st), 0);
	return st.u.stats_reply.pages_out;
}

/*
 * sqlite3 and LMDB's tools on databases several times the daemon's budget: queries, updates and
 * an integrity check, a load and a dump, all equal to their plain runs while the pages of the
 * files leave memory and are read again.
 */
Test(preload, databases_larger_than_the_budget, .init = start_small, .fini = stop_small)
{
	static char plain[1 << 20], routed[1 << 20];
	const char *script, *db1 = path_in_tmp("big1.db"), *db2 = path_in_tmp("big2.db");
	const char *dir1 = path_in_tmp("big-lmdb1"), *dir2 = path_in_tmp("big-lmdb2");
	uint64_t before = pages_out();

	if (!have("sqlite3") || !have("mdb_load"))
		cr_skip_test("no sqlite3 or LMDB tools (Debian packages sqlite3, lmdb-utils)");
	script = path_in_tmp("big.sql");
	cr_assert_eq(sh(NULL, 0,
			"(echo \"" MMAP_ALL " PRAGMA cache_size=20; PRAGMA synchronous=OFF;\"; "
			"echo 'CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);' 'BEGIN;'; "
			"seq 40000 | sed \"s/.*/INSERT INTO t VALUES(&, printf('%%0200d', &));/\"; "
			"echo 'COMMIT;' 'CREATE INDEX tb ON t(b);'; for i in $(seq 5); do "
			"echo \"UPDATE t SET b = printf('%%0200d', a * $i) WHERE a %% 7 = $i;\"; "
			"echo 'SELECT count(*), sum(substr(b, 190) + 0) FROM t;'; "
			"echo \"SELECT a FROM t WHERE b > printf('%%0200d', 39990 * $i) LIMIT "
			"5;\"; done; "
			"echo 'PRAGMA integrity_check;') > %s",
			script),
		     0);
	sqlite_compare_dumps(db1, db2, script);
	cr_expect_gt(pages_out(), before + 1000,
		     "the pages of sqlite3's database stayed in memory");

	before = pages_out();
	lmdb_load(false, dir1, lmdb_dump(60000));
	lmdb_load(true, dir2, path_in_tmp("records.txt"));
	cr_assert_eq(sh(plain, sizeof(plain), "mdb_dump %s | md5sum && mdb_stat %s", dir1, dir1),
		     0);
	cr_assert_eq(sh(routed, sizeof(routed), "%s mdb_dump %s | md5sum && mdb_stat %s",
			env("UPAGER_RUN"), dir2, dir2),
		     0);
	cr_expect_str_eq(routed, plain);
	cr_expect_gt(pages_out(), before + 500, "the pages of LMDB's database stayed in memory");
}

/*
 * stress-ng with @args, all of its anonymous memory on upager (upager-run -a), killed after 120 s,
 * its output in @log (in the test's directory). Return: its shell's status, 0 if it ended well.
 */
static int stress_ng(const char *args, const char *log)
{
	if (!have("stress-ng"))
		cr_skip_test("no stress-ng (Debian package stress-ng)");
	return sh(NULL, 0, "timeout -s KILL 120 %s -a stress-ng %s >%s 2>&1", env("UPAGER_RUN"),
		  args, path_in_tmp(log));
}

/*
 * stress-ng's memory testers (every --vm method, each checking every word it wrote), with all of
 * its anonymous memory on upager under a budget a sixteenth of it: no word is wrong while its
 * pages go out and come back, as in a plain run.
 */
Test(preload, stress_ng_memory_testers_find_no_error_under_the_budget, .init = start_small,
     .fini = stop_small)
{
	uint64_t before = pages_out();

	cr_assert_eq(stress_ng("--vm 1 --vm-bytes 32M --vm-method all --verify --timeout 10s",
			       "stress-ng.log"),
		     0, "stress-ng failed: see %s", path_in_tmp("stress-ng.log"));
	cr_expect_gt(pages_out(), before + 10000, "stress-ng's pages stayed in memory");
}

/*
 * stress-ng's remap stressor: shared anonymous memory whose pages remap_file_pages(2) puts in
 * reverse, random and forward order, each checked. Under the budget its pages go out; the kernel's
 * remap_file_pages() mapped the daemon's memory file at the new offsets without the daemon, where
 * a page sent out reads zeroes ("remap reverse order pages failed"). Routed to
 * upager_remap_file_pages(), every page is where the order says.
 */
Test(preload, stress_ng_remap_finds_every_page_under_the_budget, .init = start_small,
     .fini = stop_small)
{
	uint64_t before = pages_out();

	cr_assert_eq(stress_ng("--remap 2 --verify --timeout 5s", "stress-ng-remap.log"), 0,
		     "stress-ng found pages out of order: see %s",
		     path_in_tmp("stress-ng-remap.log"));
	cr_expect_gt(pages_out(), before + 1000, "stress-ng's pages stayed in memory");
}

/*
 * stress-ng's madvise stressor (threads touching, populating and dropping the same pages with
 * every advice madvise(2) takes) on upager under the budget ends as a plain run does: a fault that
 * waited for its page to come back from the swap store while another thread dropped the page
 * (MADV_DONTNEED) was never woken, and stress-ng waited for ever (3 runs of 3).
 */
Test(preload, stress_ng_madvise_ends_under_the_budget, .init = start_small, .fini = stop_small)
{
	cr_assert_eq(stress_ng("--madvise 2 --verify --timeout 10s", "stress-ng-madvise.log"), 0,
		     "stress-ng did not end well: see %s", path_in_tmp("stress-ng-madvise.log"));
}

/*
 * CPython's own tests of its mmap module and of multiprocessing's shared memory (Debian package
 * libpython3.11-testsuite), under upager-run with @args, their output in @log (in the test's
 * directory). Return: the shell's status, 0 if every test passed.
 */
static int python_tests(const char *args, const char *tests, const char *log)
{
	if (sh(NULL, 0, "/usr/bin/python3 -c 'import test.test_mmap' 2>/dev/null") != 0)
		cr_skip_test("no CPython test suite (Debian package libpython3.11-testsuite)");
	return sh(NULL, 0,
		  "cd %s && timeout -s KILL 100 %s %s /usr/bin/python3 -m test %s >%s 2>&1",
		  harness_tmpdir(), env("UPAGER_RUN"), args, tests, path_in_tmp(log));
}

#define PYTHON_SHARED_MEMORY \
	"test_multiprocessing_fork -m '*SharedMemory*' -m '*Heap*' -m '*sharedctypes*'"

/*
 * CPython's tests pass with its file mappings on upager, then with its anonymous memory too
 * (its allocator's arenas, multiprocessing's heaps and shared values, forks included).
 */
Test(preload, pythons_own_mmap_and_shared_memory_tests_pass)
{
	uint64_t before = faults_served();

	cr_assert_eq(python_tests("", "test_mmap", "py-mmap.log"), 0,
		     "CPython's test_mmap failed: see %s", path_in_tmp("py-mmap.log"));
	cr_expect_gt(faults_served(), before, "test_mmap's mappings did not reach the daemon");
	cr_assert_eq(python_tests("-a", "test_mmap", "py-mmap-a.log"), 0,
		     "CPython's test_mmap failed: see %s", path_in_tmp("py-mmap-a.log"));
	before = faults_served();
	cr_assert_eq(python_tests("-a", PYTHON_SHARED_MEMORY, "py-shm.log"), 0,
		     "CPython's shared memory tests failed: see %s", path_in_tmp("py-shm.log"));
	cr_expect_gt(faults_served(), before + 1000, "Python's memory did not reach the daemon");
}

/* The same test_mmap with all of Python's memory on upager, most of it over the budget (2 MiB). */
Test(preload, pythons_own_mmap_tests_pass_with_its_memory_over_the_budget, .init = start_small,
     .fini = stop_small)
{
	uint64_t before = pages_out();

	cr_assert_eq(python_tests("-a", "test_mmap", "py-mmap-small.log"), 0,
		     "CPython's test_mmap failed: see %s", path_in_tmp("py-mmap-small.log"));
	cr_expect_gt(pages_out(), before + 10000, "Python's pages stayed in memory");
}

/*
 * preload-probe @mode under upager-run -a as uid 65534, whose userfaultfd takes faults from user
 * mode only: from copies of the programs in the test's directory, which that user may reach. Its
 * output into @out.
 */
static void probe_as_ordinary_user(const char *mode, char *out, size_t size)
{
	const char *dir = path_in_tmp("bin");

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(sh(NULL, 0,
			"mkdir -p %s && cp %s \"$(dirname %s)\"/libupager-preload.so %s %s && "
			"chmod -R a+rX %s",
			dir, env("UPAGER_RUN"), env("UPAGER_RUN"), env("PRELOAD_PROBE"), dir, dir),
		     0);
	cr_assert_eq(sh(out, size,
			"setpriv --reuid=65534 --regid=65534 --clear-groups "
			"%s/upager-run -a %s/preload-probe %s 2>&1",
			dir, dir, mode),
		     0, "the probe failed: %s", out);
}

/*
 * An ordinary user's process has a userfaultfd for user-mode faults only: the kernel's write of a
 * signal frame on an alternate stack upager serves is a fault the daemon never sees. A signal
 * taken on such a stack, mapped and never touched, is handled on it as without upager: the stack
 * became the kernel's memory at sigaltstack(2).
 */
Test(preload, an_ordinary_user_takes_a_signal_on_an_alternate_stack)
{
	char out[256];

	probe_as_ordinary_user("altstack", out, sizeof(out));
	cr_assert_str_eq(out, "routed=1 onstack=1\n");
}

/*
 * Nor does the daemon see the kernel's copy into or out of a page of such a process that is not
 * mapped yet (or mapped read-only until its first write): read(2), recv(2), write(2), send(2) and
 * their kin on buffers of anonymous memory never touched would fail with EFAULT (stress-ng
 * --msync as an ordinary user). upager-run touches them from user mode first.
 */
Test(preload, an_ordinary_users_system_calls_fill_and_read_untouched_buffers)
{
	char out[256];

	probe_as_ordinary_user("buffers", out, sizeof(out));
	cr_assert_str_eq(out, "routed=1 failed=0\n");
}

/*
 * A program with a userfaultfd of its own registers its anonymous memory with it under
 * upager-run -a: a range has one userfaultfd, and UFFDIO_REGISTER failed with EBUSY on memory
 * upager served. The memory becomes the kernel's again, with what it held, and the program's
 * handler serves its faults.
 */
Test(preload, a_program_registers_its_memory_with_its_own_userfaultfd)
{
	char out[256];

	cr_assert_eq(
		sh(out, sizeof(out), "%s -a %s ownuffd", env("UPAGER_RUN"), env("PRELOAD_PROBE")),
		0, "%s", out);
	cr_assert_str_eq(out, "routed=1 registered=1 kept=1 served=1\n");
}

/*
 * Memory moved with MREMAP_DONTUNMAP, then onto a reservation of upager's (MREMAP_FIXED), then
 * grown: the reservation's range stayed noted over the moved mapping, and the growth took its
 * protection (PROT_NONE: SIGSEGV at the first touch of a new page; found by a fuzzer).
 */
Test(preload, a_mapping_moved_onto_a_reservation_grows_with_its_own_protection)
{
	char out[256];

	cr_assert_eq(sh(out, sizeof(out), "%s -a %s moved 2>&1", env("UPAGER_RUN"),
			env("PRELOAD_PROBE")),
		     0, "%s", out);
	cr_assert_str_eq(out, "moved=ok\n");
}

/* A memfd_secret(2) mapping is the kernel's: the daemon could not read its pages (SIGBUS). */
Test(preload, secret_memory_is_left_to_the_kernel)
{
	char out[256];

	cr_assert_eq(
		sh(out, sizeof(out), "%s -a %s secret", env("UPAGER_RUN"), env("PRELOAD_PROBE")), 0,
		"%s", out);
	if (!strcmp(out, "secret=none\n"))
		cr_skip_test("no memfd_secret(2) here");
	cr_assert_str_eq(out, "secret=ok\n");
}

/* race-probe with @args under upager-run -a: its exit status, its output in @out. */
static int race_probe(const char *args, char *out, size_t size)
{
	return sh(out, size, "%s -a %s %s 2>&1", env("UPAGER_RUN"), env("RACE_PROBE"), args);
}

/*
 * A mapping another thread makes, with the kernel's own call, is never replaced by a MAP_FIXED
 * mmap(2) or an MREMAP_FIXED mremap(2) over memory of upager's: the preload unmapped that memory
 * first, then made the call, and another thread's mapping that came into the hole in between was
 * replaced unseen (SIGSEGV in that thread, or its words changed). The range stays taken now, by a
 * reservation the call replaces as the kernel replaces a mapping.
 */
Test(preload, a_map_fixed_over_upagers_memory_replaces_no_other_threads_mapping)
{
	char out[512];

	cr_assert_eq(race_probe("fixed 3", out, sizeof(out)), 0, "%s", out);
	cr_assert_eq(race_probe("remap 3", out, sizeof(out)), 0, "%s", out);
}

/*
 * A mapping moved by mremap(2) while another thread maps memory of upager's: the kernel frees the
 * old addresses before the daemon reads the move's event, and a mapping made there meanwhile
 * reached the daemon first, which the event then carried away with the old one (its pages faulted
 * outside every region: SIGBUS). The move is made under the connection's lock now.
 */
Test(preload, memory_mapped_where_another_mapping_just_moved_from_is_served)
{
	char out[512];

	cr_assert_eq(race_probe("move 3", out, sizeof(out)), 0, "%s", out);
}

/*
 * Copies of private file mappings going out while the program unmaps a mapping and makes another
 * at the same address: the control thread's DROP, which read pagemap before the change, dropped
 * the new mapping's copies, in no slot (the file's page showed; one run in two failed).
 * The library's calls that change what an address maps wait for a DROP under way now.
 */
Test(preload, copies_of_a_mapping_made_again_at_the_same_address_are_kept, .init = start_eight,
     .fini = stop_small)
{
	char out[512], args[400];

	snprintf(args, sizeof(args), "copies %s 20", path_in_tmp("race-file"));
	cr_assert_eq(race_probe(args, out, sizeof(out)), 0, "%s", out);
}

/* stress-ng's userfaultfd stressor (its own handler of a mapping's faults) under upager-run -a. */
Test(preload, stress_ng_userfaultfd_serves_its_own_faults)
{
	cr_assert_eq(stress_ng("--userfaultfd 1 --userfaultfd-bytes 16M --verify --timeout 3s",
			       "stress-ng-userfaultfd.log"),
		     0, "stress-ng failed: see %s", path_in_tmp("stress-ng-userfaultfd.log"));
}

/*
 * read(2) and write(2) under upager-run stay what the C library makes of them, cancellation
 * points: a thread blocked in either is cancelled (it hung when the preload made the system call
 * itself).
 */
Test(preload, a_thread_blocked_in_read_or_write_is_cancelled)
{
	char out[64];

	cr_assert_eq(sh(out, sizeof(out), "timeout -s KILL 20 %s -a %s cancel", env("UPAGER_RUN"),
			env("PRELOAD_PROBE")),
		     0, "the probe did not end: %s", out);
	cr_assert_str_eq(out, "cancelled=2\n");
}
