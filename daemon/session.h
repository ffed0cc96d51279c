/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A session: one client connection and the requests it sends. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/list.h"
#include "proto/codec.h"

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
	bool closing; /* closed while busy: freed when the populate is over */
	struct upager_msg pending; /* the request whose reply waits */
	struct view *converting; /* a view handed out by REMAP phase 1, a reference */
	struct space *space; /* a reference */
	struct pending_open opens[MAX_PENDING_OPENS];
	size_t n_opens;
	struct list_head link;
	uint8_t buf[UPAGER_MSG_MAX];
};

int session_accept(struct daemon *d, int fd);
int session_adopt(struct daemon *d, struct session *saved, int fd);
void session_free_all(struct daemon *d);
