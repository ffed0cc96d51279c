// SPDX-License-Identifier: LGPL-2.1-or-later
/* upagerd: arguments, then the loop until SIGTERM or SIGINT. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "budget.h"
#include "bufpool.h"
#include "daemon.h"
#include "keeper.h"
#include "log.h"
#include "nbd-store.h"

#define DEFAULT_SOCKET "/run/upager/upager.sock"
#define DEFAULT_SWAP_DIR "/var/lib/upager"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: upagerd [--socket PATH] [--verbose]\n"
		"Serve the page faults of libupager mappings.\n\n"
		"  -s, --socket PATH  listen on PATH (default " DEFAULT_SOCKET ")\n"
		"  -v, --verbose      log every client and space\n"
		"      --readahead-min KIB  first read-ahead window of a sequential reader (64)\n"
		"      --readahead-max KIB  largest read-ahead window, 0 for none (4096)\n"
		"      --read-max KIB       largest single read from a backing store (1024)\n"
		"      --guard-gap KIB      room a MAP_GROWSDOWN mapping leaves below it (4)\n"
		"      --file-timeout SECS  how long a call on a client's file may take before "
		"its\n"
		"                           request fails with EAGAIN (10)\n"
		"      --memory-max SIZE    the most memory the pages of all mappings take, K M G "
		"T\n"
		"                           suffixes, 0 for no limit (half of physical memory, or\n"
		"                           of the daemon's cgroup limit if lower)\n"
		"      --uid-memory-max SIZE  a user's share of it: above it, its pages go first\n"
		"                           (half of the budget)\n"
		"      --swap PATH|URI      the swap store of anonymous pages, a file (made if\n"
		"                           missing), a block device, or an NBD server's export\n"
		"                           (nbd://HOST[:PORT]/EXPORT, "
		"nbd+unix:///EXPORT?socket=P);\n"
		"                           \"\" for none\n"
		"                           ($STATE_DIRECTORY/swap, else " DEFAULT_SWAP_DIR
		"/swap)\n"
		"      --swap-max SIZE      the most it holds (twice the physical memory)\n"
		"      --swap-timeout SECS  how long faults wait for an NBD server that went\n"
		"                           away before they fail with SIGBUS (30)\n"
		"      --swap-connections N  connections to an NBD server that offers\n"
		"                           multi-conn, 1 to 16 (4)\n"
		"      --no-keeper          started without a service manager, start no keeper\n"
		"                           of descriptors: a crash loses the pages paged out\n"
		"Limits of each user but root (0 for none, see upagerd(8)):\n"
		"      --max-connections N  connections (128)\n"
		"      --max-processes N    processes served, forked children included (1024)\n"
		"      --max-caches N       files and shared anonymous areas it has cached (1024)\n"
		"      --max-mappings N     mappings (65530, or one per 4 KiB of the daemon's\n"
		"                           cgroup memory limit if fewer, 1024 at least)\n"
		"      --max-mapped SIZE    bytes of its mappings together, and of the files\n"
		"                           it made caches of, K M G T suffixes (4 times the\n"
		"                           physical memory, or 64 times the daemon's cgroup\n"
		"                           memory limit if less)\n"
		"      --max-swap SIZE      bytes of the swap store its pages hold (half\n"
		"                           of the store)\n"
		"  -h, --help         show this help\n"
		"      --version      show the version\n");
}

/* A timeout in seconds (fractions allowed, up to a day), in ms: 0 or -EINVAL. */
static int parse_ms(const char *arg, uint64_t *out)
{
	char *end;
	double secs = strtod(arg, &end);

	if (end == arg || *end || !(secs > 0 && secs <= 86400))
		return -EINVAL;
	*out = (uint64_t)(secs * 1000);
	return 0;
}

/* A count, or a size with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const char *arg, bool suffix, uint64_t *out)
{
	static const char units[] = "KMGT";
	char *end;
	unsigned long long v;
	const char *u;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || arg[0] == '-')
		return -EINVAL;
	if (*end && suffix && (u = strchr(units, *end)) && !end[1]) {
		unsigned shift = 10 * (unsigned)(u - units + 1);

		if (v > UINT64_MAX >> shift)
			return -ERANGE;
		v <<= shift;
	} else if (*end) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* A size in KiB, a multiple of the page size, as pages. */
static int parse_kib(const char *arg, uint32_t *pages)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *end || end == arg || v % 4 || v / 4 > UINT32_MAX / 2)
		return -EINVAL;
	*pages = (uint32_t)(v / 4);
	return 0;
}

/* As many descriptors as the service manager lets the daemon have (LimitNOFILE=): the soft limit
 * of 1024 would run out long before the per-user limits do. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Every client waits for the daemon, whose figures look the largest to the kernel's OOM killer
 * (every cache memfd it maps counts in its RSS, and their page tables): under memory pressure in
 * a cgroup it shares with clients it was taken first, and each client then hung. An
 * oom_score_adj left at its default of 0 goes to OOM_SCORE_ADJ (needs CAP_SYS_RESOURCE; the unit
 * sets it with OOMScoreAdjust=), so that the killer takes a client instead; one set by whoever
 * started the daemon stays.
 */
