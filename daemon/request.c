// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The requests a client sends, one handler each: HELLO, OBJECT_OPEN, REGION_ADD, MUNMAP, MSYNC,
 * REMAP, CONTROL, GROWTH_LIMIT, RESUME (LIST and STATS are report.c's). A handler acts only on
 * its session's own space, and ends in one of the outcomes of session.h: a status to reply with,
 * REQUEST_REPLIED, or REQUEST_LATER when a worker, a populate or write-backs answer later
 * (session_resume()).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/stat.h"
#include "common/fdseal.h"
#include "common/macro.h"
#include "common/mman.h"
#include "context.h"
#include "events.h"
#include "fault.h"
#include "channel.h"
#include "grow.h"
#include "limits.h"
#include "log.h"
#include "object.h"
#include "populate.h"
#include "proto/codec.h"
#include "report.h"
#include "private.h"
#include "request.h"
#include "resume.h"
#include "session.h"
#include "space.h"
#include "uffdio.h"
#include "view-copy.h"
#include "view.h"
#include "watch.h"
#include "worker.h"

#define WANT_FEATURES                                                                       \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |   \
	 UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM | \
	 UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_POISON | UFFD_FEATURE_PAGEFAULT_FLAG_WP |    \
	 UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_MOVE)

static bool is_userfaultfd(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

static int do_hello(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	uint32_t flags = req->u.hello.flags;
	struct mm_mark mark = { 0 };
	uint64_t features = 0;
	int ret, uffd = -1;

	if (req->u.hello.version_min > UPAGER_PROTO_VERSION ||
	    req->u.hello.version_max < UPAGER_PROTO_VERSION_MIN)
		return -EPROTONOSUPPORT;
	if (__builtin_popcount(flags & ~(uint32_t)UPAGER_HELLO_SOFT) != 1 ||
	    (flags & UPAGER_HELLO_SOFT && flags & UPAGER_HELLO_CTL))
		return -EINVAL;
	if (flags & (UPAGER_HELLO_UFFD | UPAGER_HELLO_RESUME)) {
		uint64_t token = req->u.hello.token_addr;
		struct space *sp;

		if (n_fds != 1 || !is_userfaultfd(fds[0]))
			return -EBADF;
		if (!token || !IS_ALIGNED(token, UPAGER_PAGE_SIZE))
			return -EINVAL;
		s->resuming = flags & UPAGER_HELLO_RESUME;
		sp = s->resuming ? space_find_by_pid(s->d, s->pid) : NULL;
		if (sp) {
			/* Only the connection broke: this daemon serves the space still. */
			s->space = space_ref(sp);
			sp->attached = true;
			s->resumed_space = true;
			features = sp->features;
			goto done;
		}
		features = WANT_FEATURES & s->d->uffd_features;
		ret = uffdio_api(fds[0], features, &features);
		if (ret == -EINVAL && uffdio_register(fds[0], token, UPAGER_PAGE_SIZE,
						      UFFDIO_REGISTER_MODE_MISSING) == 0)
			/* The request again, after the daemon that did UFFDIO_API crashed. */
			ret = 0;
		if (ret < 0)
			return ret;
		ret = uffdio_register(fds[0], token, UPAGER_PAGE_SIZE,
				      UFFDIO_REGISTER_MODE_MISSING);
		if (ret == 0)
			ret = limits_process(s->d, s->uid);
		if (ret < 0)
			return ret;
		/* The userfaultfd must be the connected process's memory (mm.c): marked through
		 * it, the mark must show through the pid. */
		mark.token = token;
		mark.uid = s->uid;
		ret = mm_mark_put(&mark, fds[0], true);
		if (ret < 0)
			return ret == -EEXIST ? -EINVAL : ret;
		if (!mm_mark_seen(&mark, s->pid)) {
			log_limited(
				LOG_WARNING,
				"pid %d sent a userfaultfd of another process's memory: refused",
				(int)s->pid);
			return -EPERM;
		}
		ret = space_new(s->d, fd_take(&fds[0]), s->pid, s->uid, token, &s->space);
		if (ret < 0)
			return ret;
		s->space->mark_seed[0] = mark.seed[0];
		s->space->mark_seed[1] = mark.seed[1];
		s->space->features = features;
		s->space->attached = true;
		space_mark(s->space);
		/* The regions come first: a fault read now would find none. */
		if (s->resuming)
			space_hold(s->space);
	} else if (flags & UPAGER_HELLO_FORKED) {
		struct space *sp = space_find_by_pid(s->d, s->pid);

		if (n_fds)
			return -EBADF;
		if (!sp)
			return -ESRCH;
		s->space = space_ref(sp);
		sp->attached = true;
		/*
		 * The child's own userfaultfd, as a process that connected itself has one; not to
		 * a child that changed its uid since the fork: its parent may have made one that
		 * handles the kernel's faults too, which an unprivileged process may not hold.
		 */
		if (sp->uid == s->uid)
			uffd = sp->uffd;
		sp->uid = s->uid; /* the child may have changed its uid since the fork */
		features = sp->features;
	} else {
		if (n_fds)
			return -EBADF;
		s->ctl = true;
	}
done:
	if (flags & UPAGER_HELLO_SOFT)
		session_set_soft(s);
	s->hello = true;
	m.u.hello_reply.version = UPAGER_PROTO_VERSION;
	m.u.hello_reply.page_size = UPAGER_PAGE_SIZE;
	m.u.hello_reply.features = features;
	return session_reply(s, &m, 0, &uffd, uffd >= 0) < 0 ? -EPIPE : REQUEST_REPLIED;
}

static bool map_shared(uint32_t flags)
{
	uint32_t type = flags & MAP_TYPE;

	return type == MAP_SHARED || type == MAP_SHARED_VALIDATE;
}

/* What a mapping @po may do with the client's file @fd: -EACCES or -EPERM if not what it asks. */
static int check_file_fd(const struct pending_open *po, int fd, bool *writable_fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return neg_errno();
	if ((fl & O_ACCMODE) == O_WRONLY || (fl & O_PATH))
		return -EACCES;
	*writable_fd = (fl & O_ACCMODE) == O_RDWR;
	if (po->shared && (po->prot & PROT_WRITE) && !*writable_fd)
		return -EACCES;
	/* A file sealed against writes is one the client may not write through a mapping. */
	if (*writable_fd && fd_write_sealed(fd)) {
		if (po->shared && (po->prot & PROT_WRITE))
			return -EPERM;
		*writable_fd = false;
	}
	return 0;
}

/*
 * The rest of an OBJECT_OPEN once its object is had (@po->obj, a reference the call takes): the
 * reply with a descriptor of the cache. Return: 1 (replied) or a negative errno.
 */
static int object_open_reply(struct session *s, const struct upager_msg *req,
			     struct pending_open *po, bool writable_fd)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	_cleanup_close_ int memfd = -1;
	int ret;

	/* A client that may not write the file gets a descriptor that cannot write the cache;
	 * userfaultfd registers a shared mapping only if it may write, so that one maps it private. */
	ret = object_cover(po->obj, po->offset + po->length);
	memfd = ret < 0 ? ret : object_reopen_memfd(po->obj, writable_fd);
	if (memfd < 0) {
		object_unref(po->obj);
		return memfd;
	}
	m.u.object_open_reply.object_id = po->obj->id;
	m.u.object_open_reply.map_type = po->shared && writable_fd ? MAP_SHARED : MAP_PRIVATE;
	m.u.object_open_reply.object_size = po->obj->size;
	po->shared = m.u.object_open_reply.map_type == MAP_SHARED;
	/* Entered before the reply, so that the tables saved with the reply hold it. */
	s->opens[s->n_opens++] = *po;
	session_open_changed(s, s->n_opens - 1);
	s->last.fd = REPLY_FD_OBJECT;
	s->last.fd_id = po->obj->id;
	s->last.fd_writable = writable_fd;
	ret = session_reply(s, &m, 0, &memfd, 1);
	if (ret < 0) {
		s->n_opens--;
		session_open_changed(s, s->n_opens);
		object_unref(po->obj);
		return ret;
	}
	return REQUEST_REPLIED;
}

