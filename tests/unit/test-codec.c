// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The wire codec, messages: every opcode survives a round trip field by field, the wire is
 * little-endian with the layout the UAPI header pins, and each kind of malformed datagram is
 * refused with the errno the codec documents for it. Malformed datagrams are made by patching one
 * thing in a valid one, so each test fails if the one check it aims at goes away. LIST entries
 * are in test-codec-list.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "codec-test.h"
#include "codec-valid.h"
#include "proto/codec.h"

static uint8_t buf[UPAGER_MSG_MAX + 64] __attribute__((aligned(8)));
static uint8_t big_entries[UPAGER_MSG_MAX];

/* Every request, then every reply. */
static const uint16_t all_ops[] = {
	UPAGER_OP_HELLO,
	UPAGER_OP_OBJECT_OPEN,
	UPAGER_OP_REGION_ADD,
	UPAGER_OP_MUNMAP,
	UPAGER_OP_MSYNC,
	UPAGER_OP_LIST,
	UPAGER_OP_STATS,
	UPAGER_OP_REMAP,
	UPAGER_OP_CONTROL,
	UPAGER_OP_GROW,
	UPAGER_OP_GROWTH_LIMIT,
	UPAGER_OP_RESUME,
	REPLY(UPAGER_OP_HELLO),
	REPLY(UPAGER_OP_OBJECT_OPEN),
	REPLY(UPAGER_OP_REGION_ADD),
	REPLY(UPAGER_OP_MUNMAP),
	REPLY(UPAGER_OP_MSYNC),
	REPLY(UPAGER_OP_LIST),
	REPLY(UPAGER_OP_STATS),
	REPLY(UPAGER_OP_REMAP),
	REPLY(UPAGER_OP_CONTROL),
	REPLY(UPAGER_OP_GROW),
	REPLY(UPAGER_OP_GROWTH_LIMIT),
	REPLY(UPAGER_OP_RESUME),
};

static void set_len(uint32_t len)
{
	wr32(buf + offsetof(struct upager_wire_hdr, len), len);
}

static size_t encode(const struct upager_msg *m)
{
	int n = upager_msg_encode(buf, sizeof(buf), m);

	cr_assert_gt(n, 0, "encoding op %#x: %d", m->op, n);
	return (size_t)n;
}

/* A message of @op that decodes. */
static size_t encode_valid(uint16_t op)
{
	struct upager_msg m = { .op = op, .seq = 7 };

	codec_make_valid(&m);
	return encode(&m);
}

static void msg_init(struct upager_msg *m, uint16_t op, uint32_t seq)
{
	memset(m, 0, sizeof(*m)); /* padding too: roundtrip() compares bytes */
	m->op = op;
	m->seq = seq;
}

/*
 * Encode @in, decode it, and compare the decoded union byte by byte with the one sent. Decode
 * zeroes what it fills and msg_init() zeroed @in, so a byte that differs is a field that did not
 * survive. The values used have no zero byte where the field allows it, so a truncated field shows.
 */
static void roundtrip(const struct upager_msg *in, size_t wire_len)
{
	struct upager_msg out;
	const uint8_t *a = (const uint8_t *)&in->u, *b = (const uint8_t *)&out.u;
	size_t n = encode(in);

	cr_assert_eq(n, wire_len, "op %#x: %zu bytes on the wire, expected %zu", in->op, n,
		     wire_len);
	cr_assert_eq(upager_msg_size(in->op), wire_len);
	memset(&out, 0x5a, sizeof(out));
	cr_assert_eq(upager_msg_decode(buf, n, &out), 0, "op %#x", in->op);
	cr_assert_eq(out.op, in->op);
	cr_assert_eq(out.seq, in->seq);
	cr_assert_eq(out.version, UPAGER_PROTO_VERSION);
	cr_assert_eq(out.status, in->status);
	for (size_t i = 0; i < sizeof(in->u); i++)
		cr_assert_eq(b[i], a[i], "op %#x: decoded body differs at byte %zu of the union",
			     in->op, i);
}

static int decode(size_t len)
{
	struct upager_msg m;

	return upager_msg_decode(buf, len, &m);
}

