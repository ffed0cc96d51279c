#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# meson install into a temporary root; build a client with `pkg-config --cflags --libs upager`
# against the installed copy; run it against the installed upagerd.
set -eu
build=$1 src=$2 units=$3
root=$(mktemp -d)
trap 'kill $daemon 2>/dev/null || true; rm -rf "$root"' EXIT
daemon=
meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
pc=$(dirname "$(find "$root" -name upager.pc | head -n 1)")
test -n "$pc" || { echo "no upager.pc installed"; exit 1; }
for f in "$prefix/include/upager.h" "$prefix/sbin/upagerd" "$prefix/bin/upagerctl" \
         "$prefix/bin/upager-run"; do
  test -e "$root$f" || { echo "not installed: $f"; exit 1; }
done
find "$root" -name 'upager_mmap2.3*' | grep -q . || { echo "man pages not installed"; exit 1; }
find "$root" -name 'upager-run.1*' | grep -q . || { echo "upager-run(1) not installed"; exit 1; }
if [ "$units" = units ]; then
  find "$root" -name 'upagerd.service' | grep -q . || { echo "units not installed"; exit 1; }
fi
flags=$(PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$root" pkg-config --cflags --libs upager)
libdir=$(PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$root" pkg-config --variable=libdir upager)
find "$libdir" -name 'libupager-preload.so' | grep -q . || { echo "no libupager-preload.so"; exit 1; }
cc -o "$root/client" "$src/tests/install/client.c" $flags -Wl,-rpath,"$root$libdir"
"$root$prefix/sbin/upagerd" --socket "$root/upager.sock" 2>/dev/null &
daemon=$!
for i in $(seq 100); do [ -S "$root/upager.sock" ] && break; sleep 0.05; done
UPAGER_SOCKET="$root/upager.sock" "$root/client" "$root/data"
echo "installed copy built with pkg-config ($flags) and ran"
