// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon as a whole: the listening socket, the signals that stop it, the liveness timer, the
 * take-over of a previous daemon's tables, and a stop that writes every dirty shared page back:
 * under a service manager with an fd store the daemon then exits and leaves its clients to the
 * next daemon (see state.c); else it closes every session and space before the loop ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/uffd.h"
#include "budget.h"
#include "closer.h"
#include "daemon.h"
#include "events.h"
#include "evict.h"
#include "fault.h"
#include "fill.h"
#include "fdstore.h"
#include "groups.h"
#include "keeper.h"
#include "channel.h"
#include "log.h"
#include "private.h"
#include "ptable.h"
#include "notify.h"
#include "object.h"
#include "request.h"
#include "ring.h"
#include "session.h"
#include "share.h"
#include "space.h"
#include "state.h"
#include "nbd-store.h"
#include "swap-store.h"
#include "swap.h"
#include "tables.h"
#include "uffdio.h"
#include "view-copy.h"
#include "view-out.h"
#include "worker.h"
#include "watch.h"

#define LIVENESS_MS 200
#define RING_ENTRIES 256
/* Threads for blocking calls on clients' files; one user's stalled file takes a few of them. */
#define WORKER_THREADS 64
#define WORKER_JOBS_PER_UID 4
#define ACCEPT_PAUSE_MS 100

static void on_listen(uv_poll_t *h, int status, int events);

static void on_accept_pause_over(uv_timer_t *h)
{
	struct daemon *d = h->data;

	if (!d->stopping)
		uv_poll_start(&d->listen_poll, UV_READABLE, on_listen);
}

static void on_listen(uv_poll_t *h, int status, int events)
{
	struct daemon *d = h->data;

	(void)status;
	(void)events;
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0 && errno == EAGAIN)
			return;
		if (fd < 0) {
			/* Out of descriptors or memory: the connection stays queued, and polling on
			 * would only spin. Listen again a little later. */
			log_limited(LOG_WARNING, "accept: %m; pausing new connections for %d ms",
				    ACCEPT_PAUSE_MS);
			uv_poll_stop(&d->listen_poll);
			uv_timer_start(&d->accept_pause, on_accept_pause_over, ACCEPT_PAUSE_MS, 0);
			return;
		}
		session_accept(d, fd);
	}
}

/* A space whose client is gone: its control channel closes, its private pages' slots are freed. */
static void space_killed(struct space *s)
{
	channel_detach(s);
	private_free(s);
}

/* Nothing to do: the loop's poll does not wait while it runs, and on_flush() follows. */
static void on_next_turn(uv_idle_t *h)
{
	(void)h;
}

static void on_flush(uv_check_t *h)
{
	struct daemon *d = h->data;

	d->turn++;
	uv_idle_stop(&d->next_turn);
	object_wb_notify(&d->cache);
	if (!d->stopping) {
		struct users_over over;
		struct groups_over groups;
		uint64_t copies_out, spared, deferred;
		bool leaving, waiting;
		struct space *s;

		list_for_each_entry (s, &d->spaces, link)
			fault_past_end_grown(s);
		private_follow_cuts(d);
		private_watch_answers(d);
		groups_over(d, &groups);
		/* The touches that waited come in first: the users' shares count their pages. */
		private_serve_waits(d);
		shares_over(d, &over);
		private_balance(d, &over, &groups);
		copies_out = views_balance(d, &spared);
		leaving = cache_balance(&d->cache, &over);
		users_over_free(&over);
		deferred = d->cache.deferred_pages;
		waiting = view_serve_waits(d, copies_out == 0 && !spared && !leaving &&
						      !cache_room(&d->cache, 1));
		/* The next turn comes at once if faults wait for copies spared this one, or for
		 * fills those served deferred, after the balance that would start them. */
		if ((waiting && spared) || d->cache.deferred_pages > deferred)
			uv_idle_start(&d->next_turn, on_next_turn);
	}
	object_wb_notify(&d->cache);
	state_flush(d);
	ptable_release_puts();
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	log_info("signal %d: stopping", signum);
	daemon_stop(d);
}

/*
 * A budget not given follows the limit of the daemon's cgroup, read again every second: a daemon
 * moved into a cgroup after it started, or whose cgroup's limit changed, would otherwise keep a
 * budget the kernel kills it before reaching.
 */
