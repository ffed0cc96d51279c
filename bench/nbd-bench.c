// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upager-bench-nbd: the swap store on an NBD server (issue 15, "Benchmark"), next to a plain libnbd
 * client of the same server and to the local swap file, in one run. The server is an nbdkit of the
 * benchmark's own (memory plugin, its stats filter counting the requests), on a Unix socket or,
 * with --tcp, on TCP loopback; a new one for each phase.
 *
 * (a) A fault that reads a paged-out page back. A child maps anonymous memory 4x upagerd's
 * --memory-max B (upager_mmap, MAP_PRIVATE), writes all of it in order, waits a second (the write
 * pass's last page-outs end: right after it a page-in costs up to twice as much for some 100 ms),
 * then reads pages of the first half (paged out by then) in a random order, timing the first load
 * of each page that mincore() says is not in memory; every word is checked. Once with `upagerd --swap URI`, once
 * with a swap file under /var/tmp. The floor: the same number of 4 KiB nbd_pread() calls at
 * random offsets of the same server, one at a time, by a plain libnbd client (prefilled first).
 * Each is taken free, then pinned: the faulting client and upagerd (or the plain client) on one
 * CPU (--cpu), the server left free as a server elsewhere would be. Target: upager's p50 <=
 * 1.3x the floor's, pinned.
 *
 * (b) Page-out throughput: the bytes upagerd wrote to the server over the child's write pass (the
 * store's bytes_out) divided by the pass's time, next to a plain libnbd writer that writes as many
 * bytes in order, 256 KiB a request with 16 in flight (what nbdcopy does, on one connection).
 * Target >= 0.8x. The server's stats filter gives the number of writes and their mean size.
 *
 * upagerd is started through this program ("upager-bench-nbd --socket PATH", what daemon.c runs),
 * which adds --memory-max and --swap. Needs root (upagerd's budget). Exit status: 0 when
 * everything was measured, met or not; 1 on an error; 2 on a usage error, a timeout or a signal.
 */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fatal.h"
#include "options.h"
#include "upager.h"
#include "zipf.h"

#define PROG "upager-bench-nbd"
#define RUN_ALARM_S 900
#define MAX_SAMPLES 100000
#define ORDER_SEED 0x5eed0b01
#define FLOOR_SEED 0x5eed0b02
#define WRITE_CHUNK (256 * KIB)
#define WRITE_DEPTH 16

enum side {
	SIDE_NBD,
	SIDE_FILE,
	N_SIDES
};

enum pin {
	FREE,
	PINNED,
	N_PINS
};

/* Page-in latencies, sorted. */
struct samples {
	uint32_t n, skipped;
	float us[MAX_SAMPLES];
};

/* What a side measured, in shared memory: each runs in a child. */
struct result {
	bool done;
	char error[200];
	double write_ns; /* the write pass */
	uint64_t bytes_out, pages_out; /* over the write pass */
	struct samples lat[N_PINS];
};

/* What the server's stats filter counted. */
struct server_stats {
	uint64_t writes;
	double write_kib;
};

static struct {
	uint64_t budget, size;
	size_t pages;
	unsigned samples;
	int cpu;
	bool tcp;
	const char *upagerd;
	char dir[64], sock[128], pidfile[128], statsfile[128], uri[256], swap[128], port[16];
	pid_t server;
	struct result *res;
	struct result *floor; /* its lat only */
	double floor_write_ns;
	uint64_t floor_bytes;
	struct server_stats stats[N_SIDES + 1]; /* the upager sides', then the floor writer's */
} conf = { .dir = "/var/tmp/upager-nbd-XXXXXX" };

static void server_stop(struct server_stats *st);

static void cleanup(void)
{
	pid_t d = daemon_pid();

	if (d > 0) {
		kill(d, SIGKILL);
		waitpid(d, NULL, 0);
	}
	server_stop(NULL);
}

/* A TCP port on loopback that no one listens on now. */
static void free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		fatal("a TCP port: %s", strerror(errno));
	snprintf(conf.port, sizeof(conf.port), "%u", ntohs(a.sin_port));
	close(fd);
}

/* A new nbdkit (memory plugin, twice the memory's size, stats filter); its URI in conf.uri. */
static void server_start(void)
{
	char size[32], stats[160];

	snprintf(size, sizeof(size), "%" PRIu64, 2 * conf.size + 64 * MIB);
	snprintf(stats, sizeof(stats), "statsfile=%s", conf.statsfile);
	unlink(conf.pidfile);
	unlink(conf.statsfile);
	unlink(conf.sock);
	if (conf.tcp) {
		free_port();
		snprintf(conf.uri, sizeof(conf.uri), "nbd://127.0.0.1:%s/", conf.port);
	} else {
		snprintf(conf.uri, sizeof(conf.uri), "nbd+unix:///?socket=%s", conf.sock);
	}
	conf.server = fork();
	if (conf.server < 0)
		fatal("fork: %s", strerror(errno));
	if (conf.server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (conf.tcp)
			execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", conf.pidfile,
			       "-i", "127.0.0.1", "-p", conf.port, "--filter=stats", "memory", size,
			       stats, (char *)NULL);
		else
			execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", conf.pidfile,
			       "-U", conf.sock, "--filter=stats", "memory", size, stats,
			       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		struct stat st;

		if (stat(conf.pidfile, &st) == 0 && st.st_size > 0)
			return;
		if (waitpid(conf.server, NULL, WNOHANG) == conf.server) {
			conf.server = 0;
			fatal("nbdkit exited at its start (is it installed?)");
		}
		sleep_ms(10);
	}
	fatal("nbdkit did not start");
}

