// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The wire codec, LIST entries: a round trip of entries with paths of awkward lengths through a
 * LIST reply, their 8-byte alignment, the limits of the encoder, and each malformed entry the
 * iterator must refuse without moving its cursor or reading past the bytes it was given.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "codec-test.h"
#include "proto/codec.h"

static struct upager_list_entry sample_entry(unsigned i, const char *path, size_t path_len)
{
	return (struct upager_list_entry){
		.pid = 1000 + i,
		.uid = 0x80000000u + i,
		.start = 0x00007f0000000000ull + i * 0x10000,
		.length = 0x0000000100000000ull + i,
		.offset = 0x8000000000000000ull + i * 0x1000,
		.prot = 0x10000 + i,
		.flags = 0x20000000u + i,
		.resident_pages = 0x0123456700000000ull + i,
		.faults = 0xfffffffffffff000ull + i,
		.object_id = 0x4000000000000000ull + i,
		.pages_populated = 0x0102030405060708ull + i,
		.pages_read = 0x1112131415161718ull + i,
		.bytes_read = 0x2122232425262728ull + i,
		.latency_avg_ns = 0x3132333435363738ull + i,
		.latency_max_ns = 0xf1f2f3f4f5f6f7f8ull + i,
		.nonlinear = 0x41424344u + i,
		.remapped_ranges = 0x51525354u + i,
		.grown_pages = 0x6162636465666768ull + i,
		.max_length = 0x7172737475767778ull + i,
		.object_pages_out = 0x8182838485868788ull + i,
		.object_refaults = 0x9192939495969798ull + i,
		.object_writeback_errors = 0xa1a2a3a4a5a6a7a8ull + i,
		.object_writeback_error = 0xb1b2b3b4u + i,
		.private_pages_out = 0xc1c2c3c4c5c6c7c8ull + i,
		.private_pages_in = 0xd1d2d3d4d5d6d7d8ull + i,
		.path = path,
		.path_len = path_len,
	};
}

static void expect_entry_eq(const struct upager_list_entry *a, const struct upager_list_entry *b)
{
	cr_assert_eq(a->pid, b->pid);
	cr_assert_eq(a->uid, b->uid);
	cr_assert_eq(a->start, b->start);
	cr_assert_eq(a->length, b->length);
	cr_assert_eq(a->offset, b->offset);
	cr_assert_eq(a->prot, b->prot);
	cr_assert_eq(a->flags, b->flags);
	cr_assert_eq(a->resident_pages, b->resident_pages);
	cr_assert_eq(a->faults, b->faults);
	cr_assert_eq(a->nonlinear, b->nonlinear);
	cr_assert_eq(a->remapped_ranges, b->remapped_ranges);
	cr_assert_eq(a->object_id, b->object_id);
	cr_assert_eq(a->pages_populated, b->pages_populated);
	cr_assert_eq(a->pages_read, b->pages_read);
	cr_assert_eq(a->bytes_read, b->bytes_read);
	cr_assert_eq(a->latency_avg_ns, b->latency_avg_ns);
	cr_assert_eq(a->latency_max_ns, b->latency_max_ns);
	cr_assert_eq(a->grown_pages, b->grown_pages);
	cr_assert_eq(a->max_length, b->max_length);
	cr_assert_eq(a->object_pages_out, b->object_pages_out);
	cr_assert_eq(a->object_refaults, b->object_refaults);
	cr_assert_eq(a->object_writeback_errors, b->object_writeback_errors);
	cr_assert_eq(a->object_writeback_error, b->object_writeback_error);
	cr_assert_eq(a->private_pages_out, b->private_pages_out);
	cr_assert_eq(a->private_pages_in, b->private_pages_in);
	cr_assert_eq(a->path_len, b->path_len);
	cr_assert_eq(memcmp(a->path, b->path, a->path_len), 0);
}

