#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The units are installed only by a build whose upagerd can serve them (with libsystemd): a build
# configured with -Dsystemd=disabled installs none and says so at configure time; this build, when
# it has libsystemd ($2 = yes), installs them.
set -eu
build=$1 with_systemd=$2 src=$3
units='upagerd\.service|upagerd\.socket|sysusers\.d/upager\.conf|tmpfiles\.d/upager\.conf'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

n=$(meson introspect "$build" --installed | tr , "\n" | grep -cE "$units" || true)
if [ "$with_systemd" = yes ] && [ "$n" -ne 4 ]; then
  echo "FAIL this build has libsystemd but installs $n of the 4 unit files"; fail=1
elif [ "$with_systemd" = no ] && [ "$n" -ne 0 ]; then
  echo "FAIL this build has no libsystemd but installs $n unit files"; fail=1
else
  echo "ok   this build (libsystemd: $with_systemd) installs $n unit files"
fi

meson setup "$tmp/build" "$src" -Dsystemd=disabled -Dman=false -Dbenchmarks=false \
  -Dfuzz=disabled >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; exit 1; }
if meson introspect "$tmp/build" --installed | tr , "\n" | grep -E "$units"; then
  echo "FAIL a -Dsystemd=disabled build installs the units above"; fail=1
else
  echo "ok   a -Dsystemd=disabled build installs no unit"
fi
if grep -qE "units *: not installed: upagerd is built without libsystemd" "$tmp/setup.log"; then
  echo "ok   its configure summary says why"
else
  echo "FAIL its configure summary does not say the units are not installed:"
  sed -n '/^upager /,$p' "$tmp/setup.log"; fail=1
fi
exit $fail
