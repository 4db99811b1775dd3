"""Bulk placement figures: throughput against latency, pacing under a rate limit, and the
memory and speed of validating a 1,000,000-line CSV. Prints figures; asserts nothing.

    .venv/bin/python bench/bulk.py                 # everything (about 4 minutes)
    .venv/bin/python bench/bulk.py --only latency  # or: ratelimit, validate
    .venv/bin/python bench/bulk.py --orders 300    # smaller runs

The sandbox runs as its own process (`kalixo sandbox serve`), so client and server do not
share an interpreter; each run places orders under fresh codes with a fresh journal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KALIXO = [sys.executable, "-m", "kalixo_cli"]
LINE = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def sandbox(work: Path, *flags: str) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [*KALIXO, "sandbox", "serve", "--port", str(port), "--db", str(work / "sb.sqlite3"),
         *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_for(work),
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def env_for(work: Path, url: str | None = None) -> dict[str, str]:
    from kalixo_cli.sandbox import SANDBOX_TOKEN

    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"),
           "XDG_DATA_HOME": str(work / f"data-{time.monotonic_ns()}"),
           "KALIXO_TOKEN": SANDBOX_TOKEN}
    if url:
        env["KALIXO_API_URL"] = url
    return env


def orders_file(work: Path, prefix: str, count: int) -> Path:
    path = work / f"{prefix}.jsonl"
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps({"externalOrderCode": f"{prefix}-{i}", "currency": "GBP",
                                  "orderProducts": [LINE]}) + "\n")
    return path


def place(work: Path, url: str, path: Path, concurrency: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [*KALIXO, "-q", "place-orders", str(path), "-c", str(concurrency), "-o", "json"],
        env=env_for(work, url), capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    return elapsed, summary


def bench_latency(work: Path, count: int) -> None:
    latency = 0.050
    print(f"## {count} orders, sandbox latency {latency * 1000:.0f} ms\n")
    print("Sending is timed inside kalixo (`sendSeconds`: the send phase, after start-up "
          "and validation); the whole command's wall time is beside it.\n")
    print("| concurrency | send s | orders/s | ideal orders/s | ratio to ideal | wall s |")
    print("|---:|---:|---:|---:|---:|---:|")
    with sandbox(work, "--latency-ms", str(latency * 1000)) as url:
        for concurrency in (1, 4, 8, 16):
            path = orders_file(work, f"lat{concurrency}", count)
            elapsed, summary = place(work, url, path, concurrency)
            ideal = concurrency / latency
            sending = float(summary.get("sendSeconds") or elapsed)
            rate = count / sending
            placed = summary.get("placed")
            note = "" if placed == count else f" (placed {placed})"
            print(f"| {concurrency} | {sending:.1f} | {rate:.1f} | {ideal:.0f} | "
                  f"{rate / ideal:.2f}{note} | {elapsed:.1f} |")
    print()


def bench_rate_limit(work: Path, count: int) -> None:
    """The sandbox runs in this process here, so its own count of 429s can be read."""
    import threading

    from kalixo_cli.sandbox.server import running_sandbox

    limit = 600
    print(f"## {count} orders under a {limit} requests/min limit, concurrency 8\n")
    with running_sandbox(work / "rl.sqlite3", rate_limit_per_minute=limit) as running:
        path = orders_file(work, "rl", count)
        first_window: dict[str, int] = {}
        timer = threading.Timer(60.0, lambda: first_window.update(running.fault_counts()))
        timer.start()
        try:
            elapsed, summary = place(work, running.v1_url, path, 8)
        finally:
            timer.cancel()
        total = running.fault_counts().get("rate_limited", 0)
    sending = float(summary.get("sendSeconds") or elapsed)
    rate = count / sending * 60
    in_first = first_window.get("rate_limited", total)
    print(f"- send phase {sending:.1f} s (wall {elapsed:.1f} s), placed {summary.get('placed')}")
    print(f"- achieved {rate:.0f} orders/min = {rate / limit:.3f} of the limit")
    print(f"- 429s: {total} in all, {total - in_first} after the first minute")
    print()


def bench_validate(work: Path, lines: int) -> None:
    path = work / "big.csv"
    with path.open("w") as out:
        out.write("externalOrderCode,productId,quantity,price,sku,currency\n")
        for i in range(lines):
            out.write(f"V-{i},6,1,839,GB-EN-4251604133182,GBP\n")
    size = path.stat().st_size / 1e6
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [*KALIXO, "-q", "place-orders", str(path), "--dry-run", "-o", "json"],
        env=env_for(work, "http://127.0.0.1:9/v1"), capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"## --dry-run validation of a {lines:,}-line CSV ({size:.0f} MB)\n")
    print(f"- exit {done.returncode}: {done.stdout.strip()}")
    print(f"- {elapsed:.1f} s, {lines / elapsed:,.0f} lines/s")
    print(f"- peak RSS {peak_kib / 1024:.0f} MB" + (
        "" if peak_kib > before else " (not above an earlier child's peak; run with --only "
        "validate for a clean figure)"))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("latency", "ratelimit", "validate"))
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}\n")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if args.only in (None, "validate"):
            bench_validate(work, args.lines)
        if args.only in (None, "latency"):
            bench_latency(work, args.orders)
        if args.only in (None, "ratelimit"):
            bench_rate_limit(work, args.orders)


if __name__ == "__main__":
    main()
