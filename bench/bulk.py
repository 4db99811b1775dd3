"""Bulk placement figures: throughput against latency, pacing under a rate limit, and the
memory and speed of validating a 1,000,000-line CSV. Prints figures; asserts nothing.

    .venv/bin/python bench/bulk.py                 # everything (about 4 minutes)
    .venv/bin/python bench/bulk.py --only latency  # or: ratelimit, validate
    .venv/bin/python bench/bulk.py --orders 300    # smaller runs
    .venv/bin/python bench/bulk.py --only ratelimit --runs 10 --parallel 5

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


def rate_limit_run(work: Path, window: str, concurrency: int, count: int, limit: int,
                   run: int) -> tuple[float, float, int]:
    """One batch against a sandbox of its own (in this process, so its 429s can be
    counted): (share of the limit used, send seconds, 429s)."""
    from kalixo_cli.sandbox.server import running_sandbox

    folder = work / f"rl-{window}-{concurrency}-{run}"
    folder.mkdir()
    with running_sandbox(folder / "sb.sqlite3", rate_limit_per_minute=limit,
                         rate_limit_window=window) as running:  # type: ignore[arg-type]
        path = orders_file(folder, f"rl{run}", count)
        elapsed, summary = place(folder, running.v1_url, path, concurrency)
        rejected = running.fault_counts().get("rate_limited", 0)
    sending = float(summary.get("sendSeconds") or elapsed)
    placed = int(summary.get("placed") or 0)
    return placed / sending * 60 / limit, sending, rejected


def bench_rate_limit(work: Path, count: int, runs: int, parallel: int) -> None:
    """Share of the limit used: orders placed per minute of the send phase over the limit
    (a fixed window's first minute starts on a whole second, so a run can exceed 1)."""
    from concurrent.futures import ProcessPoolExecutor

    limit = 600
    print(f"## {count} orders under a {limit} requests/min limit, {runs} runs each\n")
    print(f"Runs go {parallel} at a time, each in a process of its own with its own "
          "sandbox (kalixo itself is a subprocess of it).\n")
    print("| window | concurrency | share of the limit per run | min | 429s | send s |")
    print("|---|---:|---|---:|---:|---:|")
    configs = [(window, concurrency) for window in ("fixed", "sliding")
               for concurrency in (1, 8)]
    with ProcessPoolExecutor(max_workers=parallel) as pool:
        futures = {config: [pool.submit(rate_limit_run, work, *config, count, limit, run)
                            for run in range(runs)] for config in configs}
        for (window, concurrency), done in futures.items():
            results = [future.result() for future in done]
            shares = ", ".join(f"{share:.3f}" for share, _, _ in results)
            seconds = [sending for _, sending, _ in results]
            print(f"| {window} | {concurrency} | {shares} | "
                  f"{min(share for share, _, _ in results):.3f} | "
                  f"{sum(rejected for _, _, rejected in results)} | "
                  f"{min(seconds):.1f}-{max(seconds):.1f} |")
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
    parser.add_argument("--runs", type=int, default=1, help="rate-limit runs per setting")
    parser.add_argument("--parallel", type=int, default=1,
                        help="rate-limit runs at once (each has its own sandbox)")
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
            bench_rate_limit(work, args.orders, args.runs, args.parallel)


if __name__ == "__main__":
    main()
