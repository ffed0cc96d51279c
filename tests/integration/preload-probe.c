// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A program that knows nothing of upager, run by test-preload under upager-run. It maps what it is
 * told to with the plain calls, says on stdout what it sees of itself, waits for a line on stdin
 * (the test looks at the daemon's tables meanwhile), then unmaps and says whether the kernel's
 * mapping is gone.
 *
 *   preload-probe anon         malloc()s 8 MiB and mmap()s 1 MiB of anonymous memory
 *   preload-probe file PATH    mmap()s PATH shared, and 1 MiB of anonymous memory
 *   preload-probe writes PATH  mmap()s PATH (64 pages) shared, writes it with write(2) and the
 *                              like on a descriptor opened before, and reads each write back
 *                              through the mapping at once: says "stale=N sigbus=B", N the reads
 *                              that did not show the write, B whether a page past a shrinking
 *                              ftruncate(2) raised SIGBUS
 *   preload-probe altstack     mmap()s 64 KiB of anonymous memory, never touches it, makes it
 *                              the alternate signal stack (sigaltstack(2)) and raises a signal
 *                              handled on it: says "routed=R onstack=S", R whether the memory
 *                              was upager's when mapped (registered with a userfaultfd), S
 *                              whether the handler ran on it
 *   preload-probe buffers      mmap()s 16 pages of anonymous memory and hands pages it never
 *                              touched (and one it only read) to read(2), pread(2), readv(2),
 *                              recv(2), write(2), writev(2), send(2), mlock(2) and madvise(2)'s
 *                              MADV_POPULATE_WRITE and MADV_POPULATE_READ: says "routed=R
 *                              failed=F", F the calls that failed, naming the first
 *   preload-probe cancel       cancels a thread blocked in read(2) of a pipe, then one blocked in
 *                              write(2) to it: says "cancelled=C", C how many ended cancelled
 *   preload-probe resident PATH  mmap()s PATH (16 pages, in the page cache) shared and private,
 *                              and says "fresh=S,P dropped=D willneed=W": how many pages
 *                              mincore(2) finds resident, untouched (shared, private), after the
 *                              page cache dropped the file (POSIX_FADV_DONTNEED), and after
 *                              MADV_WILLNEED (within a second)
 *   preload-probe remove PATH  mmap()s 4 pages of PATH shared, writes each, and frees the middle
 *                              two with MADV_REMOVE: says "mapping=M file=F", M the pages the
 *                              mapping shows as the kernel's would (zeroes in the two, the
 *                              writes around them), F the same of the file after munmap()
 *   preload-probe direct       a file of 24 MiB mapped shared, written to another with O_DIRECT
 *                              (as mdb_copy does), as "direct=ok" or the errno of the write
 *   preload-probe protpart     a file mapping with its last page made PROT_NONE, and a PROT_NONE
 *                              reservation with a part made writable: mlock(2),
 *                              MADV_POPULATE_READ and read(2) over them, as "mlock=E populate=E
 *                              read=E heap=E" (errno names, or counts)
 *   preload-probe pasteof      maps 4 pages of a file of one page, shared, and over the three past
 *                              its end calls madvise(2) with MADV_POPULATE_READ, mlock(2), and
 *                              read(2) into them: says "populate=E mlock=E read=E", each E the
 *                              errno the call failed with (the kernel's: EFAULT, ENOMEM, EFAULT),
 *                              or "ok"
 *   preload-probe ownuffd      mmap()s 64 pages of anonymous memory, writes them, and registers
 *                              them with a userfaultfd of its own (missing faults), which serves
 *                              a page it dropped (MADV_DONTNEED) when a thread touches it: says
 *                              "routed=R registered=G kept=K served=S", R as above, G whether
 *                              UFFDIO_REGISTER succeeded, K whether the words written were still
 *                              there, S whether the thread read the page the program's own
 *                              handler copied in
 *   preload-probe secret       maps 2 pages of a memfd_secret(2) file shared, writes and reads
 *                              them: says "secret=ok", or "secret=none" without the call
 *   preload-probe moved        moves 4 pages of anonymous memory with MREMAP_DONTUNMAP, then onto a
 *                              PROT_NONE reservation (MREMAP_FIXED), then grows the mapping to 8
 *                              pages and writes one of the new ones: says "moved=ok", or dies of
 *                              SIGSEGV if the new pages are not writable
 *   preload-probe regrow PATH  grows a mapping with mremap(MREMAP_MAYMOVE) again and again, as a
 *                              growing buffer does, moved or in place, then moves it whole
 *                              (MREMAP_FIXED) and shrinks it, for private anonymous memory and
 *                              private and shared mappings of PATH (1 MiB at least): says
 *                              "failed=F", F the first call that failed or read wrong, or "none"
 *
 * Output: "ready MAPPED MALLOCED sum=N upager=U uffd=F", then "gone=G": MAPPED the address of the
 * mapping of PATH (anon: of the anonymous memory), N the sum of its bytes, U whether
 * /proc/self/maps shows it as a memfd of upager's, F whether the process holds a userfaultfd, G
 * whether both mappings left /proc/self/maps after munmap().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/uio.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ANON_SIZE (1UL << 20)

/* The line of /proc/self/maps whose range holds p, into line; false if none. */
static bool maps_line(const void *p, char *line, size_t size)
{
	FILE *f = fopen("/proc/self/maps", "r");
	uintptr_t a = (uintptr_t)p, start, end;
	bool found = false;

	while (f && fgets(line, (int)size, f))
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2 && start <= a &&
		    a < end) {
			found = true;
			break;
		}
	if (f)
		fclose(f);
	return found;
}

