// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The keeper of descriptors of a daemon started by hand (daemon/keeper.c): a daemon killed is
 * taken over by the next one started on its socket, with every byte of its clients; a client that
 * connects while no daemon runs fails at once; a second daemon on a live socket does not start; a
 * daemon stopped by SIGTERM ends its keeper, and a keeper with no client left ends with its daemon.
 * (The pages paged out across such a crash: pageout's test.)
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
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "upager.h"

TestSuite(keeper, .init = harness_start, .fini = harness_stop, .timeout = 60);

/* The pid of the last keeper the test's daemons started, from their log; 0 if none. */
static pid_t keeper_pid(void)
{
	char path[512], line[512];
	const char *key = "keeper of descriptors: pid ";
	pid_t pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/upagerd.log", harness_tmpdir());
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *at = strstr(line, key);

		if (at)
			pid = (pid_t)atoi(at + strlen(key));
	}
	fclose(f);
	return pid;
}

/* Whether @pid is a live keeper (not one that ended and waits to be reaped, nor a pid used again
 * since). */
static bool is_keeper(pid_t pid)
{
	char path[64], stat[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = 0;
	fclose(f);
	return strstr(stat, "(upager-keeper) ") && !strstr(stat, ") Z ");
}

static bool keeper_gone(void *arg)
{
	return !is_keeper(*(pid_t *)arg);
}

#define FILE_PAGES 8

/*
 * A client's private memory and a written shared file mapping, the daemon killed by @kill_daemon:
 * the next daemon takes over from the keeper, every byte is there, and the write not written back
 * yet is written.
 */
static void taken_over_with_every_byte(void (*kill_daemon)(void))
{
	int fd = make_pattern_file("data", FILE_PAGES * PAGE, NULL);
	char *priv, *file;
	uint64_t v = 0;

	priv = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			   0);
	file = upager_mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(priv != MAP_FAILED && file != MAP_FAILED);
	memset(priv, 'p', 2 * PAGE);
	*(uint64_t *)file = 0xfeed;
	cr_assert(is_keeper(keeper_pid()), "no keeper: pid %d", (int)keeper_pid());
	kill_daemon();
	harness_daemon_restart();
	cr_assert(harness_daemon_logged("took over"), "the new daemon did not take over");
	for (size_t i = 0; i < 4 * PAGE; i++)
		cr_assert_eq(priv[i], i < 2 * PAGE ? 'p' : 0, "private byte %zu", i);
	for (size_t off = 8; off < FILE_PAGES * PAGE; off += 8)
		cr_assert_eq(*(uint64_t *)(file + off), pattern_at(off), "file byte %zu", off);
	/* The write never written back: the new daemon writes it. */
	cr_assert_eq(upager_msync(file, FILE_PAGES * PAGE, MS_SYNC), 0, "%m");
	cr_assert_eq(pread(fd, &v, sizeof(v), 0), (ssize_t)sizeof(v));
	cr_assert_eq(v, 0xfeed);
	cr_assert_eq(upager_munmap(file, FILE_PAGES * PAGE), 0);
	cr_assert_eq(upager_munmap(priv, 4 * PAGE), 0);
	close(fd);
}

Test(keeper, a_daemon_killed_is_taken_over_with_every_byte)
{
	taken_over_with_every_byte(harness_daemon_kill);
}

/*
 * SIGKILL to every process whose command line names the test's socket, as `pkill -KILL -f upagerd`
 * does to all; then the daemon is reaped. The keeper's command line is its own name. (The pattern's
 * dot in brackets: the shell that runs pkill, whose command line holds the pattern, does not match.)
 */
static void kill_by_command_line(void)
{
	const char *sock = harness_socket(), *dot = strrchr(sock, '.');
	char cmd[512];

	cr_assert(dot);
	snprintf(cmd, sizeof(cmd), "pkill -KILL -f -- '%.*s[.]%s'", (int)(dot - sock), sock,
		 dot + 1);
	cr_assert_eq(system(cmd), 0, "%s killed nothing", cmd);
	harness_daemon_kill(); /* reaps it */
	cr_assert(is_keeper(keeper_pid()), "the keeper was killed with its daemon");
}

Test(keeper, a_daemon_killed_by_its_command_line_is_taken_over_with_every_byte)
{
	taken_over_with_every_byte(kill_by_command_line);
}

