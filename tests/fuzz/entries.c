// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The properties of upager_list_entry_next() on any bytes, checked by the targets that reach LIST
 * entries: it stays inside what it was given, accounts for every byte it steps over, and every
 * entry it accepts encodes back to the bytes it came from.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "proto/codec.h"

#define ENTRY_FIXED sizeof(struct upager_wire_list_entry)

/* An accepted entry of @len bytes at @b encodes back to the same bytes, but for padding. */
static void check_reencodes(const uint8_t *b, size_t len, const struct upager_list_entry *e)
{
	static uint8_t out[ENTRY_FIXED + UPAGER_PATH_MAX + 8];
	size_t used = ENTRY_FIXED + e->path_len;
	int n = upager_list_entry_encode(out, sizeof(out), e);

	FUZZ_CHECK(n > 0, "entry of %zu bytes does not encode: %d", len, n);
	FUZZ_CHECK((size_t)n <= len && n % 8 == 0, "entry of %zu bytes encodes to %d", len, n);
	/* entry_len may be larger on the wire (a later version's fields): compare what follows it. */
	FUZZ_CHECK(memcmp(out + 4, b + 4, used - 4) == 0, "entry of %zu bytes re-encodes otherwise",
		   len);
}

/**
 * fuzz_check_entries() - walk LIST entries as upagerctl does and check each one
 * @entries: the bytes after a LIST reply's fixed part
 * @len: how many
 *
 * Aborts when a property does not hold.
 */
void fuzz_check_entries(const uint8_t *entries, size_t len)
{
	const uint8_t *pos = entries;
	size_t left = len;
	int r;

	for (;;) {
		const uint8_t *at = pos;
		size_t before = left;
		struct upager_list_entry e;

		r = upager_list_entry_next(&pos, &left, &e);
		if (r <= 0)
			break;
		FUZZ_CHECK(r == 1, "upager_list_entry_next() returned %d", r);
		FUZZ_CHECK(pos > at && pos - at == (ptrdiff_t)(before - left),
			   "cursor moved %td bytes, left shrank by %zu", pos - at, before - left);
		FUZZ_CHECK(left < before && pos + left == entries + len, "cursor past the end");
		FUZZ_CHECK(e.path_len <= UPAGER_PATH_MAX, "path of %zu bytes", e.path_len);
		FUZZ_CHECK(e.path == (const char *)at + ENTRY_FIXED &&
				   e.path + e.path_len <= (const char *)pos,
			   "path outside its entry");
		check_reencodes(at, (size_t)(pos - at), &e);
	}
	FUZZ_CHECK(r == 0 || r == -EBADMSG, "upager_list_entry_next() returned %d", r);
	FUZZ_CHECK(r != 0 || left == 0, "end of entries with %zu bytes left", left);
	FUZZ_CHECK(r == 0 || left > 0, "a malformed entry in no bytes");
}
