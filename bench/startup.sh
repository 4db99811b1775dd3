#!/usr/bin/env bash
# Start-up time of kalixo beside curl, httpie and bare Python, all doing the same GET against
# the sandbox on loopback, timed in interleaved rounds (bench/interleave.py) so that a shared
# machine's load falls on all alike. Prints medians (wall and CPU), the ratios the targets are
# set in (kalixo vs httpie, vs the import floor `python -c "import typer, requests"`, vs a
# bare requests GET) and whether each target is met.
# Usage: bench/startup.sh [RUNS] [BASELINE_CHECKOUT]
#   RUNS               interleaved rounds, every command once a round (default 30)
#   BASELINE_CHECKOUT  another kalixo checkout with its own .venv (e.g. a worktree of an older
#                      commit): its --help and retrieve-order join the same run, so before and
#                      after are measured interleaved, under the same load
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
baseline="${2:-}"
work="$(mktemp -d)"
trap 'kill "${server_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

if ! command -v curl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
[ -x .venv/bin/kalixo ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[sandbox]'; }
# An editable install has no bytecode for kalixo's own modules, and PYTHONDONTWRITEBYTECODE
# (set on some machines) stops Python writing it: compile once, as pip does for an install.
.venv/bin/python -m compileall -q kalixo_cli
[ -z "$baseline" ] || "$baseline/.venv/bin/python" -m compileall -q "$baseline/kalixo_cli"
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
printf 'import requests\nprint(requests.get("%s", headers={"Authorization": "Bearer %s"}, timeout=30).text)\n' \
    "$url" "$token" > "$work/requests_get.py"

.venv/bin/python - "$work/spec.json" "$baseline" "$order_id" "$token" "$url" "$work" "$httpie_venv" <<'PY'
import json, sys
out, baseline, order_id, token, url, work, httpie = sys.argv[1:]
retrieve = ["retrieve-order", order_id, "-o", "json"]
commands = [
    ["kalixo --help", [".venv/bin/kalixo", "--help"]],
    ["kalixo --version", [".venv/bin/kalixo", "--version"]],
    ["kalixo retrieve-order ID -o json", [".venv/bin/kalixo", *retrieve]],
]
if baseline:
    commands += [
        ["baseline kalixo --help", [f"{baseline}/.venv/bin/kalixo", "--help"]],
        ["baseline kalixo retrieve-order ID -o json", [f"{baseline}/.venv/bin/kalixo", *retrieve]],
    ]
commands += [
    ["curl", ["curl", "-s", "-H", f"Authorization: Bearer {token}", url]],
    ["httpie GET", [f"{httpie}/bin/http", "--ignore-stdin", "GET", url, f"Authorization:Bearer {token}"]],
    ["python http.client GET", [".venv/bin/python", f"{work}/get.py"]],
    ["python requests GET", [".venv/bin/python", f"{work}/requests_get.py"]],
    ["import floor", [".venv/bin/python", "-c", "import typer, requests"]],
]
ratios = []
for prefix in ("", "baseline ") if baseline else ("",):
    ratios += [
        [f"{prefix}kalixo retrieve-order ID -o json", "httpie GET", 0.55],
        [f"{prefix}kalixo retrieve-order ID -o json", "import floor", 1.15],
        [f"{prefix}kalixo --help", "httpie GET", 0.30],
        [f"{prefix}kalixo retrieve-order ID -o json", "python requests GET", None],
    ]
json.dump({"commands": commands, "ratios": ratios}, open(out, "w"))
PY
echo "import floor = python -c 'import typer, requests'; python requests GET = requests.get() of the same URL"
.venv/bin/python bench/interleave.py "$work/spec.json" "$runs"
