// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The wire codec, driven by its own description (proto/codec-fields.h): the description covers
 * every byte of every body exactly once, every field of every message survives a round trip with
 * a value of its own and lands where the description says, a value outside a field's rule is
 * refused, and every message and LIST entry cut short at any length is refused without a byte
 * past the cut being read.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "codec-test.h"
#include "proto/codec-fields.h"
#include "proto/codec.h"

static uint8_t buf[UPAGER_MSG_MAX] __attribute__((aligned(8)));

/* Every opcode: the codec's description is asked about each, not only those it lists. */
static uint16_t op_at(unsigned k)
{
	unsigned base = k / 2 + 1;

	return (uint16_t)(k % 2 ? REPLY(base) : base);
}

#define OPS (2u * (_UPAGER_OP_MAX - 1))

static size_t body_size(uint16_t op)
{
	return upager_msg_size(op) - HDR - (op & UPAGER_OP_REPLY ? RPL : 0);
}

static size_t fields_of(uint16_t op, struct upager_codec_field *f)
{
	size_t n = upager_codec_fields(op, f, UPAGER_CODEC_FIELDS_MAX);

	cr_assert_leq(n, UPAGER_CODEC_FIELDS_MAX, "op %#x", op);
	return n;
}

static size_t entry_fields(struct upager_codec_field *f)
{
	size_t n = upager_codec_entry_fields(f, UPAGER_CODEC_FIELDS_MAX);

	cr_assert_leq(n, UPAGER_CODEC_FIELDS_MAX);
	return n;
}

