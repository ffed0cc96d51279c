// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Sessions: one per connection. A session reads one datagram at a time, has the codec check it,
 * and answers each request with one reply. A datagram the codec refuses, or a request out of order,
 * closes the connection; a well-formed request that cannot be done gets a reply with a negative
 * errno. A session acts only on its own space (the space of its peer's pid).
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

#include "common/fdmsg.h"
#include "common/fdseal.h"
#include "common/macro.h"
#include "common/uffd.h"
#include "daemon.h"
#include "events.h"
#include "fdstore.h"
#include "grow.h"
#include "limits.h"
#include "log.h"
#include "object.h"
#include "populate.h"
#include "proto/codec.h"
#include "resume.h"
#include "session.h"
#include "space.h"
#include "uffdio.h"
#include "view.h"
#include "worker.h"

#define WANT_FEATURES                                                                       \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |   \
	 UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM | \
	 UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_POISON | UFFD_FEATURE_PAGEFAULT_FLAG_WP |    \
	 UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* dispatch(): the reply comes later, from a worker's answer. */
#define REPLY_LATER 2

static void session_close(struct session *s);
static bool request_end(struct session *s, const struct upager_msg *req, int ret);
static void on_readable(uv_poll_t *h, int status, int events);
static void on_populated(void *userdata);

static bool changes_tables(uint16_t op)
{
	op &= (uint16_t)~UPAGER_OP_REPLY;
	return op != UPAGER_OP_LIST && op != UPAGER_OP_STATS;
}

/* Keep an encoded reply as the last one; the caller set last.fd* if a descriptor goes with it. */
static void remember(struct session *s, const struct upager_msg *m, const uint8_t *msg, int len,
		     size_t n_fds)
{
	if (!changes_tables(m->op))
		return;
	if (!n_fds)
		s->last.fd = REPLY_FD_NONE;
	s->last.seq = m->seq;
	s->last.len = (size_t)len <= sizeof(s->last.msg) ? (uint16_t)len : 0;
	memcpy(s->last.msg, msg, s->last.len);
	daemon_touch(s->d);
}

static int reply(struct session *s, struct upager_msg *m, int status, const int *fds, size_t n_fds)
{
	int len;

	m->op |= UPAGER_OP_REPLY;
	m->version = UPAGER_PROTO_VERSION;
	m->status = status;
	len = upager_msg_encode(s->buf, sizeof(s->buf), m);
	if (len < 0)
		return len;
	remember(s, m, s->buf, len, n_fds);
	/* What the client is told has happened must survive a crash of the daemon. */
	daemon_save(s->d);
	return fdmsg_send(s->fd, s->buf, (size_t)len, fds, n_fds);
}

/*
 * Send the last reply again, with a new descriptor of what went with it (a view's goes with its
 * shared table, the same memfd as before).
 */
static int reply_again(struct session *s)
{
	_cleanup_close_ int fd = -1;
	struct object *o;
	struct view *v = NULL;
	int fds[2];

	if (s->last.fd == REPLY_FD_OBJECT && (o = object_find(s->d, s->last.fd_id)))
		fd = object_reopen_memfd(o, s->last.fd_writable);
	else if (s->last.fd == REPLY_FD_VIEW && (v = view_find(s->d, s->last.fd_id)))
		fd = view_reopen_memfd(v);
	fds[0] = fd;
	fds[1] = v ? view_table_fd(v) : -1;
	return fdmsg_send(s->fd, s->last.msg, s->last.len, fds, fd < 0 ? 0 : fds[1] < 0 ? 1 : 2);
}

/* A reply that waits for a populate counts as given: a daemon that takes over gives it. */
static void remember_status(struct session *s, const struct upager_msg *req, int status)
{
	struct upager_msg m = {
		.op = req->op | UPAGER_OP_REPLY,
		.seq = req->seq,
		.version = UPAGER_PROTO_VERSION,
		.status = status,
	};
	uint8_t buf[sizeof(s->last.msg)];
	int len = upager_msg_encode(buf, sizeof(buf), &m);

	if (len > 0)
		remember(s, &m, buf, len, 0);
}

static int reply_status(struct session *s, const struct upager_msg *req, int status)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };

	return reply(s, &m, status, NULL, 0);
}

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
	uint64_t features = 0;
	int ret;

	if (req->u.hello.version_min > UPAGER_PROTO_VERSION ||
	    req->u.hello.version_max < UPAGER_PROTO_VERSION_MIN)
		return -EPROTONOSUPPORT;
	if (__builtin_popcount(flags) != 1)
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
		if (ret < 0)
			return ret;
		ret = space_new(s->d, fd_take(&fds[0]), s->pid, s->uid, token, &s->space);
		if (ret < 0)
			return ret;
		s->space->features = features;
		s->space->attached = true;
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
		sp->uid = s->uid; /* the child may have changed its uid since the fork */
		features = sp->features;
	} else {
		if (n_fds)
			return -EBADF;
		s->ctl = true;
	}
