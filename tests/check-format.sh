#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every C file of the tree is formatted as .clang-format says.
set -eu
cd "$1"
files=$(find common daemon libclient ctl proto tests examples bench -name '*.[ch]' 2>/dev/null | sort)
clang-format --dry-run --Werror $files
echo "$(echo "$files" | wc -l) files formatted"