/* Whether the mapping holding p is registered with a userfaultfd for missing faults (smaps). */
static bool uffd_registered(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	uintptr_t a = (uintptr_t)p, start, end;
	bool in = false, found = false;
	char line[512];

	while (f && fgets(line, (int)sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2)
			in = start <= a && a < end;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			found = strstr(line, " um") != NULL;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

static bool has_userfaultfd(void)
{
	char path[64], target[64];

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "userfaultfd"))
			return true;
	}
	return false;
}

static sigjmp_buf on_bus;

static void bus(int sig)
{
	(void)sig;
	siglongjmp(on_bus, 1);
}

/* The writes mode: each kind of write, then a read through the mapping. */
/*
 * A writer that maps only the first page of the file, and a reader (a child, under upager-run
 * too) that maps all of it: each pwrite(2) of the writer, once it returned, shows in the reader's
 * mapping, as in the kernel's one page cache (SQLite: a writer's checkpoints write pages its
 * mapping does not hold, its readers' do). The turns pass through memory the kernel maps (a
 * microsecond), and the reader spins for its turn without yielding its CPU, so that the daemon
 * cannot have read inotify's news of the write in between.
 */
static int others(const char *path)
{
	const size_t page = 4096, length = 64 * page;
	int fd = open(path, O_RDWR), status;
	_Atomic int *turn =
		mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile unsigned char *w;
	unsigned long sum = 0;
	pid_t reader;

	if (fd < 0 || turn == MAP_FAILED)
		return 1;
	reader = fork();
	if (reader == 0) {
		volatile unsigned char *m = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
		int stale = 0;

		if (m == MAP_FAILED)
			_exit(255);
		for (size_t i = 0; i < length; i += page)
			sum += m[i]; /* every page in the cache, and mapped */
		for (int i = 0; i < 200; i++) {
			off_t off = (off_t)((1 + (size_t)(i * 7 % 63)) * page + (size_t)(i % 100));

			atomic_store(&turn[0], 2 * i + 1); /* ready: write */
			while (atomic_load(&turn[0]) != 2 * i + 2)
				; /* no yield: nobody else runs here meanwhile */
			stale += m[off] != (unsigned char)(i + 1);
		}
		_exit(stale + (sum == 0xffffffff));
	}
	w = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	if (reader < 0 || w == MAP_FAILED)
		return 1;
	sum += w[0];
	for (int i = 0; i < 200; i++) {
		off_t off = (off_t)((1 + (size_t)(i * 7 % 63)) * page + (size_t)(i % 100));
		unsigned char v = (unsigned char)(i + 1);

		while (atomic_load(&turn[0]) != 2 * i + 1)
			sched_yield();
		if (pwrite(fd, &v, 1, off) != 1)
			return 1;
		atomic_store(&turn[0], 2 * i + 2);
	}
	if (waitpid(reader, &status, 0) != reader || !WIFEXITED(status))
		return 1;
	printf("stale=%d\n", WEXITSTATUS(status));
	return sum == 0xffffffff;
}

