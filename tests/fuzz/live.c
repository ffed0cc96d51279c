// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The live fuzzer: a real upagerd on a temporary socket gets, over many connections, protocol
 * messages built from random fields, mutated, or plain random bytes, each with random descriptors
 * attached (up to four: memfds, pipes, sockets, /dev/null, files opened every way, eventfds, userfaultfds,
 * directories). Rounds run in children that exit, or are killed, with their connections open.
 * Every datagram the daemon sends back must decode. At the end the daemon must be alive, hold no
 * more descriptors than before, and still serve a normal client's file and anonymous mappings
 * byte for byte; the harness then checks that it exits cleanly on SIGTERM.
 *
 * It runs for UPAGER_FUZZ_SECONDS (10 by default); a failure prints the seed of its round, and
 * UPAGER_FUZZ_SEED replays a run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/uffd.h"
#include "harness.h"
#include "proto/codec.h"
#include "tests/unit/codec-valid.h"
#include "upager.h"

TestSuite(live, .init = harness_start, .fini = harness_stop);

#define ROUND_MS 400
#define MAX_MSGS_PER_ROUND 3000
#define MAX_CONNS 6
#define POOL_MAX 24
#define ARENA_PAGES 64
#define FD_SLACK 2 /* the daemon's descriptors may differ by this much after the run */

/* A child exits with one of these when the daemon broke a rule it can see. */
enum {
	CHILD_BAD_REPLY = 3,
	CHILD_SETUP = 4,
};

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What a round has to play with. */
struct round {
	int pool[POOL_MAX];
	size_t n_pool;
	int conn[MAX_CONNS];
	uint64_t object_id[MAX_CONNS]; /* the last one a connection was given */
	int channel; /* the other end of a socket pair some CONTROL may have attached, or -1 */
	uint8_t *arena; /* pages the child never touches: the daemon may register them */
	uint32_t seq;
	unsigned long sent, replies;
};

static void pool_add(struct round *r, int fd)
{
	if (fd >= 0 && r->n_pool < POOL_MAX)
		r->pool[r->n_pool++] = fd;
}