done:
	s->hello = true;
	m.u.hello_reply.version = UPAGER_PROTO_VERSION;
	m.u.hello_reply.page_size = UPAGER_PAGE_SIZE;
	m.u.hello_reply.features = features;
	return reply(s, &m, 0, NULL, 0) < 0 ? -EPIPE : 1;
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
	memfd = object_reopen_memfd(po->obj, writable_fd);
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
	s->last.fd = REPLY_FD_OBJECT;
	s->last.fd_id = po->obj->id;
	s->last.fd_writable = writable_fd;
	ret = reply(s, &m, 0, &memfd, 1);
	if (ret < 0) {
		s->n_opens--;
		object_unref(po->obj);
		return ret;
	}
	return 1; /* replied */
}

/* An OBJECT_OPEN of a file, waiting for file_access_probe() in a worker thread. */
struct open_job {
	struct worker_job job;
	struct session *s; /* opening: the session waits for the answer */
	struct upager_msg req;
	struct pending_open po;
	bool writable_fd;
	int client_fd; /* a duplicate of the client's */
	struct file_access fa;
};

static void open_run(struct worker_job *job)
{
	struct open_job *oj = container_of(job, struct open_job, job);

	file_access_probe(oj->client_fd, &oj->fa);
}

static void open_free(struct worker_job *job)
{
	struct open_job *oj = container_of(job, struct open_job, job);

	file_access_release(&oj->fa);
	close(oj->client_fd);
	free(oj);
}

