// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Codec of the upager wire protocol. Each message body is described once, below, as a list of its
 * fields; the encoder, the decoder, the checks and the tables of codec-fields.h are all generated
 * from those lists, so a new field is one line. Encoding writes every field in little-endian order
 * through memcpy (the buffer need not be aligned); decoding checks the header, the exact size of
 * each opcode's body and every reserved field before it reads a value. The header, a reply's status
 * block and the framing of LIST entries are written out by hand: they are the same for every
 * message.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "codec.h"
#include "codec-fields.h"

#define HDR sizeof(struct upager_wire_hdr)
#define RPL sizeof(struct upager_wire_reply)
#define REPLY(op) ((op) | UPAGER_OP_REPLY)

/*
 * The description. A list names F(field, rule) for each field that the wire struct and the host
 * struct both have, under the same name, and Z(field) for each reserved field of the wire struct,
 * which must be zero. The rule is what a decoded value must keep:
 */
#define RULE(kind, lo, hi) ((struct upager_codec_rule_desc){ (kind), (lo), (hi) })
#define ANY RULE(UPAGER_CODEC_ANY, 0, 0)
#define RANGE(lo, hi) RULE(UPAGER_CODEC_RANGE, lo, hi)
#define MASK(bits) RULE(UPAGER_CODEC_MASK, 0, bits)

#define HELLO(F, Z)                       \
	F(version_min, ANY)               \
	F(version_max, ANY)               \
	F(flags, MASK(_UPAGER_HELLO_ALL)) \
	F(token_addr, ANY)

#define HELLO_REPLY(F, Z) \
	F(version, ANY)   \
	Z(reserved)       \
	F(page_size, ANY) \
	F(features, ANY)

#define OBJECT_OPEN(F, Z)                                             \
	F(kind, RANGE(UPAGER_OBJECT_FILE, UPAGER_OBJECT_ANON_SHARED)) \
	F(prot, ANY)                                                  \
	F(flags, ANY)                                                 \
	Z(reserved)                                                   \
	F(offset, ANY)                                                \
	F(length, ANY)

#define OBJECT_OPEN_REPLY(F, Z) \
	F(object_id, ANY)       \
	F(map_type, ANY)        \
	Z(reserved)             \
	F(object_size, ANY)

#define REGION_ADD(F, Z)      \
	F(object_id, ANY)     \
	F(addr, ANY)          \
	F(length, ANY)        \
	F(offset, ANY)        \
	F(prot, ANY)          \
	F(flags, ANY)         \
	F(guard_addr, ANY)    \
	F(sentinel_addr, ANY) \
	F(max_length, ANY)

#define RANGE_FIELDS(F, Z) \
	F(addr, ANY)       \
	F(length, ANY)

#define GROW(F, Z)                                              \
	F(guard_addr, ANY)                                      \
	F(sentinel_addr, ANY)                                   \
	F(gap, ANY)                                             \
	F(action, RANGE(UPAGER_GROW_EXTEND, UPAGER_GROW_GUARD)) \
	F(prot, ANY)

#define GROW_REPLY(F, Z)         \
	F(sentinel, RANGE(0, 1)) \
	Z(reserved)

#define MAP4(F, k) F(map[k], ANY) F(map[k + 1], ANY) F(map[k + 2], ANY) F(map[k + 3], ANY)
#define DROP(F, Z)                                \
	F(addr, ANY)                              \
	F(spare, ANY)                             \
	F(pages, RANGE(1, UPAGER_DROP_MAX_PAGES)) \
	F(flags, RANGE(0, UPAGER_DROP_IN_PLACE))  \
	MAP4(F, 0) MAP4(F, 4) MAP4(F, 8) MAP4(F, 12)

#define DROP_REPLY(F, Z) \
	F(moved[0], ANY) \
	F(moved[1], ANY) \
	F(moved[2], ANY) \
	F(moved[3], ANY)

#define GROWTH_LIMIT(F, Z) \
	F(addr, ANY)       \
	F(max_length, ANY)

