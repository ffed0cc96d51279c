/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Codec of the upager wire protocol: host structs in, checked little-endian datagrams out, and back.
 * Every function returns a byte count or 0 on success and a negative errno on failure; nothing here
 * allocates, does I/O, or keeps state. codec.c describes each message body once, as a list of its
 * fields and their rules, and makes all of these from it; codec-fields.h gives the description as
 * data.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "upager-proto.h"

/* A decoded message, host byte order. Which member of the union is valid depends on op. */
struct upager_msg {
	uint16_t op; /* with UPAGER_OP_REPLY for replies */
	uint16_t version;
	uint32_t seq;
	int32_t status; /* replies only */
	union {
		struct {
			uint16_t version_min, version_max;
			uint32_t flags;
			uint64_t token_addr;
		} hello;
		struct {
			uint16_t version;
			uint32_t page_size;
			uint64_t features;
		} hello_reply;
		struct {
			uint32_t kind, prot, flags;
			uint64_t offset, length;
		} object_open;
		struct {
			uint64_t object_id;
			uint32_t map_type;
			uint64_t object_size;
		} object_open_reply;
		struct {
			uint64_t object_id, addr, length, offset;
			uint32_t prot, flags;
			uint64_t guard_addr, sentinel_addr, max_length;
		} region_add;
		struct {
			uint64_t addr, length;
		} range; /* MUNMAP and its reply */
		struct {
			uint64_t guard_addr, sentinel_addr, gap;
			uint32_t action, prot;
		} grow;
		struct {
			uint32_t sentinel;
		} grow_reply;
		struct {
			uint64_t addr, spare;
			uint32_t pages, flags;
			uint64_t map[UPAGER_DROP_WINDOW_PAGES / 64];
		} drop;
		struct {
			uint64_t moved[UPAGER_DROP_MAX_PAGES / 64];
		} drop_reply;
		struct {
			uint64_t addr, max_length;
		} growth_limit;
		struct {
			uint64_t addr, length;
			uint32_t flags;
		} msync;
		struct {
			uint32_t kind, prot, flags;
			uint64_t addr, length, offset;
		} resume;
		struct {
			uint64_t addr, size, pgoff;
			uint32_t flags, phase;
		} remap;
		struct {
			uint64_t start, length;
			uint32_t convert, map_type, prot;
		} remap_reply;
		struct {
			uint32_t cursor, pid;
		} list;
		struct {
			uint32_t count, next_cursor;
			const uint8_t *entries; /* points into the decoded buffer */
			size_t entries_len;
		} list_reply;
		struct {
			uint32_t sessions, spaces, regions, objects;
			uint64_t cached_pages, faults, pages_read, bytes_read, bytes_written,
				uptime_ms;
			uint64_t pages_populated, bytes_from_page_cache;
			uint64_t latency_p50_ns, latency_p99_ns, latency_max_ns;
			uint64_t budget_bytes, memory_pages;
			uint64_t pages_out, pages_written_out, pages_in, refaults, over_budget;
			uint64_t swap_bytes, swap_used_bytes;
			uint64_t writeback_errors;
			uint32_t store_kind, store_inflight;
			uint64_t store_bytes_out, store_bytes_in, store_errors, store_reconnects;
			uint32_t store_connections;
			/* The rest of the datagram: as LIST's entries, no field of the body. */
			const char *store_where;
			uint32_t store_where_len;
		} stats_reply;
	} u;
};

/* One region as LIST reports it, host byte order. path points into the decoded buffer. */
struct upager_list_entry {
	uint32_t pid, uid;
	uint64_t start, length, offset;
	uint32_t prot, flags;
	uint64_t resident_pages, faults, object_id;
	uint64_t pages_populated, pages_read, bytes_read, latency_avg_ns, latency_max_ns;
	uint32_t nonlinear, remapped_ranges;
	uint64_t grown_pages, max_length;
	uint64_t object_pages_out, object_refaults; /* of the mapping's object */
	uint64_t object_writeback_errors; /* of the mapping's object: failed write-backs */
	uint32_t object_writeback_error; /* of the mapping's object: errno no msync reported yet */
	uint64_t private_pages_out, private_pages_in; /* of its private pages: to and from swap */
	const char *path; /* not NUL-terminated */
	size_t path_len;
};

int upager_msg_encode(void *buf, size_t size, const struct upager_msg *m);
int upager_msg_decode(const void *buf, size_t len, struct upager_msg *m);

int upager_list_entry_encode(void *buf, size_t size, const struct upager_list_entry *e);
int upager_list_entry_next(const uint8_t **pos, size_t *left, struct upager_list_entry *e);

size_t upager_msg_size(uint16_t op);