/* Stop the server; what its stats filter counted into @st. */
static void server_stop(struct server_stats *st)
{
	char line[256];
	FILE *f;

	if (conf.server <= 0)
		return;
	kill(conf.server, SIGTERM);
	waitpid(conf.server, NULL, 0);
	conf.server = 0;
	unlink(conf.sock);
	f = st ? fopen(conf.statsfile, "r") : NULL;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long ops;
		char unit[8];
		double n, secs;

		if (sscanf(line, "write: %llu ops, %lf s, %lf %7s", &ops, &secs, &n, unit) == 4) {
			st->writes = ops;
			st->write_kib = n * (unit[0] == 'G'   ? 1024 * 1024
					     : unit[0] == 'M' ? 1024
							      : 1);
		}
	}
	if (f)
		fclose(f);
}

static struct nbd_handle *client_connect(void)
{
	struct nbd_handle *h = nbd_create();

	if (!h || nbd_connect_uri(h, conf.uri) < 0)
		fatal("libnbd: %s: %s", conf.uri, nbd_get_error());
	return h;
}

static void client_close(struct nbd_handle *h)
{
	nbd_shutdown(h, 0);
	nbd_close(h);
}

/* The word at byte @off of the memory, written with version 1 (never 0: zeroes are wrong). */
static uint64_t word_at(uint64_t off)
{
	return (off << 8) | 1;
}

static void page_fill(void *page, uint64_t off)
{
	uint64_t *w = page, e = word_at(off);

	for (size_t i = 0; i < PAGE / 8; i++, e += 8 << 8)
		w[i] = e;
}