#define RESUME(F, Z)                                                  \
	F(kind, RANGE(UPAGER_RESUME_ANON_PRIVATE, UPAGER_RESUME_END)) \
	F(prot, ANY)                                                  \
	F(flags, ANY)                                                 \
	Z(reserved)                                                   \
	F(addr, ANY)                                                  \
	F(length, ANY)                                                \
	F(offset, ANY)

#define MSYNC(F, Z)    \
	F(addr, ANY)   \
	F(length, ANY) \
	F(flags, ANY)  \
	Z(reserved)

#define REMAP(F, Z)   \
	F(addr, ANY)  \
	F(size, ANY)  \
	F(pgoff, ANY) \
	F(flags, ANY) \
	F(phase, RANGE(1, 2))

#define REMAP_REPLY(F, Z) \
	F(start, ANY)     \
	F(length, ANY)    \
	F(convert, ANY)   \
	F(map_type, ANY)  \
	F(prot, ANY)      \
	Z(reserved)

#define LIST(F, Z)     \
	F(cursor, ANY) \
	F(pid, ANY)

/* The entries that follow are not fields: the caller hands them over whole. */
#define LIST_REPLY(F, Z) \
	F(count, ANY)    \
	F(next_cursor, ANY)

#define STATS_REPLY(F, Z)                                         \
	F(sessions, ANY)                                          \
	F(spaces, ANY)                                            \
	F(regions, ANY)                                           \
	F(objects, ANY)                                           \
	F(cached_pages, ANY)                                      \
	F(faults, ANY)                                            \
	F(pages_read, ANY)                                        \
	F(bytes_read, ANY)                                        \
	F(bytes_written, ANY)                                     \
	F(uptime_ms, ANY)                                         \
	F(pages_populated, ANY)                                   \
	F(bytes_from_page_cache, ANY)                             \
	F(latency_p50_ns, ANY)                                    \
	F(latency_p99_ns, ANY)                                    \
	F(latency_max_ns, ANY)                                    \
	F(budget_bytes, ANY)                                      \
	F(memory_pages, ANY)                                      \
	F(pages_out, ANY)                                         \
	F(pages_written_out, ANY)                                 \
	F(pages_in, ANY)                                          \
	F(refaults, ANY)                                          \
	F(over_budget, ANY)                                       \
	F(swap_bytes, ANY)                                        \
	F(swap_used_bytes, ANY)                                   \
	F(writeback_errors, ANY)                                  \
	F(store_kind, RANGE(UPAGER_STORE_NONE, UPAGER_STORE_NBD)) \
	F(store_inflight, ANY)                                    \
	F(store_bytes_out, ANY)                                   \
	F(store_bytes_in, ANY)                                    \
	F(store_errors, ANY)                                      \
	F(store_reconnects, ANY)                                  \
	F(store_connections, ANY)                                 \
	Z(reserved)

/* A LIST entry, but for entry_len, which frames it as the header's len frames a message. */
#define LIST_ENTRY(F, Z)                       \
	F(pid, ANY)                            \
	F(start, ANY)                          \
	F(length, ANY)                         \
	F(offset, ANY)                         \
	F(prot, ANY)                           \
	F(flags, ANY)                          \
	F(resident_pages, ANY)                 \
	F(faults, ANY)                         \
	F(object_id, ANY)                      \
	F(uid, ANY)                            \
	F(path_len, RANGE(0, UPAGER_PATH_MAX)) \
	Z(reserved)                            \
	F(pages_populated, ANY)                \
	F(pages_read, ANY)                     \
	F(bytes_read, ANY)                     \
	F(latency_avg_ns, ANY)                 \
	F(latency_max_ns, ANY)                 \
	F(nonlinear, ANY)                      \
	F(remapped_ranges, ANY)                \
	F(grown_pages, ANY)                    \
	F(max_length, ANY)                     \
	F(object_pages_out, ANY)               \
	F(object_refaults, ANY)                \
	F(object_writeback_errors, ANY)        \
	F(object_writeback_error, ANY)         \
	Z(reserved2)                           \
	F(private_pages_out, ANY)              \
	F(private_pages_in, ANY)

/* Rules that tie fields of one message together. */
static bool hello_bad(const struct upager_msg *m)
{
	return m->u.hello.version_min > m->u.hello.version_max;
}