Test(codec, wire_layout_is_pinned)
{
	cr_assert_eq(sizeof(struct upager_wire_hdr), 16);
	cr_assert_eq(sizeof(struct upager_wire_reply), 8);
	cr_assert_eq(sizeof(struct upager_wire_hello), 16);
	cr_assert_eq(sizeof(struct upager_wire_hello_reply), 16);
	cr_assert_eq(sizeof(struct upager_wire_object_open), 32);
	cr_assert_eq(sizeof(struct upager_wire_object_open_reply), 24);
	cr_assert_eq(sizeof(struct upager_wire_region_add), 64);
	cr_assert_eq(sizeof(struct upager_wire_munmap_reply), 16);
	cr_assert_eq(sizeof(struct upager_wire_grow), 32);
	cr_assert_eq(sizeof(struct upager_wire_growth_limit), 16);
	cr_assert_eq(sizeof(struct upager_wire_resume), 40);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, grown_pages), 120);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, max_length), 128);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, object_pages_out), 136);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, object_refaults), 144);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, object_writeback_errors), 152);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, object_writeback_error), 160);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, private_pages_out), 168);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, private_pages_in), 176);
	cr_assert_eq(sizeof(struct upager_wire_range), 16);
	cr_assert_eq(sizeof(struct upager_wire_msync), 24);
	cr_assert_eq(sizeof(struct upager_wire_list), 8);
	cr_assert_eq(sizeof(struct upager_wire_list_reply), 8);
	cr_assert_eq(sizeof(struct upager_wire_list_entry), ENTRY_FIXED);
	cr_assert_eq(sizeof(struct upager_wire_stats_reply), 232);
	/* Fields added later are appended: what was there before keeps its place. */
	cr_assert_eq(offsetof(struct upager_wire_list_entry, reserved), 70);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, pages_populated), 72);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, pages_read), 80);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, bytes_read), 88);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, latency_avg_ns), 96);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, latency_max_ns), 104);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, nonlinear), 112);
	cr_assert_eq(offsetof(struct upager_wire_list_entry, remapped_ranges), 116);
	cr_assert_eq(sizeof(struct upager_wire_remap), 32);
	cr_assert_eq(sizeof(struct upager_wire_remap_reply), 32);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, uptime_ms), 56);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, pages_populated), 64);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, bytes_from_page_cache), 72);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, latency_p50_ns), 80);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, latency_p99_ns), 88);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, latency_max_ns), 96);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, budget_bytes), 104);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, memory_pages), 112);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, pages_out), 120);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, pages_written_out), 128);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, pages_in), 136);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, refaults), 144);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, over_budget), 152);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, swap_bytes), 160);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, swap_used_bytes), 168);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, writeback_errors), 176);
	cr_assert_eq(offsetof(struct upager_wire_stats_reply, store_connections), 224);
	cr_assert_eq(upager_msg_size(UPAGER_OP_STATS), 16);
	cr_assert_eq(upager_msg_size(REPLY(UPAGER_OP_MUNMAP)), 40);
	cr_assert_eq(upager_msg_size(UPAGER_OP_CONTROL), 32);
	cr_assert_eq(upager_msg_size(UPAGER_OP_DROP), 168);
	cr_assert_eq(upager_msg_size(REPLY(UPAGER_OP_DROP)), 56);
	cr_assert_eq(upager_msg_size(REPLY(UPAGER_OP_GROW)), 32);
	cr_assert_eq(upager_msg_size(0), 0);
	cr_assert_eq(upager_msg_size(_UPAGER_OP_MAX), 0);
	cr_assert_eq(upager_msg_size(UPAGER_OP_REPLY), 0);
}

Test(codec, hello_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_HELLO, 0xdeadbeef);
	m.u.hello.version_min = 0x0101;
	m.u.hello.version_max = 0x7ff1;
	m.u.hello.flags = UPAGER_HELLO_UFFD | UPAGER_HELLO_FORKED | UPAGER_HELLO_CTL;
	m.u.hello.token_addr = 0xfedcba9876543000ull;
	roundtrip(&m, HDR + 16);

	msg_init(&m, REPLY(UPAGER_OP_HELLO), 0xdeadbeef);
	m.u.hello_reply.version = 0x0102;
	m.u.hello_reply.page_size = 0x12345678;
	m.u.hello_reply.features = 0x8877665544332211ull;
	roundtrip(&m, HDR + RPL + 16);
}

Test(codec, object_open_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_OBJECT_OPEN, 2);
	m.u.object_open.kind = UPAGER_OBJECT_ANON_SHARED;
	m.u.object_open.prot = 0xa1b2c3d4;
	m.u.object_open.flags = 0x81010101;
	m.u.object_open.offset = 0x1122334455667788ull;
	m.u.object_open.length = 0x99aabbccddeeff01ull;
	roundtrip(&m, HDR + 32);
	m.u.object_open.kind = UPAGER_OBJECT_FILE;
	roundtrip(&m, HDR + 32);

	msg_init(&m, REPLY(UPAGER_OP_OBJECT_OPEN), 3);
	m.u.object_open_reply.object_id = 0x0123456789abcdefull;
	m.u.object_open_reply.map_type = 0x01020304;
	m.u.object_open_reply.object_size = 0xf0e0d0c0b0a09080ull;
	roundtrip(&m, HDR + RPL + 24);

	msg_init(&m, REPLY(UPAGER_OP_OBJECT_OPEN), 4);
	m.status = -ENOENT;
	roundtrip(&m, HDR + RPL + 24);
}

Test(codec, region_add_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_REGION_ADD, 0x80000001);
	m.u.region_add.object_id = 0x1000000000000001ull;
	m.u.region_add.addr = 0x01017f1234561111ull;
	m.u.region_add.length = 0x0101010100002101ull;
	m.u.region_add.offset = 0x8000000000003001ull;
	m.u.region_add.prot = 0x11223344;
	m.u.region_add.flags = 0x55667788;
	m.u.region_add.guard_addr = 0x00007f1234560000ull;
	m.u.region_add.sentinel_addr = 0x00007f123455f000ull;
	m.u.region_add.max_length = 0x0000000000801000ull;
	roundtrip(&m, HDR + 64);

	msg_init(&m, REPLY(UPAGER_OP_REGION_ADD), 5);
	m.status = -EINVAL;
	roundtrip(&m, HDR + RPL);
}