static bool page_right(const void *page, uint64_t off)
{
	const uint64_t *w = page;
	uint64_t e = word_at(off), bad = 0;

	for (size_t i = 0; i < PAGE / 8; i++, e += 8 << 8)
		bad |= w[i] ^ e;
	return bad == 0;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* The @q-th percentile of the sorted @v, in us; 0 if there are no samples. */
static double percentile(const float *v, size_t n, unsigned q)
{
	return n ? v[n * q / 100 < n ? n * q / 100 : n - 1] : 0;
}

/* Write @bytes in order from offset 0, WRITE_CHUNK a request, WRITE_DEPTH in flight: the ns. */
static double floor_write(struct nbd_handle *h, uint64_t bytes)
{
	char *buf = malloc(WRITE_CHUNK);
	uint64_t at = 0, t0;

	if (!buf)
		fatal("out of memory");
	for (size_t i = 0; i < WRITE_CHUNK; i += PAGE)
		page_fill(buf + i, i);
	t0 = now_ns();
	while (at < bytes || nbd_aio_in_flight(h) > 0) {
		while (at < bytes && nbd_aio_in_flight(h) < WRITE_DEPTH) {
			size_t n = bytes - at < WRITE_CHUNK ? (size_t)(bytes - at) : WRITE_CHUNK;

			if (nbd_aio_pwrite(h, buf, n, at, NBD_NULL_COMPLETION, 0) < 0)
				fatal("libnbd: write: %s", nbd_get_error());
			at += n;
		}
		if (nbd_poll(h, -1) < 0)
			fatal("libnbd: poll: %s", nbd_get_error());
		while (nbd_aio_peek_command_completed(h) > 0)
			if (nbd_aio_command_completed(h, nbd_aio_peek_command_completed(h)) < 0)
				fatal("libnbd: write: %s", nbd_get_error());
	}
	free(buf);
	return (double)(now_ns() - t0);
}

/*
 * The floor: a plain client's 4 KiB reads of pages it wrote, one at a time, at random offsets;
 * pinned to conf.cpu for @k PINNED.
 */
static void floor_read(struct nbd_handle *h, enum pin k)
{
	struct samples *r = &conf.floor->lat[k];
	struct rng rng = { FLOOR_SEED + k };
	char *buf = malloc(PAGE);

	if (!buf)
		fatal("out of memory");
	if (k == PINNED && pin_self(conf.cpu) < 0)
		fatal("pinning to CPU %d: %s", conf.cpu, strerror(errno));
	for (unsigned i = 0; i < conf.samples; i++) {
		uint64_t off = rng_below(&rng, conf.size / WRITE_CHUNK) * WRITE_CHUNK +
			       rng_below(&rng, WRITE_CHUNK / PAGE) * PAGE;
		uint64_t t0 = now_ns();

		if (nbd_pread(h, buf, PAGE, off, 0) < 0)
			fatal("libnbd: read: %s", nbd_get_error());
		r->us[i] = (float)(now_ns() - t0) / 1e3f;
		if (!page_right(buf, off % WRITE_CHUNK))
			fatal("libnbd: read wrong at %" PRIu64, off);
	}
	if (k == PINNED)
		unpin_self();
	free(buf);
	r->n = conf.samples;
	qsort(r->us, r->n, sizeof(float), cmp_float);
}

/* The plain client's phase: as many bytes written as upager's NBD side wrote, then reads. */
static void floor_side(void)
{
	struct nbd_handle *h;

	server_start();
	h = client_connect();
	conf.floor_bytes = conf.res[SIDE_NBD].bytes_out;
	if (conf.floor_bytes < conf.size)
		conf.floor_bytes = conf.size; /* the reads need the memory's size written */
	conf.floor_write_ns = floor_write(h, conf.floor_bytes);
	floor_read(h, FREE);
	floor_read(h, PINNED);
	client_close(h);
	server_stop(&conf.stats[N_SIDES]);
}

/* The pages of the first half of the memory, in a random order (the same every run). */
static uint32_t *read_order(void)
{
	return rng_permutation(conf.pages / 2, ORDER_SEED);
}

/* An upager side, in a child: the write pass, then the page-ins. */
static void side_child(struct result *r)
{
	uint32_t *order = read_order();
	struct daemon_stats s0, s1;
	uint64_t t0;
	char *p;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	p = upager_mmap(NULL, conf.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (!order || p == MAP_FAILED || daemon_stats(&s0) < 0) {
		snprintf(r->error, sizeof(r->error), "upager_mmap or STATS: %s", strerror(errno));
		_exit(1);
	}
	t0 = now_ns();
	for (size_t i = 0; i < conf.pages; i++)
		page_fill(p + i * PAGE, i * PAGE);
	r->write_ns = (double)(now_ns() - t0);
	if (daemon_stats(&s1) < 0) {
		snprintf(r->error, sizeof(r->error), "STATS: %s", strerror(errno));
		_exit(1);
	}
	r->bytes_out = s1.store_bytes_out - s0.store_bytes_out;
	r->pages_out = s1.pages_out - s0.pages_out;
	/* The page-outs the write pass started end first: the page-ins are timed against a store
	 * that is not busy writing. */
	sleep_ms(1000);
	for (size_t i = 0, k = FREE; k < N_PINS; k++) {
		struct samples *l = &r->lat[k];

		if (k == PINNED &&
		    (pin_self(conf.cpu) < 0 || pin_process(daemon_pid(), conf.cpu) < 0)) {
			snprintf(r->error, sizeof(r->error), "pinning to CPU %d: %s", conf.cpu,
				 strerror(errno));
			_exit(1);
		}
		for (; i < conf.pages / 2 && l->n < conf.samples; i++) {
			char *page = p + (size_t)order[i] * PAGE;
			unsigned char vec = 0;
			uint64_t f0, f1;

			if (mincore(page, PAGE, &vec) == 0 && (vec & 1)) {
				l->skipped++;
				continue;
			}
			f0 = now_ns();
			(void)*(volatile uint64_t *)page;
			f1 = now_ns();
			if (!page_right(page, (uint64_t)order[i] * PAGE)) {
				snprintf(r->error, sizeof(r->error), "page %u read wrong",
					 order[i]);
				_exit(1);
			}
			l->us[l->n++] = (float)(f1 - f0) / 1e3f;
		}
		qsort(l->us, l->n, sizeof(float), cmp_float);
	}
	unpin_process(daemon_pid());
	unpin_self();
	upager_munmap(p, conf.size);
	r->done = true;
	_exit(0);
}

/* An upager side: a daemon of its own with its swap store on the server or in a file. */
static void upager_side(enum side s)
{
	static bool dir_made;
	struct result *r = &conf.res[s];
	char max[32];
	pid_t pid;
	int ret;

	if (s == SIDE_NBD) {
		server_start();
		setenv("UPAGER_BENCH_SWAP", conf.uri, 1);
	} else {
		snprintf(conf.swap, sizeof(conf.swap), "%s/swap", conf.dir);
		setenv("UPAGER_BENCH_SWAP", conf.swap, 1);
	}
	snprintf(max, sizeof(max), "%" PRIu64, conf.budget);
	setenv("UPAGER_BENCH_UPAGERD", conf.upagerd, 1);
	setenv("UPAGER_BENCH_MEMORY_MAX", max, 1);
	ret = dir_made ? daemon_start(self_exe(), conf.dir)
		       : daemon_start_private(self_exe(), conf.dir);
	dir_made = true;
	if (ret < 0)
		fatal("starting %s: %s", conf.upagerd, strerror(-ret));
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0)
		side_child(r);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (!r->done)
		fatal("%s: %s", s == SIDE_NBD ? "NBD" : "swap file",
		      r->error[0] ? r->error : "the child died");
	daemon_stop();
	if (s == SIDE_NBD)
		server_stop(&conf.stats[s]);
	else
		unlink(conf.swap);
}

static double mbps(uint64_t bytes, double ns)
{
	return ns > 0 ? (double)bytes / ns * 1e3 : 0;
}

static void print_row(const char *name, double ours, double ref, const char *unit,
		      const char *target, bool ok)
{
	printf("%-40s %10.1f %-5s %10.1f %-5s %7.2fx %8s  %s\n", name, ours, unit, ref, unit,
	       ref > 0 ? ours / ref : 0, target,
	       target[0] == '-' ? "info"
	       : ok		? "met"
				: "NOT MET");
}

static void print_results(void)
{
	static const char *const pin_name[N_PINS] = { "free", "pinned" };
	const struct result *n = &conf.res[SIDE_NBD], *f = &conf.res[SIDE_FILE], *fl = conf.floor;
	const struct samples *np = &n->lat[PINNED], *flp = &fl->lat[PINNED];
	double up50 = percentile(np->us, np->n, 50), fl50 = percentile(flp->us, flp->n, 50);
	double up_mbps = mbps(n->bytes_out, n->write_ns),
	       fl_mbps = mbps(conf.floor_bytes, conf.floor_write_ns);
	const struct server_stats *sn = &conf.stats[SIDE_NBD], *sf = &conf.stats[N_SIDES];
	bool lat_ok = up50 <= 1.3 * fl50, rate_ok = up_mbps >= 0.8 * fl_mbps;
	char name[64];

	printf("\npage-in (pinned: on CPU %d)                       p50 us   p99 us   samples (in "
	       "memory, skipped)\n",
	       conf.cpu);
	for (int k = 0; k < N_PINS; k++) {
		const struct samples *a = &fl->lat[k], *b = &n->lat[k], *c = &f->lat[k];

		snprintf(name, sizeof(name), "plain libnbd 4 KiB pread (the floor), %s",
			 pin_name[k]);
		printf("%-48s %8.1f %8.1f   %u\n", name, percentile(a->us, a->n, 50),
		       percentile(a->us, a->n, 99), a->n);
		snprintf(name, sizeof(name), "upager fault, swap store on NBD, %s", pin_name[k]);
		printf("%-48s %8.1f %8.1f   %u (%u)\n", name, percentile(b->us, b->n, 50),
		       percentile(b->us, b->n, 99), b->n, b->skipped);
		snprintf(name, sizeof(name), "upager fault, local swap file, %s", pin_name[k]);
		printf("%-48s %8.1f %8.1f   %u (%u)\n", name, percentile(c->us, c->n, 50),
		       percentile(c->us, c->n, 99), c->n, c->skipped);
	}
	printf("\npage-out                                 MB/s     MiB     writes   mean write "
	       "KiB\n");
	printf("%-40s %8.1f %7.1f %10" PRIu64 " %8.1f\n", "plain libnbd writer, 256 KiB x 16",
	       fl_mbps, (double)conf.floor_bytes / MIB, sf->writes,
	       sf->writes ? sf->write_kib / (double)sf->writes : 0);
	printf("%-40s %8.1f %7.1f %10" PRIu64 " %8.1f\n", "upager page-out to NBD", up_mbps,
	       (double)n->bytes_out / MIB, sn->writes,
	       sn->writes ? sn->write_kib / (double)sn->writes : 0);
	printf("%-40s %8.1f %7.1f\n", "upager page-out to the swap file",
	       mbps(f->bytes_out, f->write_ns), (double)f->bytes_out / MIB);
	printf("\n%-40s %16s %16s %8s %8s  %s\n", "", "upager", "reference", "ratio", "target",
	       "result");
	print_row("fault from NBD / libnbd pread, p50 pin", up50, fl50, "us", "<= 1.3x", lat_ok);
	print_row("fault from NBD / libnbd pread, p99 pin", percentile(np->us, np->n, 99),
		  percentile(flp->us, flp->n, 99), "us", "-", true);
	print_row("fault from NBD / libnbd pread, p50 free",
		  percentile(n->lat[FREE].us, n->lat[FREE].n, 50),
		  percentile(fl->lat[FREE].us, fl->lat[FREE].n, 50), "us", "-", true);
	print_row("fault from NBD / from swap file, p50 pin", up50,
		  percentile(f->lat[PINNED].us, f->lat[PINNED].n, 50), "us", "-", true);
	print_row("page-out to NBD / libnbd writer", up_mbps, fl_mbps, "MB/s", ">= 0.8x", rate_ok);
	printf("\nnotes:\n  the upager sides wrote %.0f MiB of MAP_PRIVATE anonymous memory with "
	       "--memory-max %.0f MiB: %" PRIu64 " pages out to NBD over the write pass, %" PRIu64
	       " to the swap file; every word read was checked\n",
	       (double)conf.size / MIB, (double)conf.budget / MIB, n->pages_out, f->pages_out);
	wake_note(conf.cpu);
	printf("%d of 2 targets met\n", lat_ok + rate_ok);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [--quick] [--tcp] [--upagerd PATH] [--budget SIZE] [--samples N]\n"
		"       [--cpu N]\n"
		"The swap store on an NBD server (an nbdkit of its own) next to a plain libnbd\n"
		"client of the same server and to a local swap file: the latency of a fault that\n"
		"reads a page back, and page-out throughput.\n\n"
		"      --quick           budget 16 MiB: a smoke run\n"
		"      --tcp             the server on TCP loopback (default a Unix socket)\n"
		"      --upagerd PATH    the daemon to start (default $UPAGERD)\n"
		"      --budget SIZE     upagerd --memory-max (default $UPAGER_BENCH_BUDGET or "
		"64M);\n"
		"                        the memory is 4x it\n"
		"      --samples N       page-in latencies per side, free and pinned each "
		"(default\n"
		"                        4096)\n"
		"      --cpu N           the CPU of the pinned figures (default the last one)\n"
		"Needs root; needs nbdkit.\n");
}

