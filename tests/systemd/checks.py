# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the systemd suites' tests share: their "ok"/"FAIL" lines, and the pages of the files
restart-client.c maps."""
import struct

PAGE = 4096
failures = []  # what failed so far; a test exits with 1 if any


def check(cond, what):
    """Print an "ok" or "FAIL" line for what; remember a failure. Returns cond."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def file_pattern(p, salt):
    """Page p of a file as restart-client.c expects it: 8 bytes of p, then one byte repeated."""
    return struct.pack("<Q", p) + bytes([(p * 13 + 1 + salt * 101) & 0xff]) * (PAGE - 8)