Test(codec, munmap_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_MUNMAP, 9);
	m.u.range.addr = 0xffffffffffff0101ull;
	m.u.range.length = 0x0102030405060708ull;
	roundtrip(&m, HDR + 16);

	msg_init(&m, REPLY(UPAGER_OP_MUNMAP), 9);
	m.u.range.addr = 0x00007f0000000000ull;
	m.u.range.length = 0x0000000000203000ull;
	roundtrip(&m, HDR + RPL + 16);
}

Test(codec, grow_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_GROW, 11);
	m.u.grow.guard_addr = 0x00007ffff7dd0000ull;
	m.u.grow.sentinel_addr = 0x00007ffff7dcf000ull;
	m.u.grow.gap = 0x0000000000101000ull;
	m.u.grow.action = UPAGER_GROW_EXTEND;
	m.u.grow.prot = 0x03;
	roundtrip(&m, HDR + 32);
	m.u.grow.action = UPAGER_GROW_REFUSE;
	roundtrip(&m, HDR + 32);
	m.u.grow.action = UPAGER_GROW_GUARD;
	roundtrip(&m, HDR + 32);

	msg_init(&m, REPLY(UPAGER_OP_GROW), 11);
	m.u.grow_reply.sentinel = 1;
	roundtrip(&m, HDR + RPL + 8);
	m.u.grow_reply.sentinel = 2;
	cr_assert_eq(upager_msg_decode(buf, encode(&m), &m), -EBADMSG, "sentinel is 0 or 1");

	msg_init(&m, UPAGER_OP_GROW, 12);
	m.u.grow.action = 4;
	cr_assert_eq(upager_msg_decode(buf, encode(&m), &m), -EBADMSG, "unknown action");
}

Test(codec, control_and_growth_limit_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_CONTROL, 13);
	m.u.range.addr = 0x00007ffff7c00000ull;
	m.u.range.length = 0x0000000000400000ull | 0x0101010101010000ull;
	roundtrip(&m, HDR + 16);
	msg_init(&m, REPLY(UPAGER_OP_CONTROL), 13);
	roundtrip(&m, HDR + RPL);

	msg_init(&m, UPAGER_OP_GROWTH_LIMIT, 14);
	m.u.growth_limit.addr = 0x00007ffff7dd1234ull;
	m.u.growth_limit.max_length = 0x8000000000000001ull;
	roundtrip(&m, HDR + 16);
}

Test(codec, drop_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_DROP, 16);
	m.u.drop.addr = 0x01017ffff7dd1000ull;
	m.u.drop.spare = 0x01027ffff7c01000ull;
	m.u.drop.pages = UPAGER_DROP_MAX_PAGES;
	m.u.drop.flags = UPAGER_DROP_IN_PLACE;
	for (int i = 0; i < UPAGER_DROP_WINDOW_PAGES / 64; i++)
		m.u.drop.map[i] = i % 4 ? 0x8040201008040201ull << (i % 8) : ~0ull;
	roundtrip(&m, HDR + 24 + UPAGER_DROP_WINDOW_PAGES / 8);
	msg_init(&m, REPLY(UPAGER_OP_DROP), 16);
	for (int i = 0; i < UPAGER_DROP_MAX_PAGES / 64; i++)
		m.u.drop_reply.moved[i] = 0x8101010101010101ull + (uint64_t)i;
	roundtrip(&m, HDR + RPL + 32);
	/* No page, or more than a part of the spare area: refused. */
	msg_init(&m, UPAGER_OP_DROP, 17);
	m.u.drop.pages = 0;
	cr_assert_eq(upager_msg_decode(buf, encode(&m), &m), -EBADMSG, "no page");
	msg_init(&m, UPAGER_OP_DROP, 18);
	m.u.drop.pages = 1;
	m.u.drop.map[0] = 1;
	m.u.drop.flags = 2;
	cr_assert_eq(upager_msg_decode(buf, encode(&m), &m), -EBADMSG, "an unknown flag");
}

Test(codec, resume_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_RESUME, 15);
	m.u.resume.kind = UPAGER_OBJECT_FILE;
	m.u.resume.prot = 0x01020303;
	m.u.resume.flags = 0x81010101;
	m.u.resume.addr = 0x01017ffff7dd1000ull;
	m.u.resume.length = 0x0102030405061000ull;
	m.u.resume.offset = 0x8070605040302000ull;
	roundtrip(&m, HDR + 40);
	m.u.resume.kind = UPAGER_RESUME_ANON_PRIVATE;
	roundtrip(&m, HDR + 40);

	msg_init(&m, UPAGER_OP_RESUME, 16);
	m.u.resume.kind = UPAGER_RESUME_END;
	roundtrip(&m, HDR + 40);
	m.u.resume.addr = 0x1000;
	cr_assert_eq(upager_msg_decode(buf, encode(&m), &m), -EBADMSG, "the end carries nothing");

	msg_init(&m, UPAGER_OP_RESUME, 17);
	m.u.resume.kind = UPAGER_RESUME_END + 1;
	cr_assert_eq(upager_msg_decode(buf, encode(&m), &m), -EBADMSG, "unknown kind");

	msg_init(&m, REPLY(UPAGER_OP_RESUME), 15);
	m.status = -EACCES;
	roundtrip(&m, HDR + RPL);
}

