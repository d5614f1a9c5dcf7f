#!/usr/bin/env bash
# The demo: see README.md. Replaced as the local product grows.
set -euo pipefail
echo "demo: not built yet" >&2
exit 1
