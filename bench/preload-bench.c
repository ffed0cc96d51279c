// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-preload: what upager-run costs a program in the calls it routes or watches but that
 * stay the kernel's: anonymous mmap(2) and munmap(2) (left to the kernel unless --anonymous),
 * pwrite(2) and open(2)/close(2) of a file that is not mapped. The same worker (this program with
 * --work) runs plain and under upager-run, in the same run: first mapping no file (what a program
 * that never maps a file pays), then after it mapped one file through upager (each descriptor
 * number is then looked at once with fstat(2), and known after). Each figure is the median of the
 * runs, ns per call; the ratio is upager-run's over the plain run's.
 *
 * Usage: upager-bench-preload [--quick] [--upagerd PATH]   ($UPAGERD is the default path;
 * $UPAGER_RUN names upager-run, else the one beside this program's build directory)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fatal.h"

#define RUNS 5
#define OPS 3

static const char *const op_name[OPS] = { "mmap+munmap 64 KiB anonymous", "pwrite 64 B",
					  "open+close" };
static char dir[64] = "/tmp/upager-preload-XXXXXX";

static void die(const char *what)
{
	fatal("%s: %s", what, strerror(errno));
}

/* The worker: ns per call of each op, one line each; after mapping @mapped (if not NULL). */
static int work(const char *file, const char *mapped, long n)
{
	static char buf[64];
	uint64_t t0;
	void *m = NULL;
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open");
	if (mapped) {
		int mfd = open(mapped, O_RDONLY);

		m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, mfd, 0);
		if (mfd < 0 || m == MAP_FAILED)
			die("mmap of a file");
		(void)*(volatile char *)m;
	}
	t0 = now_ns();
	for (long i = 0; i < n / 10; i++) {
		char *p = mmap(NULL, 64 * KIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		munmap(p, 64 * KIB);
	}
	printf("%.1f\n", (double)(now_ns() - t0) / (double)(n / 10));
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
			die("pwrite");
	printf("%.1f\n", (double)(now_ns() - t0) / (double)n);
	t0 = now_ns();
	for (long i = 0; i < n / 4; i++) {
		int f = open(file, O_RDONLY);

		if (f < 0)
			die("open");
		close(f);
	}
	printf("%.1f\n", (double)(now_ns() - t0) / (double)(n / 4));
	if (m)
		munmap(m, PAGE);
	return 0;
}

/* One run of the worker, under @run (upager-run) unless NULL: its figures into @out. */
static void run_worker(const char *run, bool mapped, long n, double out[OPS])
{
	char self[PATH_MAX], file[128], map[128], count[32];
	int pipefd[2];
	ssize_t len;
	pid_t pid;
	FILE *f;
	int status;

	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0 || pipe(pipefd) < 0)
		die("worker");
	self[len] = 0;
	snprintf(file, sizeof(file), "%s/written", dir);
	snprintf(map, sizeof(map), "%s/mapped", dir);
	snprintf(count, sizeof(count), "%ld", n);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		if (run)
			execlp(run, "upager-run", self, "--work", count, file, mapped ? map : NULL,
			       (char *)NULL);
		else
			execl(self, self, "--work", count, file, mapped ? map : NULL, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	for (int i = 0; i < OPS; i++)
		if (!f || fscanf(f, "%lf", &out[i]) != 1)
			fatal("the worker%s gave no figures", run ? " under upager-run" : "");
	fclose(f);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fatal("the worker%s failed (status %#x)", run ? " under upager-run" : "", status);
}

/* upager-run: $UPAGER_RUN, else beside @upagerd or in preload/ there (the build tree), else the
 * one in $PATH. */
static const char *find_run(const char *upagerd)
{
	static const char *const beside[] = { "upager-run", "preload/upager-run" };
	static char path[PATH_MAX];
	const char *env = getenv("UPAGER_RUN");
	const char *slash = strrchr(upagerd, '/');

	if (env)
		return env;
	for (size_t i = 0; slash && i < sizeof(beside) / sizeof(beside[0]); i++) {
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - upagerd), upagerd, beside[i]);
		if (access(path, X_OK) == 0)
			return path;
	}
	return "upager-run";
}

int main(int argc, char **argv)
{
	double plain[2][RUNS][OPS], under[2][RUNS][OPS];
	const char *bin, *run;
	char map[128];
	bool quick;
	long n;
	int runs;

	if (argc >= 4 && !strcmp(argv[1], "--work"))
		return work(argv[3], argc > 4 ? argv[4] : NULL, atol(argv[2]));
	bin = daemon_args(argc, argv, &quick);
	run = find_run(bin);
	n = quick ? 20000 : 400000;
	runs = quick ? 1 : RUNS;
	alarm(quick ? 60 : 600);
	fatal_start_daemon("upager-bench-preload", bin, dir);
	snprintf(map, sizeof(map), "%s/mapped", dir);
	if (file_create(map, PAGE) < 0)
		die("the mapped file");
	for (int r = 0; r < runs; r++)
		for (int m = 0; m < 2; m++) {
			run_worker(NULL, m, n, plain[m][r]);
			run_worker(run, m, n, under[m][r]);
		}
	printf("calls that stay the kernel's, plain and under upager-run; median of %d runs, "
	       "ns per call\n",
	       runs);
	printf("%-44s %12s %10s %8s\n", "figure", "upager-run", "plain", "ratio");
	for (int m = 0; m < 2; m++)
		for (int op = 0; op < OPS; op++) {
			double u[RUNS], p[RUNS], mu, mp;
			char name[64];

			for (int r = 0; r < runs; r++) {
				u[r] = under[m][r][op];
				p[r] = plain[m][r][op];
			}
			mu = median(u, (unsigned)runs);
			mp = median(p, (unsigned)runs);
			snprintf(name, sizeof(name), "%s%s", op_name[op],
				 m ? ", a file mapped" : "");
			printf("%-44s %12.1f %10.1f %7.2fx\n", name, mu, mp, mu / mp);
		}
	return 0;
}