Test(codec, msync_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_MSYNC, 10);
	m.u.msync.addr = 0x01017ffff7dd0101ull;
	m.u.msync.length = 0x1234567801010101ull;
	m.u.msync.flags = 0xc0010104;
	roundtrip(&m, HDR + 24);

	msg_init(&m, REPLY(UPAGER_OP_MSYNC), 10);
	m.status = -EIO;
	roundtrip(&m, HDR + RPL);
}

Test(codec, remap_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_REMAP, 12);
	m.u.remap.addr = 0x01017ffff7dd0101ull;
	m.u.remap.size = 0x1234567801010101ull;
	m.u.remap.pgoff = 0x0203040506070809ull;
	m.u.remap.flags = 0x10000;
	m.u.remap.phase = 2;
	roundtrip(&m, HDR + 32);

	msg_init(&m, REPLY(UPAGER_OP_REMAP), 12);
	m.u.remap_reply.start = 0x7f0102030405ull;
	m.u.remap_reply.length = 0x0102030405060708ull;
	m.u.remap_reply.convert = 1;
	m.u.remap_reply.map_type = 0x0a0b0c0d;
	m.u.remap_reply.prot = 3;
	roundtrip(&m, HDR + RPL + 32);
}

Test(codec, remap_with_an_unknown_phase_is_bad)
{
	struct upager_msg m, out;
	uint8_t wire[256];
	int n;

	msg_init(&m, UPAGER_OP_REMAP, 1);
	m.u.remap.phase = 3;
	n = upager_msg_encode(wire, sizeof(wire), &m);
	cr_assert_eq(n, (int)(HDR + 32));
	cr_assert_eq(upager_msg_decode(wire, (size_t)n, &out), -EBADMSG);
}

Test(codec, list_round_trip)
{
	struct upager_msg m, out;

	msg_init(&m, UPAGER_OP_LIST, 11);
	m.u.list.cursor = 0xabcdef01;
	m.u.list.pid = 0x7fff1234;
	roundtrip(&m, HDR + 8);

	/* Decode points entries into the buffer: compare the reply field by field. */
	msg_init(&m, REPLY(UPAGER_OP_LIST), 11);
	m.u.list_reply.count = 0x10203040;
	m.u.list_reply.next_cursor = 0x50607080;
	cr_assert_eq(encode(&m), HDR + RPL + 8);
	cr_assert_eq(upager_msg_decode(buf, HDR + RPL + 8, &out), 0);
	cr_assert_eq(out.op, REPLY(UPAGER_OP_LIST));
	cr_assert_eq(out.seq, 11);
	cr_assert_eq(out.u.list_reply.count, 0x10203040);
	cr_assert_eq(out.u.list_reply.next_cursor, 0x50607080);
	cr_assert_eq(out.u.list_reply.entries, buf + HDR + RPL + 8);
	cr_assert_eq(out.u.list_reply.entries_len, 0);
}

Test(codec, stats_round_trip)
{
	struct upager_msg m;

	msg_init(&m, UPAGER_OP_STATS, 12);
	roundtrip(&m, HDR);

	msg_init(&m, REPLY(UPAGER_OP_STATS), 12);
	m.u.stats_reply.sessions = 0x01010101;
	m.u.stats_reply.spaces = 0x02020202;
	m.u.stats_reply.regions = 0x03030303;
	m.u.stats_reply.objects = 0x04040404;
	m.u.stats_reply.cached_pages = 0x0505050505050505ull;
	m.u.stats_reply.faults = 0x0606060606060606ull;
	m.u.stats_reply.pages_read = 0x0707070707070707ull;
	m.u.stats_reply.bytes_read = 0x0808080808080808ull;
	m.u.stats_reply.bytes_written = 0x0909090909090909ull;
	m.u.stats_reply.uptime_ms = 0x0a0a0a0a0a0a0a0aull;
	m.u.stats_reply.pages_populated = 0x0b0b0b0b0b0b0b0bull;
	m.u.stats_reply.bytes_from_page_cache = 0x0c0c0c0c0c0c0c0cull;
	m.u.stats_reply.latency_p50_ns = 0x0d0d0d0d0d0d0d0dull;
	m.u.stats_reply.latency_p99_ns = 0x0e0e0e0e0e0e0e0eull;
	m.u.stats_reply.latency_max_ns = 0x0f0f0f0f0f0f0f0full;
	m.u.stats_reply.budget_bytes = 0x1010101010101010ull;
	m.u.stats_reply.memory_pages = 0x1111111111111111ull;
	m.u.stats_reply.pages_out = 0x1212121212121212ull;
	m.u.stats_reply.pages_written_out = 0x1313131313131313ull;
	m.u.stats_reply.pages_in = 0x1414141414141414ull;
	m.u.stats_reply.refaults = 0x1515151515151515ull;
	m.u.stats_reply.over_budget = 0x1616161616161616ull;
	m.u.stats_reply.swap_bytes = 0x1717171717171717ull;
	m.u.stats_reply.swap_used_bytes = 0x1818181818181818ull;
	m.u.stats_reply.writeback_errors = 0x1919191919191919ull;
	m.u.stats_reply.store_kind = UPAGER_STORE_NBD;
	m.u.stats_reply.store_inflight = 0x1e1e1e1e;
	m.u.stats_reply.store_bytes_out = 0x1a1a1a1a1a1a1a1aull;
	m.u.stats_reply.store_bytes_in = 0x1b1b1b1b1b1b1b1bull;
	m.u.stats_reply.store_errors = 0x1c1c1c1c1c1c1c1cull;
	m.u.stats_reply.store_reconnects = 0x1d1d1d1d1d1d1d1dull;
	m.u.stats_reply.store_connections = 0x1f1f1f1f;
	roundtrip(&m, HDR + RPL + 232);
}

