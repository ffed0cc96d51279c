// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target of upager_msg_decode(), the check every datagram goes through in upagerd,
 * libupager and upagerctl. Each input is used twice:
 *
 * - as a datagram: decoding fails with an errno the codec documents, or yields a message that
 *   encodes back to the very same bytes (so nothing the decoder let through was ignored), and the
 *   entries of a LIST reply pass fuzz_check_entries();
 * - as the fields of a message: encoding it and decoding the result gives the message back, and
 *   decoding refuses it exactly when PROTOCOL.md says it must (valid_by_spec(), written from the
 *   spec rather than from the codec).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "proto/codec.h"

static uint8_t out[UPAGER_MSG_MAX];
static uint8_t again[UPAGER_MSG_MAX];

static void check_datagram(const uint8_t *data, size_t size)
{
	struct upager_msg m;
	int r = upager_msg_decode(data, size, &m), n;

	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EOPNOTSUPP ||
				   r == -EMSGSIZE,
			   "undocumented error %d", r);
		return;
	}
	FUZZ_CHECK(r == 0, "decode returned %d", r);
	FUZZ_CHECK(upager_msg_size(m.op) != 0 && upager_msg_size(m.op) <= size, "op %#x", m.op);
	FUZZ_CHECK(!(m.op & UPAGER_OP_REPLY) || m.status <= 0, "status %d", m.status);
	if (m.op == (UPAGER_OP_LIST | UPAGER_OP_REPLY)) {
		FUZZ_CHECK(m.u.list_reply.entries == data + upager_msg_size(m.op) &&
				   m.u.list_reply.entries_len == size - upager_msg_size(m.op),
			   "entries outside the datagram");
		fuzz_check_entries(m.u.list_reply.entries, m.u.list_reply.entries_len);
	} else if (m.op == (UPAGER_OP_STATS | UPAGER_OP_REPLY)) {
		FUZZ_CHECK(m.u.stats_reply.store_where_len == size - upager_msg_size(m.op) &&
				   m.u.stats_reply.store_where_len <= UPAGER_PATH_MAX,
			   "where the store is: outside the datagram");
	} else {
		FUZZ_CHECK(size == upager_msg_size(m.op), "op %#x in %zu bytes", m.op, size);
	}
	n = upager_msg_encode(out, sizeof(out), &m);
	FUZZ_CHECK(n >= 0 && (size_t)n == size, "re-encoded op %#x to %d bytes, not %zu", m.op, n,
		   size);
	FUZZ_CHECK(memcmp(out, data, size) == 0, "op %#x re-encodes to other bytes", m.op);
}

/* What proto/PROTOCOL.md ("Checking") refuses in a message that is otherwise well framed. */
static bool valid_by_spec(const struct upager_msg *m)
{
	if (m->version != 0 && m->version != UPAGER_PROTO_VERSION)
		return false;
	if ((m->op & UPAGER_OP_REPLY) && m->status > 0)
		return false;
	switch (m->op) {
	case UPAGER_OP_HELLO:
		return m->u.hello.version_min <= m->u.hello.version_max &&
		       !(m->u.hello.flags &
			 ~(uint32_t)(UPAGER_HELLO_UFFD | UPAGER_HELLO_FORKED | UPAGER_HELLO_CTL |
				     UPAGER_HELLO_RESUME | UPAGER_HELLO_SOFT));
	case UPAGER_OP_OBJECT_OPEN:
		return m->u.object_open.kind == UPAGER_OBJECT_FILE ||
		       m->u.object_open.kind == UPAGER_OBJECT_ANON_SHARED;
	case UPAGER_OP_REMAP:
		return m->u.remap.phase == 1 || m->u.remap.phase == 2;
	case UPAGER_OP_GROW:
		return m->u.grow.action == UPAGER_GROW_EXTEND ||
		       m->u.grow.action == UPAGER_GROW_REFUSE ||
		       m->u.grow.action == UPAGER_GROW_GUARD;
	case UPAGER_OP_GROW | UPAGER_OP_REPLY:
		return m->u.grow_reply.sentinel <= 1;
	case UPAGER_OP_DROP:
		return m->u.drop.pages >= 1 && m->u.drop.pages <= UPAGER_DROP_MAX_PAGES &&
		       (m->u.drop.flags & ~UPAGER_DROP_IN_PLACE) == 0;
	case UPAGER_OP_STATS | UPAGER_OP_REPLY:
		return m->u.stats_reply.store_kind <= UPAGER_STORE_NBD;
	case UPAGER_OP_RESUME:
		/* The end carries nothing. */
		return m->u.resume.kind < UPAGER_RESUME_END ||
		       (m->u.resume.kind == UPAGER_RESUME_END && !m->u.resume.prot &&
			!m->u.resume.flags && !m->u.resume.addr && !m->u.resume.length &&
			!m->u.resume.offset);
	default:
		return true;
	}
}

static void check_message(const uint8_t *data, size_t size)
{
	struct upager_msg m = { 0 }, back;
	size_t head = offsetof(struct upager_msg, u), body = sizeof(m.u);
	int n, r;

	if (size < head + body)
		return;
	memcpy(&m, data, head + body);
	m.version = m.version & 1 ? 0 : m.version >> 1; /* mostly the default version */
	if (m.op == (UPAGER_OP_LIST | UPAGER_OP_REPLY)) {
		m.u.list_reply.entries = data + head + body;
		m.u.list_reply.entries_len = size - head - body;
	}
	if (m.op == (UPAGER_OP_STATS | UPAGER_OP_REPLY)) {
		m.u.stats_reply.store_where = (const char *)data + head + body;
		m.u.stats_reply.store_where_len =
			(uint32_t)(size - head - body < UPAGER_PATH_MAX ? size - head - body
									: UPAGER_PATH_MAX);
	}
	n = upager_msg_encode(out, sizeof(out), &m);
	if (upager_msg_size(m.op) == 0) {
		FUZZ_CHECK(n == -EINVAL, "op %#x encoded: %d", m.op, n);
		return;
	}
	if (n == -EMSGSIZE)
		return;
	FUZZ_CHECK(n > 0, "op %#x does not encode: %d", m.op, n);
	r = upager_msg_decode(out, (size_t)n, &back);
	FUZZ_CHECK((r == 0) == valid_by_spec(&m), "op %#x: decode says %d against the spec", m.op,
		   r);
	if (r < 0)
		return;
	FUZZ_CHECK(back.op == m.op && back.seq == m.seq && back.version == UPAGER_PROTO_VERSION,
		   "header of op %#x changed", m.op);
	FUZZ_CHECK(back.status == (m.op & UPAGER_OP_REPLY ? m.status : 0), "status changed");
	/* Every field is on the wire: equal encodings are equal messages. */
	FUZZ_CHECK(upager_msg_encode(again, sizeof(again), &back) == n &&
			   memcmp(again, out, (size_t)n) == 0,
		   "op %#x does not survive a round trip", m.op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_datagram(data, size);
	check_message(data, size);
	return 0;
}
