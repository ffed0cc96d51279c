// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench: upager next to a reference measured in the same run, one row per figure.
 *
 * The program starts its own upagerd on a temporary socket, writes its test files once (in a new
 * folder under /tmp), and measures: fault latency with the daemon's cache warm, sequential reads
 * with cold and warm caches, MAP_POPULATE and MAP_POPULATE|MAP_NONBLOCK calls, and two clients at
 * once. The reference is the kernel's own mmap(2) of the same file, or the floor, a
 * minimal userfaultfd handler in another process (floor.c). Every byte read is checked against the
 * file's pattern, so a fast wrong answer shows as an error, not as a good figure.
 *
 * Figures that need cold caches drop the kernel's page cache (root only) and make sure the daemon
 * caches nothing; if that fails the row says "not cold" instead of met or not.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define N_FIGURES 8

struct bench_config cfg;
volatile sig_atomic_t current_figure;

static void remove_files(void)
{
	unlink(cfg.big_path);
	unlink(cfg.rnd_path);
	unlink(cfg.pair_path[0]);
	unlink(cfg.pair_path[1]);
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "upager-bench: timed out or interrupted in figure ";
	static const char log[] = "upager-bench: the daemon's log is kept in ";
	char fig[3] = { (char)('0' + current_figure), '\n', 0 };
	pid_t d = daemon_pid();

	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, fig, 2);
	(void)sig;
	if (d > 0)
		kill(d, SIGKILL);
	remove_files();
	(void)!write(2, log, sizeof(log) - 1);
	(void)!write(2, cfg.log_path, strlen(cfg.log_path));
	(void)!write(2, "\n", 1);
	_exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: upager-bench [--quick] [--upagerd PATH] [--figures LIST] [--repeat N]\n"
		"Measure upager next to the kernel's mmap and a minimal userfaultfd handler.\n\n"
		"      --quick          small files and few samples: a smoke run\n"
		"      --upagerd PATH   the daemon to start (default $UPAGERD)\n"
		"      --figures LIST   run only these figures, e.g. 1,3,5 (1 to %d)\n"
		"      --repeat N       runs per throughput or time figure, median shown\n"
		"  -h, --help           show this help\n\n"
		"Needs root: it drops the kernel's caches for the cold figures.\n",
		N_FIGURES);
}