static void open_done(struct worker_job *job, int status)
{
	struct open_job *oj = container_of(job, struct open_job, job);
	struct session *s = oj->s;
	struct pending_open *po = &oj->po;
	int ret;

	s->opening = false;
	if (s->closing) {
		session_close(s);
		return;
	}
	/* A file whose file system did not answer in time: the client may try again. */
	ret = status == -ETIMEDOUT ? -EAGAIN : status;
	if (ret == 0 && oj->fa.err == 0 && !object_find_file(s->d, &oj->fa.st))
		ret = limits_object(s->d, s->uid);
	if (ret == 0)
		ret = object_open_file(s->d, &oj->fa, s->uid, &po->obj);
	if (ret == 0) {
		po->may_write = po->shared && oj->writable_fd;
		if (po->may_write && po->obj->fd_write < 0) {
			/* Writes could never be written back: refuse rather than lose them. */
			object_unref(po->obj);
			ret = -EACCES;
		}
	}
	if (ret == 0)
		ret = object_open_reply(s, &oj->req, po, oj->writable_fd);
	if (!request_end(s, &oj->req, ret))
		uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

/* Look the file up in a worker thread: the reply comes from open_done(). */
static int object_open_start(struct session *s, const struct upager_msg *req,
			     const struct pending_open *po, bool writable_fd, int client_fd)
{
	struct open_job *oj = calloc(1, sizeof(*oj));
	int ret;

	if (!oj)
		return -ENOMEM;
	oj->client_fd = fcntl(client_fd, F_DUPFD_CLOEXEC, 3);
	if (oj->client_fd < 0) {
		free(oj);
		return neg_errno();
	}
	oj->job = (struct worker_job){ .run = open_run,
				       .done = open_done,
				       .free = open_free,
				       .owner = s->uid,
				       .timeout_ms = s->d->config.file_timeout_ms };
	oj->s = s;
	oj->req = *req;
	oj->po = *po;
	oj->writable_fd = writable_fd;
	oj->fa.reader = -1;
	ret = worker_submit(s->d->workers, &oj->job);
	if (ret < 0) {
		open_free(&oj->job);
		return ret;
	}
	s->opening = true;
	return REPLY_LATER;
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
		return object_open_start(s, req, &po, writable_fd, fds[0]);
	}
	if (n_fds)
		return -EBADF;
	if (!po.shared)
		return -EINVAL;
	ret = limits_object(s->d, s->uid);
	if (ret < 0)
		return ret;
	ret = object_new_anon(s->d, po.length, s->uid, &po.obj);
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
	if (!r.start || !IS_ALIGNED(r.start, UPAGER_PAGE_SIZE) || r.length == 0 ||
	    r.start + r.length < r.start)
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
		mode |= UFFDIO_REGISTER_MODE_MINOR;
		/* Write-protect mode serves read-only views of writable files, and pages that have
		 * copies in nonlinear mappings (view.c). */
		if (r.may_write && (s->space->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)) {
			mode |= UFFDIO_REGISTER_MODE_WP;
			r.wp = !(r.prot & PROT_WRITE);
			if (!r.wp)
				r.obj->linear_writers++;
		}
	} else if ((ra->flags & MAP_TYPE) != MAP_PRIVATE || !(ra->flags & MAP_ANONYMOUS)) {
		return -EINVAL;
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
			      (ra->flags & MAP_NONBLOCK) && !(ra->flags & MAP_LOCKED), on_populated,
			      s);
	if (ret != 0)
		return 0; /* populated, or not: a failure to populate does not fail the call */
	/* Reply when the reads are done; read nothing else from this client meanwhile. */
	s->busy = true;
	s->pending = *req;
	remember_status(s, req, 0);
	uv_poll_stop(&s->poll);
	return 1;
}

