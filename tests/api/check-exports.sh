#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The library exports exactly the functions upager.h declares, and each has a page in man/: a
# section 3 page whose NAME line names it, installed under its name (itself or an alias), and the
# API test calls each.
set -eu
lib=$1 header=$2 mandir=$3 apitest=$4
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort -u)
declared=$(grep -oE '\bupager_[a-z0-9_]+ *\(' "$header" | tr -d ' (' | sort -u)
if [ "$exported" != "$declared" ]; then
  echo "exported:"; echo "$exported"; echo "declared in $header:"; echo "$declared"
  exit 1
fi
echo "exports match upager.h: $(echo "$exported" | tr '\n' ' ')"
for f in $exported; do
  if ! sed -n '/^\.SH NAME/{n;p}' "$mandir"/*.3 | grep -qE "(^|[ ,])$f([ ,]|$)"; then
    echo "no man page names $f"; exit 1
  fi
  if [ ! -f "$mandir/$f.3" ] && ! grep -q "'$f.3'" "$mandir/meson.build"; then
    echo "$f.3 is not installed"; exit 1
  fi
done
echo "each has a man page"
for f in $exported; do
  if ! grep -qE "\b$f\(" "$apitest"; then
    echo "$apitest never calls $f"; exit 1
  fi
done
echo "the API test calls each"
