// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A daemon that dies with no fd store: the client's faults wait, a new upagerd on the same socket
 * takes the client back with every byte it had (also shared file pages written and not written
 * back), UPAGER_DAEMON_TIMEOUT bounds the wait with SIGBUS, and a cache another user forges is
 * refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdmsg.h"
#include "common/uffd.h"
#include "harness.h"
#include "upager.h"

/* The clients hand a new daemon what it needs (resume): no keeper of descriptors takes over. */
static void start_without_keeper(void)
{
	static const char *const args[] = { "--no-keeper", NULL };

	harness_start_args(args);
}

TestSuite(reconnect, .init = start_without_keeper, .fini = harness_stop, .timeout = 60);

#define FILE_PAGES 16
#define ANON_PAGES 8

struct toucher {
	char *priv, *file, *shared;
	volatile int done;
	uint64_t file_word, shared_word;
};

/* Touches a page of each mapping that no one touched before the daemon died. */
static void *touch_untouched(void *arg)
{
	struct toucher *t = arg;

	t->priv[6 * PAGE] = 'x';
	t->file_word = *(volatile uint64_t *)(t->file + 10 * PAGE);
	t->shared_word = *(volatile uint64_t *)(t->shared + 3 * PAGE + 8);
	t->done = 1;
	return NULL;
}

static bool touched(void *arg)
{
	return ((struct toucher *)arg)->done;
}

static uint64_t word_of(int fd, off_t off)
{
	uint64_t v = 0;

	cr_assert_eq(pread(fd, &v, sizeof(v), off), (ssize_t)sizeof(v));
	return v;
}