static int parse_figures(const char *s)
{
	unsigned mask = 0;
	char *end;

	while (*s) {
		long n = strtol(s, &end, 10);

		if (end == s || n < 1 || n > N_FIGURES)
			return -EINVAL;
		mask |= 1u << n;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -EINVAL;
	}
	cfg.figures = mask;
	return mask ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "upagerd", required_argument, NULL, 'u' },
		{ "figures", required_argument, NULL, 'f' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c, repeat = 0;

	cfg.upagerd = getenv("UPAGERD");
	cfg.figures = ~0u;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			cfg.quick = true;
			break;
		case 'u':
			cfg.upagerd = optarg;
			break;
		case 'f':
			if (parse_figures(optarg) < 0) {
				fprintf(stderr, "upager-bench: bad figure list '%s'\n", optarg);
				return 2;
			}
			break;
		case 'r':
			repeat = atoi(optarg);
			if (repeat < 1 || repeat > MAX_REPEAT) {
				fprintf(stderr, "upager-bench: --repeat takes 1 to %d\n",
					MAX_REPEAT);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (!cfg.upagerd) {
		fprintf(stderr, "upager-bench: no daemon: set UPAGERD or pass --upagerd PATH\n");
		return 2;
	}
	if (cfg.quick) {
		cfg.big = cfg.rnd = 64 * MIB;
		cfg.pair = 32 * MIB;
		cfg.samples = 4000;
		cfg.repeat = 1;
		cfg.alarm_s = 60;
	} else {
		cfg.big = 1024 * MIB;
		cfg.rnd = 128 * MIB;
		cfg.pair = 512 * MIB;
		cfg.samples = 20000;
		cfg.repeat = 3;
		cfg.alarm_s = 300;
	}
	if (repeat)
		cfg.repeat = (unsigned)repeat;
	return 0;
}

static void header(void)
{
	struct utsname u;
	char date[64];
	time_t t = time(NULL);

	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", localtime(&t));
	printf("upager-bench (%s run), %s, kernel %s, %ld CPUs online, upagerd %s\n",
	       cfg.quick ? "quick" : "full", date, u.release, sysconf(_SC_NPROCESSORS_ONLN),
	       cfg.upagerd);
	printf("files in %s: %zu MiB (figures 2-7), %zu MiB (figure 1, %u samples), 2 x %zu MiB "
	       "(figure 8); %u run(s) per figure, median shown\n",
	       cfg.dir, cfg.big / MIB, cfg.rnd / MIB, cfg.samples, cfg.pair / MIB, cfg.repeat);
	fflush(stdout);
}

static bool want(unsigned fig)
{
	return cfg.figures & (1u << fig);
}

static int make_files(void)
{
	struct {
		const char *path;
		size_t size;
		unsigned figs;
	} files[] = {
		{ cfg.rnd_path, cfg.rnd, 1u << 1 },
		{ cfg.big_path, cfg.big, 0xfc },
		{ cfg.pair_path[0], cfg.pair, 1u << 8 },
		{ cfg.pair_path[1], cfg.pair, 1u << 8 },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int ret;

		if (!(cfg.figures & files[i].figs))
			continue;
		progress("writing %s (%zu MiB)", files[i].path, files[i].size / MIB);
		ret = file_create(files[i].path, files[i].size);
		if (ret < 0) {
			fprintf(stderr, "upager-bench: %s: %s\n", files[i].path, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static void (*const figures[N_FIGURES + 1])(void) = {
		NULL,
		fig_random,
		fig_seq_cold,
		fig_seq_page_cache,
		fig_seq_second,
		fig_populate_warm,
		fig_populate_cold,
		fig_populate_nonblock,
		fig_two_clients,
	};
	struct sigaction sa = { .sa_handler = on_fatal_signal };
	int ret;

	if (argc == 3 && strcmp(argv[1], "--floor-handler") == 0)
		return floor_handler_main(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "--reader") == 0)
		return reader_main(atoi(argv[2]), argv[3], false);
	if (argc == 4 && strcmp(argv[1], "--kernel-reader") == 0)
		return reader_main(atoi(argv[2]), argv[3], true);

	ret = parse_args(argc, argv);
	if (ret)
		return ret;
	if (!self_exe()) {
		fprintf(stderr, "upager-bench: cannot find /proc/self/exe\n");
		return 1;
	}
	snprintf(cfg.dir, sizeof(cfg.dir), "/tmp/upager-bench-XXXXXX");
	if (!mkdtemp(cfg.dir)) {
		perror("upager-bench: mkdtemp");
		return 1;
	}
	snprintf(cfg.big_path, sizeof(cfg.big_path), "%s/big", cfg.dir);
	snprintf(cfg.rnd_path, sizeof(cfg.rnd_path), "%s/random", cfg.dir);
	snprintf(cfg.pair_path[0], sizeof(cfg.pair_path[0]), "%s/pair-a", cfg.dir);
	snprintf(cfg.pair_path[1], sizeof(cfg.pair_path[1]), "%s/pair-b", cfg.dir);
	snprintf(cfg.log_path, sizeof(cfg.log_path), "%s/upagerd.log", cfg.dir);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	alarm(cfg.alarm_s);
	ret = make_files();
	if (ret == 0) {
		ret = daemon_start(cfg.upagerd, cfg.dir);
		if (ret < 0)
			fprintf(stderr, "upager-bench: starting %s: %s (log in %s)\n", cfg.upagerd,
				strerror(-ret), cfg.log_path);
	}
	if (ret < 0) {
		daemon_stop();
		remove_files();
		return 1;
	}
	header();
	for (unsigned i = 1; i <= N_FIGURES; i++) {
		if (!want(i))
			continue;
		current_figure = (sig_atomic_t)i;
		alarm(cfg.alarm_s);
		figures[i]();
		if (!daemon_alive()) {
			note("upagerd exited during figure %u; log in %s", i, cfg.log_path);
			report_fail();
			break;
		}
	}
	alarm(0);
	current_figure = 0;
	daemon_stop();
	remove_files();
	print_table();
	if (report_failed()) {
		fprintf(stderr, "upager-bench: errors; the daemon's log is kept in %s\n",
			cfg.log_path);
		return 1;
	}
	unlink(cfg.log_path);
	unlink(getenv("UPAGER_SOCKET"));
	rmdir(cfg.dir);
	return 0;
}