/* Whether another process finds byte 0 of @fd's file locked (F_GETLK: someone holds it). */
static bool locked_for_others(int fd)
{
	pid_t child = fork();
	int status;

	if (child == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };

		_exit(fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 0 : 1);
	}
	return child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

/*
 * A POSIX record lock on a file survives its mapping, growth with mremap() and unmapping (the
 * library closed its duplicate of the descriptor, which drops the process's locks), and goes when
 * the program closes a descriptor of the file itself. Prints "lost=N gone=0|1".
 */
static int locks(const char *path)
{
	const size_t page = 4096;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
	int fd = open(path, O_RDWR), lost = 0, other;
	char *p;

	if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
		return 1;
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 1;
	p[0] = 'l';
	lost += !locked_for_others(fd);
	p = mremap(p, page, 4 * page, MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return 1;
	lost += !locked_for_others(fd);
	munmap(p, 4 * page);
	lost += !locked_for_others(fd);
	other = open(path, O_RDONLY);
	close(other); /* the program's own close: its locks on the file go, as without upager */
	printf("lost=%d gone=%d\n", lost, !locked_for_others(fd));
	return 0;
}

static int writes(const char *path)
{
	const size_t page = 4096, length = 64 * page;
	int fd = open(path, O_RDWR), stale = 0, sigbus = 0;
	volatile unsigned char *m;
	unsigned long sum = 0;

	if (fd < 0)
		return 1;
	m = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < length; i += page)
		sum += m[i]; /* every page in the cache */
	for (int i = 0; i < 200; i++) {
		off_t off = (off_t)((size_t)(i * 7 % 64) * page + (size_t)(i % 100));
		unsigned char v = (unsigned char)(i + 1);
		struct iovec iov = { &v, 1 };
		ssize_t n;

		/* Odd ones write at the position. */
		if (i % 2 && lseek(fd, off, SEEK_SET) != off)
			return 1;
		if (i % 4 < 2)
			n = i % 2 ? write(fd, &v, 1) : pwrite(fd, &v, 1, off);
		else
			n = i % 2 ? writev(fd, &iov, 1) : pwritev(fd, &iov, 1, off);
		if (n != 1)
			return 1;
		stale += m[off] != v;
	}
	/* A byte written through the mapping, one beside it with pwrite(2): both stay. */
	m[5 * page] = 0xaa;
	if (pwrite(fd, "\xbb", 1, (off_t)(5 * page + 1)) != 1)
		return 1;
	stale += (m[5 * page] != 0xaa) + (m[5 * page + 1] != 0xbb);
	signal(SIGBUS, bus);
	if (ftruncate(fd, (off_t)(32 * page)) < 0)
		return 1;
	if (sigsetjmp(on_bus, 1) == 0)
		sum += m[40 * page];
	else
		sigbus = 1;
	printf("stale=%d sigbus=%d\n", stale, sigbus);
	return sum == 0xffffffff; /* sum is read, so the loop is kept */
}

static volatile uintptr_t handler_at;

static void on_usr1(int sig)
{
	volatile int here = sig;

	handler_at = (uintptr_t)&here;
}

/* The altstack mode: a signal taken on an alternate stack no one wrote to before. */
static int altstack(void)
{
	const size_t size = 64UL << 10;
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	stack_t ss = { 0 };
	char *stack;
	bool routed;

	stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED)
		return 1;
	routed = uffd_registered(stack);
	ss.ss_sp = stack;
	ss.ss_size = size;
	if (sigaltstack(&ss, NULL) < 0 || sigemptyset(&sa.sa_mask) < 0 ||
	    sigaction(SIGUSR1, &sa, NULL) < 0 || raise(SIGUSR1) != 0)
		return 1;
	printf("routed=%d onstack=%d\n", routed,
	       handler_at >= (uintptr_t)stack && handler_at < (uintptr_t)stack + size);
	return 0;
}