Test(reconnect, a_new_daemon_takes_the_client_back_with_every_byte)
{
	struct toucher t = { 0 };
	pthread_t th;
	int fd = make_pattern_file("data", FILE_PAGES * PAGE, NULL);

	t.priv = upager_mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t.file = upager_mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	t.shared = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	cr_assert(t.priv != MAP_FAILED && t.file != MAP_FAILED && t.shared != MAP_FAILED);
	for (int i = 0; i < 4; i++) {
		memset(t.priv + i * PAGE, 'A' + i, PAGE);
		*(uint64_t *)(t.file + i * PAGE) = 0xdead0000 + (uint64_t)i;
	}
	cr_assert_eq(*(volatile uint64_t *)(t.file + 4 * PAGE), pattern_at(4 * PAGE));
	memset(t.shared, 's', 2 * PAGE);

	harness_daemon_kill();
	cr_assert_eq(pthread_create(&th, NULL, touch_untouched, &t), 0);
	cr_assert_not(wait_until(touched, &t, 300), "a fault with no daemon was served");
	harness_daemon_restart();
	cr_assert(wait_until(touched, &t, 5000),
		  "the fault waits still after a new daemon started");
	pthread_join(th, NULL);

	for (size_t i = 0; i < ANON_PAGES * PAGE; i++) {
		char want = i < 4 * PAGE ? (char)('A' + i / PAGE) : i == 6 * PAGE ? 'x' : 0;

		cr_assert_eq(t.priv[i], want, "private anonymous byte %zu", i);
	}
	for (size_t off = 0; off < FILE_PAGES * PAGE; off += 8) {
		uint64_t want = off % PAGE == 0 && off < 4 * PAGE ? 0xdead0000 + off / PAGE
								  : pattern_at(off);

		cr_assert_eq(*(uint64_t *)(t.file + off), want, "file byte %zu", off);
	}
	cr_assert_eq(t.file_word, pattern_at(10 * PAGE));
	for (size_t i = 0; i < 4 * PAGE; i++)
		cr_assert_eq(t.shared[i], i < 2 * PAGE ? 's' : 0, "shared anonymous byte %zu", i);
	cr_assert_eq(t.shared_word, 0);

	/* The writes were never written back; the new daemon writes them. */
	cr_assert_eq(word_of(fd, 0), pattern_at(0));
	cr_assert_eq(upager_msync(t.file, FILE_PAGES * PAGE, MS_SYNC), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(word_of(fd, i * PAGE), 0xdead0000 + (uint64_t)i, "file page %d", i);
	cr_assert_eq(word_of(fd, 4 * PAGE), pattern_at(4 * PAGE));
	close(fd);
}

Test(reconnect, a_bound_on_the_wait_turns_a_fault_into_sigbus)
{
	harness_bounded_wait();
}

static int send_recv(int sock, struct upager_msg *req, const int *fds, size_t n_fds)
{
	static uint8_t buf[UPAGER_MSG_MAX];
	int rfds[FDMSG_MAX_FDS];
	size_t n_rfds = 0;
	struct upager_msg rep;
	int len = upager_msg_encode(buf, sizeof(buf), req);
	ssize_t n;

	if (len < 0 || fdmsg_send(sock, buf, (size_t)len, fds, n_fds) < 0)
		return 90;
	n = fdmsg_recv(sock, buf, sizeof(buf), rfds, &n_rfds);
	fdmsg_close_fds(rfds, n_rfds);
	if (n <= 0 || upager_msg_decode(buf, (size_t)n, &rep) < 0)
		return 91;
	return rep.status;
}

/*
 * Resume "a shared mapping" of the file @fd (of @size bytes) with @memfd as its cache, on a new
 * connection that says HELLO with UPAGER_HELLO_RESUME: the status of RESUME (a negative errno, or
 * 0 if the daemon took the memfd as the file's cache); 9x if the exchange itself failed.
 */
static int resume_with(int fd, int memfd, off_t size)
{
	struct upager_msg req = { .op = UPAGER_OP_HELLO, .seq = 1 };
	int uffd, sock, fds[2];
	void *token, *p;

	p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, memfd, 0);
	token = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	sock = harness_connect_raw();
	if (p == MAP_FAILED || token == MAP_FAILED || uffd < 0 || sock < 0)
		return 95;

	req.u.hello.version_min = req.u.hello.version_max = 1;
	req.u.hello.flags = UPAGER_HELLO_RESUME;
	req.u.hello.token_addr = (uintptr_t)token;
	if (send_recv(sock, &req, &uffd, 1) != 0)
		return 94;
	memset(&req, 0, sizeof(req));
	req.op = UPAGER_OP_RESUME;
	req.seq = 2;
	req.u.resume.kind = UPAGER_OBJECT_FILE;
	req.u.resume.prot = PROT_READ;
	req.u.resume.flags = MAP_SHARED;
	req.u.resume.addr = (uintptr_t)p;
	req.u.resume.length = (uint64_t)size;
	fds[0] = fd;
	fds[1] = memfd;
	return send_recv(sock, &req, fds, 2);
}

/* A child's exit status for the status @ret of its RESUME: 0 if refused with EBADF, 1 if taken. */
static int refused_exit(int ret)
{
	return ret == -EBADF ? 0 : ret == 0 ? 1 : ret < 0 ? -ret : ret;
}

/*
 * As user 65534: resume "a mapping" of @path, which it may only read, handing a memfd of its own
 * named and sealed as the daemon's cache of that file, full of its own bytes. Exits 0 if the
 * daemon refuses that memfd with EBADF.
 */
static void forge_cache(void *arg)
{
	char name[64];
	struct stat st;
	int fd, memfd, ret;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	fd = open(arg, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		_exit(98);
	snprintf(name, sizeof(name), "upager:file:%" PRIx64 ":%" PRIx64, (uint64_t)st.st_dev,
		 (uint64_t)st.st_ino);
	memfd = memfd_create(name, MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, (off_t)st.st_size) < 0 || fchmod(memfd, 0600) < 0)
		_exit(97);
	for (off_t off = 0; off < st.st_size; off += 4)
		(void)!pwrite(memfd, "EVIL", 4, off);
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		_exit(96);
	ret = resume_with(fd, memfd, st.st_size);
	_exit(refused_exit(ret));
}