/*
 * A request that needs the calls on a client's file that may block (its status, the daemon's own
 * descriptions of it: file_access_probe()): they run in a worker thread, and the request goes on
 * on the loop in then(), whose result is the reply (OBJECT_OPEN, RESUME of a file).
 */
struct probe_job {
	struct worker_job job;
	struct session *s; /* opening: the session waits for the answer */
	struct upager_msg req;
	struct pending_open po;
	bool writable_fd;
	int client_fd; /* a duplicate of the client's */
	int memfd; /* RESUME: a duplicate of the cache the client hands back; else -1 */
	struct file_access fa;
	uint64_t watch_epoch; /* watch_epoch() when the probe started */
	int (*then)(struct probe_job *pj);
};

static void probe_run(struct worker_job *job)
{
	struct probe_job *pj = container_of(job, struct probe_job, job);

	file_access_probe(pj->client_fd, &pj->fa);
}

static void probe_free(struct worker_job *job)
{
	struct probe_job *pj = container_of(job, struct probe_job, job);

	file_access_release(&pj->fa);
	closep(&pj->client_fd);
	closep(&pj->memfd);
	free(pj);
}

static void probe_done(struct worker_job *job, int status)
{
	struct probe_job *pj = container_of(job, struct probe_job, job);
	struct session *s = pj->s;
	int ret;

	s->opening = false;
	if (s->closing) {
		session_resume(s, &pj->req, -ECANCELED);
		return;
	}
	/* A file whose file system did not answer in time: the client may try again. */
	ret = status == -ETIMEDOUT ? -EAGAIN : status;
	if (ret == 0)
		ret = pj->then(pj);
	if (ret != REQUEST_LATER)
		session_resume(s, &pj->req, ret);
}