Test(list_entry, round_trip_through_a_list_reply)
{
	static const size_t path_lens[] = { 0, 1, 7, 8, 300 };
	static const size_t entry_lens[] = { 184, 192, 192, 192, 488 };
	static uint8_t entries[2048], msgbuf[2048] __attribute__((aligned(8)));
	char path[300 + ARRAY_SIZE(path_lens)];
	struct upager_list_entry in[ARRAY_SIZE(path_lens)], out;
	struct upager_msg m = { .op = REPLY(UPAGER_OP_LIST), .seq = 77 };
	size_t off = 0, n, left;
	const uint8_t *pos;

	for (size_t i = 0; i < sizeof(path); i++)
		path[i] = (char)('a' + i % 26);
	memset(entries, 0xaa, sizeof(entries));
	for (size_t i = 0; i < ARRAY_SIZE(path_lens); i++) {
		int ret;

		in[i] = sample_entry(i, path + i, path_lens[i]);
		ret = upager_list_entry_encode(entries + off, sizeof(entries) - off, &in[i]);
		cr_assert_eq(ret, (int)entry_lens[i], "path of %zu bytes: %d", path_lens[i], ret);
		for (size_t j = ENTRY_FIXED + path_lens[i]; j < entry_lens[i]; j++)
			cr_assert_eq(entries[off + j], 0, "padding byte %zu of entry %zu", j, i);
		off += (size_t)ret;
	}

	m.u.list_reply.count = ARRAY_SIZE(in);
	m.u.list_reply.next_cursor = 42;
	m.u.list_reply.entries = entries;
	m.u.list_reply.entries_len = off;
	n = (size_t)upager_msg_encode(msgbuf, sizeof(msgbuf), &m);
	cr_assert_eq(n, HDR + RPL + 8 + off);
	memset(&m, 0, sizeof(m));
	cr_assert_eq(upager_msg_decode(msgbuf, n, &m), 0);
	cr_assert_eq(m.u.list_reply.count, ARRAY_SIZE(in));
	cr_assert_eq(m.u.list_reply.next_cursor, 42);
	cr_assert_eq(m.u.list_reply.entries_len, off);

	pos = m.u.list_reply.entries;
	left = m.u.list_reply.entries_len;
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		const uint8_t *at = pos;

		cr_assert_eq((size_t)(at - msgbuf) % 8, 0, "entry %zu not 8-byte aligned", i);
		cr_assert_eq(upager_list_entry_next(&pos, &left, &out), 1, "entry %zu", i);
		expect_entry_eq(&out, &in[i]);
		cr_assert_eq((const uint8_t *)out.path, at + ENTRY_FIXED,
			     "path points into the buffer");
		cr_assert_eq(pos, at + entry_lens[i]);
	}
	cr_assert_eq(left, 0);
	cr_assert_eq(upager_list_entry_next(&pos, &left, &out), 0, "end of entries");
}

static uint8_t ebuf[256];

/* One valid entry with a 6-byte path: 192 bytes. */
static size_t valid_entry(void)
{
	struct upager_list_entry e = sample_entry(3, "/tmp/x", 6);
	int ret = upager_list_entry_encode(ebuf, sizeof(ebuf), &e);

	cr_assert_eq(ret, 192);
	return (size_t)ret;
}

static void expect_bad_entry(size_t left, const char *what)
{
	const uint8_t *pos = ebuf;
	size_t l = left;
	struct upager_list_entry e;

	cr_assert_eq(upager_list_entry_next(&pos, &l, &e), -EBADMSG, "%s", what);
	cr_assert_eq(pos, ebuf, "%s: cursor moved", what);
	cr_assert_eq(l, left, "%s: bytes left changed", what);
}

Test(list_entry, malformed_entries_are_refused)
{
	const size_t entry_len = offsetof(struct upager_wire_list_entry, entry_len);
	const size_t path_len = offsetof(struct upager_wire_list_entry, path_len);
	const size_t reserved = offsetof(struct upager_wire_list_entry, reserved);
	size_t n = valid_entry();
	const uint8_t *pos = ebuf;
	size_t left = n;
	struct upager_list_entry e;

	cr_assert_eq(upager_list_entry_next(&pos, &left, &e), 1, "the unpatched entry");
	cr_assert_eq(e.path_len, 6);

	/* Without a path, only the length checks themselves can catch these two. */
	wr16(ebuf + path_len, 0);
	wr32(ebuf + entry_len, 188);
	expect_bad_entry(n, "entry_len not a multiple of 8");
	wr32(ebuf + entry_len, 176);
	expect_bad_entry(n, "entry_len below the fixed part");
	wr16(ebuf + path_len, 6);
	wr32(ebuf + entry_len, 200);
	expect_bad_entry(n, "entry_len beyond the bytes left");
	wr32(ebuf + entry_len, 192);

	wr16(ebuf + path_len, 9);
	expect_bad_entry(n, "path_len beyond the entry");
	wr16(ebuf + path_len, 0xffff);
	expect_bad_entry(n, "path_len 0xffff");
	wr16(ebuf + path_len, 8);
	pos = ebuf;
	left = n;
	cr_assert_eq(upager_list_entry_next(&pos, &left, &e), 1, "a path that fills the padding");
	cr_assert_eq(e.path_len, 8);
	wr16(ebuf + path_len, 6);

	ebuf[reserved + 1] = 1;
	expect_bad_entry(n, "reserved field set");
	ebuf[reserved + 1] = 0;

	expect_bad_entry(ENTRY_FIXED - 1, "fixed part cut by one byte");
	expect_bad_entry(8, "fixed part cut short");
}

Test(list_entry, cut_fixed_part_is_not_read_past)
{
	uint8_t *end = guarded_page() + UPAGER_PAGE_SIZE;
	struct upager_list_entry e;

	valid_entry();
	for (size_t left = 1; left < ENTRY_FIXED; left++) {
		const uint8_t *pos = end - left;
		size_t l = left;

		memcpy(end - left, ebuf, left);
		cr_assert_eq(upager_list_entry_next(&pos, &l, &e), -EBADMSG, "%zu bytes", left);
	}
}

