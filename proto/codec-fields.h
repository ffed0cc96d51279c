/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The codec's description of its messages, as data: for each opcode, the fields of its body with
 * where they are on the wire and in struct upager_msg, and the rule a decoded value must keep.
 * codec.c generates its encoder, its decoder and these tables from one list per message; the
 * tables are for tests, which walk every field of every message without naming them.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum upager_codec_rule {
	UPAGER_CODEC_ANY, /* any value */
	UPAGER_CODEC_ZERO, /* reserved: zero on the wire, nothing on the host side */
	UPAGER_CODEC_RANGE, /* lo <= value <= hi */
	UPAGER_CODEC_MASK, /* no bit outside hi */
};

struct upager_codec_rule_desc {
	uint8_t kind; /* enum upager_codec_rule */
	uint64_t lo, hi;
};

struct upager_codec_field {
	const char *name;
	uint16_t wire; /* offset in the body (after the header and a reply's status block) */
	uint16_t host; /* offset in struct upager_msg, or struct upager_list_entry; 0 for ZERO */
	uint8_t wire_width, host_width; /* bytes; host_width 0 for ZERO */
	struct upager_codec_rule_desc rule;
};

/* The most fields a body has. */
#define UPAGER_CODEC_FIELDS_MAX 40

size_t upager_codec_fields(uint16_t op, struct upager_codec_field *out, size_t max);
size_t upager_codec_entry_fields(struct upager_codec_field *out, size_t max);