static void follow_cgroup_limit(struct daemon *d)
{
	uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * UPAGER_PAGE_SIZE, budget;

	if (++d->liveness_ticks % (1000 / LIVENESS_MS))
		return;
	groups_follow(d); /* d->cgroup_limit too */
	if (!d->config.memory_max_default)
		return;
	budget = budget_default(phys, d->cgroup_limit);
	if (budget == d->config.memory_max || budget == 0)
		return;
	log_info("the daemon's cgroup limit changed: memory budget %" PRIu64 " MiB", budget >> 20);
	d->config.memory_max = budget;
	d->cache.budget_pages = budget >> UPAGER_PAGE_SHIFT;
	if (d->config.uid_memory_max_default) {
		d->config.uid_memory_max = budget / 2;
		d->cache.uid_share_pages = d->config.uid_memory_max >> UPAGER_PAGE_SHIFT;
	}
}

static void on_liveness(uv_timer_t *h)
{
	struct daemon *d = h->data;
	struct space *s, *tmp;

	list_for_each_entry_safe (s, tmp, &d->spaces, link)
		space_check_alive(s);
	session_release_held(d);
	follow_cgroup_limit(d);
	if (d->keeper.fd >= 0)
		keeper_flush(&d->keeper);
	notify_status(d);
}

/* Bind the listening socket; a stale socket file nobody listens on is replaced. */
static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	char *dir, *slash;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			free(dir);
			return neg_errno();
		}
	}
	free(dir);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return neg_errno();
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		_cleanup_close_ int probe = -1;

		if (errno != EADDRINUSE)
			return neg_errno();
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return -EADDRINUSE;
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return neg_errno();
	}
	/* Who may map is decided per client from SO_PEERCRED, not by the socket's mode. */
	if (chmod(path, 0666) < 0)
		return neg_errno();
	if (listen(fd, 128) < 0)
		return neg_errno();
	return fd_take(&fd);
}

/**
 * daemon_init() - set up the daemon on a loop and start listening
 * @d: zeroed daemon
 * @loop: the loop to run on
 * @socket_path: where to listen
 *
 * Return: 0 or a negative errno.
 */
static int cache_store_in_fdstore(struct cache *c, int fd, const char *kind, uint64_t id)
{
	return fdstore_add(cache_daemon(c), fd, kind, id);
}

static void cache_unstore_from_fdstore(struct cache *c, const char *kind, uint64_t id)
{
	fdstore_remove(cache_daemon(c), kind, id);
}

static void daemon_object_id_taken(struct cache *c)
{
	state_mark_daemon(cache_daemon(c));
}

static void daemon_forget_file(struct object *o)
{
	watch_forget(cache_daemon(o->c)->watch, o);
}

static void daemon_file_may_dirty(struct object *o)
{
	watch_listen(cache_daemon(o->c)->watch, o);
}

/* How the cache reaches the daemon. */
static const struct cache_hooks cache_hooks = {
	.store_fd = cache_store_in_fdstore,
	.unstore_fd = cache_unstore_from_fdstore,
	.id_taken = daemon_object_id_taken,
	.protect = space_protect_object,
	.pinned = space_pinned,
	.forget = daemon_forget_file,
	.may_dirty = daemon_file_may_dirty,
};

/*
 * A swap store on the NBD server of the configured URI. Under an fd store its tables (the
 * checksums of its slots) are kept there, and @tables_fd (taken), the previous daemon's, has the
 * slots that objects taken over name read back as they were written. Tables that do not fit the
 * export are not taken: those slots are claimed, never handed out again, and their pages fault
 * with SIGBUS.
 */