/* Where the swap store is: the rest of the datagram, up to a path's length. */
Test(codec, stats_reply_carries_where_the_store_is)
{
	static const char where[] = "nbd://server/export";
	struct upager_msg m, out;
	size_t n;

	msg_init(&m, REPLY(UPAGER_OP_STATS), 12);
	m.u.stats_reply.store_kind = UPAGER_STORE_NBD;
	m.u.stats_reply.store_where = where;
	m.u.stats_reply.store_where_len = sizeof(where) - 1;
	n = encode(&m);
	cr_assert_eq(n, HDR + RPL + 232 + sizeof(where) - 1);
	cr_assert_eq(upager_msg_decode(buf, n, &out), 0);
	cr_assert_eq(out.u.stats_reply.store_where_len, sizeof(where) - 1);
	cr_assert_eq(memcmp(out.u.stats_reply.store_where, where, sizeof(where) - 1), 0);
	m.u.stats_reply.store_where_len = UPAGER_PATH_MAX + 1;
	m.u.stats_reply.store_where = (const char *)buf + 8192;
	n = encode(&m);
	cr_assert_eq(upager_msg_decode(buf, n, &out), -EBADMSG, "longer than a path");
}

Test(codec, stats_reply_counters_are_little_endian_at_their_offsets)
{
	/* A round trip passes even if encode and decode agree on a wrong place: read the wire. */
	struct upager_msg m = { .op = REPLY(UPAGER_OP_STATS), .seq = 13 };
	const uint8_t *body = buf + HDR + RPL;

	m.u.stats_reply.cached_pages = 0x1011121314151617ull;
	m.u.stats_reply.faults = 0x2021222324252627ull;
	m.u.stats_reply.pages_read = 0x3031323334353637ull;
	m.u.stats_reply.bytes_read = 0x4041424344454647ull;
	m.u.stats_reply.bytes_written = 0x5051525354555657ull;
	m.u.stats_reply.uptime_ms = 0x6061626364656667ull;
	m.u.stats_reply.pages_populated = 0x7071727374757677ull;
	m.u.stats_reply.bytes_from_page_cache = 0x8081828384858687ull;
	m.u.stats_reply.latency_p50_ns = 0x9091929394959697ull;
	m.u.stats_reply.latency_p99_ns = 0xa0a1a2a3a4a5a6a7ull;
	m.u.stats_reply.latency_max_ns = 0xb0b1b2b3b4b5b6b7ull;
	m.u.stats_reply.budget_bytes = 0xc0c1c2c3c4c5c6c7ull;
	m.u.stats_reply.memory_pages = 0xd0d1d2d3d4d5d6d7ull;
	m.u.stats_reply.pages_out = 0xe0e1e2e3e4e5e6e7ull;
	m.u.stats_reply.pages_written_out = 0xf0f1f2f3f4f5f6f7ull;
	m.u.stats_reply.pages_in = 0x1819202122232425ull;
	m.u.stats_reply.refaults = 0x2829303132333435ull;
	m.u.stats_reply.over_budget = 0x3839404142434445ull;
	m.u.stats_reply.swap_bytes = 0x4849505152535455ull;
	m.u.stats_reply.swap_used_bytes = 0x5859606162636465ull;
	m.u.stats_reply.writeback_errors = 0x6869707172737475ull;
	m.u.stats_reply.store_inflight = 0x68697071;
	m.u.stats_reply.store_bytes_out = 0x7273747576777879ull;
	m.u.stats_reply.store_reconnects = 0x8283848586878889ull;
	m.u.stats_reply.store_connections = 0x92939495;
	memset(buf, 0xaa, HDR + RPL + 240);
	cr_assert_eq(encode(&m), HDR + RPL + 232);
	cr_assert_eq(rd64(body + 16), m.u.stats_reply.cached_pages);
	cr_assert_eq(rd64(body + 24), m.u.stats_reply.faults);
	cr_assert_eq(rd64(body + 32), m.u.stats_reply.pages_read);
	cr_assert_eq(rd64(body + 40), m.u.stats_reply.bytes_read);
	cr_assert_eq(rd64(body + 48), m.u.stats_reply.bytes_written);
	cr_assert_eq(rd64(body + 56), m.u.stats_reply.uptime_ms);
	cr_assert_eq(rd64(body + 64), m.u.stats_reply.pages_populated);
	cr_assert_eq(rd64(body + 72), m.u.stats_reply.bytes_from_page_cache);
	cr_assert_eq(rd64(body + 80), m.u.stats_reply.latency_p50_ns);
	cr_assert_eq(rd64(body + 88), m.u.stats_reply.latency_p99_ns);
	cr_assert_eq(rd64(body + 96), m.u.stats_reply.latency_max_ns);
	cr_assert_eq(rd64(body + 104), m.u.stats_reply.budget_bytes);
	cr_assert_eq(rd64(body + 112), m.u.stats_reply.memory_pages);
	cr_assert_eq(rd64(body + 120), m.u.stats_reply.pages_out);
	cr_assert_eq(rd64(body + 128), m.u.stats_reply.pages_written_out);
	cr_assert_eq(rd64(body + 136), m.u.stats_reply.pages_in);
	cr_assert_eq(rd64(body + 144), m.u.stats_reply.refaults);
	cr_assert_eq(rd64(body + 152), m.u.stats_reply.over_budget);
	cr_assert_eq(rd64(body + 160), m.u.stats_reply.swap_bytes);
	cr_assert_eq(rd64(body + 168), m.u.stats_reply.swap_used_bytes);
	cr_assert_eq(rd64(body + 176), m.u.stats_reply.writeback_errors);
	cr_assert_eq(rd64(body + 184) >> 32, m.u.stats_reply.store_inflight);
	cr_assert_eq(rd64(body + 192), m.u.stats_reply.store_bytes_out);
	cr_assert_eq(rd64(body + 216), m.u.stats_reply.store_reconnects);
	cr_assert_eq(rd64(body + 224), m.u.stats_reply.store_connections);
	cr_assert_eq(body[232], 0xaa, "encode wrote past the message");
}

