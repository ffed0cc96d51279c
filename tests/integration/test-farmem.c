// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The swap store on an NBD server that goes away: nbdkit's file plugin on a Unix socket (and once
 * on TCP loopback), so that what the export holds outlives a restart of the server (and the test
 * can change it under the daemon). A client writes shared anonymous memory four times the
 * daemon's budget, so that most of it is on the server, and reads it back while the server is
 * stopped for a while, for good, or gives back pages other than those written. On nbdkit's memory
 * plugin with its log filter: several connections where the server offers multi-conn, one where
 * it does not.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nbd-server.h"
#include "upager.h"

#define WORKLOAD (64UL << 20) /* four times the budget */
#define PAGES (WORKLOAD / PAGE)
#define EXPORT_BYTES (256UL << 20)

static char store_file[128], uri[256];

static bool store_taken(void *arg)
{
	(void)arg;
	return harness_daemon_logged("swap: on the NBD server");
}

/*
 * nbdkit on a new sparse file, on a Unix socket or (@kind NBD_SERVER_TCP) on TCP loopback, and a
 * daemon with a budget of 16 MiB and @timeout (or none).
 */
static void start_on(enum nbd_server_kind kind, const char *timeout)
{
	static const char *args[] = { "--memory-max",	  "16M", "--swap", uri, "--swap-timeout",
				      NULL /* timeout */, NULL };
	int fd;

	snprintf(store_file, sizeof(store_file), "/var/tmp/upager-test-farmem-%d", (int)getpid());
	fd = open(store_file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, (off_t)EXPORT_BYTES), 0);
	close(fd);
	nbd_server_start_file(kind, store_file, uri, sizeof(uri));
	args[4] = timeout ? "--swap-timeout" : NULL;
	args[5] = timeout;
	harness_start_args(args);
	cr_assert(wait_until(store_taken, NULL, 10000), "the daemon did not take %s", uri);
}

static void start(const char *timeout)
{
	start_on(NBD_SERVER_UNIX, timeout);
}

static void stop(void)
{
	harness_stop();
	nbd_server_stop();
	unlink(store_file);
}

TestSuite(farmem, .fini = stop, .timeout = 300);

static struct upager_msg figures(void)
{
	struct upager_msg rep;

	cr_assert_eq(harness_stats(&rep), 0);
	return rep;
}

static uint64_t word(uint64_t page)
{
	return page * 0x9e3779b97f4a7c15ULL + 1;
}

/* Exit @code at the first page of [first, first + count) that does not hold its words. */
static void check(const uint64_t *p, uint64_t first, uint64_t count, int code)
{
	for (uint64_t i = first; i < first + count; i++)
		if (p[i * PAGE / 8] != word(i) || p[(i * PAGE + PAGE - 8) / 8] != ~word(i))
			_exit(code);
}

/*
 * A client (a child): anonymous memory of @type written whole, so that most of it goes to the
 * server; a byte on @ready when it is, then it waits for one on @go. Returns the mapping.
 */
static uint64_t *client_written_as(int type, int ready, int go)
{
	uint64_t *p =
		upager_mmap(NULL, WORKLOAD, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS, -1, 0);
	char c = 0;

	alarm(200); /* a client that hangs fails */
	if (p == MAP_FAILED)
		_exit(10);
	for (uint64_t i = 0; i < PAGES; i++) {
		p[i * PAGE / 8] = word(i);
		p[(i * PAGE + PAGE - 8) / 8] = ~word(i);
	}
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		_exit(11);
	return p;
}

/* client_written_as() shared memory. */
static uint64_t *client_written(int ready, int go)
{
	return client_written_as(MAP_SHARED, ready, go);
}

struct client {
	pid_t pid;
	int ready, go; /* our ends */
};

static struct client client_start(void (*fn)(int ready, int go))
{
	int r[2], g[2];
	struct client cl;
	char c;

