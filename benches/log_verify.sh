#!/usr/bin/env bash
# Benchmark: `ratchet log verify` against `sha256sum` of the same step log.
#
#   benches/log_verify.sh                 # 1,000,000 entries of ~860 bytes (DESIGN §9 step entries)
#   FULL=1 benches/log_verify.sh          # ~1.4 KB entries: every §9 hash at full length
#   ENTRIES=200000 RUNS=3 benches/log_verify.sh
#
# Builds the release binary and examples/gen_log, generates a log of
# realistic entries in a temporary workspace (through the same encoder as
# `Journal::append`; see examples/gen_log.rs), warms the page cache, then
# times RUNS alternating runs of `ratchet log verify` and `sha256sum` of the
# same file and reports the medians, throughputs and their ratio. Peak RSS
# (`/usr/bin/time -v`, from apt's `time` package) is measured for verify at
# 100,000 entries and at ENTRIES, to show that memory does not grow with the
# log. Nothing outside the temporary directory is touched: HOME and
# XDG_STATE_HOME point into it.
set -euo pipefail
cd "$(dirname "$0")/.."

ENTRIES=${ENTRIES:-1000000}
SMALL=${SMALL:-100000}
RUNS=${RUNS:-5}
GEN_FLAG=--compact
[ -n "${FULL:-}" ] && GEN_FLAG=

if [ ! -x /usr/bin/time ]; then
  echo "needs /usr/bin/time for peak memory: apt-get install -y time" >&2
  exit 1
fi

cargo build --quiet --release --bin ratchet --example gen_log
RATCHET=$PWD/target/release/ratchet
GEN=$PWD/target/release/examples/gen_log

work=$(mktemp -d "${TMPDIR:-/tmp}/ratchet-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME=$work XDG_STATE_HOME=$work/state RATCHET_NOW=2026-11-21T19:00:00Z

workspace() { # DIR ENTRIES
  mkdir -p "$1/config"
  git -C "$1" init -q
  printf '[paths]\nallow = ["docs/**"]\n' > "$1/config/rails.toml"
  "$GEN" "$1" "$2" $GEN_FLAG
}

seconds() { # command... -> elapsed seconds on stdout
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

peak_kb() { # command... -> peak RSS in KB
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'
}

workspace "$work/small" "$SMALL"
workspace "$work/big" "$ENTRIES"
log=$work/big/logs/steps.jsonl
bytes=$(stat -c %s "$log")
cat "$log" > /dev/null # warm the page cache

verify_times=()
sha_times=()
for _ in $(seq "$RUNS"); do
  verify_times+=("$(cd "$work/big" && seconds "$RATCHET" log verify)")
  sha_times+=("$(seconds sha256sum "$log")")
done
v=$(printf '%s\n' "${verify_times[@]}" | median)
s=$(printf '%s\n' "${sha_times[@]}" | median)
rss_small=$(cd "$work/small" && peak_kb "$RATCHET" log verify)
rss_big=$(cd "$work/big" && peak_kb "$RATCHET" log verify)
rss_sha=$(peak_kb sha256sum "$log")

(cd "$work/big" && "$RATCHET" log verify)
echo
echo "machine:      $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "log:          $ENTRIES entries, $bytes bytes ($((bytes / ENTRIES)) bytes an entry)"
echo "runs:         $RUNS each, alternating; medians"
echo "verify:       ${verify_times[*]} s"
echo "sha256sum:    ${sha_times[*]} s"
awk -v b="$bytes" -v v="$v" -v s="$s" 'BEGIN {
  printf "ratchet log verify  %.3f s  %7.1f MB/s\n", v, b / v / 1e6;
  printf "sha256sum           %.3f s  %7.1f MB/s\n", s, b / s / 1e6;
  printf "ratio verify/sha256sum throughput: %.2f (target >= 2.4: as fast as before the hardening, issue 14)\n", s / v;
}'
echo "peak RSS of verify: ${rss_small} KB at $SMALL entries, ${rss_big} KB at $ENTRIES entries (sha256sum: ${rss_sha} KB)"
