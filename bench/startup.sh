#!/usr/bin/env bash
# Start-up time of kalixo beside curl, httpie and bare Python, side by side in one hyperfine
# run, all doing the same GET against the sandbox on loopback. Prints medians and the ratio
# of each to httpie, and checks the targets (retrieve-order <= 0.5x httpie, --help <= 0.6x).
# Usage: bench/startup.sh [RUNS]      (from a clean clone; installs what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
work="$(mktemp -d)"
trap 'kill "${server_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

if ! command -v hyperfine >/dev/null || ! command -v curl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine curl >/dev/null
fi
[ -x .venv/bin/kalixo ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[sandbox]'; }
# An editable install has no bytecode for kalixo's own modules, and PYTHONDONTWRITEBYTECODE
# (set on some machines) stops Python writing it: compile once, as pip does for an install.
.venv/bin/python -m compileall -q kalixo_cli
httpie_venv=".bench-venv"
[ -x "$httpie_venv/bin/http" ] || { python3 -m venv "$httpie_venv" && "$httpie_venv/bin/pip" install -q httpie; }

export XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
.venv/bin/kalixo sandbox serve --port "$port" --db "$work/sandbox.sqlite3" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/catalog" && break; sleep 0.1; done

token="$(.venv/bin/python -c 'from kalixo_cli.sandbox import SANDBOX_TOKEN; print(SANDBOX_TOKEN)')"
export KALIXO_API_URL="http://127.0.0.1:$port/v1" KALIXO_TOKEN="$token"
order_id="$(.venv/bin/kalixo -q place-order examples/order.json -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["orderId"])')"
url="$KALIXO_API_URL/orders/retrieve-order?id=$order_id"
printf 'import http.client\nc = http.client.HTTPConnection("127.0.0.1", %s)\nc.request("GET", "/v1/orders/retrieve-order?id=%s", headers={"Authorization": "Bearer %s"})\nprint(c.getresponse().read().decode())\n' \
    "$port" "$order_id" "$token" > "$work/get.py"

hyperfine -N --warmup 3 --runs "$runs" --style none --export-json "$work/times.json" \
    -n "kalixo --help" ".venv/bin/kalixo --help" \
    -n "kalixo --version" ".venv/bin/kalixo --version" \
    -n "kalixo retrieve-order ID -o json" ".venv/bin/kalixo retrieve-order $order_id -o json" \
    -n "curl" "curl -s -H 'Authorization: Bearer $token' $url" \
    -n "httpie (http)" "$httpie_venv/bin/http --ignore-stdin GET $url 'Authorization:Bearer $token'" \
    -n "python http.client GET" ".venv/bin/python $work/get.py" \
    -n "python -c 'import typer, requests'" ".venv/bin/python -c 'import typer, requests'" \
    >/dev/null

.venv/bin/python - "$work/times.json" <<'PY'
import json, platform, os, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
httpie = results["httpie (http)"]["median"]
print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
print()
print("| command | median (ms) | mean ± sd (ms) | x httpie |")
print("|---|---:|---:|---:|")
for name, r in results.items():
    print(f"| {name} | {r['median']*1000:.1f} | {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f} "
          f"| {r['median']/httpie:.2f} |")
print()
for name, target in (("kalixo retrieve-order ID -o json", 0.5), ("kalixo --help", 0.6)):
    ratio = results[name]["median"] / httpie
    print(f"target {name}: <= {target}x httpie: {ratio:.2f}x {'met' if ratio <= target else 'MISSED'}")
PY
