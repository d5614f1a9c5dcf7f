#!/usr/bin/env bash
# Reads `go test -bench` output and prints one line per comparison benchmark:
#   bench: NAME value=V baseline=B ratio=R goal=G
# A benchmark takes part by reporting the metrics "value", "baseline",
# "ratio" and "goal" with b.ReportMetric (goal is the target ratio, or the
# limit for figures without a baseline). Other benchmark lines pass through.
set -euo pipefail
mkdir -p bin
awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  v=""; b=""; r=""; g=""
  for (i = 3; i < NF; i++) {
    if ($(i+1) == "value") v=$i
    if ($(i+1) == "baseline") b=$i
    if ($(i+1) == "ratio") r=$i
    if ($(i+1) == "goal") g=$i
  }
  if (v != "") { printf "bench: %s value=%s baseline=%s ratio=%s goal=%s\n", name, v, (b==""?"-":b), (r==""?"-":r), (g==""?"-":g); next }
}
{ print }
'
