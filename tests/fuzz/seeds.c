// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The seed corpus of the codec's fuzz targets, made from valid encodings: `seeds MSG_DIR LIST_DIR`
 * writes every opcode, request and reply, as a datagram into MSG_DIR, and LIST entries into
 * LIST_DIR. Fields get values with no zero byte where the spec allows, so that mutations of any
 * byte reach a field.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "proto/codec.h"
#include "tests/unit/codec-valid.h"

static uint8_t buf[UPAGER_MSG_MAX];

static int write_seed(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		fprintf(stderr, "seeds: %s: %m\n", path);
		return -errno;
	}
	close(fd);
	return 0;
}

/* Entries of a LIST reply: one per path length around the 8-byte padding, and an empty path. */
static size_t make_entries(uint8_t *p, size_t size)
{
	static const char path[] = "/var/lib/upager/some-file.bin";
	size_t used = 0;

	for (size_t plen = 0; plen <= 9; plen += 3) {
		struct upager_list_entry e;
		int n;

		memset(&e, 0x11 + (int)plen, sizeof(e));
		e.path = path;
		e.path_len = plen;
		n = upager_list_entry_encode(p + used, size - used, &e);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return used;
}

/* A valid message of @op: patterned fields, then what the spec constrains. */
static int make_msg(uint16_t op, int32_t status, const uint8_t *entries, size_t entries_len)
{
	struct upager_msg m, back;
	int n;

	memset(&m, 0x21 + (op & 0xff), sizeof(m));
	m.op = op;
	m.version = UPAGER_PROTO_VERSION;
	m.seq = 0x01020304u * op;
	m.status = status;
	codec_make_valid(&m);
	if (op == (UPAGER_OP_LIST | UPAGER_OP_REPLY)) {
		m.u.list_reply.entries = entries;
		m.u.list_reply.entries_len = entries_len;
	}
	n = upager_msg_encode(buf, sizeof(buf), &m);
	if (n > 0 && upager_msg_decode(buf, (size_t)n, &back) < 0) {
		fprintf(stderr, "seeds: op %#x does not decode\n", op);
		return -EBADMSG;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		uint16_t reply;
		int32_t status;
	} kinds[] = { { "op", 0, 0 },
		      { "reply", UPAGER_OP_REPLY, 0 },
		      { "error", UPAGER_OP_REPLY, -ENOENT } };
	static uint8_t entries[4096];
	size_t entries_len = make_entries(entries, sizeof(entries));
	char name[64];

	if (argc != 3) {
		fprintf(stderr, "usage: seeds MSG_DIR LIST_DIR\n");
		return 2;
	}
	for (uint16_t op = 1; op < _UPAGER_OP_MAX; op++) {
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			int n = make_msg(op | kinds[k].reply, kinds[k].status, entries,
					 kinds[k].status ? 0 : entries_len);

			snprintf(name, sizeof(name), "%s-%u", kinds[k].name, op);
			if (n < 0 || write_seed(argv[1], name, buf, (size_t)n) < 0)
				return 1;
		}
	}
	return write_seed(argv[2], "entries", entries, entries_len) < 0;
}