/* The write-backs an msync or munmap waited for are over: its reply. */
static void wb_over(struct wb_wait *w)
{
	struct session *s = container_of(w, struct session, wb);
	int ret = w->ret;

	s->syncing = false;
	if (s->closing) {
		session_close(s);
		return;
	}
	/* A munmap's reply names the range; write-back errors are msync's to report. */
	if (s->wb_req.op == UPAGER_OP_MUNMAP)
		ret = reply(s, &s->wb_reply, 0, NULL, 0) < 0 ? -EPIPE : 1;
	if (!request_end(s, &s->wb_req, ret))
		uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

/* Before a request asks for write-backs: the session waits for them (holding one count). */
static void wb_begin(struct session *s, const struct upager_msg *req)
{
	s->wb = (struct wb_wait){ .pending = 1, .done = wb_over };
	s->wb_req = *req;
}

/*
 * After: REPLY_LATER if write-backs are under way (wb_over() replies), else @ret or the first
 * error of those that are over.
 */
static int wb_end(struct session *s, int ret)
{
	if (ret < 0 && s->wb.ret == 0)
		s->wb.ret = ret;
	if (--s->wb.pending == 0)
		return s->wb.ret;
	s->syncing = true;
	return REPLY_LATER;
}

/*
 * RESUME: a mapping of the client of a daemon that died, with the memfd it maps; registered
 * again and entered as REGION_ADD would. See docs/design.md, "When the daemon dies".
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
	struct upager_msg ra = { .op = UPAGER_OP_REGION_ADD, .seq = req->seq };
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
		ret = resume_object(s->d, OBJECT_FILE, fds[0], fds[1], writable_fd, &po.obj);
	} else {
		if (n_fds != 1)
			return -EBADF;
		if (!po.shared)
			return -EINVAL;
		ret = resume_object(s->d, OBJECT_ANON, -1, fds[0], true, &po.obj);
	}
	if (ret < 0)
		return ret;
	if (po.obj) {
		po.may_write = po.shared && writable_fd;
		po.shared = po.may_write;
		if ((po.may_write && po.obj->kind == OBJECT_FILE && po.obj->fd_write < 0) ||
		    s->n_opens == MAX_PENDING_OPENS) {
			object_unref(po.obj);
			return -EACCES;
		}
		s->opens[s->n_opens++] = po;
		ra.u.region_add.object_id = po.obj->id;
	}
	ra.u.region_add.addr = rs->addr;
	ra.u.region_add.length = rs->length;
	ra.u.region_add.offset = rs->offset;
	ra.u.region_add.prot = rs->prot;
	ra.u.region_add.flags = flags;
	return do_region_add(s, &ra);
}

static int do_msync(struct session *s, const struct upager_msg *req)
{
	uint64_t a = req->u.msync.addr, len = req->u.msync.length;

	if (!s->space)
		return -EPERM;
	if (!IS_ALIGNED(a, UPAGER_PAGE_SIZE) || a + len < a)
		return -EINVAL;
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
	ret = space_drop_range(s->space, a, req->u.range.addr + len, &s->wb);
	ret = wb_end(s, ret < 0 ? ret : 0);
	if (ret == REPLY_LATER || ret < 0)
		return ret;
	return reply(s, &rep, 0, NULL, 0) < 0 ? -EPIPE : 1;
}

static int do_control(struct session *s, int *fds, size_t n_fds)
{
	struct stat st;
	int ret;

	if (!s->space)
		return -EPERM;
	if (n_fds != 1 || fstat(fds[0], &st) < 0 || !S_ISSOCK(st.st_mode))
		return -EBADF;
	ret = grow_attach(s->space, fds[0]);
	fds[0] = -1; /* taken, also on failure */
	return ret;
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
		if ((p->flags & MAP_GROWSDOWN) && p->base == r->base)
			p->max_length = ALIGN_UP(req->u.growth_limit.max_length, UPAGER_PAGE_SIZE);
	}
	daemon_touch(s->d);
	return 0;
}

static bool may_see(const struct session *s, const struct space *sp)
{
	return s->uid == 0 || sp->uid == s->uid;
}