Test(reconnect, a_cache_another_user_forges_is_refused)
{
	char path[400];
	int fd = make_pattern_file("secret", 4 * PAGE, path), status;
	uint64_t *p;

	cr_assert_eq(fchmod(fd, 0644), 0);
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	harness_daemon_kill();
	harness_daemon_restart();
	status = run_child(forge_cache, path);
	cr_assert(WIFEXITED(status), "status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "the forged cache was not refused with EBADF: %d",
		     WEXITSTATUS(status));

	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(p != MAP_FAILED);
	for (size_t off = 0; off < 4 * PAGE; off += 8)
		cr_assert_eq(p[off / 8], pattern_at(off), "root sees the attacker's byte at %zu",
			     off);
	p[0] = pattern_at(0);
	cr_assert_eq(upager_msync(p, 4 * PAGE, MS_SYNC), 0);
	for (off_t off = 0; off < 4 * (off_t)PAGE; off += 8)
		cr_assert_eq(word_of(fd, off), pattern_at((uint64_t)off));
	close(fd);
}

/*
 * A small ext4 of the test's own on a loop device: with a journal (an inode freed is free again
 * once committed) and 16 inodes, so that a file made after another is deleted takes its inode
 * number; its root directory every user may write.
 */
static char reuse_img[400], reuse_mnt[400];

static void reuse_stop(void)
{
	char cmd[500];

	if (reuse_mnt[0])
		umount2(reuse_mnt, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "rm -f '%s'", reuse_img);
	if (reuse_img[0] && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", reuse_img);
	harness_stop();
}

static bool reuse_mount(void)
{
	char cmd[1400];

	snprintf(reuse_img, sizeof(reuse_img), "%s/reuse.img", harness_tmpdir());
	snprintf(cmd, sizeof(cmd), "%s/reuse", harness_tmpdir());
	if (mkdir(cmd, 01777) < 0)
		return false;
	snprintf(
		cmd, sizeof(cmd),
		"truncate -s 8M '%s' && mkfs.ext4 -q -F -m 0 -b 4096 -N 16 '%s' >/dev/null 2>&1 && "
		"mount -o loop '%s' '%s/reuse' && chmod 1777 '%s/reuse'",
		reuse_img, reuse_img, reuse_img, harness_tmpdir(), harness_tmpdir());
	if (system(cmd) != 0)
		return false;
	snprintf(reuse_mnt, sizeof(reuse_mnt), "%s/reuse", harness_tmpdir());
	return true;
}

static int reuse_go[2], reuse_said[2];

/*
 * As user 65534: a file of its own in @arg (the small file system), mapped shared and written
 * through upager; it keeps a descriptor of the cache it was handed, unmaps the file, deletes it
 * and says its inode number; once another file took that number (a byte on reuse_go), it hands
 * the cache back as that file's, which it may only read. Exits 0 if the daemon refuses it with
 * EBADF.
 */
static void keep_cache(const char *dir)
{
	char a[500], v[500], c = 0;
	struct stat st;
	uint64_t *p;
	int fd, cache, ret;
	ino_t ino;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(99);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(v, sizeof(v), "%s/v", dir);
	fd = open(a, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || ftruncate(fd, 4 * PAGE) < 0 || fstat(fd, &st) < 0)
		_exit(98);
	ino = st.st_ino;
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(97);
	p[0] = 0x4c495645; /* "EVIL" */
	cache = harness_memfd_named("upager:file");
	if (cache < 0 || (cache = dup(cache)) < 0)
		_exit(96);
	if (upager_munmap(p, 4 * PAGE) < 0)
		_exit(95);
	close(fd);
	if (unlink(a) < 0 || write(reuse_said[1], &ino, sizeof(ino)) != sizeof(ino) ||
	    read(reuse_go[0], &c, 1) != 1)
		_exit(94);
	fd = open(v, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_ino != ino)
		_exit(93);
	ret = resume_with(fd, cache, st.st_size);
	_exit(refused_exit(ret));
}

/*
 * A client keeps the cache of its own file after it deleted the file; root makes a file that
 * takes the same inode number: the old cache is not taken back as the new file's (it was, and
 * the client wrote into root's file through it), and root's mapping shows root's bytes.
 */
Test(reconnect, the_cache_of_a_deleted_file_is_not_taken_for_one_that_took_its_inode,
     .fini = reuse_stop)
{
	char v[500], c = 0;
	ino_t ino;
	uint64_t *p;
	int fd, status;
	pid_t child;

	if (geteuid() != 0 || !reuse_mount())
		cr_skip_test("cannot make and loop-mount an ext4 file system here");
	cr_assert_eq(chmod(harness_tmpdir(), 0755), 0);
	cr_assert_eq(pipe(reuse_go), 0);
	cr_assert_eq(pipe(reuse_said), 0);
	child = harness_fork();
	cr_assert(child >= 0);
	if (child == 0) {
		alarm(30);
		keep_cache(reuse_mnt);
	}
	close(reuse_said[1]);
	if (read(reuse_said[0], &ino, sizeof(ino)) != (ssize_t)sizeof(ino)) {
		cr_assert(harness_ended_within(child, 30 * 1000, &status));
		cr_assert_fail("the client ended before it deleted its file: %#x", status);
	}
	snprintf(v, sizeof(v), "%s/v", reuse_mnt);
	/* The daemon lets go of the deleted file in a thread of its own: until then, the inode is
	 * still in use. */
	for (int i = 0; i < 100; i++) {
		struct stat st;

		sync();
		close(make_pattern_file("reuse/v", 4 * PAGE, NULL));
		cr_assert_eq(stat(v, &st), 0);
		if (st.st_ino == ino)
			break;
		cr_assert_eq(unlink(v), 0);
		usleep(50 * 1000);
	}
	cr_assert_eq(write(reuse_go[1], &c, 1), 1);
	cr_assert(harness_ended_within(child, 30 * 1000, &status));
	cr_assert(WIFEXITED(status), "status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0,
		     "the old cache was not refused with EBADF as the new file's: %d",
		     WEXITSTATUS(status));
	fd = open(v, O_RDONLY);
	cr_assert(fd >= 0);
	p = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert(p != MAP_FAILED);
	for (size_t off = 0; off < 4 * PAGE; off += 8)
		cr_assert_eq(p[off / 8], pattern_at(off), "root's file shows another's byte at %zu",
			     off);
	cr_assert_eq(upager_munmap(p, 4 * PAGE), 0);
	close(fd);
}

/* Once the daemon is gone (a byte on @go), map the file at @path as soon as a new one listens:
 * a fresh cache of it, before the other client takes its old one back. */
static void open_first(const char *path, int go)
{
	int fd = open(path, O_RDONLY);
	void *p = MAP_FAILED;
	char c;

	alarm(20);
	if (fd < 0 || read(go, &c, 1) != 1)
		_exit(1);
	while (p == MAP_FAILED) {
		p = upager_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED && errno != ECONNREFUSED && errno != ENOENT)
			_exit(2);
	}
	pause();
	_exit(0);
}