Test(codec, header_is_little_endian_on_the_wire)
{
	struct upager_msg m = { .op = UPAGER_OP_HELLO, .seq = 0x0a0b0c0d };
	/* Rows of 16 bytes, as a hex dump shows them. */
	/* clang-format off */
	static const uint8_t hello[32] = {
		'U', 'P', 'G', 'R', 0x01, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00, 0x00, 0x0d, 0x0c, 0x0b, 0x0a,
		0x01, 0x00, 0x02, 0x01, 0x05, 0x00, 0x00, 0x00, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
	};
	static const uint8_t reply_hdr[24] = {
		'U', 'P', 'G', 'R', 0x01, 0x00, 0x03, 0x80, 0x18, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01,
		0xfe, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	};
	/* clang-format on */

	m.u.hello.version_min = 1;
	m.u.hello.version_max = 0x0102;
	m.u.hello.flags = UPAGER_HELLO_UFFD | UPAGER_HELLO_CTL;
	m.u.hello.token_addr = 0x1122334455667788ull;
	memset(buf, 0xaa, 64);
	cr_assert_eq(encode(&m), sizeof(hello));
	cr_assert_arr_eq(buf, hello, sizeof(hello));
	cr_assert_eq(buf[sizeof(hello)], 0xaa, "encode wrote past the message");

	m = (struct upager_msg){ .op = REPLY(UPAGER_OP_REGION_ADD),
				 .seq = 0x01020304,
				 .status = -2 };
	cr_assert_eq(encode(&m), sizeof(reply_hdr));
	cr_assert_arr_eq(buf, reply_hdr, sizeof(reply_hdr));
}

Test(codec, every_valid_message_decodes)
{
	/* The baseline the malformed cases below patch: each of these decodes as it is. */
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++) {
		struct upager_msg m;
		size_t n = encode_valid(all_ops[i]);

		cr_assert_eq(upager_msg_decode(buf, n, &m), 0, "op %#x", all_ops[i]);
		cr_assert_eq(m.op, all_ops[i]);
		cr_assert_eq(m.seq, 7);
	}
}

Test(decode, short_datagrams_are_bad)
{
	uint8_t *end = guarded_page() + UPAGER_PAGE_SIZE;
	struct upager_msg m;
	size_t n = encode_valid(UPAGER_OP_HELLO);

	/* Cut headers sit right before the guard page: decode must not look past them. */
	for (size_t len = 0; len < HDR; len++) {
		memcpy(end - len, buf, len);
		cr_assert_eq(upager_msg_decode(end - len, len, &m), -EBADMSG, "%zu bytes", len);
	}
	/* A whole header whose len field promises more than arrived. */
	cr_assert_eq(decode(n - 8), -EBADMSG);
}

Test(decode, wrong_magic)
{
	size_t n = encode_valid(UPAGER_OP_MUNMAP);

	for (int i = 0; i < 4; i++) {
		buf[i] ^= 0x20; /* "upgr" byte by byte */
		cr_assert_eq(decode(n), -EBADMSG, "magic byte %d", i);
		buf[i] ^= 0x20;
	}
	cr_assert_eq(decode(n), 0);
}