static int do_list(struct session *s, const struct upager_msg *req)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	static uint8_t entries[UPAGER_MSG_MAX];
	size_t room = UPAGER_MSG_MAX - upager_msg_size(UPAGER_OP_LIST | UPAGER_OP_REPLY);
	size_t used = 0;
	uint32_t index = 0, cursor = req->u.list.cursor, count = 0;
	struct space *sp, *tmp;
	struct region *r;

	/* A forked child that exited since the last liveness round is not listed. */
	list_for_each_entry_safe (sp, tmp, &s->d->spaces, link)
		space_check_alive(sp);
	list_for_each_entry (sp, &s->d->spaces, link) {
		if (!may_see(s, sp) || (req->u.list.pid && (pid_t)req->u.list.pid != sp->pid))
			continue;
		region_for_each(r, &sp->regions)
		{
			struct upager_list_entry e = {
				.pid = (uint32_t)sp->pid,
				.uid = sp->uid,
				.start = r->start,
				.length = r->length,
				.offset = r->obj ? r->offset : 0,
				.prot = r->prot,
				.flags = r->flags,
				.faults = r->faults,
				.pages_populated = r->pages_populated,
				.pages_read = r->pages_read,
				.bytes_read = r->bytes_read,
				.latency_avg_ns = r->faults ? r->latency_sum_ns / r->faults : 0,
				.latency_max_ns = r->latency_max_ns,
				.object_id = r->obj ? r->obj->id : 0,
				.nonlinear = r->view != NULL,
				.remapped_ranges = r->view ? (uint32_t)view_ranges(
								     r->view, r->view_index,
								     r->length >> UPAGER_PAGE_SHIFT)
							   : 0,
				.grown_pages = r->grown_pages,
				.max_length = r->max_length,
				.path = r->obj ? r->obj->path : "anon",
			};
			int n;

			if (index++ < cursor)
				continue;
			if (r->obj && r->obj->kind == OBJECT_ANON)
				e.path = "anon";
			e.path_len = strlen(e.path);
			e.resident_pages = space_resident_pages(sp, r);
			n = upager_list_entry_encode(entries + used, room - used, &e);
			if (n == -EMSGSIZE) {
				m.u.list_reply.next_cursor = index - 1;
				goto send;
			}
			if (n < 0)
				return n;
			used += (size_t)n;
			count++;
		}
	}
send:
	m.u.list_reply.count = count;
	m.u.list_reply.entries = entries;
	m.u.list_reply.entries_len = used;
	return reply(s, &m, 0, NULL, 0) < 0 ? -EPIPE : 1;
}

static int do_stats(struct session *s, const struct upager_msg *req)
{
	struct upager_msg m = { .op = req->op, .seq = req->seq };
	struct daemon *d = s->d;
	struct object *o;

	m.u.stats_reply.sessions = d->n_sessions;
	m.u.stats_reply.spaces = d->n_spaces;
	m.u.stats_reply.regions = space_count_regions(d);
	m.u.stats_reply.objects = d->n_objects;
	list_for_each_entry (o, &d->objects, link)
		m.u.stats_reply.cached_pages += object_cached_pages(o);
	m.u.stats_reply.faults = d->stats.faults;
	m.u.stats_reply.pages_read = d->stats.pages_read;
	m.u.stats_reply.bytes_read = d->stats.bytes_read;
	m.u.stats_reply.bytes_written = d->stats.bytes_written;
	m.u.stats_reply.uptime_ms = uv_now(d->loop) - d->start_ms;
	m.u.stats_reply.pages_populated = d->stats.pages_populated;
	m.u.stats_reply.bytes_from_page_cache = d->stats.bytes_from_page_cache;
	m.u.stats_reply.latency_p50_ns = latency_percentile(&d->stats.latency, 50);
	m.u.stats_reply.latency_p99_ns = latency_percentile(&d->stats.latency, 99);
	m.u.stats_reply.latency_max_ns = d->stats.latency.max_ns;
	return reply(s, &m, 0, NULL, 0) < 0 ? -EPIPE : 1;
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
	if (reply(s, &m, 0, fds, fds[1] < 0 ? 1 : pages_fd < 0 || file_fd < 0 ? 2 : 4) < 0)
		return -EPIPE;
	return 1;
}

/* Phase 2: the client mapped the view over the region; register it and make the region a view's. */
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
	view_attach(v, s->space, r->start);
	view_publish(v, true);
	s->converting = NULL;
	s->space->converting = 0;
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
	/* A shared mapping of a file or shared anonymous memory (shmem underneath, as Linux's). */
	r = region_find(&s->space->regions, addr);
	if (!r || !r->obj || !flags_shared(r->flags) || addr + size > region_end(r))
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
	ret = view_populate(s->space, addr, pages, on_populated, s);
	if (ret != 0)
		return 0;
	s->busy = true;
	s->pending = *req;
	remember_status(s, req, 0);
	uv_poll_stop(&s->poll);
	return 1;
}

