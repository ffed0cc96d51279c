// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Codec of the upager wire protocol. Encoding writes every field in little-endian order through
 * memcpy (the buffer need not be aligned); decoding checks the header, the exact size of each
 * opcode's body and every reserved field before it reads a value.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "codec.h"

#define HDR sizeof(struct upager_wire_hdr)
#define RPL sizeof(struct upager_wire_reply)

struct body_size {
	size_t request, reply;
};

static const struct body_size body_sizes[_UPAGER_OP_MAX] = {
	[UPAGER_OP_HELLO] = { sizeof(struct upager_wire_hello),
			      sizeof(struct upager_wire_hello_reply) },
	[UPAGER_OP_OBJECT_OPEN] = { sizeof(struct upager_wire_object_open),
				    sizeof(struct upager_wire_object_open_reply) },
	[UPAGER_OP_REGION_ADD] = { sizeof(struct upager_wire_region_add), 0 },
	[UPAGER_OP_MUNMAP] = { sizeof(struct upager_wire_range),
			       sizeof(struct upager_wire_munmap_reply) },
	[UPAGER_OP_MSYNC] = { sizeof(struct upager_wire_msync), 0 },
	[UPAGER_OP_LIST] = { sizeof(struct upager_wire_list),
			     sizeof(struct upager_wire_list_reply) },
	[UPAGER_OP_STATS] = { 0, sizeof(struct upager_wire_stats_reply) },
	[UPAGER_OP_REMAP] = { sizeof(struct upager_wire_remap),
			      sizeof(struct upager_wire_remap_reply) },
	[UPAGER_OP_CONTROL] = { 0, 0 },
	[UPAGER_OP_GROW] = { sizeof(struct upager_wire_grow),
			     sizeof(struct upager_wire_grow_reply) },
	[UPAGER_OP_GROWTH_LIMIT] = { sizeof(struct upager_wire_growth_limit), 0 },
	[UPAGER_OP_RESUME] = { sizeof(struct upager_wire_resume), 0 },
};

/* Byte-order helpers over unaligned memory. */
static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

#define PUT16(base, type, field, v) put16((base) + offsetof(type, field), (v))
#define PUT32(base, type, field, v) put32((base) + offsetof(type, field), (v))
#define PUT64(base, type, field, v) put64((base) + offsetof(type, field), (v))
#define GET16(base, type, field) get16((base) + offsetof(type, field))
#define GET32(base, type, field) get32((base) + offsetof(type, field))
#define GET64(base, type, field) get64((base) + offsetof(type, field))

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
	if (reply)
		return HDR + RPL + body_sizes[base].reply;
	return HDR + body_sizes[base].request;
}

