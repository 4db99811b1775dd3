"""Time and memory of kalixo against hostile servers: huge bodies, trickled answers.

    .venv/bin/python bench/hostile.py [MEGABYTES]     # default 200

Runs `kalixo retrieve-order` in a fresh process per case against the test fault server
(tests/faultserver.py) on loopback, with KALIXO_TIMEOUT=3 KALIXO_RETRIES=0, and prints for
each: the exit code, wall time, the child's peak RSS and its ratio to a normal small answer's.
A bound that holds shows as a flat RSS ratio near 1 and a wall time near the timeout.

BENCH_KALIXO overrides the command (default: this Python's `-m kalixo_cli`), to measure
another checkout, e.g. BENCH_KALIXO="python -S -m kalixo_cli" with PYTHONPATH=OTHER:SITE.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faultserver import Reply, fault_server

MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
ORDER = {
    "orderId": 7,
    "orderStatus": "completed",
    "products": [{"productId": 2, "price": 1, "quantity": 1, "pin": [{"pin": "A-B"}]}],
}


def measure(url: str) -> tuple[int, float, int]:
    env = {
        **os.environ,
        "KALIXO_API_URL": f"{url}/v1",
        "KALIXO_TOKEN": "bench-token-0123456789",
        "KALIXO_TIMEOUT": "3",
        "KALIXO_RETRIES": "0",
        "KALIXO_NO_KEYRING": "1",
    }
    command = shlex.split(os.environ.get("BENCH_KALIXO", "")) or [
        sys.executable,
        "-m",
        "kalixo_cli",
    ]
    kalixo = [*command, "retrieve-order", "7", "-o", "json"]
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *kalixo],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), time.monotonic() - started, int(out[1])


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    size = megabytes * 1024 * 1024
    cases = [
        ("normal answer", Reply(200, ORDER)),
        (f"{megabytes} MB, Content-Length", Reply(action="huge", size=size)),
        (f"{megabytes} MB, chunked", Reply(action="huge", size=size, chunked=True)),
        ("1 header line / 0.5 s", Reply(action="trickle-headers", trickle=0.5)),
        ("1 body byte / 0.5 s", Reply(action="trickle-body", trickle=0.5)),
    ]
    print(f"{'case':<28} {'exit':>4} {'wall s':>7} {'peak RSS MB':>12} {'x normal':>9}")
    baseline = None
    for name, reply in cases:
        with fault_server() as server:
            server.on("/v1/orders/retrieve-order", reply)
            code, wall, rss_kb = measure(server.url)
        baseline = baseline or rss_kb
        print(f"{name:<28} {code:>4} {wall:>7.2f} {rss_kb / 1024:>12.1f} {rss_kb / baseline:>9.2f}")


if __name__ == "__main__":
    main()