/* The buffers mode: system calls on buffers of anonymous memory no one wrote to. */
static int buffers(void)
{
	const size_t page = 4096;
	int pipes[2], pair[2], fd = open("/proc/self/exe", O_RDONLY), failed = 0;
	const char *first = NULL;
	volatile unsigned char *m;
	unsigned char *p;
	bool routed;

	p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || fd < 0 || pipe(pipes) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0 || write(pipes[1], "pipe", 4) != 4 ||
	    send(pair[1], "sock", 4, 0) != 4)
		return 1;
	routed = uffd_registered(p);
	m = p;
	(void)m[6 * page]; /* read, never written */
#define CHECK(call, ok)                        \
	do {                                   \
		if (!(call ok)) {              \
			failed++;              \
			if (!first)            \
				first = #call; \
		}                              \
	} while (0)
	CHECK(read(pipes[0], p, 4), == 4);
	CHECK(pread(fd, p + page, 4, 1), == 4);
	CHECK(readv(fd, (&(struct iovec){ p + 2 * page, 4 }), 1), == 4);
	CHECK(recv(pair[0], p + 3 * page, 4, 0), == 4);
	CHECK(write(pipes[1], p + 4 * page, 4), == 4);
	CHECK(writev(pipes[1], (&(struct iovec){ p + 7 * page, 4 }), 1), == 4);
	CHECK(send(pair[1], p + 5 * page, 4, 0), == 4);
	CHECK(read(pipes[0], p + 6 * page, 8), == 8);
	CHECK(mlock(p + 8 * page, 2 * page), == 0);
	CHECK(madvise(p + 10 * page, 2 * page, MADV_POPULATE_WRITE), == 0);
	CHECK(madvise(p + 12 * page, 2 * page, MADV_POPULATE_READ), == 0);
#undef CHECK
	if (failed == 0 && (memcmp(p, "pipe", 4) || memcmp(p + page + 0, "ELF", 3) ||
			    memcmp(p + 3 * page, "sock", 4) || p[6 * page + 7] != 0))
		failed = 100, first = "the data";
	printf("routed=%d failed=%d%s%s\n", routed, failed, first ? " " : "", first ? first : "");
	return 0;
}

static int cancel_pipe[2];

static void *blocked_reader(void *arg)
{
	char b[8];

	(void)arg;
	return read(cancel_pipe[0], b, sizeof(b)) < 0 ? NULL : arg;
}

static void *blocked_writer(void *arg)
{
	static char b[65536];

	for (;;)
		if (write(cancel_pipe[1], b, sizeof(b)) < 0)
			return arg;
}

/* Start @fn in a thread, cancel it once blocked: whether it ended cancelled. */
static bool cancelled(void *(*fn)(void *))
{
	pthread_t t;
	void *ret;

	if (pthread_create(&t, NULL, fn, NULL) != 0)
		return false;
	usleep(100 * 1000);
	return pthread_cancel(t) == 0 && pthread_join(t, &ret) == 0 && ret == PTHREAD_CANCELED;
}

/* The cancel mode: read(2) and write(2) stay cancellation points. */
static int cancel(void)
{
	bool r, w;

	if (pipe(cancel_pipe) < 0)
		return 1;
	r = cancelled(blocked_reader);
	w = cancelled(blocked_writer); /* the pipe fills, and the write blocks */
	printf("cancelled=%d\n", r + w);
	return 0;
}

