#!/usr/bin/env bash
# Installs drain3 into benches/.venv (once) and runs the clustering benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x benches/.venv/bin/python ] || ! benches/.venv/bin/python -c 'import drain3' 2>/dev/null; then
  python3 -m venv benches/.venv
  benches/.venv/bin/pip install --quiet --disable-pip-version-check -r benches/requirements.txt
fi
cargo bench --bench cluster