static void parse_args(int argc, char **argv)
{
	const char *budget = NULL, *samples = "4096", *cpu = NULL;
	bool quick;
	const struct option_value opts[] = {
		{ "--budget", &budget }, { "--samples", &samples },
		{ "--cpu", &cpu },	 { "--upagerd", &conf.upagerd },
		{ NULL, NULL },
	};

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--tcp") == 0) {
			conf.tcp = true;
			memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
	options_parse(argc, argv, opts, usage);
	conf.upagerd = daemon_args(argc, argv, &quick);
	conf.budget = size_option(PROG, budget, "UPAGER_BENCH_BUDGET", quick ? 16 * MIB : 64 * MIB);
	conf.size = 4 * conf.budget;
	conf.pages = conf.size / PAGE;
	conf.samples = (unsigned)atoi(samples);
	conf.cpu = cpu ? atoi(cpu) : cpu_pick();
	if (conf.pages < 4 || conf.pages > UINT32_MAX || conf.samples < 1 ||
	    conf.samples > MAX_SAMPLES) {
		fprintf(stderr, PROG ": the memory takes 2 to 2^32 pages, --samples 1 to %d\n",
			MAX_SAMPLES);
		exit(2);
	}
}

/* Run as daemon.c's upagerd: the real one, with the budget and the side's swap store. */
static int exec_daemon(const char *socket_path)
{
	const char *bin = getenv("UPAGER_BENCH_UPAGERD"), *max = getenv("UPAGER_BENCH_MEMORY_MAX");
	const char *swap = getenv("UPAGER_BENCH_SWAP");

	if (!bin || !max || !swap)
		return 127;
	execl(bin, "upagerd", "--socket", socket_path, "--memory-max", max, "--swap", swap,
	      (char *)NULL);
	return 127;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = fatal_on_signal };
	size_t shared = (N_SIDES + 1) * sizeof(struct result);

	if (argc == 3 && strcmp(argv[1], "--socket") == 0)
		return exec_daemon(argv[2]);
	parse_args(argc, argv);
	fatal_init(PROG, conf.dir, cleanup);
	if (!self_exe())
		fatal("cannot find /proc/self/exe");
	conf.res = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (conf.res == MAP_FAILED)
		fatal("mmap: %s", strerror(errno));
	memset(conf.res, 0, shared);
	conf.floor = conf.res + N_SIDES;
	snprintf(conf.sock, sizeof(conf.sock), "/tmp/upager-bench-nbd-%d.sock", (int)getpid());
	snprintf(conf.pidfile, sizeof(conf.pidfile), "/tmp/upager-bench-nbd-%d.pid", (int)getpid());
	snprintf(conf.statsfile, sizeof(conf.statsfile), "/tmp/upager-bench-nbd-%d.stats",
		 (int)getpid());
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	atexit(cleanup);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf(PROG
	       ": budget %.0f MiB, anonymous memory %.0f MiB (4x), nbdkit memory plugin on %s, "
	       "%u page-in samples\n",
	       (double)conf.budget / MIB, (double)conf.size / MIB,
	       conf.tcp ? "TCP loopback" : "a Unix socket", conf.samples);
	alarm(RUN_ALARM_S);
	upager_side(SIDE_NBD);
	printf("  upager, swap store on NBD: done\n");
	upager_side(SIDE_FILE);
	printf("  upager, local swap file: done\n");
	floor_side();
	printf("  plain libnbd client: done\n");
	alarm(0);
	print_results();
	unlink(conf.statsfile);
	unlink(conf.pidfile);
	return 0;
}