/* A new client while no daemon runs (a byte on @go): its call fails, within a second, rather
 * than wait. */
static void map_with_no_daemon(int go)
{
	void *p;
	char c;

	alarm(10);
	if (read(go, &c, 1) != 1)
		_exit(2);
	alarm(1);
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	_exit(p == MAP_FAILED ? 0 : 1);
}

Test(keeper, a_client_that_connects_while_no_daemon_runs_fails_at_once)
{
	int go[2], status;
	pid_t child;
	char *p;

	/* Forked first: a client's fork waits for a daemon to read its event. */
	cr_assert_eq(pipe(go), 0);
	child = fork();
	cr_assert(child >= 0);
	if (child == 0)
		map_with_no_daemon(go[0]);
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	p[0] = 1; /* a client: the keeper stays */
	harness_daemon_kill();
	cr_assert(is_keeper(keeper_pid()));
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the call with no daemon ended with %#x (SIGALRM: it waited)", status);
	harness_daemon_restart();
	cr_assert_eq(p[0], 1);
	cr_assert_eq(upager_munmap(p, PAGE), 0);
}

Test(keeper, a_second_daemon_on_a_live_socket_does_not_start)
{
	char *argv[] = { getenv("UPAGERD"), "--socket", (char *)harness_socket(), NULL };
	int status;
	pid_t second;
	char *p;

	second = fork();
	cr_assert(second >= 0);
	if (second == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(second, &status, 0), second);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "the second daemon: %#x", status);
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED, "the first daemon serves no more: %m");
	p[0] = 1;
	cr_assert_eq(upager_munmap(p, PAGE), 0);
}

Test(keeper, a_daemon_stopped_by_sigterm_ends_its_keeper)
{
	pid_t keeper = keeper_pid(), d = harness_daemon_pid();
	char *p =
		upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;

	cr_assert(p != MAP_FAILED);
	p[0] = 1;
	cr_assert(is_keeper(keeper));
	kill(d, SIGTERM);
	cr_assert_eq(waitpid(d, &status, 0), d);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%#x", status);
	cr_assert(wait_until(keeper_gone, &keeper, 2000), "the keeper outlived a stop");
	/* The client resumes with the next daemon, as without a keeper. */
	harness_daemon_restart();
	cr_assert_eq(p[0], 1);
}

Test(keeper, a_keeper_with_no_client_left_ends_with_its_daemon)
{
	pid_t keeper = keeper_pid();

	cr_assert(is_keeper(keeper));
	harness_daemon_kill();
	cr_assert(wait_until(keeper_gone, &keeper, 2000), "the keeper of no client stayed");
	harness_daemon_restart();
	cr_assert_neq(keeper_pid(), keeper, "the next daemon started no keeper of its own");
	cr_assert(is_keeper(keeper_pid()));
}

/* As user 65534, once the daemon is dead (a byte on @go), ask its keeper for its descriptors:
 * exits 0 if it got none. */
static void take_as_nobody(int go)
{
	char buf[256];
	struct pollfd p;
	int fd;

	alarm(10);
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	if (read(go, buf, 1) != 1)
		_exit(96);
	fd = harness_connect_raw();
	if (fd < 0)
		_exit(98);
	if (send(fd, "UPAGER_TAKE=1", 13, 0) != 13)
		_exit(0); /* closed already */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		_exit(97);
	_exit(recv(fd, buf, sizeof(buf), 0) <= 0 ? 0 : 1);
}

Test(keeper, another_user_cannot_take_the_descriptors_over)
{
	int go[2], status;
	pid_t child;
	char *p;

	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(go), 0);
	/* Forked first: a client's fork waits for a daemon to read its event. */
	child = fork();
	cr_assert(child >= 0);
	if (child == 0)
		take_as_nobody(go[0]);
	p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	p[0] = 1;
	harness_daemon_kill();
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "user 65534: %#x", status);
	harness_daemon_restart();
	cr_assert(harness_daemon_logged("took over"), "the keeper let its descriptors go");
	cr_assert_eq(p[0], 1);
}

/* A client that bounds its wait for a daemon (UPAGER_DAEMON_TIMEOUT=1): the keeper keeps none of
 * its descriptors, and its fault after the daemon died raises SIGBUS about a second later. */
Test(keeper, a_client_that_bounds_its_wait_gets_sigbus_past_it)
{
	harness_bounded_wait();
	harness_daemon_restart();
}
