/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control channel of a space (channel.c): requests the daemon sends to a thread of the client
 * (libclient/control.c), answered in order. Growth (grow.c) and private page-out (private.c) use it.
 */
#pragma once

#include <stdint.h>

#include "common/list.h"

struct space;
struct upager_msg;
struct chan_req;

/*
 * The answer to @q, or @reply NULL if the channel closed first (the client's thread never acts on
 * it, or did and the answer is lost). @q is the caller's: it frees it here.
 */
typedef void (*chan_done_fn)(struct space *s, struct chan_req *q, const struct upager_msg *reply);

struct chan_req {
	struct list_head link;
	uint32_t seq;
	uint16_t op;
	uint64_t sent_ns; /* when it was sent */
	chan_done_fn done;
};

int channel_attach(struct space *s, int fd);
void channel_detach(struct space *s);
int channel_send(struct space *s, struct upager_msg *m, struct chan_req *q, chan_done_fn done);
uint64_t channel_oldest_ns(const struct space *s);