/* The end of RESUME carries nothing. */
static bool resume_bad(const struct upager_msg *m)
{
	return m->u.resume.kind == UPAGER_RESUME_END &&
	       (m->u.resume.prot || m->u.resume.flags || m->u.resume.addr || m->u.resume.length ||
		m->u.resume.offset);
}

static bool never_bad(const struct upager_msg *m)
{
	(void)m;
	return false;
}

/*
 * Every message with a body: M(opcode, wire struct, member of upager_msg.u, fields, cross-field
 * rule). An opcode not here has an empty body.
 */
#define MESSAGES(M)                                                                                \
	M(UPAGER_OP_HELLO, upager_wire_hello, hello, HELLO, hello_bad)                             \
	M(REPLY(UPAGER_OP_HELLO), upager_wire_hello_reply, hello_reply, HELLO_REPLY, never_bad)    \
	M(UPAGER_OP_OBJECT_OPEN, upager_wire_object_open, object_open, OBJECT_OPEN, never_bad)     \
	M(REPLY(UPAGER_OP_OBJECT_OPEN), upager_wire_object_open_reply, object_open_reply,          \
	  OBJECT_OPEN_REPLY, never_bad)                                                            \
	M(UPAGER_OP_REGION_ADD, upager_wire_region_add, region_add, REGION_ADD, never_bad)         \
	M(UPAGER_OP_MUNMAP, upager_wire_range, range, RANGE_FIELDS, never_bad)                     \
	M(REPLY(UPAGER_OP_MUNMAP), upager_wire_munmap_reply, range, RANGE_FIELDS, never_bad)       \
	M(UPAGER_OP_MSYNC, upager_wire_msync, msync, MSYNC, never_bad)                             \
	M(UPAGER_OP_LIST, upager_wire_list, list, LIST, never_bad)                                 \
	M(REPLY(UPAGER_OP_LIST), upager_wire_list_reply, list_reply, LIST_REPLY, never_bad)        \
	M(REPLY(UPAGER_OP_STATS), upager_wire_stats_reply, stats_reply, STATS_REPLY, never_bad)    \
	M(UPAGER_OP_REMAP, upager_wire_remap, remap, REMAP, never_bad)                             \
	M(REPLY(UPAGER_OP_REMAP), upager_wire_remap_reply, remap_reply, REMAP_REPLY, never_bad)    \
	M(UPAGER_OP_CONTROL, upager_wire_range, range, RANGE_FIELDS, never_bad)                    \
	M(UPAGER_OP_GROW, upager_wire_grow, grow, GROW, never_bad)                                 \
	M(REPLY(UPAGER_OP_GROW), upager_wire_grow_reply, grow_reply, GROW_REPLY, never_bad)        \
	M(UPAGER_OP_GROWTH_LIMIT, upager_wire_growth_limit, growth_limit, GROWTH_LIMIT, never_bad) \
	M(UPAGER_OP_RESUME, upager_wire_resume, resume, RESUME, resume_bad)                        \
	M(UPAGER_OP_DROP, upager_wire_drop, drop, DROP, never_bad)                                 \
	M(REPLY(UPAGER_OP_DROP), upager_wire_drop_reply, drop_reply, DROP_REPLY, never_bad)

/* Byte-order helpers over unaligned memory; @width is a constant where they are used. */
static inline void put(uint8_t *p, size_t width, uint64_t v)
{
	uint16_t v16 = htole16((uint16_t)v);
	uint32_t v32 = htole32((uint32_t)v);
	uint64_t v64 = htole64(v);

	switch (width) {
	case 2:
		memcpy(p, &v16, 2);
		break;
	case 4:
		memcpy(p, &v32, 4);
		break;
	default:
		memcpy(p, &v64, 8);
		break;
	}
}

static inline uint64_t get(const uint8_t *p, size_t width)
{
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (width) {
	case 2:
		memcpy(&v16, p, 2);
		return le16toh(v16);
	case 4:
		memcpy(&v32, p, 4);
		return le32toh(v32);
	default:
		memcpy(&v64, p, 8);
		return le64toh(v64);
	}
}