/* Probe the client's @client_fd in a worker thread, then(): the reply comes from probe_done(). */
static int probe_start(struct session *s, const struct upager_msg *req,
		       const struct pending_open *po, bool writable_fd, int client_fd, int memfd,
		       int (*then)(struct probe_job *pj))
{
	struct probe_job *pj = calloc(1, sizeof(*pj));
	int ret;

	if (!pj)
		return -ENOMEM;
	pj->fa.reader = -1;
	pj->client_fd = fcntl(client_fd, F_DUPFD_CLOEXEC, 3);
	pj->memfd = memfd >= 0 ? fcntl(memfd, F_DUPFD_CLOEXEC, 3) : -1;
	if (pj->client_fd < 0 || (memfd >= 0 && pj->memfd < 0)) {
		ret = neg_errno();
		probe_free(&pj->job);
		return ret;
	}
	pj->job = (struct worker_job){ .run = probe_run,
				       .done = probe_done,
				       .free = probe_free,
				       .owner = s->uid,
				       .timeout_ms = s->d->config.file_timeout_ms };
	pj->s = s;
	pj->req = *req;
	pj->po = *po;
	pj->writable_fd = writable_fd;
	pj->watch_epoch = watch_epoch(s->d->watch);
	pj->then = then;
	ret = worker_submit(s->d->cache.workers, &pj->job);
	if (ret < 0) {
		probe_free(&pj->job);
		return ret;
	}
	s->opening = true;
	return REQUEST_LATER;
}

/*
 * Whether the probe's reader was opened while no pre-content mark of the daemon's was on the file
 * (watch_object()), the kernel deciding at open: if an object of the file lost its mark while the
 * probe ran, the reader is opened again now, before the file's new object (if any) marks it.
 */
static bool probe_reader_unmarked(struct probe_job *pj)
{
	if (pj->fa.err < 0 || !pj->fa.own)
		return false;
	return watch_epoch(pj->s->d->watch) == pj->watch_epoch || file_access_reopen(&pj->fa) == 0;
}

/* OBJECT_OPEN of a file, once its probe is done. */
static int object_open_probed(struct probe_job *pj)
{
	struct session *s = pj->s;
	struct pending_open *po = &pj->po;
	bool unmarked = probe_reader_unmarked(pj);
	int ret = 0;

	if (pj->fa.err == 0 && !object_find_file(&s->d->cache, &pj->fa.st))
		ret = limits_object(s->d, s->uid, (uint64_t)pj->fa.st.st_size);
	if (ret == 0)
		ret = object_open_file(&s->d->cache, &pj->fa, s->uid, &po->obj);
	if (ret == 0) {
		watch_object(s->d->watch, po->obj, unmarked);
		po->may_write = po->shared && pj->writable_fd;
		if (po->may_write && po->obj->fd_write < 0) {
			/* Writes could never be written back: refuse rather than lose them. */
			object_unref(po->obj);
			ret = -EACCES;
		}
	}
	if (ret == 0)
		ret = object_open_reply(s, &pj->req, po, pj->writable_fd);
	return ret;
}