/*
 * Handle one request. Return 1 if it replied itself, REPLY_LATER if a worker's answer will, else
 * 0 or a negative errno for reply_status().
 */
static int dispatch(struct session *s, const struct upager_msg *req, int *fds, size_t n_fds)
{
	if (req->op == UPAGER_OP_HELLO) {
		if (s->hello)
			return -EALREADY;
		return do_hello(s, req, fds, n_fds);
	}
	if (!s->hello)
		return -ENOTCONN;
	if (n_fds && req->op != UPAGER_OP_OBJECT_OPEN && req->op != UPAGER_OP_CONTROL &&
	    req->op != UPAGER_OP_RESUME)
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
		return do_msync(s, req);
	case UPAGER_OP_LIST:
		return do_list(s, req);
	case UPAGER_OP_STATS:
		return do_stats(s, req);
	case UPAGER_OP_REMAP:
		return do_remap(s, req);
	case UPAGER_OP_CONTROL:
		return do_control(s, fds, n_fds);
	case UPAGER_OP_GROWTH_LIMIT:
		return do_growth_limit(s, req);
	case UPAGER_OP_RESUME:
		return do_resume(s, req, fds, n_fds);
	default:
		return -EOPNOTSUPP;
	}
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct session *s = h->data;
	struct upager_msg req;
	int fds[FDMSG_MAX_FDS];
	size_t n_fds = 0;
	bool keep;
	ssize_t n;
	int ret;

	(void)events;
	if (status < 0) {
		session_close(s);
		return;
	}
	/* Under an fd store the request stays on the socket until it is answered: if the daemon
	 * dies meanwhile, the one that takes over reads it again. Without a store no daemon takes
	 * over, and one recvmsg(2) instead of a peek and a drop saves 1-2 us a request. */
	keep = s->d->state != NULL;
	if (keep)
		n = fdmsg_peek(s->fd, s->buf, sizeof(s->buf), fds, &n_fds);
	else
		n = fdmsg_recv(s->fd, s->buf, sizeof(s->buf), fds, &n_fds);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		if (n < 0)
			log_limited(LOG_INFO, "client pid %d: %s; closing", (int)s->pid,
				    strerror((int)-n));
		session_close(s);
		return;
	}
	ret = upager_msg_decode(s->buf, (size_t)n, &req);
	if (ret < 0 || (req.op & UPAGER_OP_REPLY)) {
		log_limited(LOG_INFO, "client pid %d sent a bad message (%s); closing", (int)s->pid,
			    strerror(ret < 0 ? -ret : EBADMSG));
		fdmsg_close_fds(fds, n_fds);
		session_close(s);
		return;
	}
	if (s->adopted) {
		s->adopted = false;
		if (s->last.len && req.seq == s->last.seq) {
			/* The dead daemon answered it, and died before it took it off the socket. */
			fdmsg_close_fds(fds, n_fds);
			if (reply_again(s) < 0 || fdmsg_drop(s->fd) < 0)
				session_close(s);
			return;
		}
	}
	if (changes_tables(req.op))
		daemon_touch(s->d);
	ret = dispatch(s, &req, fds, n_fds);
	fdmsg_close_fds(fds, n_fds);
	if (ret == REPLY_LATER) {
		/* Nothing more is read from the client until then; the request stays on the
		 * socket, under a store, for a daemon that takes over to do again. */
		uv_poll_stop(&s->poll);
		return;
	}
	request_end(s, &req, ret);
}

/*
 * A request is over: @ret is 1 if it replied itself, else 0 or a negative errno to reply with.
 * Under a store it leaves the socket now. Return: whether the session was closed.
 */
static bool request_end(struct session *s, const struct upager_msg *req, int ret)
{
	if (ret <= 0 && reply_status(s, req, ret) < 0)
		ret = -EPIPE;
	daemon_save(s->d); /* a reply that waits for a populate is saved as given */
	if (s->d->state && fdmsg_drop(s->fd) < 0)
		ret = -EPIPE;
	if (ret == -EPIPE || ret == -EPROTONOSUPPORT || ret == -ENOTCONN || ret == -EALREADY) {
		session_close(s);
		return true;
	}
	return false;
}