static inline bool rule_ok(struct upager_codec_rule_desc r, uint64_t v)
{
	switch (r.kind) {
	case UPAGER_CODEC_RANGE:
		return v >= r.lo && v <= r.hi;
	case UPAGER_CODEC_MASK:
		return !(v & ~r.hi);
	default:
		return true;
	}
}

/*
 * What the lists expand to, inside a block that names the wire struct W and the host struct H, and
 * points b at the body on the wire and h at the host struct.
 */
#define PUT(base, type, f, v) put((base) + offsetof(type, f), sizeof(((type *)0)->f), (v))
#define GET(base, type, f) get((base) + offsetof(type, f), sizeof(((type *)0)->f))
#define WIRE_WIDTH(f) sizeof(((W *)0)->f)
#define ENCODE_F(f, rule) PUT(b, W, f, h->f);
#define DECODE_F(f, rule) h->f = (__typeof__(h->f))GET(b, W, f);
#define CHECK_F(f, rule)                    \
	if (!rule_ok(rule, (uint64_t)h->f)) \
		return -EBADMSG;
#define CHECK_Z(f)             \
	if (GET(b, W, f) != 0) \
		return -EBADMSG;
#define NOTHING(f)

/* Fields into the table of codec-fields.h; H's offset in its outer struct is base. */
#define DESCRIBE_F(f, rule_)                                                                     \
	if (n < max)                                                                             \
		out[n] = (struct upager_codec_field){ .name = #f,                                \
						      .wire = offsetof(W, f),                    \
						      .host = (uint16_t)(base + offsetof(H, f)), \
						      .wire_width = WIRE_WIDTH(f),               \
						      .host_width = sizeof(((H *)0)->f),         \
						      .rule = rule_ };                           \
	n++;
#define DESCRIBE_Z(f)                                                                          \
	if (n < max)                                                                           \
		out[n] = (struct upager_codec_field){ .name = #f,                              \
						      .wire = offsetof(W, f),                  \
						      .wire_width = WIRE_WIDTH(f),             \
						      .rule = RULE(UPAGER_CODEC_ZERO, 0, 0) }; \
	n++;

/* Body sizes, indexed by opcode without UPAGER_OP_REPLY and then by whether it is a reply. */
#define BODY_SIZE(op, wire, member, FIELDS, bad) \
	[(op) & ~UPAGER_OP_REPLY][!!((op)&UPAGER_OP_REPLY)] = sizeof(struct wire),

static const uint16_t body_sizes[_UPAGER_OP_MAX][2] = { MESSAGES(BODY_SIZE) };

/**
 * upager_msg_size() - size of the fixed part of a message
 * @op: opcode, with UPAGER_OP_REPLY for a reply
 *
 * Return: header, reply status (for replies) and body of @op; 0 for an unknown opcode.
 */
size_t upager_msg_size(uint16_t op)
{
	bool reply = op & UPAGER_OP_REPLY;
	uint16_t base = op & ~UPAGER_OP_REPLY;

	if (base == 0 || base >= _UPAGER_OP_MAX)
		return 0;
	return HDR + (reply ? RPL : 0) + body_sizes[base][reply];
}

#define ENCODE_CASE(op, wire, member, FIELDS, bad)               \
	case op: {                                               \
		typedef struct wire W;                           \
		const __typeof__(m->u.member) *h = &m->u.member; \
		FIELDS(ENCODE_F, NOTHING)                        \
		break;                                           \
	}

/**
 * upager_msg_encode() - write a message into a buffer
 * @buf: destination
 * @size: bytes available at @buf
 * @m: message; for a LIST reply, u.list_reply.entries/entries_len are appended as they are
 *
 * Return: the message length in bytes, -EINVAL for an unknown opcode, -EMSGSIZE if it does not fit.
 */
