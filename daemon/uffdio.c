// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <sys/mman.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "latency.h"
#include "log.h"
#include "mm.h"
#include "uffdio.h"

/*
 * How long an ioctl keeps meeting a pending event of its mm before it gives up with -EAGAIN.
 * The event is read at the first retry; what is left is the wait for the thread that sent it to
 * run again (the kernel counts the mm as changing until then), or for an unmap under way to send
 * its event.
 */
#define PENDING_WAIT_NS (100ULL * 1000 * 1000)
/* Retries that only yield the processor before they sleep between attempts. */
#define PENDING_SPINS 64
#define PENDING_SLEEP_NS (20 * 1000)

static uffdio_drain_fn drain_fn;
static void *drain_data;

/**
 * uffdio_set_drain() - how the ioctls of this file get past a pending event of a client's mm
 * @fn: reads what is queued on a userfaultfd and keeps it for later; NULL: no retries
 * @data: for @fn
 *
 * UFFDIO_CONTINUE, COPY, ZEROPAGE, POISON and WRITEPROTECT fail with -EAGAIN while the mm has an
 * event (unmap, mremap, MADV_DONTNEED, fork) that the reader of its userfaultfd has not read
 * yet. They then call @fn and try again, for up to 100 ms, so that -EAGAIN from them means the mm
 * kept changing all that time. UFFDIO_COPY, and WRITEPROTECT protecting, give up at once with
 * -EAGAIN if @fn says that what it read (or read before) takes part of the range from the mm: a
 * copy after an MADV_DONTNEED whose event is read, and not dispatched yet, would put back the data
 * the removal took; a protection would leave markers where a page-out then reads (private.c).
 */
void uffdio_set_drain(uffdio_drain_fn fn, void *data)
{
	drain_fn = fn;
	drain_data = data;
}

/**
 * uffdio_drain() - read what is queued on @uffd now and keep it for later (uffdio_set_drain()'s
 * @fn), so that an event pending there stops failing the ioctls
 * Return: @fn's, or 0 without one.
 */
int uffdio_drain(int uffd)
{
	return drain_fn ? drain_fn(drain_data, uffd, 0, 0) : 0;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? neg_errno() : 0;
}

/*
 * Between two attempts of an ioctl that met a pending event: read the events, then let their
 * senders run. False once the deadline (set at the first call) has passed, or if an event read
 * takes part of [start, start+len) from the mm (len 0: no range).
 */
static bool pending_wait_range(int fd, unsigned attempt, uint64_t *deadline, uint64_t start,
			       uint64_t len)
{
	int n;

	if (!drain_fn)
		return false;
	if (attempt == 0)
		*deadline = now_ns() + PENDING_WAIT_NS;
	else if (now_ns() > *deadline)
		return false;
	n = drain_fn(drain_data, fd, start, len);
	if (n == -ESTALE)
		return false;
	if (n > 0)
		return true;
	if (attempt < PENDING_SPINS)
		sched_yield();
	else
		nanosleep(&(struct timespec){ 0, PENDING_SLEEP_NS }, NULL);
	return true;
}

static bool pending_wait(int fd, unsigned attempt, uint64_t *deadline)
{
	return pending_wait_range(fd, attempt, deadline, 0, 0);
}

/*
 * UFFDIO_CONTINUE, ZEROPAGE or POISON (the same layout: a range, a mode, then what was done)
 * over [start, start+len). A partial success is -EAGAIN too, with what was done: the rest is
 * tried on its own, so that -EAGAIN means only that the mm kept changing (pending_wait()). The
 * bytes done from @start, in order, in @done.
 */
static int mfill_done(int fd, unsigned long req, uint64_t start, uint64_t len, uint64_t mode,
		      uint64_t *done)
{
	uint64_t deadline = 0;
	unsigned attempt = 0;

	*done = 0;
	for (;;) {
		struct uffdio_continue a = { .range = { start, len }, .mode = mode };
		int r = xioctl(fd, req, &a);

		if (r == 0)
			*done += len;
		if (r == -EAGAIN && a.mapped > 0 && (uint64_t)a.mapped < len) {
			start += (uint64_t)a.mapped;
			len -= (uint64_t)a.mapped;
			*done += (uint64_t)a.mapped;
			continue;
		}
		if (r != -EAGAIN || !pending_wait(fd, attempt++, &deadline))
			return r;
	}
}

static int mfill(int fd, unsigned long req, uint64_t start, uint64_t len, uint64_t mode)
{
	uint64_t done;

	return mfill_done(fd, req, start, len, mode, &done);
}

