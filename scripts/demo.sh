#!/usr/bin/env bash
# make demo: the whole fleet on this machine against the local product
# (cmd/lab), with a scripted campaign of regional, global and agent-local
# faults. DEMO_KEEP=1 leaves everything running at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./bin/lab demo -bin bin "$@"