static void make_pool(struct round *r, const char *file)
{
	static const int file_modes[] = { O_RDONLY, O_RDWR, O_WRONLY, O_PATH };
	int p[2], memfd;

	memfd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd >= 0 && ftruncate(memfd, (off_t)(below(4) * PAGE)) == 0 && below(2))
		fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
	pool_add(r, memfd);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
		pool_add(r, p[0]);
		pool_add(r, p[1]);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p) == 0) {
		pool_add(r, p[0]);
		r->channel = p[1];
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0) {
		pool_add(r, p[0]);
		pool_add(r, p[1]);
	}
	pool_add(r, open("/dev/null", O_RDWR | O_CLOEXEC));
	pool_add(r, open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	for (size_t i = 0; i < sizeof(file_modes) / sizeof(file_modes[0]); i++)
		pool_add(r, open(file, file_modes[i] | O_CLOEXEC));
	pool_add(r, eventfd(0, EFD_CLOEXEC));
	pool_add(r, epoll_create1(EPOLL_CLOEXEC));
	pool_add(r, (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
	pool_add(r, r->conn[0]);
}

/* A field value: mostly one that means something to the daemon. */
static uint64_t value(const struct round *r)
{
	switch (below(10)) {
	case 0:
		return 0;
	case 1:
		return 1 + below(3);
	case 2:
		return PAGE << below(6);
	case 3:
	case 4:
		return (uintptr_t)r->arena + below(ARENA_PAGES) * PAGE;
	case 5:
		return ~0ull - below(PAGE);
	case 6:
		return rnd() & 0xffffffffull;
	case 7:
		return MAP_SHARED | (below(2) ? MAP_POPULATE | MAP_NONBLOCK : 0);
	case 8:
		return PROT_READ | (below(2) ? PROT_WRITE : 0);
	default:
		return rnd();
	}
}

/* A message of a random opcode with random fields, valid as far as the codec goes, mostly. */
static int make_msg(struct round *r, size_t c, uint8_t *buf)
{
	struct upager_msg m;
	uint64_t words[sizeof(m.u) / 8];

	for (size_t i = 0; i < sizeof(words) / 8; i++)
		words[i] = value(r);
	memcpy(&m.u, words, sizeof(words));
	m.op = (uint16_t)(below(8) ? 1 + below(_UPAGER_OP_MAX - 1) : rnd());
	if (!below(20))
		m.op |= UPAGER_OP_REPLY;
	m.version = below(20) ? UPAGER_PROTO_VERSION : (uint16_t)rnd();
	m.seq = ++r->seq;
	m.status = (int32_t)-below(40);
	if (below(5))
		codec_make_valid(&m);
	if (m.op == UPAGER_OP_HELLO) {
		m.u.hello.flags = 1u << below(3);
		m.u.hello.token_addr = (uintptr_t)r->arena + below(ARENA_PAGES) * PAGE;
	}
	if (m.op == UPAGER_OP_REGION_ADD && below(2)) {
		m.u.region_add.object_id = r->object_id[c];
		m.u.region_add.length = (1 + below(4)) * PAGE;
	}
	if (m.op == (UPAGER_OP_LIST | UPAGER_OP_REPLY))
		m.u.list_reply.entries_len = 0;
	if (m.op == (UPAGER_OP_STATS | UPAGER_OP_REPLY))
		m.u.stats_reply.store_where_len = 0;
	return upager_msg_encode(buf, UPAGER_MSG_MAX, &m);
}

/* Flip, overwrite, cut or extend a few bytes of a message. */
static size_t mutate(uint8_t *buf, size_t len, size_t size)
{
	for (uint64_t k = 1 + below(4); k > 0; k--) {
		switch (below(5)) {
		case 0:
			if (len)
				buf[below(len)] ^= (uint8_t)(1u << below(8));
			break;
		case 1:
			if (len)
				buf[below(len)] = (uint8_t)rnd();
			break;
		case 2:
			len = below(len + 1);
			break;
		case 3: {
			size_t more = below(64);

			for (size_t i = 0; i < more && len < size; i++)
				buf[len++] = (uint8_t)rnd();
			break;
		}
		default:
			if (len >=
			    16) /* a len field that agrees with the datagram: the body is read */
				memcpy(buf + 12, &(uint32_t){ (uint32_t)len }, 4);
			break;
		}
	}
	return len;
}

static int connect_daemon(void)
{
	int fd = harness_connect_raw();

	if (fd >= 0)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Take what the daemon sent on connection @c: each datagram must decode. */
static void drain(struct round *r, size_t c, int wait_ms)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct pollfd p = { .fd = r->conn[c], .events = POLLIN };

	while (poll(&p, 1, wait_ms) == 1) {
		int fds[FDMSG_MAX_FDS];
		size_t n_fds;
		struct upager_msg m;
		ssize_t n = fdmsg_recv(r->conn[c], buf, sizeof(buf), fds, &n_fds);

		fdmsg_close_fds(fds, n_fds);
		if (n == -EAGAIN) /* woken with nothing to read: the datagram went with a close */
			continue;
		if (n == 0 || n == -ECONNRESET) {
			/* Closed by the daemon (a bad message): a fresh connection takes its place. */
			close(r->conn[c]);
			r->conn[c] = connect_daemon();
			return;
		}
		if (n < 0 || upager_msg_decode(buf, (size_t)n, &m) < 0 ||
		    !(m.op & UPAGER_OP_REPLY)) {
			fprintf(stderr, "the daemon sent a datagram that does not decode: %zd\n",
				n);
			_exit(CHILD_BAD_REPLY);
		}
		r->replies++;
		if (m.op == (UPAGER_OP_OBJECT_OPEN | UPAGER_OP_REPLY) && m.status == 0)
			r->object_id[c] = m.u.object_open_reply.object_id;
		wait_ms = 0;
	}
}

/* One message to connection @c (or to the growth channel) with 0 to 4 random descriptors. */
static void send_one(struct round *r, size_t c)
{
	static uint8_t buf[UPAGER_MSG_MAX + 4096];
	int fds[FDMSG_MAX_FDS];
	size_t n_fds = below(3) ? below(2) : below(FDMSG_MAX_FDS + 1), len;
	int n;

	if (!below(16)) {
		len = below(2) ? below(64) : below(sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
	} else {
		n = make_msg(r, c, buf);
		len = n > 0 ? (size_t)n : 0;
		if (!below(6))
			len = mutate(buf, len, sizeof(buf));
	}
	for (size_t i = 0; i < n_fds; i++)
		fds[i] = r->pool[below(r->n_pool)];
	(void)fdmsg_send(!below(10) ? r->channel : r->conn[c], buf, len, fds, n_fds);
	r->sent++;
}

/* A connection that first says HELLO, as a client, a forked child or upagerctl; or not. */
static void open_conn(struct round *r, size_t c)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	struct upager_msg m = { .op = UPAGER_OP_HELLO, .seq = ++r->seq };
	int uffd = -1, n;

	r->conn[c] = connect_daemon();
	r->object_id[c] = 0;
	if (r->conn[c] < 0 || !below(5))
		return;
	codec_make_valid(&m);
	m.u.hello.flags = 1u << below(3);
	m.u.hello.token_addr = (uintptr_t)r->arena + below(ARENA_PAGES) * PAGE;
	if (m.u.hello.flags == UPAGER_HELLO_UFFD)
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	n = upager_msg_encode(buf, sizeof(buf), &m);
	(void)fdmsg_send(r->conn[c], buf, (size_t)n, &uffd, uffd >= 0);
	if (uffd >= 0)
		close(uffd);
	drain(r, c, 50);
}

static void run_round(uint64_t seed, const char *file)
{
	struct round r = { .channel = -1 };
	long end = now_ms() + ROUND_MS;
	size_t n_conns = 1 + below(MAX_CONNS);

	rng = seed | 1;
	signal(SIGPIPE, SIG_IGN);
	r.arena = mmap(NULL, ARENA_PAGES * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r.arena == MAP_FAILED)
		_exit(CHILD_SETUP);
	for (size_t c = 0; c < n_conns; c++)
		open_conn(&r, c);
	make_pool(&r, file);
	for (int i = 0; i < MAX_MSGS_PER_ROUND && now_ms() < end; i++) {
		size_t c = below(n_conns);

		if (r.conn[c] < 0 || !below(50)) {
			close(r.conn[c]);
			open_conn(&r, c);
			continue;
		}
		send_one(&r, c);
		drain(&r, c, below(4) ? 0 : 5);
	}
	/* Half the children leave with their connections open, for the kernel to close. */
	if (below(2))
		for (size_t c = 0; c < n_conns; c++)
			close(r.conn[c]);
	printf("round %#llx: %lu messages, %lu replies\n", (unsigned long long)seed, r.sent,
	       r.replies);
	fflush(stdout);
	_exit(0);
}

struct fd_goal {
	pid_t pid;
	int most;
};

static bool fds_back(void *arg)
{
	struct fd_goal *g = arg;

	return harness_count_fds(g->pid) <= g->most;
}

/* A normal client after the storm: a file mapping and an anonymous one, checked byte for byte. */
static void check_normal_client(void)
{
	const size_t len = 16 * PAGE;
	char path[400];
	int fd = make_pattern_file("after", len, path);
	uint64_t *m = upager_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), word;
	char *anon;
	struct upager_msg st;

	cr_assert_neq(m, MAP_FAILED, "upager_mmap after fuzzing: %m");
	for (size_t i = 0; i < len / 8; i++)
		cr_assert_eq(m[i], pattern_at(i * 8), "word %zu of the file", i);
	m[3 * PAGE / 8] = 0x1122334455667788ull;
	cr_assert_eq(upager_msync(m, len, MS_SYNC), 0, "%m");
	cr_assert_eq(pread(fd, &word, 8, 3 * PAGE), 8);
	cr_assert_eq(word, 0x1122334455667788ull, "the write did not reach the file");
	cr_assert_eq(upager_munmap(m, len), 0, "%m");

	anon = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			   0);
	cr_assert_neq(anon, MAP_FAILED, "%m");
	for (size_t i = 0; i < 4 * PAGE; i += 512)
		cr_assert_eq(anon[i], 0, "anonymous byte %zu", i);
	anon[PAGE + 1] = 42;
	cr_assert_eq(anon[PAGE + 1], 42);
	cr_assert_eq(upager_munmap(anon, 4 * PAGE), 0, "%m");
	close(fd);

	cr_assert_eq(harness_stats(&st), 0);
	cr_assert_eq(st.u.stats_reply.regions, 0, "%u regions left", st.u.stats_reply.regions);
}

