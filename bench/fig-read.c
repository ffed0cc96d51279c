// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Figures 2 to 4 and 8: sequential reads of one byte per page. Figure 2 reads with every cache
 * cold, next to the kernel's mmap; figure 3 with the kernel's page cache warm and the daemon's
 * cold, next to the floor pread()ing 64 KiB per fault; figure 4 through a second mapping while a
 * first keeps the daemon's cache warm, next to the floor copying 64 KiB per fault from its memory.
 * Figure 8 has two processes read two files at once, next to one process alone. Figures 2 to 4 are
 * taken again with the client and the daemon (or the floor's handler) pinned to one CPU, for
 * information.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <upager.h>

#include "bench.h"

enum seq_kind {
	SEQ_COLD, /* every cache cold; the reference is the kernel's mmap */
	SEQ_PAGE_CACHE, /* the kernel's page cache warm, the daemon's cold; the floor pread()s */
	SEQ_SECOND, /* the daemon's cache warm; the floor copies from its memory */
};

struct seq_spec {
	int fig;
	const char *name, *ref_name, *what;
	enum seq_kind kind;
	double target;
};

/* Put the caches in the state the figure needs; false if that failed. */
static bool seq_prepare(const struct seq_spec *s, int fd)
{
	bool ready = true;

	switch (s->kind) {
	case SEQ_COLD:
		return make_cold(&fd, &cfg.big, 1);
	case SEQ_PAGE_CACHE:
		if (daemon_wait_empty(5000) < 0) {
			note("figure %d is NOT daemon-cold: the daemon still cached pages", s->fig);
			ready = false;
		}
		if (file_read_all(fd, cfg.big) < 0)
			ready = false;
		return ready;
	default:
		return true;
	}
}

static void seq_figure(const struct seq_spec *s)
{
	int fd = open_ro(cfg.big_path), cpu = cpu_pick();
	int src = s->kind == SEQ_PAGE_CACHE ? FLOOR_PREAD : FLOOR_MEMORY;
	double ours[2][MAX_REPEAT], ref[2][MAX_REPEAT];
	struct daemon_use use[2] = { 0 };
	bool ok = true, cold = true;
	char *warm = NULL, name[48], what[96];

	progress("figure %d: sequential read of %zu MiB, %s", s->fig, cfg.big / MIB, s->what);
	if (s->kind == SEQ_SECOND) {
		warm = upager_warm(fd, cfg.big, &ok);
		if (warm == MAP_FAILED) {
			warm = NULL;
			add_error_row(s->name, "upager_mmap", -errno);
			goto out;
		}
	}
	for (int pinned = 0; pinned < 2; pinned++) {
		int c = pinned ? cpu : -1;

		for (unsigned i = 0; i < cfg.repeat; i++) {
			int64_t t;

			cold &= seq_prepare(s, fd);
			t = upager_seq(fd, cfg.big, c, &ok, &use[pinned]);
			if (t < 0) {
				add_error_row(s->name, "upager_mmap", (int)t);
				goto out;
			}
			ours[pinned][i] = (double)t;
			if (s->kind == SEQ_COLD && pinned) {
				/* The kernel's own read involves no other process. */
				ref[1][i] = ref[0][i];
				continue;
			}
			cold &= seq_prepare(s, fd);
			if (s->kind == SEQ_COLD)
				t = kernel_seq(fd, cfg.big, &ok);
			else
				t = floor_seq(fd, cfg.big, 64 * KIB, src, c, &ok);
			if (t < 0) {
				add_error_row(s->name, s->kind == SEQ_COLD ? "mmap" : "the floor",
					      (int)t);
				goto out;
			}
			ref[pinned][i] = (double)t;
		}
	}
	add_rate_row(s->name, ours[0], cfg.big, ref[0], cfg.big, s->ref_name, '>', s->target, ok,
		     cold);
	snprintf(name, sizeof(name), "%d  the same, pinned CPU %d", s->fig, cpu);
	add_rate_row(name, ours[1], cfg.big, ref[1], cfg.big, s->ref_name, 0, 0, ok, cold);
	snprintf(what, sizeof(what), "figure %d (unpinned)", s->fig);
	daemon_use_note(what, &use[0], cfg.big);
	snprintf(what, sizeof(what), "figure %d (pinned)", s->fig);
	daemon_use_note(what, &use[1], cfg.big);
out:
	if (warm)
		upager_munmap(warm, cfg.big);
	close(fd);
}

/** fig_seq_cold() - figure 2 */
void fig_seq_cold(void)
{
	static const struct seq_spec s = {
		.fig = 2,
		.name = "2 seq read, cold",
		.ref_name = "kernel",
		.what = "cold caches",
		.kind = SEQ_COLD,
		.target = 1.0,
	};

	seq_figure(&s);
}

/** fig_seq_page_cache() - figure 3 */
void fig_seq_page_cache(void)
{
	static const struct seq_spec s = {
		.fig = 3,
		.name = "3 seq read, page cache warm",
		.ref_name = "floor 64K pread",
		.what = "kernel page cache warm, daemon cache cold",
		.kind = SEQ_PAGE_CACHE,
		.target = 1.2,
	};

	seq_figure(&s);
}

/** fig_seq_second() - figure 4 */
void fig_seq_second(void)
{
	static const struct seq_spec s = {
		.fig = 4,
		.name = "4 seq read, 2nd mapping",
		.ref_name = "floor 64K memory",
		.what = "second mapping, daemon cache warm",
		.kind = SEQ_SECOND,
		.target = 2.0,
	};

	seq_figure(&s);
}

/* ---- figure 8 ---- */

struct reader_result {
	int32_t status;
	uint32_t ok;
	uint64_t t0, t1;
};

/**
 * reader_main() - the helper of figure 8: when told "G" on @sock, map @path through upager (with
 * the kernel's mmap(2) if @kernel), read a byte per page, and send a struct reader_result back
 *
 * Return: the process's exit code.
 */
int reader_main(int sock, const char *path, bool kernel)
{
	struct reader_result res = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char go;
	void *p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1 || fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0)
		return 1;
	alarm(1800);
	/* Connect to the daemon now, so that the timed part is what reading a file costs. */
	if (!kernel) {
		p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
				0);
		if (p == MAP_FAILED)
			res.status = -errno;
		else
			upager_munmap(p, PAGE);
	}
	if (write(sock, "R", 1) != 1 || read(sock, &go, 1) != 1)
		return 1;
	if (res.status == 0) {
		size_t len = (size_t)st.st_size;

		res.t0 = now_ns();
		if (kernel)
			p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		else
			p = upager_mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			res.status = -errno;
		} else {
			res.ok = touch_pages(p, len) == expected_sum(0, len / PAGE);
			res.t1 = now_ns();
			if (kernel)
				munmap(p, len);
			else
				upager_munmap(p, len);
		}
	}
	return write(sock, &res, sizeof(res)) == sizeof(res) ? 0 : 1;
}