static int resident_pages(void *p, size_t pages)
{
	unsigned char vec[64];
	int n = 0;

	if (mincore(p, pages * 4096, vec) < 0)
		return -1;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static int resident(const char *path)
{
	int fd = open(path, O_RDONLY), fresh_s, fresh_p, dropped, need = 0;
	void *s, *p;

	if (fd < 0 || fsync(fd) < 0)
		return 1;
	s = mmap(NULL, 16 * 4096, PROT_READ, MAP_SHARED, fd, 0);
	p = mmap(NULL, 16 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (s == MAP_FAILED || p == MAP_FAILED)
		return 1;
	fresh_s = resident_pages(s, 16);
	fresh_p = resident_pages(p, 16);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	dropped = resident_pages(s, 16);
	if (madvise(s, 16 * 4096, MADV_WILLNEED) < 0)
		return 1;
	for (int i = 0; i < 100 && (need = resident_pages(s, 16)) < 16; i++)
		usleep(10000);
	printf("fresh=%d,%d dropped=%d willneed=%d\n", fresh_s, fresh_p, dropped, need);
	return 0;
}

/* Whether page @i of 4 shows what remove() expects: zeroes in pages 1 and 2, its write else. */
static bool removed_right(const unsigned char *page, int i)
{
	for (size_t k = 0; k < 4096; k++)
		if (page[k] != (i == 1 || i == 2 ? 0 : 'a' + i))
			return false;
	return true;
}

static int remove_range(const char *path)
{
	int fd = open(path, O_RDWR), in_map = 0, in_file = 0;
	unsigned char *m, page[4096];

	if (fd < 0)
		return 1;
	m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	for (int i = 0; i < 4; i++)
		memset(m + i * 4096, 'a' + i, 4096);
	if (madvise(m + 4096, 2 * 4096, MADV_REMOVE) < 0) {
		printf("madvise: %m\n");
		return 0;
	}
	for (int i = 0; i < 4; i++)
		in_map += removed_right(m + i * 4096, i);
	munmap(m, 4 * 4096);
	for (int i = 0; i < 4; i++)
		in_file += pread(fd, page, 4096, i * 4096) == 4096 && removed_right(page, i);
	printf("mapping=%d file=%d\n", in_map, in_file);
	return 0;
}

static const char *errno_name(int ret)
{
	if (ret >= 0)
		return "ok";
	return errno == EFAULT ? "EFAULT" : errno == ENOMEM ? "ENOMEM" : strerror(errno);
}

static int past_eof(void)
{
	char path[] = "/tmp/upager-probe-XXXXXX";
	int fd = mkstemp(path), zero = open("/dev/zero", O_RDONLY);
	const char *pop, *lock, *rd;
	char *m;

	if (fd < 0 || zero < 0 || unlink(path) < 0 || ftruncate(fd, 4096) < 0)
		return 1;
	m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	pop = errno_name(madvise(m + 4096, 3 * 4096, MADV_POPULATE_READ));
	lock = errno_name(mlock(m, 4 * 4096));
	rd = errno_name((int)read(zero, m + 4096, 4096));
	printf("populate=%s mlock=%s read=%s\n", pop, lock, rd);
	return 0;
}

/*
 * A mapping of 3 pages of a file, its last made PROT_NONE; then the calls the preload touches
 * pages for, over the whole. And anonymous memory reserved PROT_NONE, of which a part is made
 * writable and read into (a heap as the JVM, V8 or Go make one).
 */
static int protect_part(void)
{
	char path[] = "/tmp/upager-probe-XXXXXX";
	int fd = mkstemp(path), zero = open("/dev/zero", O_RDONLY);
	const char *lock, *pop, *rd, *heap;
	char *m, *h;

	if (fd < 0 || zero < 0 || unlink(path) < 0 || ftruncate(fd, 3 * 4096) < 0)
		return 1;
	m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	h = mmap(NULL, 64 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED || h == MAP_FAILED || mprotect(m + 2 * 4096, 4096, PROT_NONE) < 0 ||
	    mprotect(h + 16 * 4096, 16 * 4096, PROT_READ | PROT_WRITE) < 0)
		return 1;
	lock = errno_name(mlock(m, 3 * 4096));
	pop = errno_name(madvise(m, 3 * 4096, MADV_POPULATE_READ));
	rd = errno_name((int)read(zero, m + 4096, 8192));
	heap = errno_name((int)read(zero, h + 16 * 4096, 16 * 4096));
	printf("mlock=%s populate=%s read=%s heap=%s\n", lock, pop, rd, heap);
	return 0;
}

/*
 * A file of 24 MiB mapped shared, written whole to another opened with O_DIRECT, call after call
 * as LMDB's mdb_env_copy2() writes its map: "direct=ok" once all is written, with the bytes
 * checked, or the errno of the call that failed.
 */
static int direct_copy(void)
{
	char src[] = "/tmp/upager-probe-XXXXXX", dst[] = "/tmp/upager-probe-XXXXXX";
	size_t len = 24UL << 20, done = 0;
	int in = mkstemp(src), out = mkstemp(dst);
	char *m, *back;

	if (in < 0 || out < 0 || unlink(src) < 0 || unlink(dst) < 0 ||
	    ftruncate(in, (off_t)len) < 0)
		return 1;
	for (size_t off = 0; off < len; off += 4096)
		if (pwrite(in, &off, sizeof(off), (off_t)off) != sizeof(off))
			return 1;
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, in, 0);
	if (m == MAP_FAILED || fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_DIRECT) < 0)
		return 1;
	while (done < len) {
		ssize_t n = write(out, m + done, len - done);

		if (n <= 0) {
			printf("direct=%s\n", n < 0 ? errno_name(-1) : "0");
			return 0;
		}
		done += (size_t)n;
	}
	back = mmap(NULL, len, PROT_READ, MAP_PRIVATE, out, 0);
	if (back == MAP_FAILED)
		return 1;
	printf("direct=%s\n", memcmp(back, m, len) ? "wrong bytes" : "ok");
	return 0;
}

