/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A session: one client connection and the requests it sends. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/list.h"
#include "object.h"
#include "proto/codec.h"
#include "state.h"

struct daemon;
struct object;
struct space;
struct view;

#define MAX_PENDING_OPENS 64

/* An object handed to the client by OBJECT_OPEN that its REGION_ADD has not claimed yet. */
struct pending_open {
	struct object *obj; /* a reference */
	uint32_t prot, flags;
	uint64_t offset, length;
	bool shared, may_write;
};

/* Which descriptor went with a reply, made again when the reply is sent again. */
enum reply_fd {
	REPLY_FD_NONE = 0,
	REPLY_FD_OBJECT = 1, /* a reopened memfd of object fd_id */
	REPLY_FD_VIEW = 2, /* a reopened memfd of view fd_id */
};

/*
 * The last reply to a request that may change the tables, saved with them. A request leaves the
 * socket only after its reply went out; a daemon that takes over and finds that request still
 * queued sends this again (the client discards a reply it already had).
 */
struct last_reply {
	uint32_t seq;
	uint16_t len; /* 0: none */
	uint8_t fd; /* enum reply_fd */
	bool fd_writable;
	uint64_t fd_id;
	uint8_t msg[128];
};

struct session {
	struct daemon *d;
	uint64_t id; /* the name of its socket in the fd store */
	int fd;
	uv_poll_t poll;
	pid_t pid;
	uid_t uid;
	bool hello;
	bool ctl;
	bool busy; /* a reply waits for a populate; the socket is not read meanwhile */
	bool opening; /* a file is being looked up for OBJECT_OPEN in a worker thread */
	bool listing; /* a LIST's mappings are counted in a worker thread */
	bool held; /* not read while its user's closes are backlogged (closer.c) */
	bool syncing; /* an MSYNC or MUNMAP reply waits for write-backs */
	struct wb_wait wb; /* the write-backs it waits for */
	struct upager_msg wb_req, wb_reply; /* that request, and a MUNMAP's reply */
	bool closing; /* closed while busy, opening or listing: freed when that is over */
	struct upager_msg pending; /* the request whose reply waits */
	struct view *converting; /* a view handed out by REMAP phase 1, a reference */
	struct space *space; /* a reference */
	struct pending_open opens[MAX_PENDING_OPENS];
	size_t n_opens;
	struct last_reply last;
	bool adopted; /* taken over: its first request may be one the dead daemon answered */
	bool resuming; /* HELLO with RESUME: RESUME requests until the end of them */
	bool resumed_space; /* the space outlived the connection: RESUME has nothing to do */
	struct list_head link;
	struct state_handle saved; /* its record in the saved tables (session_mark()) */
	struct state_handle open_saved[MAX_PENDING_OPENS]; /* those of opens[] */
	uint8_t buf[UPAGER_MSG_MAX];
};

/* What a request handler returns, besides 0 or a negative errno to reply with. */
enum {
	REQUEST_REPLIED = 1, /* it replied itself */
	REQUEST_LATER = 2, /* a worker's answer or write-backs reply later: session_resume() */
};

int session_reply(struct session *s, struct upager_msg *m, int status, const int *fds,
		  size_t n_fds);
int session_reply_status(struct session *s, const struct upager_msg *req, int status);
int session_wait_populate(struct session *s, const struct upager_msg *req);
void session_populated(void *userdata);
void session_resume(struct session *s, const struct upager_msg *req, int ret);
int session_accept(struct daemon *d, int fd);
void session_release_held(struct daemon *d);
void session_set_soft(struct session *s);
int session_adopt(struct daemon *d, struct session *saved, int fd);
void session_free_all(struct daemon *d);

struct fdstore_passed;
struct state;
struct state_io;
void session_mark(struct session *s);
void session_open_changed(struct session *s, size_t i);
void session_load(struct daemon *d, struct state_io *io, struct fdstore_passed *p);
void session_load_open(struct daemon *d, struct state_io *io);