	cr_assert_eq(pipe2(r, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(g, O_CLOEXEC), 0);
	cl.pid = harness_fork();
	cr_assert(cl.pid >= 0);
	if (cl.pid == 0) {
		fn(r[1], g[0]);
		_exit(0);
	}
	close(r[1]);
	close(g[0]);
	cl.ready = r[0];
	cl.go = g[1];
	cr_assert_eq(read(cl.ready, &c, 1), 1, "the client wrote its memory");
	return cl;
}

static void client_go(struct client *cl)
{
	cr_assert_eq(write(cl->go, "g", 1), 1);
}

static int client_wait(struct client *cl)
{
	int status;

	cr_assert_eq(waitpid(cl->pid, &status, 0), cl->pid);
	close(cl->ready);
	close(cl->go);
	return status;
}

/* Most of the client's memory is on the server. */
static void assert_paged_out(void)
{
	struct upager_msg f = figures();

	cr_assert_geq(f.u.stats_reply.store_bytes_out, WORKLOAD / 2, "%llu KiB went to the server",
		      (unsigned long long)f.u.stats_reply.store_bytes_out >> 10);
}

/* Until what went to the server stays the same for 500 ms: no page-out ends any more. */
static void store_quiet(void)
{
	uint64_t last = UINT64_MAX;

	for (int i = 0; i < 100; i++) {
		uint64_t now = figures().u.stats_reply.store_bytes_out;

		if (now == last)
			return;
		last = now;
		usleep(500 * 1000);
	}
	cr_assert_fail("the store never went quiet");
}

static void read_all_back(int ready, int go)
{
	uint64_t *p = client_written(ready, go);

	check(p, 0, PAGES, 3);
	_exit(0);
}

/*
 * The server (on @kind) stops for 3 s while the client reads its pages back: the faults wait, the
 * daemon connects again and makes the requests again, and every page comes back as written.
 */
static void away_for_seconds(enum nbd_server_kind kind)
{
	struct client cl;
	int status;

	start_on(kind, NULL);
	cl = client_start(read_all_back);
	assert_paged_out();
	nbd_server_stop();
	client_go(&cl);
	sleep(3);
	cr_assert_eq(waitpid(cl.pid, &status, WNOHANG), 0,
		     "the client waits for its pages while the server is away (status %#x)",
		     status);
	nbd_server_restart();
	status = client_wait(&cl);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "every page came back as written: the client ended with %#x", status);
	struct upager_msg f = figures();

	cr_assert_geq(f.u.stats_reply.store_reconnects, 1);
	cr_assert_eq(f.u.stats_reply.store_errors, 0);
	cr_assert_geq(f.u.stats_reply.store_bytes_in, WORKLOAD / 2);
	cr_assert(harness_daemon_logged("connected again"));
}

struct waiting_read {
	const volatile uint64_t *at;
	uint64_t value;
};

static void *read_word(void *arg)
{
	struct waiting_read *w = arg;

	w->value = *w->at;
	return NULL;
}

/*
 * A thread's fault waits for the first page of private memory to come back from the server,
 * which is away; meanwhile another thread drops that page (MADV_DONTNEED). Once the server is
 * back the read ends with the page gone from the daemon's table: the fault is woken all the
 * same, and faults again on the empty page.
 */
static void fault_on_a_page_dropped_meanwhile(int ready, int go)
{
	uint64_t *p = client_written_as(MAP_PRIVATE, ready, go);
	struct waiting_read w = { p, 1 };
	pthread_t t;
	char c = 0;

	alarm(60); /* a fault left waiting fails the test */
	if (pthread_create(&t, NULL, read_word, &w) != 0)
		_exit(20);
	usleep(300 * 1000); /* the thread waits in its fault */
	if (madvise(p, PAGE, MADV_DONTNEED) < 0)
		_exit(21);
	if (write(ready, &c, 1) != 1)
		_exit(22);
	pthread_join(t, NULL);
	/* The load raced the madvise(): either is right; after it, zeroes. */
	if ((w.value != 0 && w.value != word(0)) || p[0] != 0)
		_exit(23);
	_exit(0);
}

Test(farmem, a_fault_whose_page_is_dropped_while_it_is_read_back_ends)
{
	struct client cl;
	int status;
	char c;

	start(NULL);
	cl = client_start(fault_on_a_page_dropped_meanwhile);
	assert_paged_out();
	nbd_server_stop();
	client_go(&cl);
	cr_assert_eq(read(cl.ready, &c, 1), 1, "the client dropped the page");
	nbd_server_restart();
	status = client_wait(&cl);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the fault ended once the server was back: the client ended with %#x", status);
}

Test(farmem, a_server_away_for_seconds_loses_no_page)
{
	away_for_seconds(NBD_SERVER_UNIX);
}

/* The same over TCP loopback: connections refused while the port is closed, then taken again. */
Test(farmem, a_server_on_tcp_away_for_seconds_loses_no_page)
{
	away_for_seconds(NBD_SERVER_TCP);
	cr_assert_eq(strncmp(uri, "nbd://127.0.0.1:", 16), 0, "the store is on TCP: %s", uri);
}

/*
 * A client reads a page that only the server holds, in a child of its own; the child ends with
 * SIGBUS. Then the client reads those of its last pages that were in memory before, and exits 0
 * if they hold what it wrote; 4 if the child did not get SIGBUS, 8 if none of them was in
 * memory. (How long the fault waited is counted by the test, from the server's stop.)
 */

