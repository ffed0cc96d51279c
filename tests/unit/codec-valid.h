/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the codec's unit test and the fuzz seeds: a message that the codec accepts. */
#pragma once

#include "proto/codec.h"

/*
 * Give the constrained fields of @m valid values, leaving the others alone: HELLO's versions and
 * flags, OBJECT_OPEN's kind, REMAP's phase, GROW's action, the GROW reply's sentinel, STATS
 * reply's store, and DROP's set of pages (at most UPAGER_DROP_MAX_PAGES, at least one), its
 * count and its flags.
 */
static inline void codec_make_valid(struct upager_msg *m)
{
	if (m->op == UPAGER_OP_HELLO) {
		m->u.hello.version_min = m->u.hello.version_max = UPAGER_PROTO_VERSION;
		m->u.hello.flags = UPAGER_HELLO_UFFD;
	}
	if (m->op == UPAGER_OP_OBJECT_OPEN)
		m->u.object_open.kind = UPAGER_OBJECT_FILE;
	if (m->op == UPAGER_OP_REMAP)
		m->u.remap.phase = 1;
	if (m->op == UPAGER_OP_GROW)
		m->u.grow.action = UPAGER_GROW_EXTEND;
	if (m->op == (UPAGER_OP_GROW | UPAGER_OP_REPLY))
		m->u.grow_reply.sentinel &= 1;
	if (m->op == UPAGER_OP_RESUME)
		m->u.resume.kind = UPAGER_OBJECT_FILE;
	if (m->op == (UPAGER_OP_STATS | UPAGER_OP_REPLY)) {
		m->u.stats_reply.store_kind %= UPAGER_STORE_NBD + 1;
		/* Where the store is: none, rather than the pattern's pointer and length. */
		m->u.stats_reply.store_where = NULL;
		m->u.stats_reply.store_where_len = 0;
	}
	if (m->op == UPAGER_OP_DROP) {
		m->u.drop.pages = 0;
		for (size_t k = 0; k < UPAGER_DROP_WINDOW_PAGES / 64; k++) {
			if (k >= UPAGER_DROP_MAX_PAGES / 64)
				m->u.drop.map[k] = 0;
			m->u.drop.pages += (uint32_t)__builtin_popcountll(m->u.drop.map[k]);
		}
		if (!m->u.drop.pages) {
			m->u.drop.map[0] = 1;
			m->u.drop.pages = 1;
		}
		m->u.drop.flags &= UPAGER_DROP_IN_PLACE;
	}
}