static int do_object_open(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds)
{
	struct pending_open po = {
		.prot = req->u.object_open.prot,
		.flags = req->u.object_open.flags,
		.offset = req->u.object_open.offset,
		.length = req->u.object_open.length,
	};
	int ret;

	if (!s->space)
		return -EPERM;
	if (s->n_opens == MAX_PENDING_OPENS) {
		/* A client whose mmap(2) of the memfd failed never claims its open: forget the oldest. */
		object_unref(s->opens[0].obj);
		memmove(&s->opens[0], &s->opens[1], (MAX_PENDING_OPENS - 1) * sizeof(s->opens[0]));
		s->n_opens--;
		for (size_t i = 0; i < MAX_PENDING_OPENS; i++)
			session_open_changed(s, i);
	}
	if (po.length == 0 || !IS_ALIGNED(po.offset, UPAGER_PAGE_SIZE) ||
	    po.offset + po.length < po.offset)
		return -EINVAL;
	/* Refused before the client maps anything; REGION_ADD checks again. */
	ret = limits_mapping(s->d, s->space->uid, po.length);
	if (ret < 0)
		return ret;
	po.shared = map_shared(po.flags);

	if (req->u.object_open.kind == UPAGER_OBJECT_FILE) {
		bool writable_fd;

		if (n_fds != 1)
			return -EBADF;
		ret = check_file_fd(&po, fds[0], &writable_fd);
		if (ret < 0)
			return ret;
		return probe_start(s, req, &po, writable_fd, fds[0], -1, object_open_probed);
	}
	if (n_fds)
		return -EBADF;
	if (!po.shared)
		return -EINVAL;
	ret = limits_object(s->d, s->uid, po.length);
	if (ret < 0)
		return ret;
	ret = object_new_anon(&s->d->cache, po.length, s->uid, &po.obj);
	if (ret < 0)
		return ret;
	/* Nothing to write back, but writes to track all the same once a nonlinear mapping holds
	 * copies of its pages (view.c). */
	po.may_write = true;
	return object_open_reply(s, req, &po, true);
}

static int do_region_add(struct session *s, const struct upager_msg *req)
{
	const typeof(req->u.region_add) *ra = &req->u.region_add;
	struct region r = {
		.start = ra->addr,
		.length = ALIGN_UP(ra->length, UPAGER_PAGE_SIZE),
		.offset = ra->offset,
		.prot = ra->prot,
		.flags = ra->flags,
		.ra_next =
			ra->offset >> UPAGER_PAGE_SHIFT, /* a reader from the start is sequential */
		.base = ra->addr,
	};
	uint64_t mode = UFFDIO_REGISTER_MODE_MISSING;
	int ret;

	if (!s->space)
		return -EPERM;
	/* Address 0 is the client's to map (the kernel checked vm.mmap_min_addr). */
	if (!IS_ALIGNED(r.start, UPAGER_PAGE_SIZE) || r.length == 0 || r.start + r.length < r.start)
		return -EINVAL;
	ret = limits_mapping(s->d, s->space->uid, r.length);
	if (ret < 0)
		return ret;
	if (ra->object_id) {
		size_t i;

		for (i = 0; i < s->n_opens; i++) {
			struct pending_open *po = &s->opens[i];

			if (po->obj->id == ra->object_id && po->offset == ra->offset &&
			    po->length == ra->length && po->prot == ra->prot &&
			    po->flags == ra->flags)
				break;
		}
		if (i == s->n_opens)
			return -ENOENT;
		r.obj = s->opens[i].obj;
		r.shared = s->opens[i].shared;
		r.may_write = s->opens[i].may_write;
		s->opens[i] = s->opens[--s->n_opens];
		session_open_changed(s, i);
		session_open_changed(s, s->n_opens);
		mode |= UFFDIO_REGISTER_MODE_MINOR;
		/* Write-protect mode serves read-only views of writable files, and pages that have
		 * copies in nonlinear mappings (view.c). */
		if (r.may_write && (s->space->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)) {
			mode |= UFFDIO_REGISTER_MODE_WP;
			r.wp = !(r.prot & PROT_WRITE);
			if (!r.wp) {
				r.obj->linear_writers++;
				object_mark(r.obj);
			}
		} else if (region_keeps_copies(s->space, &r)) {
			/* A private mapping: the first write to each page, which makes the
			 * process's own copy of it, comes here first (private.c). */
			mode |= UFFDIO_REGISTER_MODE_WP;
		}
	} else if (!map_private_anon((int)ra->flags)) {
		return -EINVAL;
	} else if ((s->space->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) &&
		   !(ra->flags & MAP_GROWSDOWN)) {
		/* Pages on their way to the swap store are write-protected (private.c). */
		mode |= UFFDIO_REGISTER_MODE_WP;
	}
	if (ra->guard_addr || ra->sentinel_addr || ra->max_length) {
		/* MAP_GROWSDOWN: the guard page sits right below, the sentinel below it. */
		if (!(ra->flags & MAP_GROWSDOWN) || ra->object_id ||
		    (ra->guard_addr && ra->guard_addr != r.start - UPAGER_PAGE_SIZE) ||
		    (ra->sentinel_addr &&
		     (!ra->guard_addr || ra->sentinel_addr != ra->guard_addr - UPAGER_PAGE_SIZE)))
			return -EINVAL;
		r.guard = ra->guard_addr;
		r.sentinel = ra->sentinel_addr;
		r.max_length = ALIGN_UP(ra->max_length, UPAGER_PAGE_SIZE);
	}

	ret = uffdio_register(s->space->uffd, r.guard ? r.guard : r.start,
			      r.length + (r.guard ? UPAGER_PAGE_SIZE : 0), mode);
	/* The sentinel is registered too, so that an unmap of it comes as an event. */
	if (ret == 0 && r.sentinel &&
	    uffdio_register(s->space->uffd, r.sentinel, UPAGER_PAGE_SIZE,
			    UFFDIO_REGISTER_MODE_MISSING) < 0)
		r.sentinel = 0;
	if (ret < 0) {
		object_unref(r.obj);
		return ret;
	}
	ret = space_add_region(s->space, &r);
	/* MAP_LOCKED populates as well, MAP_NONBLOCK or not, as in Linux. */
	if (ret < 0 || !(ra->flags & (MAP_POPULATE | MAP_LOCKED)))
		return ret;
	ret = populate_region(s->space, r.start,
			      (ra->flags & MAP_NONBLOCK) && !(ra->flags & MAP_LOCKED),
			      session_populated, s);
	if (ret != 0)
		return 0; /* populated, or not: a failure to populate does not fail the call */
	/* Reply when the reads are done; read nothing else from this client meanwhile. */
	return session_wait_populate(s, req);
}