static uint64_t rd(const uint8_t *p, size_t width)
{
	uint64_t v = 0;

	for (size_t i = width; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void wr(uint8_t *p, size_t width, uint64_t v)
{
	for (size_t i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Host fields are native integers of host_width bytes. */
static void host_set(void *base, const struct upager_codec_field *f, uint64_t v)
{
	uint8_t *p = (uint8_t *)base + f->host;
	uint16_t v16 = (uint16_t)v;
	uint32_t v32 = (uint32_t)v;

	if (f->host_width == 2)
		memcpy(p, &v16, 2);
	else if (f->host_width == 4)
		memcpy(p, &v32, 4);
	else
		memcpy(p, &v, 8);
}

static uint64_t host_get(const void *base, const struct upager_codec_field *f)
{
	const uint8_t *p = (const uint8_t *)base + f->host;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	if (f->host_width == 2) {
		memcpy(&v16, p, 2);
		return v16;
	}
	if (f->host_width == 4) {
		memcpy(&v32, p, 4);
		return v32;
	}
	memcpy(&v64, p, 8);
	return v64;
}

/*
 * The value field k gets: its rule's smallest but one (or only) value where it has one, else
 * bytes that no other field of the message has and none of them zero, so that a field read from
 * another's place, or cut short, shows.
 */
static uint64_t value_of(const struct upager_codec_field *f, size_t k)
{
	uint64_t v = 0;

	switch (f->rule.kind) {
	case UPAGER_CODEC_RANGE:
		return f->rule.hi > f->rule.lo ? f->rule.lo + 1 : f->rule.lo;
	case UPAGER_CODEC_MASK:
		return f->rule.hi;
	case UPAGER_CODEC_ZERO:
		return 0;
	}
	for (size_t j = 0; j < f->wire_width; j++)
		v |= (uint64_t)((k * 8 + j) % 255 + 1) << (8 * j);
	return v;
}

/* @m of @op with every field set by value_of(); the number of fields. */
static size_t msg_fill(struct upager_msg *m, uint16_t op, struct upager_codec_field *f)
{
	size_t n = fields_of(op, f);

	memset(m, 0, sizeof(*m));
	m->op = op;
	m->seq = 0x01020304u + op;
	for (size_t k = 0; k < n; k++)
		if (f[k].rule.kind != UPAGER_CODEC_ZERO)
			host_set(m, &f[k], value_of(&f[k], k));
	return n;
}

/* Mark [at, at+width) of @seen, each byte once. */
static void cover(uint8_t *seen, size_t size, size_t at, size_t width, const char *what)
{
	cr_assert_leq(at + width, size, "%s: past the end", what);
	for (size_t i = at; i < at + width; i++) {
		cr_assert_eq(seen[i], 0, "%s: byte %zu described twice", what, i);
		seen[i] = 1;
	}
}

Test(codec_fields, every_byte_of_every_body_is_described_once)
{
	struct upager_codec_field f[UPAGER_CODEC_FIELDS_MAX];
	uint8_t seen[256];

	for (unsigned o = 0; o < OPS; o++) {
		uint16_t op = op_at(o);
		size_t size = body_size(op), n = fields_of(op, f);

		memset(seen, 0, sizeof(seen));
		cr_assert_leq(size, sizeof(seen));
		for (size_t k = 0; k < n; k++) {
			cover(seen, size, f[k].wire, f[k].wire_width, f[k].name);
			if (f[k].rule.kind == UPAGER_CODEC_ZERO)
				continue;
			cr_assert_geq(f[k].host_width, f[k].wire_width, "op %#x %s", op, f[k].name);
			cr_assert_geq(f[k].host, offsetof(struct upager_msg, u), "op %#x %s", op,
				      f[k].name);
			cr_assert_leq(f[k].host + f[k].host_width, sizeof(struct upager_msg));
		}
		for (size_t i = 0; i < size; i++)
			cr_assert_eq(seen[i], 1, "op %#x: body byte %zu is no field's", op, i);
	}

	/* A LIST entry: entry_len frames it, the description has the rest. */
	memset(seen, 0, sizeof(seen));
	cover(seen, ENTRY_FIXED, 0, 4, "entry_len");
	for (size_t k = 0, n = entry_fields(f); k < n; k++)
		cover(seen, ENTRY_FIXED, f[k].wire, f[k].wire_width, f[k].name);
	for (size_t i = 0; i < ENTRY_FIXED; i++)
		cr_assert_eq(seen[i], 1, "entry byte %zu is no field's", i);
}

Test(codec_fields, every_field_of_every_message_survives_a_round_trip)
{
	struct upager_codec_field f[UPAGER_CODEC_FIELDS_MAX];
	struct upager_msg in, out;

	for (unsigned o = 0; o < OPS; o++) {
		uint16_t op = op_at(o);
		size_t n = msg_fill(&in, op, f), body = HDR + (op & UPAGER_OP_REPLY ? RPL : 0);
		int len = upager_msg_encode(buf, sizeof(buf), &in);

		cr_assert_eq(len, (int)upager_msg_size(op), "op %#x: %d", op, len);
		for (size_t k = 0; k < n; k++)
			cr_assert_eq(rd(buf + body + f[k].wire, f[k].wire_width),
				     value_of(&f[k], k), "op %#x: %s on the wire", op, f[k].name);
		memset(&out, 0x5a, sizeof(out));
		cr_assert_eq(upager_msg_decode(buf, (size_t)len, &out), 0, "op %#x", op);
		cr_assert_eq(out.op, op);
		cr_assert_eq(out.seq, in.seq);
		for (size_t k = 0; k < n; k++)
			if (f[k].rule.kind != UPAGER_CODEC_ZERO)
				cr_assert_eq(host_get(&out, &f[k]), value_of(&f[k], k),
					     "op %#x: %s decoded", op, f[k].name);
	}
}

Test(codec_fields, every_field_of_an_entry_survives_a_round_trip)
{
	struct upager_codec_field f[UPAGER_CODEC_FIELDS_MAX];
	struct upager_list_entry in = { 0 }, out;
	size_t n = entry_fields(f), left;
	const uint8_t *pos = buf;
	int len;

	for (size_t k = 0; k < n; k++)
		if (f[k].rule.kind != UPAGER_CODEC_ZERO)
			host_set(&in, &f[k], value_of(&f[k], k));
	cr_assert_eq(in.path_len, 1, "value_of() gives a path of one byte");
	in.path = "/";
	len = upager_list_entry_encode(buf, sizeof(buf), &in);
	cr_assert_eq(len, ENTRY_FIXED + 8);
	for (size_t k = 0; k < n; k++)
		cr_assert_eq(rd(buf + f[k].wire, f[k].wire_width), value_of(&f[k], k),
			     "%s on the wire", f[k].name);
	left = (size_t)len;
	memset(&out, 0x5a, sizeof(out));
	cr_assert_eq(upager_list_entry_next(&pos, &left, &out), 1);
	for (size_t k = 0; k < n; k++)
		if (f[k].rule.kind != UPAGER_CODEC_ZERO)
			cr_assert_eq(host_get(&out, &f[k]), value_of(&f[k], k), "%s decoded",
				     f[k].name);
	cr_assert_eq(out.path[0], '/');
}

/* Values just outside @f's rule that fit its width; how many. */
static size_t outside(const struct upager_codec_field *f, uint64_t v[2])
{
	uint64_t all = f->wire_width == 8 ? UINT64_MAX : (1ull << (8 * f->wire_width)) - 1;
	size_t n = 0;

	switch (f->rule.kind) {
	case UPAGER_CODEC_ZERO:
		v[n++] = 1;
		v[n++] = all;
		break;
	case UPAGER_CODEC_RANGE:
		if (f->rule.lo > 0)
			v[n++] = f->rule.lo - 1;
		if (f->rule.hi < all)
			v[n++] = f->rule.hi + 1;
		break;
	case UPAGER_CODEC_MASK:
		v[n++] =
			(~f->rule.hi & all) & -(~f->rule.hi & all); /* the lowest bit not allowed */
		break;
	}
	return n;
}

Test(codec_fields, a_value_outside_a_fields_rule_is_refused)
{
	struct upager_codec_field f[UPAGER_CODEC_FIELDS_MAX];
	struct upager_msg m;
	size_t tried = 0;
	uint64_t v[2];

	for (unsigned o = 0; o < OPS; o++) {
		uint16_t op = op_at(o);
		size_t n = msg_fill(&m, op, f), body = HDR + (op & UPAGER_OP_REPLY ? RPL : 0);
		int len = upager_msg_encode(buf, sizeof(buf), &m);

		for (size_t k = 0; k < n; k++) {
			for (size_t j = 0, bad = outside(&f[k], v); j < bad; j++, tried++) {
				wr(buf + body + f[k].wire, f[k].wire_width, v[j]);
				cr_assert_eq(upager_msg_decode(buf, (size_t)len, &m), -EBADMSG,
					     "op %#x: %s = %#llx", op, f[k].name,
					     (unsigned long long)v[j]);
				wr(buf + body + f[k].wire, f[k].wire_width, value_of(&f[k], k));
			}
			cr_assert_eq(upager_msg_decode(buf, (size_t)len, &m), 0, "op %#x", op);
		}
	}
	cr_assert_geq(tried, 10, "the rules were tried");
}

Test(codec_fields, a_value_outside_an_entry_fields_rule_is_refused)
{
	struct upager_codec_field f[UPAGER_CODEC_FIELDS_MAX];
	struct upager_list_entry e = { .path = "/", .path_len = 1 };
	size_t n = entry_fields(f), tried = 0;
	int len = upager_list_entry_encode(buf, sizeof(buf), &e);
	uint64_t v[2];

	for (size_t k = 0; k < n; k++) {
		for (size_t j = 0, bad = outside(&f[k], v); j < bad; j++, tried++) {
			const uint8_t *pos = buf;
			size_t left = (size_t)len;
			uint64_t was = rd(buf + f[k].wire, f[k].wire_width);

			wr(buf + f[k].wire, f[k].wire_width, v[j]);
			cr_assert_eq(upager_list_entry_next(&pos, &left, &e), -EBADMSG,
				     "%s = %#llx", f[k].name, (unsigned long long)v[j]);
			cr_assert_eq(pos, buf);
			wr(buf + f[k].wire, f[k].wire_width, was);
		}
	}
	cr_assert_geq(tried, 3, "reserved and path_len were tried");
}

Test(codec_fields, a_message_cut_short_is_refused_at_every_length)
{
	struct upager_codec_field f[UPAGER_CODEC_FIELDS_MAX];
	uint8_t *page = guarded_page(), *end = page + UPAGER_PAGE_SIZE;
	struct upager_msg m;

	for (unsigned o = 0; o < OPS; o++) {
		uint16_t op = op_at(o);
		int len;

		msg_fill(&m, op, f);
		len = upager_msg_encode(buf, sizeof(buf), &m);
		for (size_t cut = 0; cut < (size_t)len; cut++) {
			/* The datagram ends at the inaccessible page: no byte past it is read. */
			memcpy(end - cut, buf, cut);
			cr_assert_eq(upager_msg_decode(end - cut, cut, &m), -EBADMSG,
				     "op %#x cut at %zu", op, cut);
			if (cut < HDR)
				continue;
			/* And with a header that agrees with the cut. */
			wr32(end - cut + offsetof(struct upager_wire_hdr, len), (uint32_t)cut);
			cr_assert_eq(upager_msg_decode(end - cut, cut, &m), -EBADMSG,
				     "op %#x cut at %zu, len too", op, cut);
		}
	}
	munmap(page, 2 * UPAGER_PAGE_SIZE);
}

Test(codec_fields, an_entry_cut_short_is_refused_at_every_length)
{
	struct upager_list_entry e = { .pid = 1, .path = "/tmp/x", .path_len = 6 };
	uint8_t *page = guarded_page(), *end = page + UPAGER_PAGE_SIZE;
	int len = upager_list_entry_encode(buf, sizeof(buf), &e);

	cr_assert_eq(len, ENTRY_FIXED + 8);
	for (size_t cut = 1; cut < (size_t)len; cut++) {
		const uint8_t *pos = end - cut;
		size_t left = cut;

		memcpy(end - cut, buf, cut);
		cr_assert_eq(upager_list_entry_next(&pos, &left, &e), -EBADMSG, "cut at %zu", cut);
		cr_assert_eq(pos, end - cut, "cursor kept");
		cr_assert_eq(left, cut);
		if (cut < 4)
			continue;
		/* And with an entry_len that agrees with the cut. */
		wr32(end - cut, (uint32_t)cut);
		cr_assert_eq(upager_list_entry_next(&pos, &left, &e), -EBADMSG,
			     "cut at %zu, entry_len too", cut);
	}
	munmap(page, 2 * UPAGER_PAGE_SIZE);
}
