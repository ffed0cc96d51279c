#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The library exports exactly the functions upager.h declares.
set -eu
lib=$1 header=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort -u)
declared=$(grep -oE '\bupager_[a-z0-9_]+ *\(' "$header" | tr -d ' (' | sort -u)
if [ "$exported" != "$declared" ]; then
  echo "exported:"; echo "$exported"; echo "declared in $header:"; echo "$declared"
  exit 1
fi
echo "exports match upager.h: $(echo "$exported" | tr '\n' ' ')"