Test(decode, len_field_must_match_datagram)
{
	size_t n = encode_valid(UPAGER_OP_HELLO);

	set_len(n + 8);
	cr_assert_eq(decode(n), -EBADMSG);
	set_len(n - 8);
	cr_assert_eq(decode(n), -EBADMSG);
	set_len((uint32_t)n | 0x01000000); /* differs only in its top byte */
	cr_assert_eq(decode(n), -EBADMSG);
	set_len(n);
	cr_assert_eq(decode(n), 0);
}

Test(decode, datagram_over_msg_max)
{
	struct upager_msg m;

	memset(buf, 0, sizeof(buf));
	encode_valid(REPLY(UPAGER_OP_LIST));
	set_len(UPAGER_MSG_MAX);
	cr_assert_eq(upager_msg_decode(buf, UPAGER_MSG_MAX, &m), 0, "the limit itself is allowed");
	cr_assert_eq(m.u.list_reply.entries_len, UPAGER_MSG_MAX - HDR - RPL - 8);
	set_len(UPAGER_MSG_MAX + 1);
	cr_assert_eq(decode(UPAGER_MSG_MAX + 1), -EMSGSIZE);
	set_len(UPAGER_MSG_MAX + 64);
	cr_assert_eq(decode(UPAGER_MSG_MAX + 64), -EMSGSIZE);
}

Test(decode, unsupported_versions)
{
	static const uint16_t bad[] = { 0, 2, 0xffff };
	size_t n = encode_valid(UPAGER_OP_STATS);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		wr16(buf + offsetof(struct upager_wire_hdr, version), bad[i]);
		cr_assert_eq(decode(n), -EPROTONOSUPPORT, "version %u", bad[i]);
	}
	wr16(buf + offsetof(struct upager_wire_hdr, version), 1);
	cr_assert_eq(decode(n), 0);
}

Test(decode, unknown_opcodes)
{
	static const uint16_t bad[] = {
		0, 99, UPAGER_OP_REPLY | 99, UPAGER_OP_REPLY, _UPAGER_OP_MAX, 0x4001, 0x0101,
	};
	size_t n = encode_valid(UPAGER_OP_STATS);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		wr16(buf + offsetof(struct upager_wire_hdr, op), bad[i]);
		cr_assert_eq(decode(n), -EOPNOTSUPP, "op %#x", bad[i]);
	}
}

Test(decode, body_too_short_for_its_opcode)
{
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++) {
		size_t n = encode_valid(all_ops[i]);

		if (n == HDR)
			continue; /* STATS request: no body to cut */
		set_len(n - 1);
		cr_assert_eq(decode(n - 1), -EBADMSG, "op %#x, one byte short", all_ops[i]);
		set_len(HDR);
		cr_assert_eq(decode(HDR), -EBADMSG, "op %#x, header only", all_ops[i]);
	}
}

Test(decode, body_too_long_for_its_opcode)
{
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++) {
		size_t n = encode_valid(all_ops[i]);

		if (all_ops[i] == REPLY(UPAGER_OP_LIST) || all_ops[i] == REPLY(UPAGER_OP_STATS))
			continue; /* entries, or where the store is, follow; below */
		memset(buf + n, 0, 8);
		set_len(n + 1);
		cr_assert_eq(decode(n + 1), -EBADMSG, "op %#x, one byte over", all_ops[i]);
		set_len(n + 8);
		cr_assert_eq(decode(n + 8), -EBADMSG, "op %#x, eight bytes over", all_ops[i]);
	}
}

Test(decode, list_reply_carries_trailing_bytes_as_entries)
{
	struct upager_msg m;
	size_t n = encode_valid(REPLY(UPAGER_OP_LIST));
	const uint8_t *pos;
	size_t left;
	struct upager_list_entry e;

	memset(buf + n, 0, 8);
	set_len(n + 8);
	cr_assert_eq(upager_msg_decode(buf, n + 8, &m), 0);
	cr_assert_eq(m.u.list_reply.entries, buf + n);
	cr_assert_eq(m.u.list_reply.entries_len, 8);
	/* Eight bytes cannot hold an entry: the iterator refuses them. */
	pos = m.u.list_reply.entries;
	left = m.u.list_reply.entries_len;
	cr_assert_eq(upager_list_entry_next(&pos, &left, &e), -EBADMSG);
}

static void expect_reserved_checked(uint16_t op, size_t off, size_t width)
{
	size_t n = encode_valid(op);

	for (size_t i = 0; i < width; i++) {
		buf[off + i] = 0x80;
		cr_assert_eq(decode(n), -EBADMSG, "op %#x, reserved byte %zu", op, off + i);
		buf[off + i] = 0;
	}
	cr_assert_eq(decode(n), 0, "op %#x", op);
}