int upager_msg_encode(void *buf, size_t size, const struct upager_msg *m)
{
	uint8_t *p = buf, *b;
	bool reply = m->op & UPAGER_OP_REPLY;
	size_t len = upager_msg_size(m->op), extra = 0;

	if (len == 0)
		return -EINVAL;
	if (m->op == REPLY(UPAGER_OP_LIST))
		extra = m->u.list_reply.entries_len;
	if (m->op == REPLY(UPAGER_OP_STATS))
		extra = m->u.stats_reply.store_where_len;
	if (len + extra > size || len + extra > UPAGER_MSG_MAX)
		return -EMSGSIZE;

	memset(p, 0, len);
	PUT(p, struct upager_wire_hdr, magic, UPAGER_PROTO_MAGIC);
	PUT(p, struct upager_wire_hdr, version, m->version ? m->version : UPAGER_PROTO_VERSION);
	PUT(p, struct upager_wire_hdr, op, m->op);
	PUT(p, struct upager_wire_hdr, len, len + extra);
	PUT(p, struct upager_wire_hdr, seq, m->seq);
	if (reply)
		PUT(p + HDR, struct upager_wire_reply, status, (uint32_t)m->status);
	b = p + HDR + (reply ? RPL : 0);
	switch (m->op) {
		MESSAGES(ENCODE_CASE)
	default:
		break;
	}
	if (extra)
		memcpy(p + len,
		       m->op == REPLY(UPAGER_OP_LIST) ? (const void *)m->u.list_reply.entries
						      : (const void *)m->u.stats_reply.store_where,
		       extra);
	return (int)(len + extra);
}

/* All fields first, then the checks: a refused message leaves every field decoded, as before. */
#define DECODE_CASE(op, wire, member, FIELDS, bad)         \
	case op: {                                         \
		typedef struct wire W;                     \
		__typeof__(m->u.member) *h = &m->u.member; \
		FIELDS(DECODE_F, NOTHING)                  \
		FIELDS(CHECK_F, CHECK_Z)                   \
		if (bad(m))                                \
			return -EBADMSG;                   \
		break;                                     \
	}

/**
 * upager_msg_decode() - check and decode one datagram
 * @buf: the datagram as received
 * @len: its length
 * @m: filled on success; pointers in it point into @buf
 *
 * Return: 0; -EBADMSG for a wrong magic, a length that disagrees with the datagram or the opcode, a
 * non-zero reserved field or a field out of its range; -EPROTONOSUPPORT for a version this codec
 * does not speak; -EOPNOTSUPP for an unknown opcode; -EMSGSIZE for a datagram over UPAGER_MSG_MAX.
 */
int upager_msg_decode(const void *buf, size_t len, struct upager_msg *m)
{
	const uint8_t *p = buf, *b;
	size_t fixed;
	bool reply;

	if (len > UPAGER_MSG_MAX)
		return -EMSGSIZE;
	if (len < HDR)
		return -EBADMSG;
	if (GET(p, struct upager_wire_hdr, magic) != UPAGER_PROTO_MAGIC)
		return -EBADMSG;
	if (GET(p, struct upager_wire_hdr, len) != len)
		return -EBADMSG;

	memset(m, 0, sizeof(*m));
	m->version = (uint16_t)GET(p, struct upager_wire_hdr, version);
	m->op = (uint16_t)GET(p, struct upager_wire_hdr, op);
	m->seq = (uint32_t)GET(p, struct upager_wire_hdr, seq);
	if (m->version < UPAGER_PROTO_VERSION_MIN || m->version > UPAGER_PROTO_VERSION)
		return -EPROTONOSUPPORT;

	fixed = upager_msg_size(m->op);
	if (fixed == 0)
		return -EOPNOTSUPP;
	if (m->op & ~(UPAGER_OP_REPLY | 0xff))
		return -EOPNOTSUPP;
	reply = m->op & UPAGER_OP_REPLY;
	if (m->op == REPLY(UPAGER_OP_LIST) || m->op == REPLY(UPAGER_OP_STATS) ? len < fixed
									      : len != fixed)
		return -EBADMSG;

	if (reply) {
		m->status = (int32_t)GET(p + HDR, struct upager_wire_reply, status);
		if (GET(p + HDR, struct upager_wire_reply, reserved))
			return -EBADMSG;
		if (m->status > 0)
			return -EBADMSG;
	}
	if (m->op == REPLY(UPAGER_OP_LIST)) {
		m->u.list_reply.entries = p + fixed;
		m->u.list_reply.entries_len = len - fixed;
	}
	b = p + HDR + (reply ? RPL : 0);
	switch (m->op) {
		MESSAGES(DECODE_CASE)
	default:
		break;
	}
	if (m->op == REPLY(UPAGER_OP_STATS)) {
		if (len - fixed > UPAGER_PATH_MAX)
			return -EBADMSG;
		m->u.stats_reply.store_where_len = (uint32_t)(len - fixed);
		if (m->u.stats_reply.store_where_len)
			m->u.stats_reply.store_where = (const char *)p + fixed;
	}
	return 0;
}