Test(live, daemon_survives_mutated_messages_with_random_descriptors, .timeout = 0)
{
	const char *env = getenv("UPAGER_FUZZ_SECONDS"), *seed_env = getenv("UPAGER_FUZZ_SEED");
	long seconds = env ? atol(env) : 10, end = now_ms() + seconds * 1000;
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	pid_t daemon = harness_daemon_pid();
	struct fd_goal goal = { .pid = daemon };
	char file[400];
	int rounds = 0, fds_before;

	close(make_pattern_file("fuzz", 4 * PAGE, file));
	fds_before = harness_count_fds(daemon);
	printf("seed %#llx, %ld s\n", (unsigned long long)seed, seconds);
	while (now_ms() < end) {
		uint64_t round_seed = seed + (uint64_t)rounds++ * 0x9e3779b97f4a7c15ull;
		int status;
		pid_t p;

		fflush(stdout);
		p = fork();
		cr_assert(p >= 0);
		if (p == 0) {
			alarm(10);
			run_round(round_seed, file);
		}
		cr_assert_eq(waitpid(p, &status, 0), p);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "round %#llx ended with wait status %#x (UPAGER_FUZZ_SEED=%#llx)",
			  (unsigned long long)round_seed, status, (unsigned long long)seed);
		cr_assert_eq(
			waitpid(daemon, &status, WNOHANG), 0,
			"upagerd died in round %#llx: wait status %#x (UPAGER_FUZZ_SEED=%#llx)",
			(unsigned long long)round_seed, status, (unsigned long long)seed);
	}
	goal.most = fds_before + FD_SLACK;
	if (!wait_until(fds_back, &goal, 5000)) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd),
			 "ls -l /proc/%d/fd | sed 's/.*-> //; s/[0-9]\\+/N/g' | sort | uniq -c >&2",
			 (int)daemon);
		(void)!system(cmd);
		cr_assert_fail("upagerd holds %d descriptors, %d before", harness_count_fds(daemon),
			       fds_before);
	}
	printf("%d rounds; upagerd holds %d descriptors, %d before\n", rounds,
	       harness_count_fds(daemon), fds_before);
	check_normal_client();
}