#define OOM_SCORE_ADJ "-900"

static void oom_protect(void)
{
	char now[16] = "";
	int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	if (read(fd, now, sizeof(now) - 1) > 0 && atoi(now) == 0 &&
	    pwrite(fd, OOM_SCORE_ADJ, strlen(OOM_SCORE_ADJ), 0) < 0)
		log_info("leaving oom_score_adj at 0: %m");
	close(fd);
}

/* The swap store by default: in the unit's state directory, else in DEFAULT_SWAP_DIR if it is. */
static const char *default_swap(char *buf, size_t size)
{
	const char *dir = getenv("STATE_DIRECTORY");
	struct stat st;

	if (!dir || !*dir) {
		if (stat(DEFAULT_SWAP_DIR, &st) < 0 || !S_ISDIR(st.st_mode))
			return NULL;
		dir = DEFAULT_SWAP_DIR;
	}
	/* STATE_DIRECTORY may list several, separated by colons: the first is ours. */
	snprintf(buf, size, "%.*s/swap", (int)strcspn(dir, ":"), dir);
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "readahead-min", required_argument, NULL, 'r' },
		{ "readahead-max", required_argument, NULL, 'R' },
		{ "read-max", required_argument, NULL, 'M' },
		{ "guard-gap", required_argument, NULL, 'G' },
		{ "file-timeout", required_argument, NULL, 'T' },
		{ "max-connections", required_argument, NULL, 'C' },
		{ "max-processes", required_argument, NULL, 'P' },
		{ "max-caches", required_argument, NULL, 'O' },
		{ "max-mappings", required_argument, NULL, 'N' },
		{ "max-mapped", required_argument, NULL, 'B' },
		{ "max-swap", required_argument, NULL, 'Q' },
		{ "memory-max", required_argument, NULL, 'm' },
		{ "swap", required_argument, NULL, 'S' },
		{ "uid-memory-max", required_argument, NULL, 'U' },
		{ "swap-max", required_argument, NULL, 'X' },
		{ "swap-timeout", required_argument, NULL, 'W' },
		{ "swap-connections", required_argument, NULL, 'Y' },
		{ "no-keeper", no_argument, NULL, 'K' },
		{},
	};
	const char *socket_path = DEFAULT_SOCKET;
	struct daemon d = {
		.config = {
			.readahead_min_pages = 16,
			.readahead_max_pages = 1024,
			.fill_max_pages = 256,
			.guard_gap = 4096,
			.file_timeout_ms = 10000,
			.swap_timeout_ms = 30000,
			.swap_connections = 4,
			.swap_max = 2 * (uint64_t)sysconf(_SC_PHYS_PAGES) * 4096,
			.limits = {
				.connections = 128,
				.processes = 1024,
				.objects = 1024,
				.mappings = 65530, /* vm.max_map_count's default */
				.mapped = 4 * (uint64_t)sysconf(_SC_PHYS_PAGES) * 4096,
				.swap = LIMIT_SWAP_HALF,
			},
		},
	};
	char swap_default[4096];
	sigset_t stop_signals;
	bool memory_max_set = false, uid_memory_max_set = false, mapped_set = false,
	     mappings_set = false, keeper = true;
	uint64_t cg_limit;
	int c, ret;

	/* The buffers of reads and page-outs (64 KiB to a few MiB, as many as the budget lets be
	 * under way) are the daemon's memory beyond the budget only while in use: each is mapped
	 * and unmapped on its own, not left in the heap. A threshold set here also stops malloc()
	 * from raising it at each free of such a buffer, after which they all came from the heap
	 * and stayed there (11 MiB kept after 256 MiB paged through a 16 MiB budget). */
	(void)mallopt(M_MMAP_THRESHOLD, BUFPOOL_MIN_BYTES);
	(void)mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
	while ((c = getopt_long(argc, argv, "s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'v':
			log_max_level = LOG_DEBUG;
			break;
		case 'K':
			keeper = false;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("upagerd " UPAGER_VERSION "\n");
			return EXIT_SUCCESS;
		case 'r':
		case 'R':
		case 'M':
			if (parse_kib(optarg, c == 'r'	 ? &d.config.readahead_min_pages
					      : c == 'R' ? &d.config.readahead_max_pages
							 : &d.config.fill_max_pages) < 0 ||
			    (c == 'M' && d.config.fill_max_pages == 0)) {
				fprintf(stderr, "upagerd: bad size '%s' (KiB, a multiple of 4)\n",
					optarg);
				return 2;
			}
			break;
		case 'G': {
			uint32_t pages;

			if (parse_kib(optarg, &pages) < 0 || pages == 0) {
				fprintf(stderr,
					"upagerd: bad guard gap '%s' (KiB, a multiple of 4)\n",
					optarg);
				return 2;
			}
			d.config.guard_gap = (uint64_t)pages << 12;
			break;
		}
		case 'T':
		case 'W':
			if (parse_ms(optarg, c == 'T' ? &d.config.file_timeout_ms
						      : &d.config.swap_timeout_ms) < 0) {
				fprintf(stderr, "upagerd: bad timeout '%s' (seconds)\n", optarg);
				return 2;
			}
			break;
		case 'Y': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (end == optarg || *end || n < 1 || n > 16) {
				fprintf(stderr,
					"upagerd: bad number of connections '%s' (1 to 16)\n",
					optarg);
				return 2;
			}
			d.config.swap_connections = (uint32_t)n;
			break;
		}
		case 'C':
		case 'O':
		case 'N':
		case 'P':
		case 'B':
		case 'Q': {
			uint64_t v;
			bool size = c == 'B' || c == 'Q';

			if (parse_size(optarg, size, &v) < 0 || (!size && v > UINT32_MAX) ||
			    v == LIMIT_SWAP_HALF) {
				fprintf(stderr, "upagerd: bad limit '%s'\n", optarg);
				return 2;
			}
			if (c == 'C')
				d.config.limits.connections = (unsigned)v;
			else if (c == 'P')
				d.config.limits.processes = (unsigned)v;
			else if (c == 'O')
				d.config.limits.objects = (unsigned)v;
			else if (c == 'N')
				d.config.limits.mappings = (unsigned)v;
			else if (c == 'B')
				d.config.limits.mapped = v;
			else
				d.config.limits.swap = v;
			mapped_set |= c == 'B';
			mappings_set |= c == 'N';
			break;
		}
		case 'm':
			if (parse_size(optarg, true, &d.config.memory_max) < 0 ||
			    (d.config.memory_max && d.config.memory_max < BUDGET_MIN)) {
				fprintf(stderr,
					"upagerd: bad memory budget '%s' (1M or more, or 0)\n",
					optarg);
				return 2;
			}
			memory_max_set = true;
			break;
		case 'U':
			if (parse_size(optarg, true, &d.config.uid_memory_max) < 0) {
				fprintf(stderr, "upagerd: bad share '%s'\n", optarg);
				return 2;
			}
			uid_memory_max_set = true;
			break;
		case 'S':
			if (nbd_store_is_uri(optarg) && !nbd_store_available()) {
				fprintf(stderr,
					"upagerd: --swap %s: this upagerd was built without "
					"libnbd\n",
					optarg);
				return 2;
			}
			d.config.swap_path = optarg;
			break;
		case 'X':
			if (parse_size(optarg, true, &d.config.swap_max) < 0 ||
			    d.config.swap_max < 4096) {
				fprintf(stderr, "upagerd: bad swap size '%s'\n", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	cg_limit = budget_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup");
	d.cgroup_limit = cg_limit;
	if (!memory_max_set)
		d.config.memory_max =
			budget_default((uint64_t)sysconf(_SC_PHYS_PAGES) * 4096, cg_limit);
	else if (budget_fit(d.config.memory_max, cg_limit) != d.config.memory_max) {
		fprintf(stderr,
			"upagerd: a budget of %" PRIu64 " MiB reaches the memory limit of the "
			"daemon's cgroup (%" PRIu64 " MiB): %" PRIu64 " MiB instead\n",
			d.config.memory_max >> 20, cg_limit >> 20,
			budget_fit(d.config.memory_max, cg_limit) >> 20);
		d.config.memory_max = budget_fit(d.config.memory_max, cg_limit);
	}
	if (!uid_memory_max_set)
		d.config.uid_memory_max = d.config.memory_max / 2;
	d.config.memory_max_default = !memory_max_set;
	d.config.uid_memory_max_default = !uid_memory_max_set;
	if (!mapped_set)
		d.config.limits.mapped =
			budget_mapped_default((uint64_t)sysconf(_SC_PHYS_PAGES) * 4096, cg_limit);
	if (!mappings_set)
		d.config.limits.mappings =
			(unsigned)budget_mappings_default(d.config.limits.mappings, cg_limit);
	if (!d.config.swap_path)
		d.config.swap_path = default_swap(swap_default, sizeof(swap_default));
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	oom_protect();

	/* A SIGTERM that comes while the daemon starts (its socket listens before its handlers are
	 * in place) waits for them, rather than kill it without a word. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	/* Before any thread: a keeper is forked. */
	d.keeper.fd = -1;
	if (keeper && !getenv("NOTIFY_SOCKET") && keeper_attach(socket_path, argv, &d.keeper) < 0) {
		log_error("%s: another upagerd serves it", socket_path);
		return EXIT_FAILURE;
	}
	ret = daemon_init(&d, uv_default_loop(), socket_path);
	sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
	if (ret < 0)
		return EXIT_FAILURE;
	uv_run(d.loop, UV_RUN_DEFAULT);
	daemon_deinit(&d);
	uv_loop_close(d.loop);
	return EXIT_SUCCESS;
}