_Static_assert(offsetof(struct uffdio_zeropage, zeropage) ==
		       offsetof(struct uffdio_continue, mapped),
	       "mfill() takes the layout of UFFDIO_CONTINUE");
_Static_assert(offsetof(struct uffdio_poison, updated) == offsetof(struct uffdio_continue, mapped),
	       "mfill() takes the layout of UFFDIO_CONTINUE");

/**
 * uffdio_api() - UFFDIO_API on a client's userfaultfd
 * @uffd: the descriptor
 * @want: features to enable
 * @features: set to the features in force
 *
 * Return: 0, -EINVAL if @uffd had its API set already or is no userfaultfd, -EPERM for features
 * that need privilege the daemon lacks.
 */
int uffdio_api(int uffd, uint64_t want, uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	int r;

	r = xioctl(uffd, UFFDIO_API, &api);
	if (r < 0)
		return r;
	*features = want;
	return 0;
}

/**
 * uffdio_register() - register [start, start+len) of the descriptor's mm
 * Return: 0 or a negative errno from UFFDIO_REGISTER.
 */
int uffdio_register(int uffd, uint64_t start, uint64_t len, uint64_t mode)
{
	struct uffdio_register reg = { .range = { start, len }, .mode = mode };

	return xioctl(uffd, UFFDIO_REGISTER, &reg);
}

/**
 * uffdio_continue() - map cache pages that exist already and wake the waiters
 * @wp: map them write-protected (a write then faults to the daemon)
 * Return: 0, -EEXIST if a page was mapped already, -EFAULT if a page is not in the cache,
 * -ESRCH if the mm is gone, -EAGAIN if it kept changing (see uffdio_set_drain()), or another
 * negative errno.
 */
int uffdio_continue(int uffd, uint64_t start, uint64_t len, bool wp)
{
	return mfill(uffd, UFFDIO_CONTINUE, start, len, wp ? UFFDIO_CONTINUE_MODE_WP : 0);
}

/**
 * uffdio_copy() - allocate pages for the range, copy @src into them, map them and wake the waiters
 * @wp: map them write-protected
 *
 * In a shared mapping of a memfd the pages go into the memfd, as a write(2) would put them.
 *
 * Return: 0, -EEXIST if a page was there already, -ESRCH if the mm is gone, -EAGAIN if it kept
 * changing or an event read takes part of the range from it (see uffdio_set_drain()), or another
 * negative errno.
 */
int uffdio_copy(int uffd, uint64_t start, const void *src, uint64_t len, bool wp)
{
	uint64_t deadline = 0;
	unsigned attempt = 0;

	for (;;) {
		struct uffdio_copy c = { .dst = start,
					 .src = (uintptr_t)src,
					 .len = len,
					 .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };
		int r = xioctl(uffd, UFFDIO_COPY, &c);

		/* Copied in part (c.copy > 0): what failed is not the mm changing. */
		if (r != -EAGAIN || c.copy > 0 ||
		    !pending_wait_range(uffd, attempt++, &deadline, start, len))
			return r;
	}
}

/*
 * The source of uffdio_copy_zeroes(): a read-only private mapping never written, so every page of
 * it is the kernel's zero page and it costs no memory. Made at the first use, kept.
 */
#define ZERO_SOURCE_BYTES (1UL << 20)

static const void *zero_source(void)
{
	static void *src;

	if (!src) {
		void *p = mmap(NULL, ZERO_SOURCE_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED)
			return NULL;
		src = p;
	}
	return src;
}

/**
 * uffdio_copy_zeroes() - pages of their own, all zeroes, over as much of [start, start+len) as it
 * can, in order, for private memory about to be written: the zero page would take a second fault
 * (the kernel's copy-on-write, a TLB flush on every CPU the process runs on) at the first write.
 * The bytes mapped from @start in @done; threads waiting in them are woken, none past them.
 *
 * Return: 0 when all of it is mapped, -ENOMEM without the source, else uffdio_copy()'s (-EEXIST at
 * a page there already, -ENOENT at the end of the VMA...).
 */
int uffdio_copy_zeroes(int uffd, uint64_t start, uint64_t len, uint64_t *done)
{
	const void *src = zero_source();
	uint64_t deadline = 0;
	unsigned attempt = 0;

	*done = 0;
	if (!src)
		return -ENOMEM;
	while (*done < len) {
		uint64_t n = MIN(len - *done, ZERO_SOURCE_BYTES);
		struct uffdio_copy c = { .dst = start + *done, .src = (uintptr_t)src, .len = n };
		int r = xioctl(uffd, UFFDIO_COPY, &c);

		if (r == 0) {
			*done += n;
			continue;
		}
		/* Copied in part: the rest on its own, which says what stopped it. */
		if (r == -EAGAIN && c.copy > 0 && (uint64_t)c.copy < n) {
			*done += (uint64_t)c.copy;
			continue;
		}
		if (r != -EAGAIN || !pending_wait(uffd, attempt++, &deadline))
			return r;
	}
	return 0;
}