static void encode_body(uint8_t *b, const struct upager_msg *m)
{
	switch (m->op) {
	case UPAGER_OP_HELLO:
		PUT16(b, struct upager_wire_hello, version_min, m->u.hello.version_min);
		PUT16(b, struct upager_wire_hello, version_max, m->u.hello.version_max);
		PUT32(b, struct upager_wire_hello, flags, m->u.hello.flags);
		PUT64(b, struct upager_wire_hello, token_addr, m->u.hello.token_addr);
		break;
	case UPAGER_OP_HELLO | UPAGER_OP_REPLY:
		PUT16(b, struct upager_wire_hello_reply, version, m->u.hello_reply.version);
		PUT32(b, struct upager_wire_hello_reply, page_size, m->u.hello_reply.page_size);
		PUT64(b, struct upager_wire_hello_reply, features, m->u.hello_reply.features);
		break;
	case UPAGER_OP_OBJECT_OPEN:
		PUT32(b, struct upager_wire_object_open, kind, m->u.object_open.kind);
		PUT32(b, struct upager_wire_object_open, prot, m->u.object_open.prot);
		PUT32(b, struct upager_wire_object_open, flags, m->u.object_open.flags);
		PUT64(b, struct upager_wire_object_open, offset, m->u.object_open.offset);
		PUT64(b, struct upager_wire_object_open, length, m->u.object_open.length);
		break;
	case UPAGER_OP_OBJECT_OPEN | UPAGER_OP_REPLY:
		PUT64(b, struct upager_wire_object_open_reply, object_id,
		      m->u.object_open_reply.object_id);
		PUT32(b, struct upager_wire_object_open_reply, map_type,
		      m->u.object_open_reply.map_type);
		PUT64(b, struct upager_wire_object_open_reply, object_size,
		      m->u.object_open_reply.object_size);
		break;
	case UPAGER_OP_REGION_ADD:
		PUT64(b, struct upager_wire_region_add, object_id, m->u.region_add.object_id);
		PUT64(b, struct upager_wire_region_add, addr, m->u.region_add.addr);
		PUT64(b, struct upager_wire_region_add, length, m->u.region_add.length);
		PUT64(b, struct upager_wire_region_add, offset, m->u.region_add.offset);
		PUT32(b, struct upager_wire_region_add, prot, m->u.region_add.prot);
		PUT32(b, struct upager_wire_region_add, flags, m->u.region_add.flags);
		PUT64(b, struct upager_wire_region_add, guard_addr, m->u.region_add.guard_addr);
		PUT64(b, struct upager_wire_region_add, sentinel_addr,
		      m->u.region_add.sentinel_addr);
		PUT64(b, struct upager_wire_region_add, max_length, m->u.region_add.max_length);
		break;
	case UPAGER_OP_MUNMAP:
	case UPAGER_OP_MUNMAP | UPAGER_OP_REPLY:
		PUT64(b, struct upager_wire_range, addr, m->u.range.addr);
		PUT64(b, struct upager_wire_range, length, m->u.range.length);
		break;
	case UPAGER_OP_GROW:
		PUT64(b, struct upager_wire_grow, guard_addr, m->u.grow.guard_addr);
		PUT64(b, struct upager_wire_grow, sentinel_addr, m->u.grow.sentinel_addr);
		PUT64(b, struct upager_wire_grow, gap, m->u.grow.gap);
		PUT32(b, struct upager_wire_grow, action, m->u.grow.action);
		PUT32(b, struct upager_wire_grow, prot, m->u.grow.prot);
		break;
	case UPAGER_OP_GROW | UPAGER_OP_REPLY:
		PUT32(b, struct upager_wire_grow_reply, sentinel, m->u.grow_reply.sentinel);
		break;
	case UPAGER_OP_GROWTH_LIMIT:
		PUT64(b, struct upager_wire_growth_limit, addr, m->u.growth_limit.addr);
		PUT64(b, struct upager_wire_growth_limit, max_length, m->u.growth_limit.max_length);
		break;
	case UPAGER_OP_RESUME:
		PUT32(b, struct upager_wire_resume, kind, m->u.resume.kind);
		PUT32(b, struct upager_wire_resume, prot, m->u.resume.prot);
		PUT32(b, struct upager_wire_resume, flags, m->u.resume.flags);
		PUT64(b, struct upager_wire_resume, addr, m->u.resume.addr);
		PUT64(b, struct upager_wire_resume, length, m->u.resume.length);
		PUT64(b, struct upager_wire_resume, offset, m->u.resume.offset);
		break;
	case UPAGER_OP_MSYNC:
		PUT64(b, struct upager_wire_msync, addr, m->u.msync.addr);
		PUT64(b, struct upager_wire_msync, length, m->u.msync.length);
		PUT32(b, struct upager_wire_msync, flags, m->u.msync.flags);
		break;
	case UPAGER_OP_REMAP:
		PUT64(b, struct upager_wire_remap, addr, m->u.remap.addr);
		PUT64(b, struct upager_wire_remap, size, m->u.remap.size);
		PUT64(b, struct upager_wire_remap, pgoff, m->u.remap.pgoff);
		PUT32(b, struct upager_wire_remap, flags, m->u.remap.flags);
		PUT32(b, struct upager_wire_remap, phase, m->u.remap.phase);
		break;
	case UPAGER_OP_REMAP | UPAGER_OP_REPLY:
		PUT64(b, struct upager_wire_remap_reply, start, m->u.remap_reply.start);
		PUT64(b, struct upager_wire_remap_reply, length, m->u.remap_reply.length);
		PUT32(b, struct upager_wire_remap_reply, convert, m->u.remap_reply.convert);
		PUT32(b, struct upager_wire_remap_reply, map_type, m->u.remap_reply.map_type);
		PUT32(b, struct upager_wire_remap_reply, prot, m->u.remap_reply.prot);
		break;
	case UPAGER_OP_LIST:
		PUT32(b, struct upager_wire_list, cursor, m->u.list.cursor);
		PUT32(b, struct upager_wire_list, pid, m->u.list.pid);
		break;
	case UPAGER_OP_LIST | UPAGER_OP_REPLY:
		PUT32(b, struct upager_wire_list_reply, count, m->u.list_reply.count);
		PUT32(b, struct upager_wire_list_reply, next_cursor, m->u.list_reply.next_cursor);
		break;
	case UPAGER_OP_STATS | UPAGER_OP_REPLY:
		PUT32(b, struct upager_wire_stats_reply, sessions, m->u.stats_reply.sessions);
		PUT32(b, struct upager_wire_stats_reply, spaces, m->u.stats_reply.spaces);
		PUT32(b, struct upager_wire_stats_reply, regions, m->u.stats_reply.regions);
		PUT32(b, struct upager_wire_stats_reply, objects, m->u.stats_reply.objects);
		PUT64(b, struct upager_wire_stats_reply, cached_pages,
		      m->u.stats_reply.cached_pages);
		PUT64(b, struct upager_wire_stats_reply, faults, m->u.stats_reply.faults);
		PUT64(b, struct upager_wire_stats_reply, pages_read, m->u.stats_reply.pages_read);
		PUT64(b, struct upager_wire_stats_reply, bytes_read, m->u.stats_reply.bytes_read);
		PUT64(b, struct upager_wire_stats_reply, bytes_written,
		      m->u.stats_reply.bytes_written);
		PUT64(b, struct upager_wire_stats_reply, uptime_ms, m->u.stats_reply.uptime_ms);
		PUT64(b, struct upager_wire_stats_reply, pages_populated,
		      m->u.stats_reply.pages_populated);
		PUT64(b, struct upager_wire_stats_reply, bytes_from_page_cache,
		      m->u.stats_reply.bytes_from_page_cache);
		PUT64(b, struct upager_wire_stats_reply, latency_p50_ns,
		      m->u.stats_reply.latency_p50_ns);
		PUT64(b, struct upager_wire_stats_reply, latency_p99_ns,
		      m->u.stats_reply.latency_p99_ns);
		PUT64(b, struct upager_wire_stats_reply, latency_max_ns,
		      m->u.stats_reply.latency_max_ns);
		break;
	default:
		break;
	}
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
	uint8_t *p = buf;
	bool reply = m->op & UPAGER_OP_REPLY;
	size_t len = upager_msg_size(m->op), extra = 0;

	if (len == 0)
		return -EINVAL;
	if (m->op == (UPAGER_OP_LIST | UPAGER_OP_REPLY))
		extra = m->u.list_reply.entries_len;
	if (len + extra > size || len + extra > UPAGER_MSG_MAX)
		return -EMSGSIZE;

	memset(p, 0, len);
	PUT32(p, struct upager_wire_hdr, magic, UPAGER_PROTO_MAGIC);
	PUT16(p, struct upager_wire_hdr, version, m->version ? m->version : UPAGER_PROTO_VERSION);
	PUT16(p, struct upager_wire_hdr, op, m->op);
	PUT32(p, struct upager_wire_hdr, len, (uint32_t)(len + extra));
	PUT32(p, struct upager_wire_hdr, seq, m->seq);
	if (reply)
		PUT32(p + HDR, struct upager_wire_reply, status, (uint32_t)m->status);
	encode_body(p + HDR + (reply ? RPL : 0), m);
	if (extra)
		memcpy(p + len, m->u.list_reply.entries, extra);
	return (int)(len + extra);
}