static void open_nbd_swap(struct daemon *d, int tables_fd)
{
	struct nbd_store_opts opts = { .max_bytes = d->config.swap_max,
				       .timeout_ms = d->config.swap_timeout_ms,
				       .connections = d->config.swap_connections,
				       .kept = d->fdstore,
				       .tables_fd = tables_fd };
	int ret = nbd_store_open(d->loop, d->config.swap_path, &opts, &d->cache.store);
	bool took = ret == 0 && tables_fd >= 0;
	struct store_info info;

	if (ret < 0 && tables_fd >= 0) {
		log_error(
			"swap: the tables of the previous daemon's store on the NBD server cannot "
			"be taken over (%s): the pages it held are lost",
			strerror(-ret));
		fdstore_remove(d, "nx", 0);
		opts.tables_fd = -1;
		ret = nbd_store_open(d->loop, d->config.swap_path, &opts, &d->cache.store);
	}
	/* The URI may name credentials: only the store says it, without them. */
	if (ret < 0) {
		log_warning("swap: cannot use the NBD server: %s; anonymous pages stay in memory",
			    strerror(-ret));
		fdstore_remove(d, "nx", 0);
		return;
	}
	d->cache.store->ops->info(d->cache.store, &info);
	log_info("swap: on the NBD server of %s, up to %" PRIu64 " MiB%s", info.where,
		 d->config.swap_max >> 20, took ? "; took over its tables" : "");
	if (!took)
		fdstore_add(d, nbd_store_tables_fd(d->cache.store), "nx", 0);
	object_slots_claim_all(&d->cache);
	d->cache.private_out = true;
}

/*
 * Open the swap store: under an fd store, the one the previous daemon kept (@fd and its tables
 * @tables_fd, taken), as it left it, else a new one at the configured path, kept in the fd store
 * with its tables. The slots that the objects taken over name are claimed in it: in a new store
 * they were never written, so their pages fault with SIGBUS, never as zeroes. Without a store,
 * shared anonymous pages stay in memory.
 */
static void open_swap(struct daemon *d, int fd, int tables_fd, int nbd_tables_fd)
{
	struct cache *c = &d->cache;
	int ret;

	if (fd < 0 && tables_fd < 0 && d->config.swap_path &&
	    nbd_store_is_uri(d->config.swap_path)) {
		open_nbd_swap(d, nbd_tables_fd);
		return;
	}
	closep(&nbd_tables_fd);
	if (fd >= 0 || tables_fd >= 0) {
		ret = swap_adopt(c->ring, fd, tables_fd, &c->swap);
		if (ret < 0) {
			log_error(
				"swap: the store of the previous daemon cannot be taken over (%s): "
				"the pages it held are lost",
				strerror(-ret));
			fdstore_remove(d, "sw", 0);
			fdstore_remove(d, "sx", 0);
		} else {
			log_info("swap: took over the store of the previous daemon");
		}
	}
	if (!c->swap && d->config.swap_path && *d->config.swap_path) {
		ret = swap_open(c->ring, d->config.swap_path, d->config.swap_max,
				d->fdstore ? SWAP_KEPT : 0, &c->swap);
		if (ret < 0) {
			log_warning(
				"swap: cannot use %s: %s; shared anonymous pages stay in memory",
				d->config.swap_path, strerror(-ret));
			return;
		}
		log_info("swap: %s, up to %" PRIu64 " MiB", d->config.swap_path,
			 d->config.swap_max >> 20);
		if (d->fdstore) {
			fdstore_add(d, swap_fd(c->swap), "sw", 0);
			fdstore_add(d, swap_tables_fd(c->swap), "sx", 0);
		}
	}
	if (!c->swap)
		return;
	c->store = swap_store_new(c->swap, d->config.swap_path);
	if (!c->store) {
		/* Not closed: the pages of objects taken over are in it. */
		log_error("swap: out of memory; shared anonymous pages stay in memory");
		return;
	}
	object_slots_claim_all(c);
	c->private_out = true;
}
/*
 * CAP_SYS_ADMIN is for fanotify_init(2) alone: once the watch made its group (whose marks on files
 * need no capability), the daemon gives it up from its effective, permitted and inheritable sets
 * before it hears a client, and under no_new_privs (the unit's NoNewPrivileges=) no execve(2) gives
 * it back.
 */
static void drop_sys_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];
	const uint32_t bit = 1u << (CAP_SYS_ADMIN % 32);
	const unsigned i = CAP_SYS_ADMIN / 32;

	if (syscall(SYS_capget, &h, c) < 0 || !((c[i].permitted | c[i].effective) & bit))
		return;
	c[i].effective &= ~bit;
	c[i].permitted &= ~bit;
	c[i].inheritable &= ~bit;
	if (syscall(SYS_capset, &h, c) < 0)
		log_error("giving up CAP_SYS_ADMIN: %s", strerror(errno));
}