/**
 * uffdio_writeprotect() - write-protect a range, or lift the protection and wake its waiters
 * Return: 0, -ENOENT if the range is not registered (unmapped), -ESRCH if the mm is gone,
 * -EAGAIN if it kept changing, or (protecting) an event read takes part of the range from it (see
 * uffdio_set_drain()), or another negative errno.
 */
int uffdio_writeprotect(int uffd, uint64_t start, uint64_t len, bool wp)
{
	uint64_t deadline = 0;
	unsigned attempt = 0;
	int r;

	do {
		struct uffdio_writeprotect w = { .range = { start, len },
						 .mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };

		r = xioctl(uffd, UFFDIO_WRITEPROTECT, &w);
	} while (r == -EAGAIN &&
		 pending_wait_range(uffd, attempt++, &deadline, start, wp ? len : 0));
	return r;
}

/**
 * uffdio_zeropage() - map the zero page (private anonymous memory)
 * Return: 0 or a negative errno (-EEXIST if already present, -EAGAIN as uffdio_continue()).
 */
int uffdio_zeropage(int uffd, uint64_t start, uint64_t len)
{
	return mfill(uffd, UFFDIO_ZEROPAGE, start, len, 0);
}

/**
 * uffdio_zeropage_run() - map the zero page over as much of [start, start+len) as it can, in
 * order: the bytes mapped from @start in @done, which wakes no one past them
 * Return: uffdio_zeropage()'s (0 when all of it is mapped).
 */
int uffdio_zeropage_run(int uffd, uint64_t start, uint64_t len, uint64_t *done)
{
	return mfill_done(uffd, UFFDIO_ZEROPAGE, start, len, 0, done);
}

/**
 * uffdio_poison() - make the range raise SIGBUS when touched
 * Return: 0 or a negative errno (-EAGAIN as uffdio_continue()).
 */
int uffdio_poison(int uffd, uint64_t start, uint64_t len)
{
	return mfill(uffd, UFFDIO_POISON, start, len, 0);
}

/**
 * uffdio_wake() - wake threads waiting on faults in the range
 * Return: 0 or a negative errno.
 */
int uffdio_wake(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { start, len };

	return xioctl(uffd, UFFDIO_WAKE, &r);
}

/*
 * The rules that end a fault: the ioctl that maps its page, and if that fails, a wake, so that
 * the faulting thread faults again rather than waits for ever (unless its mm is gone: -ESRCH).
 */

/**
 * uffdio_resolve_zero() - end a fault with zero pages over [start, start+len)
 * Return: uffdio_zeropage()'s.
 */
int uffdio_resolve_zero(int uffd, uint64_t start, uint64_t len)
{
	int ret = uffdio_zeropage(uffd, start, len);

	if (ret < 0 && ret != -ESRCH)
		uffdio_wake(uffd, start, len);
	return ret;
}

/**
 * uffdio_resolve_continue() - end a fault by mapping the cache pages of [start, start+len)
 * @wp: map them write-protected
 *
 * -EFAULT (a page is not in the cache) wakes no one: the caller fills the page and ends the
 * fault then.
 *
 * Return: uffdio_continue()'s.
 */
int uffdio_resolve_continue(int uffd, uint64_t start, uint64_t len, bool wp)
{
	int ret = uffdio_continue(uffd, start, len, wp);

	if (ret < 0 && ret != -ESRCH && ret != -EFAULT)
		uffdio_wake(uffd, start, len);
	return ret;
}

/**
 * uffdio_resolve_unprotect() - end a write-protect fault: lift the protection of [start,
 * start+len), which wakes the writer
 * Return: uffdio_writeprotect()'s.
 */
int uffdio_resolve_unprotect(int uffd, uint64_t start, uint64_t len)
{
	int ret = uffdio_writeprotect(uffd, start, len, false);

	if (ret < 0 && ret != -ESRCH)
		uffdio_wake(uffd, start, len);
	return ret;
}

/**
 * uffdio_pagemap_entry() - the /proc/PID/pagemap entry of the page at @addr, read from @fd
 * Return: 0, or -EIO when it could not be read (@e is then 0).
 */