/* One kind of mapping through regrow(): NULL, or what failed. */
static const char *regrow_one(int fd, int flags)
{
	size_t len = 4096;
	unsigned char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0), *n, *to;

	if (b == MAP_FAILED)
		return "mmap";
	b[0] = 1;
	for (int i = 0; i < 6; i++) {
		/* Every other growth finds a page in the way, and moves. */
		void *block =
			i & 1 ? MAP_FAILED
			      : mmap(b + len, 4096, PROT_NONE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		n = mremap(b, len, 2 * len, MREMAP_MAYMOVE);
		if (block != MAP_FAILED)
			munmap(block, 4096);
		if (n == MAP_FAILED)
			return "mremap grow";
		if (n[0] != 1 || (i > 0 && n[len - 1] != 2))
			return "the data after a growth";
		b = n;
		len *= 2;
		b[len - 1] = 2;
	}
	to = mmap(NULL, 2 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	n = mremap(b, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (n == MAP_FAILED)
		return "mremap move";
	if (n[0] != 1 || n[len - 1] != 2)
		return "the data after a move";
	if (mremap(n, len, 4096, 0) != n)
		return "mremap shrink";
	if (n[0] != 1)
		return "the data after a shrink";
	munmap(n, 4096);
	munmap(to, 2 * len);
	return NULL;
}

static int regrow(const char *path)
{
	int fd = open(path, O_RDWR);
	const char *failed;

	if (fd < 0)
		return 1;
	failed = regrow_one(-1, MAP_PRIVATE | MAP_ANONYMOUS);
	if (!failed)
		failed = regrow_one(fd, MAP_PRIVATE);
	if (!failed)
		failed = regrow_one(fd, MAP_SHARED);
	printf("failed=%s\n", failed ? failed : "none");
	return 0;
}

/* The moved mode: a mapping moved onto a reservation, then grown, has its own protection. */
static int moved(void)
{
	const size_t n = 4 * 4096;
	char *a = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *b, *c;
	char *dst = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (a == MAP_FAILED || dst == MAP_FAILED)
		return 1;
	memset(a, 'a', n);
	b = mremap(a, n, n, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	c = b == MAP_FAILED ? b : mremap(b, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	c = c == MAP_FAILED ? c : mremap(c, n, 2 * n, MREMAP_MAYMOVE);
	if (c == MAP_FAILED)
		return 1;
	c[n] = 'b';
	printf("moved=%s\n", c[0] == 'a' && c[n - 1] == 'a' && c[n] == 'b' ? "ok" : "wrong");
	return 0;
}

/* The secret mode: memory of memfd_secret(2), which only the kernel's own mapping can serve. */
static int secret(void)
{
	int fd = (int)syscall(SYS_memfd_secret, 0);
	unsigned char *p;

	if (fd < 0) {
		printf("secret=none\n");
		return 0;
	}
	p = ftruncate(fd, 2 * 4096) == 0
		    ? mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
		    : MAP_FAILED;
	if (p == MAP_FAILED)
		return 1;
	memset(p, 0x5a, 2 * 4096);
	printf("secret=%s\n", p[4097] == 0x5a ? "ok" : "wrong");
	return 0;
}

static void *touch_page(void *arg)
{
	return (void *)(uintptr_t) * (volatile unsigned char *)arg;
}

/* The ownuffd mode: anonymous memory registered with the program's own userfaultfd. */
static int own_userfaultfd(void)
{
	const size_t page = 4096, pages = 64;
	unsigned char *p, *fill;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffd_msg msg;
	struct uffdio_copy copy;
	bool routed, kept = true, registered;
	pthread_t t;
	void *seen = NULL;
	int uffd;

	p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || fill == MAP_FAILED)
		return 1;
	routed = uffd_registered(p);
	for (size_t i = 0; i < pages; i++)
		p[i * page] = (unsigned char)(i + 1);
	memset(fill, 'Z', page);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0)
		return 1;
	reg.range.start = (uintptr_t)p;
	reg.range.len = pages * page;
	registered = ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
	for (size_t i = 0; i < pages; i++)
		kept &= p[i * page] == (unsigned char)(i + 1);
	if (registered && madvise(p + 3 * page, page, MADV_DONTNEED) == 0 &&
	    pthread_create(&t, NULL, touch_page, p + 3 * page) == 0) {
		if (read(uffd, &msg, sizeof(msg)) == (ssize_t)sizeof(msg) &&
		    msg.event == UFFD_EVENT_PAGEFAULT) {
			copy = (struct uffdio_copy){ .dst = msg.arg.pagefault.address & ~(page - 1),
						     .src = (uintptr_t)fill,
						     .len = page };
			ioctl(uffd, UFFDIO_COPY, &copy);
		}
		pthread_join(t, &seen);
	}
	printf("routed=%d registered=%d kept=%d served=%d\n", routed, registered, kept,
	       (uintptr_t)seen == 'Z');
	return 0;
}

int main(int argc, char **argv)
{
	bool file = argc == 3 && !strcmp(argv[1], "file");
	char line[512], go[16];
	unsigned char *mapped, *anon, *big;
	size_t length = ANON_SIZE;
	uint64_t sum = 0;
	struct stat st;
	bool upager;
	int fd = -1;

	if (argc == 3 && !strcmp(argv[1], "others"))
		return others(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "writes"))
		return writes(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "locks"))
		return locks(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "altstack"))
		return altstack();
	if (argc == 2 && !strcmp(argv[1], "buffers"))
		return buffers();
	if (argc == 2 && !strcmp(argv[1], "cancel"))
		return cancel();
	if (argc == 3 && !strcmp(argv[1], "resident"))
		return resident(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "direct"))
		return direct_copy();
	if (argc == 2 && !strcmp(argv[1], "protpart"))
		return protect_part();
	if (argc == 2 && !strcmp(argv[1], "pasteof"))
		return past_eof();
	if (argc == 3 && !strcmp(argv[1], "remove"))
		return remove_range(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "regrow"))
		return regrow(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "ownuffd"))
		return own_userfaultfd();
	if (argc == 2 && !strcmp(argv[1], "secret"))
		return secret();
	if (argc == 2 && !strcmp(argv[1], "moved"))
		return moved();
	if (!file && !(argc == 2 && !strcmp(argv[1], "anon"))) {
		fprintf(stderr, "usage: preload-probe anon | file PATH | writes PATH | altstack | "
				"buffers\n");
		return 2;
	}
	big = malloc(8UL << 20); /* glibc's malloc() maps this much with its own mmap */
	anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!big || anon == MAP_FAILED)
		return 1;
	memset(big, 1, 8UL << 20);
	memset(anon, 2, ANON_SIZE);
	mapped = anon;
	if (file) {
		fd = open(argv[2], O_RDWR);
		if (fd < 0 || fstat(fd, &st) < 0)
			return 1;
		length = (size_t)st.st_size;
		mapped = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (mapped == MAP_FAILED)
			return 1;
		close(fd);
	}
	for (size_t i = 0; i < length; i++)
		sum += mapped[i];
	upager = maps_line(mapped, line, sizeof(line)) && strstr(line, "memfd:upager");
	printf("ready %p %p sum=%" PRIu64 " upager=%d uffd=%d\n", (void *)mapped, (void *)big, sum,
	       upager, has_userfaultfd());
	fflush(stdout);
	if (!fgets(go, sizeof(go), stdin))
		return 1;
	if (munmap(anon, ANON_SIZE) < 0 || (file && munmap(mapped, length) < 0))
		return 1;
	printf("gone=%d\n", !maps_line(anon, line, sizeof(line)) &&
				    !(file && maps_line(mapped, line, sizeof(line))));
	free(big);
	return 0;
}