int daemon_init(struct daemon *d, uv_loop_t *loop, const char *socket_path)
{
	struct fdstore_passed passed;
	int ret, swap_fd, swap_tables_fd, nbd_tables_fd;

	d->loop = loop;
	d->cache.hooks = &cache_hooks;
	d->cache.fill_max_pages = d->config.fill_max_pages;
	uv_idle_init(loop, &d->queued);
	d->queued.data = d;
	uffdio_set_drain(events_drain, d);
	d->space_hooks.readable = events_on_uffd;
	d->space_hooks.killed = space_killed;
	d->handle_request = request_handle;
	list_init(&d->sessions);
	list_init(&d->spaces);
	list_init(&d->cache.objects);
	list_init(&d->cache.deferred);
	list_init(&d->cache.wb_done);
	d->cache.budget_pages = d->config.memory_max >> UPAGER_PAGE_SHIFT;
	d->cache.uid_share_pages = d->config.uid_memory_max >> UPAGER_PAGE_SHIFT;
	d->start_ms = uv_now(loop);
	d->uffd_features = uffdio_probe_features();
	if (!d->uffd_features) {
		log_error("userfaultfd is not available on this kernel");
		return -ENOSYS;
	}
	if ((d->uffd_features & UFFD_FEATURE_EVENT_FORK) &&
	    !uffdio_feature_allowed(UFFD_FEATURE_EVENT_FORK)) {
		d->uffd_features &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
		log_warning("no CAP_SYS_PTRACE: children of clients lose their registrations, and "
			    "shared file pages they touch first read as zeroes");
	}
	if (!(d->uffd_features & UFFD_FEATURE_MINOR_SHMEM))
		log_warning(
			"the kernel lacks minor faults on shmem; shared mappings will not work");
	if (!(d->uffd_features & UFFD_FEATURE_POISON))
		log_warning("the kernel lacks UFFDIO_POISON; I/O errors cannot raise SIGBUS");

	ret = closer_start();
	if (ret < 0) {
		log_error("closer thread: %s", strerror(-ret));
		return ret;
	}
	ret = ring_new(loop, RING_ENTRIES, &d->cache.ring);
	if (ret < 0) {
		log_error("io_uring: %s", strerror(-ret));
		return ret;
	}
	ret = worker_pool_new(loop, WORKER_THREADS, WORKER_JOBS_PER_UID, &d->cache.workers);
	if (ret < 0) {
		log_error("worker threads: %s", strerror(-ret));
		return ret;
	}
	ret = watch_new(loop, &d->cache, &d->watch);
	if (ret < 0)
		log_warning("inotify: %s; live mappings do not follow changes of their files by "
			    "other processes",
			    strerror(-ret));
	drop_sys_admin();
	d->socket_path = strdup(socket_path);
	if (!d->socket_path)
		return -ENOMEM;
	fdstore_init(d);
	d->cache.fdstore = d->fdstore;
	ret = fdstore_passed_collect(d, &passed);
	if (ret < 0) {
		log_error("descriptors from the service manager: %s", strerror(-ret));
		return ret;
	}
	ret = fdstore_passed_listen(&passed);
	if (ret >= 0) {
		/* The keeper's is the daemon's own, to remove as it stops. */
		d->activated = d->keeper.fd < 0;
		if (d->activated)
			socket_path = "the socket systemd passed";
	} else if (ret == -ENOENT) {
		ret = listen_on(socket_path);
		if (ret >= 0)
			fdstore_add(d, ret, "listen", 0);
	}
	if (ret < 0) {
		log_error("listening on %s: %s", socket_path, strerror(-ret));
		fdstore_passed_release(d, &passed);
		return ret;
	}
	d->listen_fd = ret;
	uv_poll_init(loop, &d->listen_poll, d->listen_fd);
	d->listen_poll.data = d;
	uv_poll_start(&d->listen_poll, UV_READABLE, on_listen);
	uv_timer_init(loop, &d->accept_pause);
	d->accept_pause.data = d;

	ret = state_init(d, &passed, &tables_ops);
	swap_fd = fdstore_passed_take(&passed, "sw", 0);
	swap_tables_fd = fdstore_passed_take(&passed, "sx", 0);
	nbd_tables_fd = fdstore_passed_take(&passed, "nx", 0);
	fdstore_passed_release(d, &passed);
	d->cache.fdstore = d->fdstore; /* no store after all: see state_init() */
	if (ret < 0) {
		log_error("saving the tables: %s", strerror(-ret));
		closep(&swap_fd);
		closep(&swap_tables_fd);
		closep(&nbd_tables_fd);
		return ret;
	}
	open_swap(d, swap_fd, swap_tables_fd, nbd_tables_fd);
	private_adopt(d);
	/* Under an fd store, a slot let go of is the store's again once the tables are saved. */
	if (d->state)
		ptable_hold_puts(true);
	uv_idle_init(loop, &d->next_turn);
	uv_check_init(loop, &d->flush);
	d->flush.data = d;
	uv_check_start(&d->flush, on_flush);

	uv_signal_init(loop, &d->sigterm);
	d->sigterm.data = d;
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	uv_signal_init(loop, &d->sigint);
	d->sigint.data = d;
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	uv_timer_init(loop, &d->liveness);
	d->liveness.data = d;
	uv_timer_start(&d->liveness, on_liveness, LIVENESS_MS, LIVENESS_MS);
	log_info("listening on %s; memory budget %" PRIu64 " MiB%s", socket_path,
		 d->config.memory_max >> 20, d->config.memory_max ? "" : " (none)");
	notify_ready(d);
	return 0;
}