static void on_populated(void *userdata)
{
	struct session *s = userdata;

	s->busy = false;
	if (s->closing) {
		session_close(s);
		return;
	}
	if (reply_status(s, &s->pending, 0) < 0) {
		session_close(s);
		return;
	}
	uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

static void on_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	close(s->fd);
	fdstore_remove(s->d, "cl", s->id);
	free(s);
}

static void session_close(struct session *s)
{
	struct daemon *d = s->d;

	if (uv_is_closing((uv_handle_t *)&s->poll))
		return;
	if (s->busy || s->opening || s->syncing) {
		/* The populate, open or write-back under way calls back with this session:
		 * close after it. */
		s->closing = true;
		uv_poll_stop(&s->poll);
		return;
	}
	for (size_t i = 0; i < s->n_opens; i++)
		object_unref(s->opens[i].obj);
	s->n_opens = 0;
	s->converting = view_unref(s->converting);
	if (s->space) {
		/* A space held for a resume that did not end has no table to serve from. */
		if (s->resuming && !s->resumed_space)
			space_kill(s->space);
		s->space->attached = false;
		space_check_alive(s->space);
		s->space = space_unref(s->space);
	}
	list_del_init(&s->link);
	d->n_sessions--;
	daemon_touch(d);
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void session_start(struct session *s)
{
	struct daemon *d = s->d;

	list_add_tail(&s->link, &d->sessions);
	d->n_sessions++;
	daemon_touch(d);
	uv_poll_init(d->loop, &s->poll, s->fd);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_readable);
}

/**
 * session_accept() - start a session on a new connection
 * @d: the daemon
 * @fd: the connected socket; owned by the session from now on, also on failure
 *
 * Return: 0 or a negative errno.
 */
int session_accept(struct daemon *d, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct session *s;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		int ret = neg_errno();

		close(fd);
		return ret;
	}
	if (limits_connection(d, cred.uid) < 0) {
		log_limited(LOG_WARNING, "uid %d has as many connections as it may; closing one",
			    (int)cred.uid);
		close(fd);
		return -EMFILE;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->d = d;
	s->fd = fd;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->id = ++d->next_id;
	session_start(s);
	fdstore_add(d, fd, "cl", s->id);
	log_debug("client pid %d uid %d connected", (int)s->pid, (int)s->uid);
	return 0;
}

/**
 * session_adopt() - take over a session of a previous daemon
 * @d: the daemon
 * @saved: the session's saved fields (state.c): id, pid, uid, hello, ctl, busy, pending.op and
 *         .seq; its space, converting view and pending opens, whose references pass to the new
 *         session (@saved is left without them)
 * @fd: the connection, taken
 *
 * A request whose reply waited for a populate when the previous daemon died is answered now: the
 * region was registered before the populate began, and pages it did not map fault in later. A
 * request the previous daemon answered but left on the socket is answered again when it is read;
 * any other request still on the socket is done as if it were new.
 *
 * Return: 0 or a negative errno.
 */
int session_adopt(struct daemon *d, struct session *saved, int fd)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	*s = *saved;
	saved->space = NULL;
	saved->converting = NULL;
	saved->n_opens = 0;
	s->d = d;
	s->fd = fd;
	s->busy = s->closing = false;
	s->adopted = true;
	if (s->space)
		s->space->attached = true;
	session_start(s);
	if (saved->busy && reply_again(s) < 0)
		session_close(s);
	return 0;
}

/** session_free_all() - close every session (the daemon stops) */
void session_free_all(struct daemon *d)
{
	struct session *s, *tmp;

	list_for_each_entry_safe (s, tmp, &d->sessions, link)
		session_close(s);
}