static int decode_body(const uint8_t *b, struct upager_msg *m)
{
	switch (m->op) {
	case UPAGER_OP_HELLO:
		m->u.hello.version_min = GET16(b, struct upager_wire_hello, version_min);
		m->u.hello.version_max = GET16(b, struct upager_wire_hello, version_max);
		m->u.hello.flags = GET32(b, struct upager_wire_hello, flags);
		m->u.hello.token_addr = GET64(b, struct upager_wire_hello, token_addr);
		if (m->u.hello.version_min > m->u.hello.version_max)
			return -EBADMSG;
		if (m->u.hello.flags & ~(uint32_t)_UPAGER_HELLO_ALL)
			return -EBADMSG;
		break;
	case UPAGER_OP_HELLO | UPAGER_OP_REPLY:
		m->u.hello_reply.version = GET16(b, struct upager_wire_hello_reply, version);
		m->u.hello_reply.page_size = GET32(b, struct upager_wire_hello_reply, page_size);
		m->u.hello_reply.features = GET64(b, struct upager_wire_hello_reply, features);
		if (GET16(b, struct upager_wire_hello_reply, reserved))
			return -EBADMSG;
		break;
	case UPAGER_OP_OBJECT_OPEN:
		m->u.object_open.kind = GET32(b, struct upager_wire_object_open, kind);
		m->u.object_open.prot = GET32(b, struct upager_wire_object_open, prot);
		m->u.object_open.flags = GET32(b, struct upager_wire_object_open, flags);
		m->u.object_open.offset = GET64(b, struct upager_wire_object_open, offset);
		m->u.object_open.length = GET64(b, struct upager_wire_object_open, length);
		if (GET32(b, struct upager_wire_object_open, reserved))
			return -EBADMSG;
		if (m->u.object_open.kind != UPAGER_OBJECT_FILE &&
		    m->u.object_open.kind != UPAGER_OBJECT_ANON_SHARED)
			return -EBADMSG;
		break;
	case UPAGER_OP_OBJECT_OPEN | UPAGER_OP_REPLY:
		m->u.object_open_reply.object_id =
			GET64(b, struct upager_wire_object_open_reply, object_id);
		m->u.object_open_reply.map_type =
			GET32(b, struct upager_wire_object_open_reply, map_type);
		m->u.object_open_reply.object_size =
			GET64(b, struct upager_wire_object_open_reply, object_size);
		if (GET32(b, struct upager_wire_object_open_reply, reserved))
			return -EBADMSG;
		break;
	case UPAGER_OP_REGION_ADD:
		m->u.region_add.object_id = GET64(b, struct upager_wire_region_add, object_id);
		m->u.region_add.addr = GET64(b, struct upager_wire_region_add, addr);
		m->u.region_add.length = GET64(b, struct upager_wire_region_add, length);
		m->u.region_add.offset = GET64(b, struct upager_wire_region_add, offset);
		m->u.region_add.prot = GET32(b, struct upager_wire_region_add, prot);
		m->u.region_add.flags = GET32(b, struct upager_wire_region_add, flags);
		m->u.region_add.guard_addr = GET64(b, struct upager_wire_region_add, guard_addr);
		m->u.region_add.sentinel_addr =
			GET64(b, struct upager_wire_region_add, sentinel_addr);
		m->u.region_add.max_length = GET64(b, struct upager_wire_region_add, max_length);
		break;
	case UPAGER_OP_MUNMAP:
	case UPAGER_OP_MUNMAP | UPAGER_OP_REPLY:
		m->u.range.addr = GET64(b, struct upager_wire_range, addr);
		m->u.range.length = GET64(b, struct upager_wire_range, length);
		break;
	case UPAGER_OP_GROW:
		m->u.grow.guard_addr = GET64(b, struct upager_wire_grow, guard_addr);
		m->u.grow.sentinel_addr = GET64(b, struct upager_wire_grow, sentinel_addr);
		m->u.grow.gap = GET64(b, struct upager_wire_grow, gap);
		m->u.grow.action = GET32(b, struct upager_wire_grow, action);
		m->u.grow.prot = GET32(b, struct upager_wire_grow, prot);
		if (m->u.grow.action < UPAGER_GROW_EXTEND || m->u.grow.action > UPAGER_GROW_GUARD)
			return -EBADMSG;
		break;
	case UPAGER_OP_GROW | UPAGER_OP_REPLY:
		m->u.grow_reply.sentinel = GET32(b, struct upager_wire_grow_reply, sentinel);
		if (m->u.grow_reply.sentinel > 1 ||
		    GET32(b, struct upager_wire_grow_reply, reserved))
			return -EBADMSG;
		break;
	case UPAGER_OP_GROWTH_LIMIT:
		m->u.growth_limit.addr = GET64(b, struct upager_wire_growth_limit, addr);
		m->u.growth_limit.max_length =
			GET64(b, struct upager_wire_growth_limit, max_length);
		break;
	case UPAGER_OP_RESUME:
		m->u.resume.kind = GET32(b, struct upager_wire_resume, kind);
		m->u.resume.prot = GET32(b, struct upager_wire_resume, prot);
		m->u.resume.flags = GET32(b, struct upager_wire_resume, flags);
		m->u.resume.addr = GET64(b, struct upager_wire_resume, addr);
		m->u.resume.length = GET64(b, struct upager_wire_resume, length);
		m->u.resume.offset = GET64(b, struct upager_wire_resume, offset);
		if (m->u.resume.kind > UPAGER_RESUME_END ||
		    GET32(b, struct upager_wire_resume, reserved))
			return -EBADMSG;
		/* The end carries nothing. */
		if (m->u.resume.kind == UPAGER_RESUME_END &&
		    (m->u.resume.prot || m->u.resume.flags || m->u.resume.addr ||
		     m->u.resume.length || m->u.resume.offset))
			return -EBADMSG;
		break;
	case UPAGER_OP_MSYNC:
		m->u.msync.addr = GET64(b, struct upager_wire_msync, addr);
		m->u.msync.length = GET64(b, struct upager_wire_msync, length);
		m->u.msync.flags = GET32(b, struct upager_wire_msync, flags);
		if (GET32(b, struct upager_wire_msync, reserved))
			return -EBADMSG;
		break;
	case UPAGER_OP_REMAP:
		m->u.remap.addr = GET64(b, struct upager_wire_remap, addr);
		m->u.remap.size = GET64(b, struct upager_wire_remap, size);
		m->u.remap.pgoff = GET64(b, struct upager_wire_remap, pgoff);
		m->u.remap.flags = GET32(b, struct upager_wire_remap, flags);
		m->u.remap.phase = GET32(b, struct upager_wire_remap, phase);
		if (m->u.remap.phase != 1 && m->u.remap.phase != 2)
			return -EBADMSG;
		break;
	case UPAGER_OP_REMAP | UPAGER_OP_REPLY:
		m->u.remap_reply.start = GET64(b, struct upager_wire_remap_reply, start);
		m->u.remap_reply.length = GET64(b, struct upager_wire_remap_reply, length);
		m->u.remap_reply.convert = GET32(b, struct upager_wire_remap_reply, convert);
		m->u.remap_reply.map_type = GET32(b, struct upager_wire_remap_reply, map_type);
		m->u.remap_reply.prot = GET32(b, struct upager_wire_remap_reply, prot);
		if (GET32(b, struct upager_wire_remap_reply, reserved))
			return -EBADMSG;
		break;
	case UPAGER_OP_LIST:
		m->u.list.cursor = GET32(b, struct upager_wire_list, cursor);
		m->u.list.pid = GET32(b, struct upager_wire_list, pid);
		break;
	case UPAGER_OP_LIST | UPAGER_OP_REPLY:
		m->u.list_reply.count = GET32(b, struct upager_wire_list_reply, count);
		m->u.list_reply.next_cursor = GET32(b, struct upager_wire_list_reply, next_cursor);
		break;
	case UPAGER_OP_STATS | UPAGER_OP_REPLY:
		m->u.stats_reply.sessions = GET32(b, struct upager_wire_stats_reply, sessions);
		m->u.stats_reply.spaces = GET32(b, struct upager_wire_stats_reply, spaces);
		m->u.stats_reply.regions = GET32(b, struct upager_wire_stats_reply, regions);
		m->u.stats_reply.objects = GET32(b, struct upager_wire_stats_reply, objects);
		m->u.stats_reply.cached_pages =
			GET64(b, struct upager_wire_stats_reply, cached_pages);
		m->u.stats_reply.faults = GET64(b, struct upager_wire_stats_reply, faults);
		m->u.stats_reply.pages_read = GET64(b, struct upager_wire_stats_reply, pages_read);
		m->u.stats_reply.bytes_read = GET64(b, struct upager_wire_stats_reply, bytes_read);
		m->u.stats_reply.bytes_written =
			GET64(b, struct upager_wire_stats_reply, bytes_written);
		m->u.stats_reply.uptime_ms = GET64(b, struct upager_wire_stats_reply, uptime_ms);
		m->u.stats_reply.pages_populated =
			GET64(b, struct upager_wire_stats_reply, pages_populated);
		m->u.stats_reply.bytes_from_page_cache =
			GET64(b, struct upager_wire_stats_reply, bytes_from_page_cache);
		m->u.stats_reply.latency_p50_ns =
			GET64(b, struct upager_wire_stats_reply, latency_p50_ns);
		m->u.stats_reply.latency_p99_ns =
			GET64(b, struct upager_wire_stats_reply, latency_p99_ns);
		m->u.stats_reply.latency_max_ns =
			GET64(b, struct upager_wire_stats_reply, latency_max_ns);
		break;
	default:
		break;
	}
	return 0;
}

