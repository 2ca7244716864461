#!/usr/bin/env bash
# How a long log weighs on every command: a small workspace whose log holds
# ENTRIES step entries (2,000 by default: a week of a 5-minute cron), then
# `ratchet status`, one `ratchet step` and `ratchet log verify` timed with
# hyperfine. Every command reads and checks the whole log (each line's hash
# and its link to the one before), so these times grow with the log.
#
#   benches/long_log.sh            # ENTRIES=N RUNS=N to change
#
# Needs hyperfine (apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-2000}
RUNS=${RUNS:-20}
source benches/common.sh
bench_init
mkdir -p "$work/ws/docs" "$work/ws/config"
cd "$work/ws"
git init -q -b main && git config user.name bench && git config user.email bench@example.com
echo "# Notes" > docs/notes.md
git add -A && git commit -qm init
write_agent "$work/agent.sh"
write_rails "$work/agent.sh" config/rails.toml
"$RATCHET" -q init > /dev/null && git add -A && git commit -qm "ratchet init"
echo "writing $ENTRIES step entries..."
for _ in $(seq 2 "$ENTRIES"); do "$RATCHET" -q step --provider self > /dev/null; done
echo "the log: $(wc -l < logs/steps.jsonl) entries, $(du -h logs/steps.jsonl | cut -f1)"
hyperfine -N --style basic --warmup 3 --runs "$RUNS" \
  -n "ratchet status" "$RATCHET status" \
  -n "ratchet step" "$RATCHET -q step --provider self" \
  -n "ratchet log verify" "$RATCHET log verify"