/**
 * upager_list_entry_encode() - append one LIST entry
 * @buf: destination
 * @size: bytes available
 * @e: the entry; e->path_len bytes of e->path are copied
 *
 * Return: bytes written (a multiple of 8), -ENAMETOOLONG for a path over UPAGER_PATH_MAX,
 * -EMSGSIZE if it does not fit.
 */
int upager_list_entry_encode(void *buf, size_t size, const struct upager_list_entry *e)
{
	typedef struct upager_wire_list_entry W;
	const struct upager_list_entry *h = e;
	uint8_t *b = buf;
	size_t len;

	if (e->path_len > UPAGER_PATH_MAX)
		return -ENAMETOOLONG;
	len = (sizeof(W) + e->path_len + 7) & ~(size_t)7;
	if (len > size)
		return -EMSGSIZE;

	memset(b, 0, len);
	PUT(b, W, entry_len, len);
	LIST_ENTRY(ENCODE_F, NOTHING)
	if (e->path_len)
		memcpy(b + sizeof(W), e->path, e->path_len);
	return (int)len;
}

/**
 * upager_list_entry_next() - decode the next LIST entry
 * @pos: cursor into the entries of a decoded LIST reply; advanced past the entry
 * @left: bytes left at *@pos; decreased
 * @e: filled; e->path points into the buffer
 *
 * Return: 1 when an entry was decoded, 0 at the end, -EBADMSG for a malformed entry.
 */
int upager_list_entry_next(const uint8_t **pos, size_t *left, struct upager_list_entry *e)
{
	typedef struct upager_wire_list_entry W;
	struct upager_list_entry *h = e;
	const uint8_t *b = *pos;
	uint64_t len;

	if (*left == 0)
		return 0;
	if (*left < sizeof(W))
		return -EBADMSG;
	len = GET(b, W, entry_len);
	if (len < sizeof(W) || len > *left || len % 8)
		return -EBADMSG;

	LIST_ENTRY(DECODE_F, NOTHING)
	LIST_ENTRY(CHECK_F, CHECK_Z)
	if (sizeof(W) + e->path_len > len)
		return -EBADMSG;
	e->path = (const char *)b + sizeof(W);

	*pos += len;
	*left -= len;
	return 1;
}

#define DESCRIBE_CASE(op, wire, member, FIELDS, bad)                       \
	case op: {                                                         \
		typedef struct wire W;                                     \
		typedef __typeof__(((struct upager_msg *)0)->u.member) H;  \
		const size_t base = offsetof(struct upager_msg, u.member); \
		FIELDS(DESCRIBE_F, DESCRIBE_Z)                             \
		break;                                                     \
	}

/**
 * upager_codec_fields() - the fields of one message's body, as the codec knows them
 * @op: opcode, with UPAGER_OP_REPLY for a reply
 * @out: filled with up to @max fields, in the order of the description
 * @max: room at @out
 *
 * Return: how many fields the body has (0 for an empty body or an unknown opcode), which may be
 * more than @max.
 */
size_t upager_codec_fields(uint16_t op, struct upager_codec_field *out, size_t max)
{
	size_t n = 0;

	switch (op) {
		MESSAGES(DESCRIBE_CASE)
	default:
		break;
	}
	return n;
}

/**
 * upager_codec_entry_fields() - the fields of a LIST entry but entry_len, as upager_codec_fields()
 * @out: filled with up to @max fields; host offsets are in struct upager_list_entry
 * @max: room at @out
 *
 * Return: how many fields an entry has.
 */
size_t upager_codec_entry_fields(struct upager_codec_field *out, size_t max)
{
	typedef struct upager_wire_list_entry W;
	typedef struct upager_list_entry H;
	const size_t base = 0;
	size_t n = 0;

	LIST_ENTRY(DESCRIBE_F, DESCRIBE_Z)
	return n;
}