/* The write-backs an msync or munmap waited for are over: its reply. */
static void wb_over(struct wb_wait *w)
{
	struct session *s = container_of(w, struct session, wb);
	int ret = w->ret;

	s->syncing = false;
	if (s->closing) {
		session_resume(s, &s->wb_req, -ECANCELED);
		return;
	}
	/* A munmap's reply names the range; write-back errors are msync's to report. */
	if (s->wb_req.op == UPAGER_OP_MUNMAP)
		ret = session_reply(s, &s->wb_reply, 0, NULL, 0) < 0 ? -EPIPE : REQUEST_REPLIED;
	session_resume(s, &s->wb_req, ret);
}

/* Before a request asks for write-backs: the session waits for them (holding one count). */
static void wb_begin(struct session *s, const struct upager_msg *req)
{
	s->wb = (struct wb_wait){ .pending = 1,
				  .reports = req->op == UPAGER_OP_MSYNC,
				  .done = wb_over };
	s->wb_req = *req;
}

/*
 * After: REQUEST_LATER if write-backs are under way (wb_over() replies), else @ret or the first
 * error of those that are over.
 */
static int wb_end(struct session *s, int ret)
{
	if (ret < 0 && s->wb.ret == 0)
		s->wb.ret = ret;
	if (--s->wb.pending == 0)
		return s->wb.ret;
	s->syncing = true;
	return REQUEST_LATER;
}

/*
 * The mapping a RESUME hands back, once its object is known: registered again and entered as
 * REGION_ADD would.
 */
static int resume_region(struct session *s, const struct upager_msg *req, struct pending_open *po,
			 bool writable_fd)
{
	const typeof(req->u.resume) *rs = &req->u.resume;
	struct upager_msg ra = { .op = UPAGER_OP_REGION_ADD, .seq = req->seq };

	if (po->obj) {
		po->may_write = po->shared && writable_fd;
		po->shared = po->may_write;
		if ((po->may_write && po->obj->kind == OBJECT_FILE && po->obj->fd_write < 0) ||
		    s->n_opens == MAX_PENDING_OPENS) {
			object_unref(po->obj);
			return -EACCES;
		}
		s->opens[s->n_opens++] = *po;
		session_open_changed(s, s->n_opens - 1);
		ra.u.region_add.object_id = po->obj->id;
	}
	ra.u.region_add.addr = rs->addr;
	ra.u.region_add.length = rs->length;
	ra.u.region_add.offset = rs->offset;
	ra.u.region_add.prot = rs->prot;
	ra.u.region_add.flags = po->flags;
	return do_region_add(s, &ra);
}

/* RESUME of a file's mapping, once its probe is done. */
static int resume_probed(struct probe_job *pj)
{
	bool unmarked = probe_reader_unmarked(pj);
	int ret = resume_object(pj->s->d, OBJECT_FILE, &pj->fa, pj->memfd, pj->writable_fd,
				&pj->po.obj);

	if (ret == 0)
		watch_object(pj->s->d->watch, pj->po.obj, unmarked);
	return ret < 0 ? ret : resume_region(pj->s, &pj->req, &pj->po, pj->writable_fd);
}

/*
 * RESUME: a mapping of the client of a daemon that died, with the memfd it maps. See
 * docs/design.md, "When the daemon dies".
 */
