#!/usr/bin/env bash
# The step benchmark (issue 3): one `ratchet step` on a 10,000-file
# repository, against a bare-git baseline doing the same change, in the
# same run; and `ratchet status` on that repository.
#
#   benches/step.sh            # 15 runs each (RUNS=N to change), in 4
#                              # rotated rounds (ROUNDS=N)
#
# ratchet: a command provider prints a fixed 5-line append to docs/notes.md,
# the checks are `true`, and auto-merge is allowed for docs/**, so the step
# goes Pick → Propose → Gate 1 → auto-merge → apply → checks → commit → log.
# baseline: `git apply` of the same 5-line patch, then `git add` + `git commit`.
# A third row runs the same step with `[sandbox] mode = "off"`, to show what
# confining the provider and the checks costs (two sandboxed children a step).
# agent row: a no-op stub agent (`true`) through the `agent` kind: scratch
# place, overlay, sandbox, the agent, reading its (empty) changes, a `noop`
# entry; plus where its time goes (RATCHET_TIMINGS: "agent scratch", "agent ran").
# Needs hyperfine (apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-15}
source benches/common.sh
bench_init

make_repo() {
  local dir=$1
  mkdir -p "$dir"
  (cd "$dir" && git init -q -b main && git config user.name bench && git config user.email bench@example.com)
  python3 - "$dir" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(10000):
    d = os.path.join(root, "src", f"m{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.rs"), "w") as f:
        f.write(f"// file {i}\npub fn f{i}() -> u32 {{ {i} }}\n")
os.makedirs(os.path.join(root, "docs"), exist_ok=True)
with open(os.path.join(root, "docs", "notes.md"), "w") as f:
    f.write("# Notes\n")
PY
  (cd "$dir" && git add -A && git commit -qm "10,000 files")
}

# The ratchet workspace.
make_repo "$work/ratchet"
write_agent "$work/agent.sh"
mkdir -p "$work/ratchet/config"
write_rails "$work/agent.sh" "$work/ratchet/config/rails.toml"
(cd "$work/ratchet" && "$RATCHET" -q init > /dev/null && git add -A && git commit -qm "ratchet init")
(cd "$work/ratchet" && "$RATCHET" --json step --provider self | grep -q '"outcome": "merged"') || {
  echo "the ratchet step did not merge" >&2; exit 1; }

# The same workspace with the sandbox off.
make_repo "$work/ratchet-off"
mkdir -p "$work/ratchet-off/config"
write_rails "$work/agent.sh" "$work/ratchet-off/config/rails.toml"
sed -i 's/^mode = "on"/mode = "off"/' "$work/ratchet-off/config/rails.toml"
grep -q '^mode = "off"' "$work/ratchet-off/config/rails.toml"
(cd "$work/ratchet-off" && "$RATCHET" -q init > /dev/null && git add -A && git commit -qm "ratchet init")
# The agent workspace: a no-op stub agent through the `agent` kind.
make_repo "$work/agent"
mkdir -p "$work/agent/config"
write_rails "$work/agent.sh" "$work/agent/config/rails.toml"
printf '\n[providers.stub]\nkind = "agent"\ncommand = ["true"]\n' >> "$work/agent/config/rails.toml"
(cd "$work/agent" && "$RATCHET" -q init > /dev/null && git add -A && git commit -qm "ratchet init")
(cd "$work/agent" && "$RATCHET" --json step --provider stub | grep -q '"outcome": "noop"') || {
  echo "the agent step was not a noop" >&2; exit 1; }

# The bare-git baseline.
make_repo "$work/git"
# A zero-context insertion after line 1, so it applies again on every run.
printf -- '--- a/docs/notes.md\n+++ b/docs/notes.md\n@@ -1,0 +2,5 @@\n+one\n+two\n+three\n+four\n+five\n' > "$work/p.diff"
APPLY="git apply --unidiff-zero $work/p.diff"
(cd "$work/git" && $APPLY && git add docs/notes.md && git commit -qm warm)

# Setting up wrote three 10,000-file repositories: flush them first, or
# their writeback lands on whichever command is measured first (its fsyncs
# wait behind it).
sync

# The patch appends, so both sides apply again on every run; each run commits.
# The runs are made in ROUNDS blocks (4 unless set), the order of the three
# commands rotating from one block to the next, and pooled: a drift in the
# machine's load (another process, the page cache's writeback) then falls
# on all three alike instead of on whichever was measured while it lasted.
ROUNDS=${ROUNDS:-4}
STEP="cd $work/ratchet && $RATCHET -q step --provider self"
OFF="cd $work/ratchet-off && $RATCHET -q step --provider self"
GIT="cd $work/git && $APPLY && git add docs/notes.md && git commit -qm step"
for round in $(seq "$ROUNDS"); do
  case $((round % 3)) in
    1) order=(step off git) ;;
    2) order=(off git step) ;;
    0) order=(git step off) ;;
  esac
  args=()
  for c in "${order[@]}"; do
    case $c in
      step) args+=(-n "ratchet step" "$STEP") ;;
      off) args+=(-n "ratchet step, sandbox off" "$OFF") ;;
      git) args+=(-n "git apply+add+commit" "$GIT") ;;
    esac
  done
  hyperfine --style basic --warmup 2 --runs $(( (RUNS + ROUNDS - 1) / ROUNDS )) \
    --export-json "$work/step-$round.json" "${args[@]}" | grep -E "^(Benchmark|  Time)"
done
hyperfine --style basic --warmup 3 --runs "$RUNS" -n "ratchet status" "cd $work/ratchet && $RATCHET status"
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$work/agent.json" \
  -n "ratchet step (agent kind, no-op agent)" "cd $work/agent && $RATCHET -q step --provider stub" \
  -n "git apply+add+commit" "cd $work/git && $APPLY && git add docs/notes.md && git commit -qm step"
echo "where an agent step's time goes (ms since the previous mark):"
(cd "$work/agent" && RATCHET_TIMINGS=1 "$RATCHET" -q step --provider stub 2>&1 >/dev/null | grep -E 'context|agent|propose|total' || true)

python3 - "$work"/step-*.json <<'PY'
import json, statistics, sys
times = {}
for f in sys.argv[1:]:
    for x in json.load(open(f))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
r = {k: statistics.median(v) for k, v in times.items()}
s, o, g = r["ratchet step"], r["ratchet step, sandbox off"], r["git apply+add+commit"]
n = len(times["ratchet step"])
print(f"pooled over {n} runs each in {len(sys.argv) - 1} rotated rounds:")
print(f"median: ratchet step {s*1000:.1f} ms, git baseline {g*1000:.1f} ms, ratio {s/g:.2f} (target <= 1.5)")
print(f"median: sandbox off {o*1000:.1f} ms, ratio {o/g:.2f}; the sandbox costs {(s-o)*1000:.1f} ms a step")
PY
python3 - "$work/agent.json" <<'PY'
import json, statistics, sys
r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(sys.argv[1]))["results"]}
a, g = r["ratchet step (agent kind, no-op agent)"], r["git apply+add+commit"]
print(f"median: ratchet agent step {a*1000:.1f} ms, git baseline {g*1000:.1f} ms, ratio {a/g:.2f}")
PY
(cd "$work/ratchet" && "$RATCHET" log verify)