/*
 * A shared mapping that a new daemon refuses after a crash (another process mapped the file
 * first, and the file has a cache already) loses the writes made to it since: upager_msync() says
 * so with EIO rather than 0, until the mapping is unmapped.
 */
Test(reconnect, a_mapping_the_new_daemon_refuses_fails_its_msync_with_eio)
{
	char path[512];
	int fd = make_pattern_file("refused", 2 * PAGE, path), go[2];
	pid_t other;
	char *p;

	cr_assert_eq(pipe(go), 0);
	/* Another process, forked before this one is a client (a client's fork waits for the
	 * daemon to read its event, and the child is the dead daemon's). */
	other = harness_fork();
	cr_assert(other >= 0);
	if (other == 0)
		open_first(path, go[0]);
	p = upager_mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	p[0] = 'w';
	harness_daemon_kill();
	cr_assert_eq(write(go[1], "k", 1), 1);
	harness_daemon_restart();
	usleep(500 * 1000); /* the library's watcher resumes within 100 ms */
	errno = 0;
	cr_assert_eq(upager_msync(p, 2 * PAGE, MS_SYNC), -1, "the msync of a refused mapping");
	cr_assert_eq(errno, EIO, "%s", strerror(errno));
	cr_assert_eq(upager_munmap(p, 2 * PAGE), 0);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	close(fd);
}