static int do_resume(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds)
{
	const typeof(req->u.resume) *rs = &req->u.resume;
	uint32_t flags = rs->flags & ~(uint32_t)(MAP_POPULATE | MAP_LOCKED);
	struct pending_open po = {
		.prot = rs->prot,
		.flags = flags,
		.offset = rs->offset,
		.length = rs->length,
		.shared = map_shared(flags),
	};
	bool writable_fd = true;
	int ret = 0;

	if (!s->resuming)
		return -EPERM;
	if (rs->kind == UPAGER_RESUME_END) {
		s->resuming = false;
		if (!s->resumed_space)
			space_release(s->space);
		return 0;
	}
	if (s->resumed_space)
		return 0;
	if (rs->kind == UPAGER_RESUME_ANON_PRIVATE) {
		if (n_fds)
			return -EBADF;
	} else if (rs->kind == UPAGER_OBJECT_FILE) {
		if (n_fds != 2)
			return -EBADF;
		ret = check_file_fd(&po, fds[0], &writable_fd);
		if (ret < 0)
			return ret;
		return probe_start(s, req, &po, writable_fd, fds[0], fds[1], resume_probed);
	} else {
		if (n_fds != 1)
			return -EBADF;
		if (!po.shared)
			return -EINVAL;
		ret = resume_object(s->d, OBJECT_ANON, NULL, fds[0], true, &po.obj);
	}
	if (ret < 0)
		return ret;
	return resume_region(s, req, &po, writable_fd);
}

/*
 * The client wrote bytes [off, off+len) of the file of @fds[0] (len 0: changed its size) with
 * write(2) or the like, and the call returned: the cache follows before the reply (as
 * object_refresh()), whoever maps the file. The descriptor must be open for writing, as the
 * write's was: a client may so make the cache read again only what it could change itself.
 */
static int file_written(struct session *s, uint64_t off, uint64_t len, const int *fds, size_t n_fds)
{
	struct object *o;
	struct stat st;
	uint64_t first;
	int fl;

	if (n_fds != 1 || (fl = fcntl(fds[0], F_GETFL)) < 0 || (fl & O_PATH) ||
	    (fl & O_ACCMODE) == O_RDONLY || fstat_cached(fds[0], &st) < 0 || !S_ISREG(st.st_mode))
		return -EBADF;
	if (off + len < off)
		return -EINVAL;
	o = object_find_file(&s->d->cache, &st);
	if (!o)
		return 0;
	first = off >> UPAGER_PAGE_SHIFT;
	return object_refresh(
		o, first,
		len ? (ALIGN_UP(off + len, UPAGER_PAGE_SIZE) >> UPAGER_PAGE_SHIFT) - first : 0);
}

static int do_msync(struct session *s, const struct upager_msg *req, const int *fds, size_t n_fds)
{
	uint64_t a = req->u.msync.addr, len = req->u.msync.length;

	if (!s->space)
		return -EPERM;
	if (req->u.msync.flags == UPAGER_MSYNC_WRITTEN_FILE)
		return file_written(s, a, len, fds, n_fds);
	if (!IS_ALIGNED(a, UPAGER_PAGE_SIZE) || a + len < a)
		return -EINVAL;
	if (req->u.msync.flags == UPAGER_MSYNC_WRITTEN)
		return space_refresh(s->space, a, a + len);
	/* MS_INVALIDATE: what others changed in the file by now shows in the mappings; the range's
	 * clean pages are read again even where the file's times cannot tell others' change from
	 * the daemon's own write-backs. */
	if (req->u.msync.flags & MS_INVALIDATE) {
		watch_sync(s->d->watch);
		space_invalidate(s->space, a, a + len);
	}
	wb_begin(s, req);
	return wb_end(s, space_msync(s->space, a, a + len, req->u.msync.flags & MS_SYNC, &s->wb));
}

static int do_munmap(struct session *s, const struct upager_msg *req)
{
	uint64_t a = req->u.range.addr, len = ALIGN_UP(req->u.range.length, UPAGER_PAGE_SIZE);
	struct upager_msg rep;
	int ret;

	if (!s->space)
		return -EPERM;
	if (!IS_ALIGNED(a, UPAGER_PAGE_SIZE) || len == 0 || a + len < a)
		return -EINVAL;
	/* The reply names where the client's unmap starts: lower for a grown MAP_GROWSDOWN. */
	a = grow_munmap_start(s->space, a, a + len);
	rep = *req;
	rep.u.range.addr = a;
	rep.u.range.length = req->u.range.addr + len - a;
	s->wb_reply = rep;
	/* The reply waits for the write-back of what the range may have dirtied. */
	wb_begin(s, req);
	private_forget(s->space, a, req->u.range.addr + len);
	ret = space_drop_range(s->space, a, req->u.range.addr + len, &s->wb);
	ret = wb_end(s, ret < 0 ? ret : 0);
	if (ret == REQUEST_LATER || ret < 0)
		return ret;
	return session_reply(s, &rep, 0, NULL, 0) < 0 ? -EPIPE : REQUEST_REPLIED;
}