static void fault_on_the_server(int ready, int go)
{
	uint64_t *p = client_written(ready, go), in_memory = 0;
	unsigned char vec[256];
	int status;
	pid_t child;

	/* Which of the last pages are in memory now that no page-out can end (the server is
	 * gone and the store quiet): those must stay. */
	if (mincore(p + (PAGES - 256) * PAGE / 8, 256 * PAGE, vec) < 0)
		_exit(7);
	child = harness_fork();

	if (child == 0) {
		check(p, 0, 1, 3);
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFSIGNALED(status) ||
	    WTERMSIG(status) != SIGBUS)
		_exit(4);
	for (uint64_t i = 0; i < 256; i++)
		if (vec[i] & 1) {
			check(p, PAGES - 256 + i, 1, 6);
			in_memory++;
		}
	_exit(in_memory ? 0 : 8);
}

/* Another client: a file read through a mapping, and anonymous memory, while the store is gone. */
static void other_client(void *arg)
{
	const char *path = arg;
	int fd = open(path, O_RDONLY);
	uint64_t *f, *a;

	if (fd < 0)
		_exit(10);
	f = upager_mmap(NULL, 1 << 20, PROT_READ, MAP_SHARED, fd, 0);
	a = upager_mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f == MAP_FAILED || a == MAP_FAILED)
		_exit(11);
	for (uint64_t off = 0; off < (1 << 20); off += PAGE) {
		if (f[off / 8] != pattern_at(off))
			_exit(12);
		a[off / 8] = off + 1;
	}
	for (uint64_t off = 0; off < (1 << 20); off += PAGE)
		if (a[off / 8] != off + 1)
			_exit(13);
	_exit(0);
}

/*
 * The server stops for good: with --swap-timeout 2 a fault on a page that only the server holds
 * waits that long and ends in SIGBUS; the client's pages in memory stay, and the daemon serves
 * another client's file and anonymous memory.
 */
Test(farmem, a_server_gone_past_the_timeout_ends_faults_on_its_pages_in_sigbus)
{
	char path[512];
	struct client cl;
	uint64_t t0;
	int status;

	start("2");
	close(make_pattern_file("other", 1 << 20, path));
	cl = client_start(fault_on_the_server);
	assert_paged_out();
	nbd_server_stop();
	t0 = harness_now_ms();
	store_quiet();
	client_go(&cl);
	status = client_wait(&cl);
	cr_assert(
		WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"the fault waited, then SIGBUS; pages in memory stayed: the client ended with %#x",
		status);
	cr_assert_geq(harness_now_ms() - t0, 1500, "SIGBUS came %llu ms after the server stopped",
		      (unsigned long long)(harness_now_ms() - t0));
	status = run_child(other_client, path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "another client's file and anonymous memory work: it ended with %#x", status);
	cr_assert_eq(kill(harness_daemon_pid(), 0), 0, "the daemon lives");
	cr_assert_geq(figures().u.stats_reply.store_errors, 1);
	cr_assert(harness_daemon_logged("away for"));
}

/*
 * The server gives back pages other than those written (each slot holds its neighbour's page,
 * stale data of ours): the checksums the daemon keeps make each an error (SIGBUS), never data.
 */
Test(farmem, a_stale_page_from_the_server_is_an_error_not_data)
{
	size_t len = 32UL << 20;
	char *buf = malloc(len);
	struct client cl;
	uint64_t errors;
	int fd, status;

	start(NULL);
	cl = client_start(fault_on_the_server);
	errors = figures().u.stats_reply.store_errors;
	fd = open(store_file, O_RDWR | O_CLOEXEC);
	assert_paged_out();
	cr_assert(buf && fd >= 0);
	/* Slot N (page N + 1 of the export) takes slot N + 1's page. */
	cr_assert_eq(pread(fd, buf, len, (off_t)(2 * PAGE)), (ssize_t)len);
	cr_assert_eq(pwrite(fd, buf, len, (off_t)PAGE), (ssize_t)len);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	free(buf);
	client_go(&cl);
	status = client_wait(&cl);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "a fault on a page the server gives back wrong ends in SIGBUS: the client ended "
		  "with %#x",
		  status);
	cr_assert_gt(figures().u.stats_reply.store_errors, errors);
	cr_assert(harness_daemon_logged("came back corrupt"));
}

static sigjmp_buf bus_jump;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

/* Private memory read back in order, past a page the server gives back wrong: exit 0 if exactly
 * one page ended in SIGBUS and every other held its words; 20 + the pages that did, else. */
static void read_in_order_past_a_bad_page(int ready, int go)
{
	uint64_t *p = client_written_as(MAP_PRIVATE, ready, go);
	struct sigaction sa = { .sa_handler = on_bus };
	volatile uint64_t i, bad = 0;

	if (sigaction(SIGBUS, &sa, NULL) < 0)
		_exit(12);
	for (i = 0; i < PAGES; i++) {
		if (sigsetjmp(bus_jump, 1)) {
			bad++;
			continue;
		}
		check(p, i, 1, 3);
	}
	_exit(bad == 1 ? 0 : 20 + (int)(bad < 50 ? bad : 50));
}

