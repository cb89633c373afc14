#!/usr/bin/env bash
# Instructions per request of the file-routed app and of the same handler on plain axum,
# called in-process (no sockets): callgrind counts instructions, so the numbers repeat
# exactly on a noisy machine. Each app runs twice, with N and 2N calls; the difference over
# N is the cost of one request, start-up excluded.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-2000}"
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install -y valgrind" >&2; exit 1; }
cargo build --release -q -p file-route-bench
bin=target/release/file-route-bench
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
count() { # app calls → total instructions
    TASKYARD_DATA_DIR="$data" ONLY="$1" CALLS="$2" valgrind --tool=callgrind \
        --callgrind-out-file="$data/out" "$bin" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
declare -A per
for app in axum file; do
    one=$(count "$app" "$N")
    two=$(count "$app" $((2 * N)))
    per[$app]=$(( (two - one) / N ))
    echo "$app: $(( per[$app] )) instructions per request"
done
awk -v a="${per[axum]}" -v f="${per[file]}" 'BEGIN {
    printf "taskyard adds %d instructions per request (%.1f %% of axum'\''s routing and handler)\n", f - a, 100 * (f - a) / a
}'