/*
 * The client's control channel, and its spare area. The reply carries a descriptor of the
 * client's own /proc/PID/pagemap, which its control thread reads at each DROP: a process that
 * changed its user ID without an execve(2) is not dumpable, and may not open its own. Opened by
 * the daemon, which holds no CAP_SYS_ADMIN by then (daemon.c), it shows no page frame numbers;
 * and it is opened through the space's mark (mm_open()), so it is the memory of the client's
 * userfaultfd, whatever process the pid names later. A reply sent again after a takeover goes
 * without it: the client opens its own then.
 */
static int do_control(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds)
{
	struct upager_msg rep = { .op = req->op, .seq = req->seq };
	_cleanup_close_ int pagemap = -1;
	struct mm_mark m;
	struct stat st;
	int ret;

	if (!s->space)
		return -EPERM;
	if (n_fds != 1 || fstat(fds[0], &st) < 0 || !S_ISSOCK(st.st_mode))
		return -EBADF;
	ret = channel_attach(s->space, fds[0]);
	fds[0] = -1; /* taken, also on failure */
	if (ret == 0)
		ret = private_set_spare(s->space, req->u.range.addr, req->u.range.length);
	if (ret < 0)
		return ret;
	m = space_mm(s->space);
	pagemap = mm_open(&m, "pagemap");
	if (!space_check_alive(s->space))
		return -ESRCH;
	s->last.fd = REPLY_FD_NONE;
	return session_reply(s, &rep, 0, &pagemap, pagemap >= 0) < 0 ? -EPIPE : REQUEST_REPLIED;
}

static int do_growth_limit(struct session *s, const struct upager_msg *req)
{
	struct region *r, *p;

	if (!s->space)
		return -EPERM;
	r = region_find(&s->space->regions, req->u.growth_limit.addr);
	if (!r || !(r->flags & MAP_GROWSDOWN))
		return -EINVAL;
	/* Every piece of the mapping left after a partial munmap is the same mapping. */
	region_for_each(p, &s->space->regions)
	{
		if ((p->flags & MAP_GROWSDOWN) && p->base == r->base) {
			p->max_length = ALIGN_UP(req->u.growth_limit.max_length, UPAGER_PAGE_SIZE);
			space_mark_region(s->space, p);
		}
	}
	return 0;
}

static bool flags_shared(uint32_t flags)
{
	return (flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE;
}

/* Phase 1 of the first remap of a mapping: hand the client a view to map over it. */
static int remap_convert(struct session *s, const struct upager_msg *req, struct region *r)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	_cleanup_close_ int fd = -1, pages_fd = -1, file_fd = -1;
	struct view *v;
	int fds[4];
	int ret;

	ret = limits_view(s->d, s->space->uid);
	if (ret < 0)
		return ret;
	ret = view_new(r->obj, r->length >> UPAGER_PAGE_SHIFT, r->offset >> UPAGER_PAGE_SHIFT,
		       r->may_write, &v);
	if (ret < 0)
		return ret;
	fd = view_reopen_memfd(v);
	if (fd < 0) {
		view_unref(v);
		return fd;
	}
	m.u.remap_reply.convert = 1;
	m.u.remap_reply.start = r->start;
	m.u.remap_reply.length = r->length;
	m.u.remap_reply.prot = r->prot;
	m.u.remap_reply.map_type = r->may_write ? MAP_SHARED : MAP_PRIVATE;
	view_unref(s->converting);
	s->converting = v;
	s->space->converting = r->start;
	space_mark(s->space);
	s->last.fd = REPLY_FD_VIEW;
	s->last.fd_id = v->id;
	fds[0] = fd;
	fds[1] = view_table_fd(v);
	/* A shared view of a file the client may write may have pages copied in by the library
	 * alone: it reads the page states and the file (docs/design.md, "Nonlinear mappings"). */
	if (r->may_write && r->obj->kind == OBJECT_FILE) {
		int states = object_pages_fd(r->obj);

		pages_fd = states < 0 ? states : fd_reopen(states, false);
		file_fd = fd_reopen(r->obj->fd_read, false);
	}
	fds[2] = pages_fd;
	fds[3] = file_fd;
	if (session_reply(s, &m, 0, fds, fds[1] < 0 ? 1 : pages_fd < 0 || file_fd < 0 ? 2 : 4) < 0)
		return -EPIPE;
	return REQUEST_REPLIED;
}

/*
 * Phase 2: the client mapped the view over the region (registered already, by a library that maps
 * it elsewhere first and moves it over); register it and make the region a view's.
 */
