#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run one libFuzzer target of the codec for a bounded time:
#   run-fuzzer.sh FUZZER SEEDS WHICH SECONDS
# SEEDS writes valid encodings (WHICH: msg or list) that start the corpus; the corpus grows in
# FUZZER.corpus in the build directory, so that longer runs (scripts/fuzz, which sets
# UPAGER_FUZZ_SECONDS) build on earlier ones. An input that breaks a property is saved beside
# FUZZER as crash-* and the test fails.
set -eu
fuzzer=$1
seeds=$2
which=$3
seconds=${UPAGER_FUZZ_SECONDS:-$4}

seed_dir=$(mktemp -d /tmp/upager-seeds.XXXXXX)
trap 'rm -rf "$seed_dir"' EXIT
mkdir -p "$seed_dir/msg" "$seed_dir/list" "$fuzzer.corpus"
"$seeds" "$seed_dir/msg" "$seed_dir/list"
# libFuzzer's own exit code for a crash is 77, which meson takes for a skipped test.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -error_exitcode=1 -timeout_exitcode=1 \
	-print_final_stats=1 \
	-artifact_prefix="$(dirname "$fuzzer")/" "$fuzzer.corpus" "$seed_dir/$which"