/*
 * A page read ahead that the server gives back wrong costs only its own fault: the page faulted on
 * is read again alone, and the client reading in order gets SIGBUS for the bad page and no other.
 */
Test(farmem, a_bad_page_read_ahead_ends_in_sigbus_for_itself_only)
{
	char junk[PAGE];
	struct client cl;
	int fd, status;

	start(NULL);
	cl = client_start(read_in_order_past_a_bad_page);
	assert_paged_out();
	store_quiet();
	/* Slot 2,000 (8 MiB into the store, paged out by the write pass) holds junk. */
	memset(junk, 0xa5, sizeof(junk));
	fd = open(store_file, O_RDWR | O_CLOEXEC);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, junk, PAGE, (off_t)(2001 * PAGE)), (ssize_t)PAGE);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	client_go(&cl);
	status = client_wait(&cl);
	cr_assert(
		WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"one page ended in SIGBUS, every other read back right: the client ended with %#x",
		status);
	cr_assert(harness_daemon_logged("came back corrupt"));
}

/* nbdkit's memory plugin with its log filter and @filters, and a daemon with a budget of 16 MiB
 * and --swap-connections 4. */
static char log_file[128];

static void start_logged(const char *const *filters)
{
	static const char *args[] = { "--memory-max",	    "16M", "--swap", uri,
				      "--swap-connections", "4",   NULL };
	static char logfile_arg[160];
	static const char *extra[8];
	size_t n = 0;

	snprintf(log_file, sizeof(log_file), "/tmp/upager-test-farmem-%d.log", (int)getpid());
	snprintf(logfile_arg, sizeof(logfile_arg), "logfile=%s", log_file);
	extra[n++] = "--filter=log";
	for (size_t i = 0; filters[i] && n < 6; i++)
		extra[n++] = filters[i];
	extra[n++] = logfile_arg;
	extra[n] = NULL;
	nbd_server_start_filtered(extra, uri, sizeof(uri));
	harness_start_args(args);
	cr_assert(wait_until(store_taken, NULL, 10000), "the daemon did not take %s", uri);
}

static bool connections_are(void *arg)
{
	return figures().u.stats_reply.store_connections == *(uint32_t *)arg;
}

/* In the server's log: the connections made, and those that carried reads or writes. */
static void server_connections(unsigned *made, unsigned *used)
{
	FILE *f = fopen(log_file, "r");
	bool seen[64] = { false };
	char line[1024];

	cr_assert(f, "%s: %m", log_file);
	*made = *used = 0;
	while (fgets(line, sizeof(line), f)) {
		const char *at = strstr(line, "connection=");
		unsigned id;

		if (!at || sscanf(at, "connection=%u", &id) != 1)
			continue;
		if (strstr(at, " Connect "))
			(*made)++;
		if ((strstr(at, " Write ") || strstr(at, " Read ")) && id < 64 && !seen[id]) {
			seen[id] = true;
			(*used)++;
		}
	}
	fclose(f);
}

/*
 * On a server with @filters: memory 4x the budget written and read back through a store with
 * @want connections up; the connections the server saw made, and those that carried I/O.
 */
static void workload_on(const char *const *filters, uint32_t want, unsigned *made, unsigned *used)
{
	struct client cl;
	int status;

	start_logged(filters);
	cr_assert(wait_until(connections_are, &want, 10000), "%u connections are not up", want);
	cl = client_start(read_all_back);
	assert_paged_out();
	client_go(&cl);
	status = client_wait(&cl);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "every page came back as written: the client ended with %#x", status);
	cr_assert_eq(figures().u.stats_reply.store_connections, want);
	cr_assert_eq(figures().u.stats_reply.store_errors, 0);
	server_connections(made, used);
	unlink(log_file);
}

/*
 * The server offers multi-conn (nbdkit's memory plugin does): the daemon opens four connections
 * and spreads its requests over them; every page comes back as written.
 */
Test(farmem, a_server_with_multi_conn_gets_several_connections)
{
	const char *filters[] = { NULL };
	unsigned made, used;

	workload_on(filters, 4, &made, &used);
	cr_assert_eq(made, 4, "the server saw %u connections", made);
	cr_assert_geq(used, 2, "reads and writes came on %u connection(s)", used);
}

/* A server without multi-conn (nbdkit's multi-conn filter takes it away) gets one connection. */
Test(farmem, a_server_without_multi_conn_gets_one_connection)
{
	const char *filters[] = { "--filter=multi-conn", "multi-conn-mode=disable", NULL };
	unsigned made, used;

	workload_on(filters, 1, &made, &used);
	cr_assert_eq(made, 1, "the server saw %u connections", made);
	cr_assert_eq(used, 1, "reads and writes came on %u connections", used);
}
