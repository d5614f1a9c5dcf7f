#!/usr/bin/env bash
# The interim demo (until the whole local product exists): starts the lab's
# HTTP product, runs `prober run` against it every 2 s for about 15 s,
# breaks the product midway so that failures show, heals it, then prints a
# summary of the real Results. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

BIN=${BIN:-bin}
[ -x "$BIN/prober" ] && [ -x "$BIN/lab" ] || go build -o "$BIN/" ./cmd/prober ./cmd/lab

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port for the lab and one for the prober's health endpoints.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
lab_port=$(free_port)
agent_port=$(free_port)
lab="http://127.0.0.1:$lab_port"

"$BIN/lab" serve -listen "127.0.0.1:$lab_port" 2>"$work/lab.log" &
pids+=($!)
for _ in $(seq 50); do curl -fsS "$lab/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$work/demo.toml" <<TOML
[agent]
name = "demo-1"
region = "local"
data_dir = "$work/data"
listen = "127.0.0.1:$agent_port"
stop_grace = "5s"

[defaults]
schedule = "@every 2s"
timeout = "1500ms"

[[export]]
type = "jsonl"
path = "$work/results.jsonl"

[[journey]]
name = "lab-health"
kind = "http"
components = ["https-edge"]
[journey.http]
[[journey.http.step]]
name = "health"
url = "$lab/healthz"
body_contains = ["ok"]

[[journey]]
name = "lab-repository"
kind = "http"
components = ["https-edge", "api"]
[journey.http]
[[journey.http.step]]
name = "repository"
url = "$lab/api/2.0/repositories/vantage/probe-repo"
json_equals = { "full_name" = "vantage/probe-repo", "mainbranch.name" = "main" }
capture = { clone = "links.clone.0.href" }
TOML

echo "demo: lab on $lab, prober health on http://127.0.0.1:$agent_port/healthz"
"$BIN/prober" validate -config "$work/demo.toml"
"$BIN/prober" run -config "$work/demo.toml" 2>"$work/prober.log" &
prober_pid=$!
pids+=($prober_pid)

sleep 5
echo "demo: $(curl -fsS "http://127.0.0.1:$agent_port/readyz")"
echo "demo: injecting a fault: the product answers 503"
curl -fsS -X POST "$lab/fault?status=503" >/dev/null
sleep 5
echo "demo: healing the product"
curl -fsS -X POST "$lab/fault?status=0" >/dev/null
sleep 5
kill -TERM "$prober_pid"
wait "$prober_pid" || true

echo
echo "demo: results (slot, journey, status, error type, duration, step timings)"
python3 - "$work/results.jsonl" <<'PY'
import json, sys
n = {"pass": 0, "fail": 0, "probe_error": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)
    n[r["status"]] += 1
    st = r["steps"][0] if r["steps"] else {"attrs": {}}
    a = st.get("attrs", {})
    phases = " ".join(f'{k.split(".")[-1].removesuffix("_ms")}={a[k]:.2f}ms' for k in sorted(a) if k.startswith("vantage.http.phase."))
    print(f'  {r["slot"][11:19]}  {r["journey"]:<15} {r["status"]:<5} {r["error_type"] or "-":<9} {r["duration_ms"]:7.2f}ms  code={a.get("http.response.status_code","-")} {phases}')
print(f'demo: {n["pass"]} passed, {n["fail"]} failed, {n["probe_error"]} probe errors')
if n["pass"] == 0 or n["fail"] == 0:
    sys.exit("demo: expected both passing and failing results")
PY
echo "demo: prober log (last lines):"
tail -n 3 "$work/prober.log"