/**
 * upager_msg_decode() - check and decode one datagram
 * @buf: the datagram as received
 * @len: its length
 * @m: filled on success; pointers in it point into @buf
 *
 * Return: 0; -EBADMSG for a wrong magic, a length that disagrees with the datagram or the opcode, or
 * a non-zero reserved field; -EPROTONOSUPPORT for a version this codec does not speak; -EOPNOTSUPP
 * for an unknown opcode; -EMSGSIZE for a datagram over UPAGER_MSG_MAX.
 */
int upager_msg_decode(const void *buf, size_t len, struct upager_msg *m)
{
	const uint8_t *p = buf;
	size_t fixed;
	bool reply;

	if (len > UPAGER_MSG_MAX)
		return -EMSGSIZE;
	if (len < HDR)
		return -EBADMSG;
	if (GET32(p, struct upager_wire_hdr, magic) != UPAGER_PROTO_MAGIC)
		return -EBADMSG;
	if (GET32(p, struct upager_wire_hdr, len) != len)
		return -EBADMSG;

	memset(m, 0, sizeof(*m));
	m->version = GET16(p, struct upager_wire_hdr, version);
	m->op = GET16(p, struct upager_wire_hdr, op);
	m->seq = GET32(p, struct upager_wire_hdr, seq);
	if (m->version < UPAGER_PROTO_VERSION_MIN || m->version > UPAGER_PROTO_VERSION)
		return -EPROTONOSUPPORT;

	fixed = upager_msg_size(m->op);
	if (fixed == 0)
		return -EOPNOTSUPP;
	if (m->op & ~(UPAGER_OP_REPLY | 0xff))
		return -EOPNOTSUPP;
	reply = m->op & UPAGER_OP_REPLY;
	if (m->op == (UPAGER_OP_LIST | UPAGER_OP_REPLY) ? len < fixed : len != fixed)
		return -EBADMSG;

	if (reply) {
		m->status = (int32_t)GET32(p + HDR, struct upager_wire_reply, status);
		if (GET32(p + HDR, struct upager_wire_reply, reserved))
			return -EBADMSG;
		if (m->status > 0)
			return -EBADMSG;
	}
	if (m->op == (UPAGER_OP_LIST | UPAGER_OP_REPLY)) {
		m->u.list_reply.entries = p + fixed;
		m->u.list_reply.entries_len = len - fixed;
	}
	return decode_body(p + HDR + (reply ? RPL : 0), m);
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
	const size_t fixed = sizeof(struct upager_wire_list_entry);
	uint8_t *b = buf;
	size_t len;

	if (e->path_len > UPAGER_PATH_MAX)
		return -ENAMETOOLONG;
	len = (fixed + e->path_len + 7) & ~(size_t)7;
	if (len > size)
		return -EMSGSIZE;

	memset(b, 0, len);
	PUT32(b, struct upager_wire_list_entry, entry_len, (uint32_t)len);
	PUT32(b, struct upager_wire_list_entry, pid, e->pid);
	PUT64(b, struct upager_wire_list_entry, start, e->start);
	PUT64(b, struct upager_wire_list_entry, length, e->length);
	PUT64(b, struct upager_wire_list_entry, offset, e->offset);
	PUT32(b, struct upager_wire_list_entry, prot, e->prot);
	PUT32(b, struct upager_wire_list_entry, flags, e->flags);
	PUT64(b, struct upager_wire_list_entry, resident_pages, e->resident_pages);
	PUT64(b, struct upager_wire_list_entry, faults, e->faults);
	PUT64(b, struct upager_wire_list_entry, object_id, e->object_id);
	PUT32(b, struct upager_wire_list_entry, uid, e->uid);
	PUT16(b, struct upager_wire_list_entry, path_len, (uint16_t)e->path_len);
	PUT64(b, struct upager_wire_list_entry, pages_populated, e->pages_populated);
	PUT64(b, struct upager_wire_list_entry, pages_read, e->pages_read);
	PUT64(b, struct upager_wire_list_entry, bytes_read, e->bytes_read);
	PUT64(b, struct upager_wire_list_entry, latency_avg_ns, e->latency_avg_ns);
	PUT64(b, struct upager_wire_list_entry, latency_max_ns, e->latency_max_ns);
	PUT32(b, struct upager_wire_list_entry, nonlinear, e->nonlinear);
	PUT32(b, struct upager_wire_list_entry, remapped_ranges, e->remapped_ranges);
	PUT64(b, struct upager_wire_list_entry, grown_pages, e->grown_pages);
	PUT64(b, struct upager_wire_list_entry, max_length, e->max_length);
	if (e->path_len)
		memcpy(b + fixed, e->path, e->path_len);
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
	const size_t fixed = sizeof(struct upager_wire_list_entry);
	const uint8_t *b = *pos;
	uint32_t len;

	if (*left == 0)
		return 0;
	if (*left < fixed)
		return -EBADMSG;
	len = GET32(b, struct upager_wire_list_entry, entry_len);
	if (len < fixed || len > *left || len % 8)
		return -EBADMSG;

	e->pid = GET32(b, struct upager_wire_list_entry, pid);
	e->start = GET64(b, struct upager_wire_list_entry, start);
	e->length = GET64(b, struct upager_wire_list_entry, length);
	e->offset = GET64(b, struct upager_wire_list_entry, offset);
	e->prot = GET32(b, struct upager_wire_list_entry, prot);
	e->flags = GET32(b, struct upager_wire_list_entry, flags);
	e->resident_pages = GET64(b, struct upager_wire_list_entry, resident_pages);
	e->faults = GET64(b, struct upager_wire_list_entry, faults);
	e->object_id = GET64(b, struct upager_wire_list_entry, object_id);
	e->uid = GET32(b, struct upager_wire_list_entry, uid);
	e->path_len = GET16(b, struct upager_wire_list_entry, path_len);
	e->pages_populated = GET64(b, struct upager_wire_list_entry, pages_populated);
	e->pages_read = GET64(b, struct upager_wire_list_entry, pages_read);
	e->bytes_read = GET64(b, struct upager_wire_list_entry, bytes_read);
	e->latency_avg_ns = GET64(b, struct upager_wire_list_entry, latency_avg_ns);
	e->latency_max_ns = GET64(b, struct upager_wire_list_entry, latency_max_ns);
	e->nonlinear = GET32(b, struct upager_wire_list_entry, nonlinear);
	e->remapped_ranges = GET32(b, struct upager_wire_list_entry, remapped_ranges);
	e->grown_pages = GET64(b, struct upager_wire_list_entry, grown_pages);
	e->max_length = GET64(b, struct upager_wire_list_entry, max_length);
	if (GET16(b, struct upager_wire_list_entry, reserved))
		return -EBADMSG;
	if (e->path_len > UPAGER_PATH_MAX || fixed + e->path_len > len)
		return -EBADMSG;
	e->path = (const char *)b + fixed;

	*pos += len;
	*left -= len;
	return 1;
}