Test(list_entry, bad_entry_after_a_good_one)
{
	size_t n = valid_entry();
	const uint8_t *pos = ebuf;
	size_t left = n + 16;
	struct upager_list_entry e;

	memset(ebuf + n, 0, 16);
	wr32(ebuf + n, 16); /* a second entry that claims 16 bytes */
	cr_assert_eq(upager_list_entry_next(&pos, &left, &e), 1);
	cr_assert_eq(left, 16);
	cr_assert_eq(upager_list_entry_next(&pos, &left, &e), -EBADMSG);
	cr_assert_eq(pos, ebuf + n);
}

Test(list_entry, encode_limits)
{
	static char path[UPAGER_PATH_MAX + 1];
	static uint8_t out[UPAGER_PATH_MAX + 2 * ENTRY_FIXED];
	struct upager_list_entry e = sample_entry(1, path, UPAGER_PATH_MAX + 1);
	const uint8_t *pos = out;
	size_t left;

	memset(path, 'p', sizeof(path));
	cr_assert_eq(upager_list_entry_encode(out, sizeof(out), &e), -ENAMETOOLONG);
	e.path_len = 60000;
	cr_assert_eq(upager_list_entry_encode(out, sizeof(out), &e), -ENAMETOOLONG);
	e.path_len = UPAGER_PATH_MAX;
	cr_assert_eq(upager_list_entry_encode(out, sizeof(out), &e),
		     (int)(ENTRY_FIXED + UPAGER_PATH_MAX), "the longest path");
	left = ENTRY_FIXED + UPAGER_PATH_MAX;
	cr_assert_eq(upager_list_entry_next(&pos, &left, &e), 1);
	cr_assert_eq(e.path_len, UPAGER_PATH_MAX);

	e = sample_entry(2, "/tmp/x", 6);
	memset(ebuf, 0xaa, sizeof(ebuf));
	cr_assert_eq(upager_list_entry_encode(ebuf, 191, &e), -EMSGSIZE);
	cr_assert_eq(upager_list_entry_encode(ebuf, ENTRY_FIXED, &e), -EMSGSIZE);
	cr_assert_eq(upager_list_entry_encode(ebuf, 0, &e), -EMSGSIZE);
	for (size_t i = 0; i < sizeof(ebuf); i++)
		cr_assert_eq(ebuf[i], 0xaa, "byte %zu written by a failed encode", i);
	cr_assert_eq(upager_list_entry_encode(ebuf, 192, &e), 192);
}

Test(list_entry, counters_are_little_endian_at_their_offsets)
{
	/* A round trip passes even if encode and decode agree on a wrong place: read the bytes. */
	struct upager_list_entry e = sample_entry(5, "/tmp/x", 6);

	memset(ebuf, 0xaa, sizeof(ebuf));
	cr_assert_eq(upager_list_entry_encode(ebuf, sizeof(ebuf), &e), 192);
	cr_assert_eq(rd64(ebuf + 40), e.resident_pages);
	cr_assert_eq(rd64(ebuf + 48), e.faults);
	cr_assert_eq(rd64(ebuf + 56), e.object_id);
	cr_assert_eq(rd64(ebuf + 72), e.pages_populated);
	cr_assert_eq(rd64(ebuf + 80), e.pages_read);
	cr_assert_eq(rd64(ebuf + 88), e.bytes_read);
	cr_assert_eq(rd64(ebuf + 96), e.latency_avg_ns);
	cr_assert_eq(rd64(ebuf + 104), e.latency_max_ns);
	cr_assert_eq(ebuf[112] | ebuf[113] << 8 | ebuf[114] << 16 | (uint32_t)ebuf[115] << 24,
		     e.nonlinear);
	cr_assert_eq(ebuf[116] | ebuf[117] << 8 | ebuf[118] << 16 | (uint32_t)ebuf[119] << 24,
		     e.remapped_ranges);
	cr_assert_eq(rd64(ebuf + 120), e.grown_pages);
	cr_assert_eq(rd64(ebuf + 128), e.max_length);
	cr_assert_eq(rd64(ebuf + 136), e.object_pages_out);
	cr_assert_eq(rd64(ebuf + 144), e.object_refaults);
	cr_assert_eq(rd64(ebuf + 152), e.object_writeback_errors);
	cr_assert_eq(rd64(ebuf + 168), e.private_pages_out);
	cr_assert_eq(rd64(ebuf + 176), e.private_pages_in);
	cr_assert_eq(memcmp(ebuf + ENTRY_FIXED, "/tmp/x", 6), 0, "the path follows the counters");
	cr_assert_eq(ebuf[190], 0, "padding after the path");
	cr_assert_eq(ebuf[192], 0xaa, "encode wrote past the entry");
}