static int remap_adopt(struct session *s, struct region *r)
{
	struct view *v = s->converting;
	uint64_t mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
	int ret;

	if (!v || s->space->converting != r->start || r->view ||
	    v->pages != r->length >> UPAGER_PAGE_SHIFT)
		return -EINVAL;
	if (s->space->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
		mode |= UFFDIO_REGISTER_MODE_WP;
	ret = uffdio_register(s->space->uffd, r->start, r->length, mode);
	if (ret < 0)
		return ret;
	/* Whatever a thread of the client touched while the view was not registered goes. */
	fallocate(v->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		  (off_t)(v->pages << UPAGER_PAGE_SHIFT));
	r->view = v;
	r->view_index = 0;
	space_mark_region(s->space, r);
	struct view_host h = space_host(s->space);

	view_attach(v, &h, r->start);
	view_publish(v, true);
	s->converting = NULL;
	s->space->converting = 0;
	space_mark(s->space);
	fault_unpark(s->space);
	return 0;
}

static int do_remap(struct session *s, const struct upager_msg *req)
{
	uint64_t addr = ALIGN_DOWN(req->u.remap.addr, UPAGER_PAGE_SIZE);
	uint64_t size = ALIGN_DOWN(req->u.remap.size, UPAGER_PAGE_SIZE);
	uint64_t pgoff = req->u.remap.pgoff, pages = size >> UPAGER_PAGE_SHIFT;
	struct region *r;
	int ret;

	if (!s->space)
		return -EPERM;
	if (size == 0 || addr + size <= addr)
		return -EINVAL;
	/* A shared mapping of a file or shared anonymous memory (shmem underneath, as Linux's);
	 * of a file opened for writing, as Linux's, which takes one of a file opened for reading
	 * only for private (it clears VM_SHARED). */
	r = region_find(&s->space->regions, addr);
	if (!r || !r->obj || !flags_shared(r->flags) || !r->may_write ||
	    addr + size > region_end(r))
		return -EINVAL;
	if (pgoff + pages < pgoff || pgoff + pages > object_pages(r->obj))
		return -EINVAL;
	if (req->u.remap.phase == 2) {
		ret = remap_adopt(s, r);
		if (ret < 0)
			return ret;
	} else if (!r->view) {
		return remap_convert(s, req, r);
	}
	view_remap(r->view, r->view_index + ((addr - r->start) >> UPAGER_PAGE_SHIFT), pages, pgoff);
	if (req->u.remap.flags & MAP_NONBLOCK)
		return 0; /* as Linux, map nothing: what the library does when it remaps alone */
	ret = view_populate(s->space, addr, pages, session_populated, s);
	if (ret != 0)
		return 0;
	return session_wait_populate(s, req);
}

/**
 * request_handle() - do one request of a session (the daemon's session handler)
 * @s: the session
 * @req: the request, checked by the codec
 * @fds: descriptors that came with it; a handler that keeps one sets its slot to -1
 * @n_fds: how many
 *
 * Return: 0 or a negative errno to reply with, REQUEST_REPLIED, or REQUEST_LATER (see session.h).
 */
int request_handle(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds)
{
	if (req->op == UPAGER_OP_HELLO) {
		if (s->hello)
			return -EALREADY;
		return do_hello(s, req, fds, n_fds);
	}
	if (!s->hello)
		return -ENOTCONN;
	if (n_fds && req->op != UPAGER_OP_OBJECT_OPEN && req->op != UPAGER_OP_CONTROL &&
	    req->op != UPAGER_OP_RESUME && req->op != UPAGER_OP_MSYNC)
		return -EBADF;
	/* Kernel events of the client read ahead of time come first, as if handled as read: an
	 * unmap read before this request names addresses that this request may map anew. */
	if (s->space)
		events_dispatch_queued(s->space);
	switch (req->op) {
	case UPAGER_OP_OBJECT_OPEN:
		return do_object_open(s, req, fds, n_fds);
	case UPAGER_OP_REGION_ADD:
		return do_region_add(s, req);
	case UPAGER_OP_MUNMAP:
		return do_munmap(s, req);
	case UPAGER_OP_MSYNC:
		return do_msync(s, req, fds, n_fds);
	case UPAGER_OP_LIST:
		return report_list(s, req);
	case UPAGER_OP_STATS:
		return report_stats(s, req);
	case UPAGER_OP_REMAP:
		return do_remap(s, req);
	case UPAGER_OP_CONTROL:
		return do_control(s, req, fds, n_fds);
	case UPAGER_OP_GROWTH_LIMIT:
		return do_growth_limit(s, req);
	case UPAGER_OP_RESUME:
		return do_resume(s, req, fds, n_fds);
	default:
		return -EOPNOTSUPP;
	}
}
