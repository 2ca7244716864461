#!/usr/bin/env bash
# A history that does not grow with the log: `ratchet status` on logs of
# 1,000, 100,000 and 1,000,000 entries, and `ratchet log verify` against
# `sha256sum` of the same 1,000,000-entry file.
#
#   benches/long_log.sh    # SIZES="1000 100000 1000000" RUNS=20 RUNS_VERIFY=5 to change;
#                           # NO_BUILD=1 to use the release binaries already built
#
# Each log is the library's sample mix (`ratchet::journal::sample`, written by
# `examples/gen_log.rs --mix` through the journal's own line encoder, with
# MAC'd checkpoints): steps of four providers (noop, failed, rejected,
# pending then decided, merged: about 2.5% of entries are merges),
# verifications and reverts of merges, heartbeats and rails entries.
#
# For each size it reports:
# - the first `status` after the log was written (it folds the whole log
#   once and writes the history snapshot): wall time and peak RSS;
# - `status` with the snapshot at the head (every later status, and the
#   reads of `step` and `context` until the next entry): hyperfine's mean
#   and peak RSS;
# - `status` after one more entry (the snapshot is carried forward over it,
#   and left as it is), and after 32 more (carried forward and rewritten):
#   wall time and peak RSS; the entries are `rails` entries appended
#   through `Journal::append` (`gen_log DIR N --append`).
# Then `ratchet log verify` on a 1,000,000-entry default `gen_log` log (its
# steps name no commits, so verify reads it to the end) against sha256sum
# of the same file, medians of RUNS_VERIFY alternating runs.
#
# Needs hyperfine and /usr/bin/time (apt-get install hyperfine time).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000 100000 1000000"}
RUNS=${RUNS:-20}
RUNS_VERIFY=${RUNS_VERIFY:-5}
VERIFY_ENTRIES=${VERIFY_ENTRIES:-1000000}
for tool in hyperfine /usr/bin/time sha256sum; do
  command -v "$tool" > /dev/null || { echo "needs $tool (apt-get install hyperfine time)" >&2; exit 1; }
done

[ -n "${NO_BUILD:-}" ] || cargo build --quiet --release --bin ratchet --example gen_log
RATCHET=$PWD/target/release/ratchet
GEN=$PWD/target/release/examples/gen_log
work=$(mktemp -d "${TMPDIR:-/tmp}/ratchet-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME=$work XDG_STATE_HOME=$work/state

workspace() { # DIR ENTRIES [gen_log flag]
  mkdir -p "$1/config"
  git -C "$1" init -q
  printf '[paths]\nallow = ["docs/**"]\n' > "$1/config/rails.toml"
  "$GEN" "$1" "$2" ${3:-}
}

ms() { # command... -> wall milliseconds
  local t0 t1
  t0=$(date +%s%N)
  "$@" > /dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
peak_mb() { # command... -> peak RSS in MB
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}'
}
mean_ms() { # command [prepare] -> hyperfine mean in ms
  if [ -n "${2:-}" ]; then
    hyperfine -N --style none --runs "$RUNS" --prepare "$2" --export-json "$work/h.json" "$1" > /dev/null 2>&1
  else
    hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$work/h.json" "$1" > /dev/null 2>&1
  fi
  awk -F': ' '/"mean"/ {gsub(",", "", $2); printf "%.1f", $2 * 1000; exit}' "$work/h.json"
}

printf '%-9s %-8s %-22s %-22s %-22s %-22s\n' entries log "first status (fold)" "status (snapshot)" "status (+1 entry)" "status (+32, rewrite)"
for n in $SIZES; do
  ws=$work/ws-$n
  workspace "$ws" "$n" --mix 2> /dev/null
  size=$(du -h "$ws/logs/steps.jsonl" | cut -f1)
  cd "$ws"
  # The clock after the last entry (5 minutes apart from 2026-01-01).
  export RATCHET_NOW=$(date -u -d "2026-01-01 + $(( n * 5 + 5 )) minutes" +%Y-%m-%dT%H:%M:%SZ)
  rm -f "$XDG_STATE_HOME"/ratchet/*/history.json
  first_ms=$(ms "$RATCHET" status)
  rm -f "$XDG_STATE_HOME"/ratchet/*/history.json
  first_mb=$(peak_mb "$RATCHET" status)
  warm_ms=$(mean_ms "$RATCHET status")
  warm_mb=$(peak_mb "$RATCHET" status)
  # One more entry before each run (hyperfine's --prepare), then status
  # carries the snapshot forward over it; then 32 more before each run, so
  # that each status also rewrites the snapshot.
  ext_ms=$(mean_ms "$RATCHET status" "$GEN $ws 1 --append")
  "$GEN" "$ws" 1 --append
  ext_mb=$(peak_mb "$RATCHET" status)
  rw_ms=$(mean_ms "$RATCHET status" "$GEN $ws 32 --append")
  "$GEN" "$ws" 32 --append
  rw_mb=$(peak_mb "$RATCHET" status)
  cd - > /dev/null
  printf '%-9s %-8s %-22s %-22s %-22s %-22s\n' "$n" "$size" "${first_ms} ms, ${first_mb} MB" "${warm_ms} ms, ${warm_mb} MB" "${ext_ms} ms, ${ext_mb} MB" "${rw_ms} ms, ${rw_mb} MB"
done

echo
ws=$work/verify
workspace "$ws" "$VERIFY_ENTRIES" 2> /dev/null
log=$ws/logs/steps.jsonl
bytes=$(stat -c %s "$log")
cat "$log" > /dev/null
v=(); s=()
for _ in $(seq "$RUNS_VERIFY"); do
  v+=("$(cd "$ws" && ms "$RATCHET" log verify)")
  s+=("$(ms sha256sum "$log")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
vm=$(median "${v[@]}"); sm=$(median "${s[@]}")
awk -v b="$bytes" -v v="$vm" -v s="$sm" -v n="$VERIFY_ENTRIES" 'BEGIN {
  printf "log verify, %d entries (%.0f MB): %.0f ms (%.0f MB/s); sha256sum %.0f ms (%.0f MB/s); verify is %.2fx sha256sum'"'"'s speed\n", n, b / 1e6, v, b / v / 1e3, s, b / s / 1e3, s / v
}'
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