/*
 * Stop and leave every client to the next daemon: write every shared page back and exit, with
 * the tables saved and every descriptor in the fd store. If the service manager starts a daemon
 * again (a restart), it takes over; if not (a stop), the store is closed.
 */
static void daemon_hand_over(struct daemon *d)
{
	struct object *o;

	/* A writer opened while its file was marked waits for the group's answer: none now. */
	watch_free(d->watch);
	d->watch = NULL;
	list_for_each_entry (o, &d->cache.objects, link)
		object_writeback_now(o);
	state_flush(d);
	notify_stopping();
	log_info("stopped; the clients wait for the next daemon");
	exit(EXIT_SUCCESS);
}

/**
 * daemon_stop() - stop serving: write back every shared page, then hand the clients over or
 * close every handle
 * @d: the daemon; the loop ends once the handles are closed
 */
void daemon_stop(struct daemon *d)
{
	struct space *s, *tmp;
	struct object *o, *otmp;

	if (d->stopping)
		return;
	/* Stopped by hand: the keeper lets go of everything, and the clients resume with the next
	 * daemon as without a store. */
	if (d->keeper.fd >= 0)
		keeper_stop(&d->keeper);
	else if (d->state)
		daemon_hand_over(d);
	d->stopping = true;
	d->cache.stopping = true;
	notify_stopping();
	uv_poll_stop(&d->listen_poll);
	uv_close((uv_handle_t *)&d->listen_poll, NULL);
	uv_close((uv_handle_t *)&d->accept_pause, NULL);
	close(d->listen_fd);
	if (!d->activated) /* systemd's socket is systemd's to remove */
		unlink(d->socket_path);
	session_free_all(d);
	list_for_each_entry_safe (s, tmp, &d->spaces, link)
		space_kill(s);
	view_serve_waits(d, true); /* the faults that waited for room: their spaces are dead */
	/* The write-backs the clients' ends asked for are done here, not left to the workers. */
	fill_cancel_deferred(&d->cache);
	/* The loop writes back itself now: a writer opened while its file was marked (watch.c)
	 * must not wait for the loop's answer. */
	watch_free(d->watch);
	d->watch = NULL;
	list_for_each_entry_safe (o, otmp, &d->cache.objects, link)
		object_stop(o);
	object_wb_notify(&d->cache);
	store_close(d->cache.store);
	d->cache.store = NULL;
	if (d->cache.swap)
		swap_close(d->cache.swap);
	d->cache.swap = NULL;
	ring_free(d->cache.ring);
	d->cache.ring = NULL;
	worker_pool_free(d->cache.workers);
	d->cache.workers = NULL;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_timer_stop(&d->liveness);
	uv_close((uv_handle_t *)&d->liveness, NULL);
	uv_check_stop(&d->flush);
	uv_close((uv_handle_t *)&d->flush, NULL);
	uv_idle_stop(&d->next_turn);
	uv_close((uv_handle_t *)&d->next_turn, NULL);
	uffdio_set_drain(NULL, NULL);
	uv_idle_stop(&d->queued);
	uv_close((uv_handle_t *)&d->queued, NULL);
}

/** daemon_deinit() - free what the daemon holds after the loop ended */
void daemon_deinit(struct daemon *d)
{
	bufpool_release(&d->cache.bufpool);
	state_free(d);
	free(d->socket_path);
}