Test(decode, reserved_fields_must_be_zero)
{
	expect_reserved_checked(REPLY(UPAGER_OP_HELLO),
				HDR + RPL + offsetof(struct upager_wire_hello_reply, reserved), 2);
	expect_reserved_checked(UPAGER_OP_OBJECT_OPEN,
				HDR + offsetof(struct upager_wire_object_open, reserved), 4);
	expect_reserved_checked(
		REPLY(UPAGER_OP_OBJECT_OPEN),
		HDR + RPL + offsetof(struct upager_wire_object_open_reply, reserved), 4);
	expect_reserved_checked(UPAGER_OP_MSYNC, HDR + offsetof(struct upager_wire_msync, reserved),
				4);
	expect_reserved_checked(UPAGER_OP_RESUME,
				HDR + offsetof(struct upager_wire_resume, reserved), 4);
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++)
		if (all_ops[i] & UPAGER_OP_REPLY)
			expect_reserved_checked(
				all_ops[i], HDR + offsetof(struct upager_wire_reply, reserved), 4);
}

Test(decode, reply_status_is_zero_or_negative)
{
	static const int32_t bad[] = { 1, 0x100, INT32_MAX };
	static const int32_t good[] = { -1, -ENOMEM, INT32_MIN };
	struct upager_msg m;
	size_t n = encode_valid(REPLY(UPAGER_OP_STATS));

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		wr32(buf + HDR, (uint32_t)bad[i]);
		cr_assert_eq(decode(n), -EBADMSG, "status %d", bad[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		wr32(buf + HDR, (uint32_t)good[i]);
		cr_assert_eq(upager_msg_decode(buf, n, &m), 0, "status %d", good[i]);
		cr_assert_eq(m.status, good[i]);
	}
}

Test(decode, hello_versions_and_flags)
{
	const size_t vmin = HDR + offsetof(struct upager_wire_hello, version_min);
	const size_t vmax = HDR + offsetof(struct upager_wire_hello, version_max);
	const size_t flags = HDR + offsetof(struct upager_wire_hello, flags);
	size_t n = encode_valid(UPAGER_OP_HELLO);

	wr16(buf + vmin, 2);
	wr16(buf + vmax, 1);
	cr_assert_eq(decode(n), -EBADMSG, "version_min above version_max");
	wr16(buf + vmin, 0xffff);
	wr16(buf + vmax, 0);
	cr_assert_eq(decode(n), -EBADMSG);
	wr16(buf + vmin, 2);
	wr16(buf + vmax, 2);
	cr_assert_eq(decode(n), 0, "a single version is a valid range");

	wr32(buf + flags, 1u << 5);
	cr_assert_eq(decode(n), -EBADMSG, "first unknown flag");
	wr32(buf + flags, UPAGER_HELLO_UFFD | (1u << 31));
	cr_assert_eq(decode(n), -EBADMSG, "top flag");
	wr32(buf + flags, _UPAGER_HELLO_ALL);
	cr_assert_eq(decode(n), 0, "every known flag");
}

Test(decode, object_open_kind)
{
	static const uint32_t bad[] = { 0, 3, 0xffffffff };
	const size_t kind = HDR + offsetof(struct upager_wire_object_open, kind);
	size_t n = encode_valid(UPAGER_OP_OBJECT_OPEN);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		wr32(buf + kind, bad[i]);
		cr_assert_eq(decode(n), -EBADMSG, "kind %u", bad[i]);
	}
	wr32(buf + kind, UPAGER_OBJECT_ANON_SHARED);
	cr_assert_eq(decode(n), 0);
}

Test(encode, message_must_fit)
{
	struct upager_msg m = { .op = UPAGER_OP_HELLO };

	memset(buf, 0xaa, 64);
	cr_assert_eq(upager_msg_encode(buf, HDR + 15, &m), -EMSGSIZE);
	cr_assert_eq(upager_msg_encode(buf, 0, &m), -EMSGSIZE);
	for (size_t i = 0; i < 64; i++)
		cr_assert_eq(buf[i], 0xaa, "byte %zu written by a failed encode", i);
	cr_assert_eq(upager_msg_encode(buf, HDR + 16, &m), (int)(HDR + 16));

	m = (struct upager_msg){ .op = REPLY(UPAGER_OP_LIST) };
	m.u.list_reply.entries = big_entries;
	m.u.list_reply.entries_len = 80;
	cr_assert_eq(upager_msg_encode(buf, HDR + RPL + 8 + 79, &m), -EMSGSIZE);
	cr_assert_eq(upager_msg_encode(buf, HDR + RPL + 8 + 80, &m), (int)(HDR + RPL + 8 + 80));

	/* The protocol limit holds whatever room the caller has. */
	m.u.list_reply.entries_len = UPAGER_MSG_MAX - (HDR + RPL + 8);
	cr_assert_eq(upager_msg_encode(buf, sizeof(buf), &m), (int)UPAGER_MSG_MAX);
	m.u.list_reply.entries_len++;
	cr_assert_eq(upager_msg_encode(buf, sizeof(buf), &m), -EMSGSIZE);
}

Test(encode, unknown_opcode)
{
	static const uint16_t bad[] = { 0, _UPAGER_OP_MAX, 99, UPAGER_OP_REPLY,
					UPAGER_OP_REPLY | 99 };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct upager_msg m = { .op = bad[i] };

		cr_assert_eq(upager_msg_encode(buf, sizeof(buf), &m), -EINVAL, "op %#x", bad[i]);
	}
}
