# Shared by the shell benchmarks: sourced, never run.
#
# bench_init: builds the release binary, sets RATCHET and a work directory
# (removed on exit) with its own state and home.
# write_agent FILE: a command provider that prints a fixed 5-line append to
# docs/notes.md, whatever the context.
# write_rails AGENT OUT: this repository's rails with checks `true`, AGENT as
# the self provider, auto-merge on (docs/** only) and no telemetry.

bench_init() {
  cargo build --release -q
  RATCHET=$PWD/target/release/ratchet
  RAILS_TEMPLATE=$PWD/config/rails.toml
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  export XDG_STATE_HOME=$work/state HOME=$work/home
  mkdir -p "$HOME"
}

write_agent() {
  cat > "$1" <<'SH'
#!/bin/sh
cat > /dev/null
printf '%s' '{"rationale":"Add five lines of notes.","patch":{"op":"append","path":"docs/notes.md","content":"one\ntwo\nthree\nfour\nfive\n"},"next_steps":["more notes"]}'
SH
  chmod +x "$1"
}

write_rails() {
  sed -e 's|^command = "cargo test"|command = "true"|' \
      -e "s|^command = \[\"./scripts/agent.sh\"\].*|command = [\"$1\"]|" \
      -e '/^\[gate.auto_merge\]/,/^\[/ s/^enabled = false/enabled = true/' \
      -e '/^\[loopkit\]/,$d' "$RAILS_TEMPLATE" > "$2"
}
