// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target of upager_list_entry_next(), which upagerctl runs over the entries of a LIST
 * reply. Each input is used twice:
 *
 * - as the entries of a reply: fuzz_check_entries();
 * - as the fields of an entry followed by its path: encoding it and decoding the result gives the
 *   same entry and path back, in one entry that takes exactly the bytes the encoder wrote.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "proto/codec.h"

static uint8_t out[sizeof(struct upager_wire_list_entry) + UPAGER_PATH_MAX + 8];
static uint8_t again[sizeof(out)];

static void check_entry(const uint8_t *data, size_t size)
{
	struct upager_list_entry e, back;
	size_t head = offsetof(struct upager_list_entry, path);
	const uint8_t *pos = out;
	size_t left;
	int n;

	if (size < head)
		return;
	memcpy(&e, data, head);
	e.path = (const char *)data + head;
	e.path_len = size - head;
	n = upager_list_entry_encode(out, sizeof(out), &e);
	if (e.path_len > UPAGER_PATH_MAX) {
		FUZZ_CHECK(n == -ENAMETOOLONG, "path of %zu bytes encoded: %d", e.path_len, n);
		return;
	}
	FUZZ_CHECK(n > 0 && n % 8 == 0, "entry does not encode: %d", n);
	left = (size_t)n;
	FUZZ_CHECK(upager_list_entry_next(&pos, &left, &back) == 1, "entry does not decode");
	FUZZ_CHECK(left == 0 && pos == out + n, "entry of %d bytes decoded %zu short", n, left);
	FUZZ_CHECK(back.path_len == e.path_len && memcmp(back.path, e.path, e.path_len) == 0,
		   "path changed");
	/* Every field is on the wire: equal encodings are equal entries. */
	FUZZ_CHECK(upager_list_entry_encode(again, sizeof(again), &back) == n &&
			   memcmp(again, out, (size_t)n) == 0,
		   "entry does not survive a round trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_check_entries(data, size);
	check_entry(data, size);
	return 0;
}
