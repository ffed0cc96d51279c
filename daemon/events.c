// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The events of a space's userfaultfd, read on the loop and dispatched in order: page faults to the
 * fault path (fault.c), the kernel's events to the region table (fork, mremap, munmap) and to
 * growth (a guard page unmapped). Messages read early, while an ioctl waited for them
 * (events_drain()), are queued on the space and dispatched after what is being done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "closer.h"
#include "common/uffd.h"
#include "context.h"
#include "events.h"
#include "fault.h"
#include "grow.h"
#include "latency.h"
#include "limits.h"
#include "log.h"
#include "private.h"
#include "space.h"
#include "view.h"
#include "vma-flags.h"

#define UFFD_MSG_BATCH 64

/*
 * The thread id of a fault names the process of a forked child's space, if that process's memory
 * shows the space's mark (mm.c): the id is the thread's in its own pid namespace, which need not
 * be the daemon's. The mark goes into the child's token page first (the library maps it with
 * MADV_WIPEONFORK, so a child's is empty); a pid that does not show it stays unknown.
 */
static void learn_pid(struct space *s, uint32_t tid)
{
	char path[64], line[128];
	int tgid = 0;
	FILE *f;

	/* A new mark where the token page is empty: a child's, or one whose mark was taken away. */
	if (space_mm_put(s, true) < 0 && !s->mark_seed[0] && !s->mark_seed[1])
		return;
	snprintf(path, sizeof(path), "/proc/%u/status", tid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	if (tgid > 0 && space_bind_pid(s, tgid))
		log_debug("forked space belongs to pid %d", tgid);
}

/* A range the kernel left out of a child at its fork: a mapping it did not copy (MADV_DONTFORK)
 * has no regions in the child either; one it wiped (MADV_WIPEONFORK) no private pages, nor
 * slots, so that its touches map zeroes. */
static void left_out(void *arg, uint64_t start, uint64_t end, unsigned flags)
{
	struct space *child = arg;

	if (flags & VMA_DONTCOPY) {
		space_drop_range(child, start, end, NULL);
		grow_forget_guards(child, start, end);
	}
	private_forget(child, start, end);
}

static void on_fork(struct space *parent, int ufd)
{
	struct space *child;
	int ret;

	/* One user's processes take at most its share of the daemon's descriptors: a child past
	 * it is not followed, as by a daemon without CAP_SYS_PTRACE (docs/design.md). */
	ret = limits_process(parent->d, parent->uid);
	if (ret < 0)
		log_limited(LOG_WARNING, "pid %d forked past its user's %u processes: not followed",
			    (int)parent->pid, parent->d->config.limits.processes);
	/* Nor is one whose copies of its parent's mappings and private page table would take the
	 * user past its mappings or chunks: each costs the daemon memory. */
	if (ret == 0) {
		ret = limits_fork(parent->d, parent->uid, parent->regions.n,
				  parent->priv.table.n_chunks);
		if (ret < 0)
			log_limited(
				LOG_WARNING,
				"pid %d forked past its user's %u mappings or their page tables: "
				"not followed",
				(int)parent->pid, parent->d->config.limits.mappings);
	}
	if (ret < 0) {
		private_fork_abandon(parent, ufd);
		closer_close_owned(ufd, parent->uid);
		return;
	}
	ret = space_new(parent->d, ufd, 0, parent->uid, parent->token_addr, &child);
	if (ret < 0) {
		log_error("cannot follow a fork of pid %d: %s", (int)parent->pid, strerror(-ret));
		private_fork_abandon(parent, ufd);
		return;
	}
	child->features = parent->features;
	if (parent->soft)
		space_set_soft(child);
	space_mark(child);
	ret = region_table_copy(&child->regions, &parent->regions);
	if (ret < 0)
		log_error("cannot copy the regions of pid %d: %s", (int)parent->pid,
			  strerror(-ret));
	private_fork(parent, child, ufd);
	/* The parent's flags are the child's: it was blocked in fork() until the event was read. */
	struct mm_mark pm = space_mm(parent);

	if (parent->pid > 0)
		ret = vma_flags_of(&pm, VMA_WIPEONFORK | VMA_DONTCOPY, left_out, child);
	if (parent->pid > 0 && ret < 0)
		log_warning("cannot read the mappings of pid %d at its fork: %s", (int)parent->pid,
			    strerror(-ret));
	space_unref(child); /* the loop's reference keeps it */
}

/* Whether @addr of the client is mapped: after a move by mremap(2), only with MREMAP_DONTUNMAP
 * (which the event does not tell). */
static bool still_mapped(const struct space *s, uint64_t addr)
{
	uint64_t start, end;

	return space_vma_at(s, addr, &start, &end);
}

static void dispatch(struct space *s, const struct uffd_msg *m, uint64_t t0)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		if (s->pid == 0 && m->arg.pagefault.feat.ptid)
			learn_pid(s, m->arg.pagefault.feat.ptid);
		fault_handle(s, m->arg.pagefault.address, m->arg.pagefault.flags, t0);
		break;
	case UFFD_EVENT_FORK:
		on_fork(s, (int)m->arg.fork.ufd);
		break;
	case UFFD_EVENT_REMAP:
		if (m->arg.remap.len == 0) {
			/* mremap(old, 0, size, MREMAP_MAYMOVE) of a shared mapping: a second
			 * mapping of its pages, as long as the new VMA (the event says 0). */
			uint64_t start, end;

			if (space_vma_at(s, m->arg.remap.to, &start, &end))
				region_copy(&s->regions, m->arg.remap.from, m->arg.remap.to,
					    end - m->arg.remap.to);
			break;
		}
		region_move(&s->regions, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		private_move(s, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		locked_moved(&s->locked); /* a locked range may have moved */
		/* MREMAP_DONTUNMAP: the old range stays, empty and registered, and faults here. */
		if (still_mapped(s, m->arg.remap.from))
			region_copy(&s->regions, m->arg.remap.to, m->arg.remap.from,
				    m->arg.remap.len);
		struct view_host h = space_host(s);
		struct region *r;

		region_for_each(r, &s->regions)
		{
			if (r->view && r->view->host.id == s->id) {
				view_attach(r->view, &h,
					    r->start - (r->view_index << UPAGER_PAGE_SHIFT));
				view_publish(r->view, false); /* the library's address is stale */
			}
		}
		break;
	case UFFD_EVENT_UNMAP:
		/* The client replacing a mapping by its view (upager_remap_file_pages) keeps it. */
		if (!s->converting || s->converting != m->arg.remove.start)
			space_drop_range(s, m->arg.remove.start, m->arg.remove.end, NULL);
		private_unmap(s, m->arg.remove.start, m->arg.remove.end);
		grow_forget_guards(s, m->arg.remove.start, m->arg.remove.end);
		break;
	case UFFD_EVENT_REMOVE:
		/* MADV_DONTNEED/REMOVE: the pages leave the client; a later touch faults again,
		 * and a private page maps zeroes then, or its object's page; a shared anonymous
		 * page may have left its memfd. */
		private_remove(s, m->arg.remove.start, m->arg.remove.end);
		space_removed(s, m->arg.remove.start, m->arg.remove.end);
		break;
	default:
		log_warning("unknown userfaultfd event %u", m->event);
		break;
	}
}

/*
 * Read what is queued on the space's userfaultfd onto the end of its queue, in one read(2).
 * Return: the number of messages read, 0 if there were none, or a negative errno.
 */
static int read_queue(struct space *s)
{
	struct uffd_msg msgs[UFFD_MSG_BATCH];
	size_t k;
	ssize_t n;
	uint64_t t0;

	if (s->queue_head == s->queue_len)
		s->queue_head = s->queue_len = 0;
	/* Room first: a message read is the kernel's no more, and must not be lost. */
	if (s->queue_cap - s->queue_len < UFFD_MSG_BATCH) {
		size_t cap = s->queue_len + UFFD_MSG_BATCH * 2;
		struct space_msg *q = realloc(s->queue, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		s->queue = q;
		s->queue_cap = cap;
	}
	do
		n = read(s->uffd, msgs, sizeof(msgs));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 && errno != EAGAIN ? neg_errno() : 0;
	t0 = now_ns();
	k = (size_t)n / sizeof(msgs[0]);
	for (size_t i = 0; i < k; i++) {
		s->queue[s->queue_len++] = (struct space_msg){ msgs[i], t0 };
		/* The parent goes on from now: what it holds now is what the child holds. */
		if (msgs[i].event == UFFD_EVENT_FORK)
			private_fork_read(s, (int)msgs[i].arg.fork.ufd);
	}
	return (int)k;
}

/**
 * events_dispatch_queued() - dispatch the messages queued on the space (events_drain()), in order,
 * those queued meanwhile too
 * @s: the space
 */
void events_dispatch_queued(struct space *s)
{
	space_ref(s);
	while (!s->dead && s->queue_head < s->queue_len) {
		/* A copy: dispatching may queue more, and move the queue. */
		struct space_msg m = s->queue[s->queue_head++];

		dispatch(s, &m.msg, m.t0);
	}
	space_unref(s);
}

/* The loop's idle handle, while messages that events_drain() read wait in some space's queue. */
static void on_queued(uv_idle_t *h)
{
	struct daemon *d = h->data;
	struct space *s;

again:
	list_for_each_entry (s, &d->spaces, link)
		if (s->queue_head < s->queue_len) {
			events_dispatch_queued(s);
			goto again; /* the list may have changed */
		}
	uv_idle_stop(h);
}

/**
 * events_drain() - read the messages queued on a client's userfaultfd now, to dispatch them later
 * @data: the daemon
 * @uffd: the userfaultfd of one of its spaces
 *
 * The uffdio_drain_fn of the daemon (uffdio_set_drain()): an ioctl on @uffd met an event of the
 * client's mm that the daemon has not read (the kernel fails the ioctl with EAGAIN until it has).
 * Reading it completes it; the messages read go to the end of the space's queue and are
 * dispatched in order after what is being done now, page faults read with them included.
 *
 * Return: the number of messages read, 0 if none, or a negative errno; -ESTALE if a message
 * queued (read now or before) takes part of [start, start+len) from the mm (len 0: no range).
 */
int events_drain(void *data, int uffd, uint64_t start, uint64_t len)
{
	struct daemon *d = data;
	struct space *s;
	int n;

	list_for_each_entry (s, &d->spaces, link) {
		if (s->uffd != uffd || s->dead)
			continue;
		n = read_queue(s);
		if (n > 0)
			uv_idle_start(&d->queued, on_queued);
		if (len && space_removal_queued(s, start, start + len))
			return -ESTALE;
		return n;
	}
	return 0;
}

/**
 * events_on_uffd() - the space's userfaultfd is readable: read and dispatch until it is empty
 * The daemon's space_hooks.readable, the poll callback of every space.
 */
void events_on_uffd(uv_poll_t *h, int status, int events)
{
	struct space *s = h->data;

	(void)events;
	if (status < 0) {
		space_check_alive(s);
		return;
	}
	space_ref(s);
	while (!s->dead) {
		bool more = true;

		/* What events_drain() read comes first: it was queued before what is queued now. */
		if (s->queue_head == s->queue_len) {
			int n = read_queue(s);

			if (n < 0)
				space_check_alive(s);
			if (n <= 0)
				break;
			/* A read short of a batch emptied the descriptor: what comes later makes it
			 * readable again, and the poll calls back (no read that finds nothing). */
			more = n == UFFD_MSG_BATCH;
		}
		events_dispatch_queued(s);
		if (!more)
			break;
	}
	space_unref(s);
}