/*
 * Run @n readers of the pair files at once, caches cold: through upager, or the kernel's mmap if
 * @kernel. Return the wall time from the first start to the last end, or a negative errno.
 */
static int64_t readers_run(int n, bool kernel, bool *ok, bool *cold, struct daemon_use *use)
{
	int socks[2] = { -1, -1 }, fds[2] = { -1, -1 };
	size_t sizes[2] = { cfg.pair, cfg.pair };
	pid_t pids[2] = { 0, 0 };
	struct reader_result res[2];
	uint64_t first = UINT64_MAX, last = 0;
	struct daemon_use snap;
	int64_t ret = 0;

	for (int i = 0; i < n; i++) {
		int sv[2];

		fds[i] = open_ro(cfg.pair_path[i]);
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
			ret = -errno;
			goto out;
		}
		fcntl(sv[1], F_SETFD, 0);
		pids[i] = spawn_helper(kernel ? "--kernel-reader" : "--reader", sv[1],
				       cfg.pair_path[i]);
		close(sv[1]);
		socks[i] = sv[0];
		if (pids[i] < 0) {
			ret = pids[i];
			pids[i] = 0;
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		struct pollfd pfd = { .fd = socks[i], .events = POLLIN };
		char c;

		if (poll(&pfd, 1, 30000) != 1 || read(socks[i], &c, 1) != 1) {
			ret = -ETIMEDOUT;
			goto out;
		}
	}
	*cold &= make_cold(fds, sizes, n);
	daemon_use_begin(use, &snap);
	for (int i = 0; i < n; i++)
		if (write(socks[i], "G", 1) != 1) {
			ret = -EPIPE;
			goto out;
		}
	for (int i = 0; i < n; i++) {
		if (read(socks[i], &res[i], sizeof(res[i])) != sizeof(res[i])) {
			ret = -EIO;
			goto out;
		}
		if (res[i].status < 0) {
			ret = res[i].status;
			goto out;
		}
		*ok &= res[i].ok;
		first = res[i].t0 < first ? res[i].t0 : first;
		last = res[i].t1 > last ? res[i].t1 : last;
	}
	ret = (int64_t)(last - first);
	daemon_use_end(use, &snap, (uint64_t)ret);
out:
	for (int i = 0; i < n; i++) {
		if (socks[i] >= 0)
			close(socks[i]);
		if (pids[i] > 0)
			wait_helper(pids[i], 10000);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	return ret;
}

/** fig_two_clients() - figure 8 */
void fig_two_clients(void)
{
	const char *name = "8 two clients, aggregate";
	double one[MAX_REPEAT], two[MAX_REPEAT], kone[MAX_REPEAT], ktwo[MAX_REPEAT];
	struct daemon_use use[2] = { 0 };
	bool ok = true, cold = true;

	progress("figure 8: two processes reading two %zu MiB files at once, cold caches",
		 cfg.pair / MIB);
	for (unsigned i = 0; i < cfg.repeat; i++) {
		double *out[4] = { &one[i], &two[i], &kone[i], &ktwo[i] };

		for (int k = 0; k < 4; k++) {
			int readers = 1 + k % 2;
			bool kernel = k >= 2;
			int64_t t = readers_run(readers, kernel, &ok, &cold,
						kernel ? NULL : &use[k % 2]);

			if (t < 0) {
				add_error_row(name, readers == 2 ? "two readers" : "one reader",
					      (int)t);
				return;
			}
			*out[k] = (double)t;
		}
	}
	add_rate_row(name, two, 2 * cfg.pair, one, cfg.pair, "one client", '>', 1.6, ok, cold);
	add_rate_row("8  kernel mmap, two readers", ktwo, 2 * cfg.pair, kone, cfg.pair,
		     "one reader", 0, 0, ok, cold);
	daemon_use_note("figure 8, one client", &use[0], cfg.pair);
	daemon_use_note("figure 8, two clients (both files)", &use[1], 2 * cfg.pair);
}