int uffdio_pagemap_entry(int fd, uint64_t addr, uint64_t *e)
{
	*e = 0;
	if (fd < 0 || pread(fd, e, sizeof(*e), (off_t)((addr >> UPAGER_PAGE_SHIFT) * sizeof(*e))) !=
			      (ssize_t)sizeof(*e))
		return -EIO;
	return 0;
}

/* Whether the client's page at addr is in its page tables (pagemap bit 63); true if unknown. */
static bool page_mapped(const struct mm_mark *m, uint64_t addr)
{
	_cleanup_close_ int fd = mm_open(m, "pagemap");
	uint64_t e;

	if (fd < 0 || uffdio_pagemap_entry(fd, addr, &e) < 0)
		return true;
	return e >> 63;
}

/**
 * uffdio_sigbus() - answer a fault at @addr with SIGBUS (UFFDIO_POISON)
 * @uffd: the client's userfaultfd
 * @addr: the faulting page
 * @m: the client's pid and the mark of its memory (mm.c); pid 0 if not known
 *
 * UFFDIO_POISON refuses any page table entry (EEXIST), the marker that write-protecting a page
 * not mapped yet leaves in a shared mapping included (write-back protects every page of a
 * mapping, mapped or not, see space_protect_object() in space.c). Such a marker is dropped first, by lifting
 * the protection of that one page. Whatever fails, the faulting thread is woken: it faults again,
 * or meets the poison; left waiting, it would wait for ever, even after its mapping is gone.
 */
void uffdio_sigbus(int uffd, uint64_t addr, struct mm_mark m)
{
	int ret = uffdio_poison(uffd, addr, UPAGER_PAGE_SIZE);

	if (ret == -EEXIST && !page_mapped(&m, addr)) {
		uffdio_writeprotect(uffd, addr, UPAGER_PAGE_SIZE, false);
		ret = uffdio_poison(uffd, addr, UPAGER_PAGE_SIZE);
	}
	if (ret < 0 && ret != -ESRCH) {
		/* Not mapped any more (-ENOENT) or mapped meanwhile (-EEXIST): nothing to report. */
		if (ret != -ENOENT && ret != -EEXIST)
			log_limited(LOG_WARNING, "UFFDIO_POISON at %#" PRIx64 " of pid %d: %s",
				    addr, (int)m.pid, strerror(-ret));
		uffdio_wake(uffd, addr, UPAGER_PAGE_SIZE);
	}
}

/**
 * uffdio_lowest_addr() - the lowest address a process may map (vm.mmap_min_addr, at least a page)
 */
uint64_t uffdio_lowest_addr(void)
{
	static uint64_t lowest;

	if (lowest == 0) {
		unsigned long v = 0x10000;
		FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "re");

		if (f) {
			if (fscanf(f, "%lu", &v) != 1)
				v = 0x10000;
			fclose(f);
		}
		lowest = ALIGN_UP((uint64_t)MAX(v, UPAGER_PAGE_SIZE), UPAGER_PAGE_SIZE);
	}
	return lowest;
}

/**
 * uffdio_alive() - whether the mm behind a userfaultfd still exists
 * @uffd: the descriptor
 * @addr: a page that no range registered on @uffd holds
 *
 * Asks for a zero page at @addr: the kernel checks the mm before it looks for the address, and
 * then finds nothing of the descriptor's there and maps nothing.
 *
 * Return: 1 while the mm lives, 0 once it is gone.
 */
int uffdio_alive(int uffd, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { addr, UPAGER_PAGE_SIZE } };

	/* No retry: a pending event (-EAGAIN) says as well that the mm lives. */
	return xioctl(uffd, UFFDIO_ZEROPAGE, &z) != -ESRCH;
}

/**
 * uffdio_probe_features() - features this kernel offers, asked on a throw-away userfaultfd
 * Return: the UFFD_FEATURE_* mask, 0 if userfaultfd is not available at all.
 */
uint64_t uffdio_probe_features(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	_cleanup_close_ int fd = -1;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return 0;
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return 0;
	return api.features;
}

/**
 * uffdio_feature_allowed() - whether this process may enable @feature (EVENT_FORK needs
 * CAP_SYS_PTRACE), asked on a throw-away userfaultfd
 * Return: true if UFFDIO_API with @feature succeeds.
 */
bool uffdio_feature_allowed(uint64_t feature)
{
	struct uffdio_api api = { .api = UFFD_API, .features = feature };
	_cleanup_close_ int fd = -1;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	return fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0;
}
