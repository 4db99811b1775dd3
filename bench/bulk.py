"""Bulk figures: place-orders against a bare requests client, throughput against latency,
pacing under a rate limit, --dry-run validation against a plain parsing loop, and
`orders list` on a large journal. Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/bulk.py                 # everything (10 minutes or more)
    .venv/bin/python bench/bulk.py --only compare  # or: latency, ratelimit, validate, list
    .venv/bin/python bench/bulk.py --orders 300    # smaller runs
    .venv/bin/python bench/bulk.py --only ratelimit --runs 10 --parallel 3

The sandbox runs as its own process (`kalixo sandbox serve`), so client and server do not
share an interpreter; each run places orders under fresh codes with a fresh journal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
BASELINE: Path | None = None  # --baseline: another checkout measured in the same runs


def variants() -> list[tuple[str, list[str], Path | None]]:
    """(label, command prefix, working folder) of kalixo, and of the baseline if given (run
    from its own folder, so that `-m kalixo_cli` imports its code)."""
    found: list[tuple[str, list[str], Path | None]] = [("kalixo", KALIXO, None)]
    if BASELINE is not None:
        found.append(
            (
                "baseline kalixo",
                [str(BASELINE / ".venv" / "bin" / "python"), "-m", "kalixo_cli"],
                BASELINE,
            )
        )
    return found


LINE = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def sandbox(work: Path, *flags: str) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            *KALIXO,
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--db",
            str(work / "sb.sqlite3"),
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env_for(work),
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

    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(work / "config"),
        "XDG_DATA_HOME": str(work / f"data-{time.monotonic_ns()}"),
        "KALIXO_TOKEN": SANDBOX_TOKEN,
    }
    if url:
        env["KALIXO_API_URL"] = url
    return env


def orders_file(work: Path, prefix: str, count: int) -> Path:
    path = work / f"{prefix}.jsonl"
    with path.open("w") as out:
        for i in range(count):
            out.write(
                json.dumps(
                    {
                        "externalOrderCode": f"{prefix}-{i}",
                        "currency": "GBP",
                        "orderProducts": [LINE],
                    }
                )
                + "\n"
            )
    return path


def run_child(
    argv: list[str], env: dict[str, str], *, stdout: Any = subprocess.PIPE, cwd: Path | None = None
) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of one child process, measured by wait4."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv,
        env=env,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
    )
    out = child.stdout.read() if child.stdout is not None else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0,):
        raise SystemExit(f"{' '.join(argv[:4])}... exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


BARE_CLIENT = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
import threading
import requests

url, token, path, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
local = threading.local()

def post(line):
    session = getattr(local, "session", None)
    if session is None:
        session = local.session = requests.Session()
        session.headers["Authorization"] = "Bearer " + token
    answer = session.post(url + "/orders/place-order", json=json.loads(line), timeout=30)
    answer.raise_for_status()
    return answer.json()["orderId"]

with open(path) as lines, ThreadPoolExecutor(workers) as pool:
    placed = sum(1 for _ in pool.map(post, lines))
print(placed)
"""


def bench_compare(work: Path, count: int, rounds: int) -> None:
    """kalixo place-orders against the floor: a bare requests + thread-pool client posting
    the same bodies, start-up included on both sides, interleaved over several rounds."""
    from statistics import median

    from kalixo_cli.sandbox import SANDBOX_TOKEN

    latency, concurrency = 0.050, 8
    client = work / "bare_client.py"
    client.write_text(BARE_CLIENT)
    print(
        f"## place-orders: {count} orders, c={concurrency}, sandbox latency "
        f"{latency * 1000:.0f} ms, against a bare requests + thread-pool client\n"
    )
    labels = [label for label, _, _ in variants()]
    wall: dict[str, list[float]] = {label: [] for label in [*labels, "bare"]}
    cpu: dict[str, list[float]] = {label: [] for label in [*labels, "bare"]}
    with sandbox(work, "--latency-ms", str(latency * 1000)) as url:
        for round_ in range(rounds):
            env = env_for(work, url)
            for label, prefix, cwd in variants():
                path = orders_file(work, f"cmp{round_}{label.replace(' ', '-')}", count)
                took, used, _, out = run_child(
                    [
                        *prefix,
                        "-q",
                        "place-orders",
                        str(path),
                        "-c",
                        str(concurrency),
                        "-o",
                        "json",
                    ],
                    env_for(work, url),
                    cwd=cwd,
                )
                placed = json.loads(out).get("placed")
                if placed != count:
                    raise SystemExit(f"{label} placed {placed} of {count}")
                wall[label].append(took)
                cpu[label].append(used)
            path = orders_file(work, f"cmp{round_}bare", count)
            took, used, _, out = run_child(
                [sys.executable, str(client), url, SANDBOX_TOKEN, str(path), str(concurrency)], env
            )
            if int(out) != count:
                raise SystemExit(f"the bare client placed {out} of {count}")
            wall["bare"].append(took)
            cpu["bare"].append(used)
    bw, bc = median(wall["bare"]), median(cpu["bare"])
    print("| client | wall s (median) | CPU s (median) | CPU ms per order | speed vs bare |")
    print("|---|---:|---:|---:|---:|")
    for label in labels:
        kw, kc = median(wall[label]), median(cpu[label])
        print(
            f"| {label} place-orders | {kw:.2f} | {kc:.2f} | {kc / count * 1000:.2f} | "
            f"{bw / kw:.2f}x |"
        )
    print(
        f"| bare requests + thread pool | {bw:.2f} | {bc:.2f} | {bc / count * 1000:.2f} | 1.00x |"
    )
    print()
    kw, kc = median(wall["kalixo"]), median(cpu["kalixo"])
    print(
        f"- speed vs the bare client (its wall / kalixo's): {bw / kw:.2f}x "
        f"(target >= 0.95x: {'met' if bw / kw >= 0.95 else 'MISSED'})"
    )
    print(
        f"- kalixo client CPU per order: {kc / count * 1000:.2f} ms "
        f"(target <= 2.5 ms: {'met' if kc / count * 1000 <= 2.5 else 'MISSED'}; start-up "
        f"and validation included)"
    )
    print(
        f"- {rounds} rounds, the clients alternating; the sandbox shares the machine's "
        "cores with them\n"
    )


def place(work: Path, url: str, path: Path, concurrency: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [*KALIXO, "-q", "place-orders", str(path), "-c", str(concurrency), "-o", "json"],
        env=env_for(work, url),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    return elapsed, summary


def bench_latency(work: Path, count: int) -> None:
    latency = 0.050
    print(f"## {count} orders, sandbox latency {latency * 1000:.0f} ms\n")
    print(
        "Sending is timed inside kalixo (`sendSeconds`: the send phase, after start-up "
        "and validation); the whole command's wall time is beside it.\n"
    )
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
            print(
                f"| {concurrency} | {sending:.1f} | {rate:.1f} | {ideal:.0f} | "
                f"{rate / ideal:.2f}{note} | {elapsed:.1f} |"
            )
    print()


def rate_limit_run(
    work: Path, window: str, concurrency: int, count: int, limit: int, run: int
) -> tuple[float, float, int]:
    """One batch against a sandbox of its own (in this process, so its 429s can be
    counted): (share of the limit used, send seconds, 429s)."""
    from kalixo_cli.sandbox.server import running_sandbox

    folder = work / f"rl-{window}-{concurrency}-{run}"
    folder.mkdir()
    with running_sandbox(
        folder / "sb.sqlite3", rate_limit_per_minute=limit, rate_limit_window=window
    ) as running:  # type: ignore[arg-type]
        path = orders_file(folder, f"rl{run}", count)
        elapsed, summary = place(folder, running.v1_url, path, concurrency)
        rejected = running.fault_counts().get("rate_limited", 0)
    sending = float(summary.get("sendSeconds") or elapsed)
    placed = int(summary.get("placed") or 0)
    return placed / sending * 60 / limit, sending, rejected


def bench_rate_limit(
    work: Path, count: int, runs: int, parallel: int, windows: list[str], concurrencies: list[int]
) -> None:
    """Share of the limit used: orders placed per minute of the send phase over the limit
    (a fixed window's first minute starts on a whole second, so a run can exceed 1)."""
    from concurrent.futures import ProcessPoolExecutor

    limit = 600
    print(f"## {count} orders under a {limit} requests/min limit, {runs} runs each\n")
    print(
        f"Runs go {parallel} at a time, each in a process of its own with its own "
        "sandbox (kalixo itself is a subprocess of it).\n"
    )
    print("| window | concurrency | share of the limit per run | min | 429s | send s |")
    print("|---|---:|---|---:|---:|---:|")
    configs = [(window, concurrency) for window in windows for concurrency in concurrencies]
    with ProcessPoolExecutor(max_workers=parallel) as pool:
        futures = {
            config: [
                pool.submit(rate_limit_run, work, *config, count, limit, run) for run in range(runs)
            ]
            for config in configs
        }
        for (window, concurrency), done in futures.items():
            results = [future.result() for future in done]
            shares = ", ".join(f"{share:.3f}" for share, _, _ in results)
            seconds = [sending for _, sending, _ in results]
            print(
                f"| {window} | {concurrency} | {shares} | "
                f"{min(share for share, _, _ in results):.3f} | "
                f"{sum(rejected for _, _, rejected in results)} | "
                f"{min(seconds):.1f}-{max(seconds):.1f} |"
            )
    print()


FLOOR_CSV = """
import csv, sys
count = 0
with open(sys.argv[1], newline="") as file:
    rows = csv.reader(file)
    header = next(rows)
    for row in rows:
        line = dict(zip(header, row))
        order = {"externalOrderCode": line["externalOrderCode"], "currency": line["currency"],
                 "orderProducts": [{"productId": int(line["productId"]),
                                    "quantity": int(line["quantity"]),
                                    "price": int(line["price"]), "sku": line["sku"]}]}
        count += 1
print(count)
"""

FLOOR_JSONL = """
import json, sys
count = 0
with open(sys.argv[1], "rb") as file:
    for line in file:
        order = json.loads(line)
        count += 1
print(count)
"""


def bench_validate(work: Path, lines: int) -> None:
    """--dry-run of a large CSV and JSONL against the plain loop that parses the same file
    into the same dicts: the speed of validation relative to the speed of parsing."""
    csv_path = work / "big.csv"
    with csv_path.open("w") as out:
        out.write("externalOrderCode,productId,quantity,price,sku,currency\n")
        for i in range(lines):
            out.write(f"V-{i},6,1,839,GB-EN-4251604133182,GBP\n")
    jsonl_path = work / "big.jsonl"
    with jsonl_path.open("w") as out:
        for i in range(lines):
            out.write(
                json.dumps(
                    {"externalOrderCode": f"J-{i}", "currency": "GBP", "orderProducts": [LINE]}
                )
                + "\n"
            )
    print(f"## --dry-run validation of {lines:,} lines, against a plain parsing loop\n")
    print(
        "| input | kalixo s | kalixo lines/s | peak RSS MB | plain loop s | ratio to the "
        "loop | kalixo CPU s | loop CPU s | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    env = env_for(work, "http://127.0.0.1:9/v1")
    for label, path, floor in (("CSV", csv_path, FLOOR_CSV), ("JSONL", jsonl_path, FLOOR_JSONL)):
        floor_file = work / f"floor_{label}.py"
        floor_file.write_text(floor)
        size = path.stat().st_size / 1e6
        for who, prefix, cwd in variants():
            floor_wall, floor_cpu, _, _ = run_child(
                [sys.executable, str(floor_file), str(path)], env
            )
            wall, cpu, rss, out = run_child(
                [*prefix, "-q", "place-orders", str(path), "--dry-run", "-o", "json"], env, cwd=cwd
            )
            valid = json.loads(out)["valid"]
            if valid != lines:
                raise SystemExit(f"{label}: {valid} valid of {lines}")
            print(
                f"| {label} ({size:.0f} MB), {who} | {wall:.1f} | {lines / wall:,.0f} | "
                f"{rss:.0f} | {floor_wall:.1f} | {floor_wall / wall:.3f}x | {cpu:.1f} | "
                f"{floor_cpu:.1f} | {floor_cpu / cpu:.3f}x |"
            )
    print(
        "\nTarget: ratio >= 0.25x, memory flat. Both sides include interpreter start-up. "
        "CPU is user + system time of each child (wait4), which a loaded machine disturbs "
        "far less than wall time.\n"
    )


def _fill_journal(path: Path, api: str, count: int) -> None:
    """A journal of `count` placed orders: 100 written through kalixo's Journal, then copied
    row by row in SQL (whatever the columns are), as a long-used machine would have."""
    import sqlite3

    from kalixo_cli.store.journal_sqlite import Journal

    with Journal(path) as journal:
        for i in range(100):
            code = f"seed-{i}"
            journal.claim(
                api, code, {"externalOrderCode": code, "currency": "GBP", "orderProducts": [LINE]}
            )
            journal.finish(api, code, "placed", order_id=59000 + i, status="completed")
    db = sqlite3.connect(path)
    columns = [row[1] for row in db.execute("PRAGMA table_info(orders)")]
    for copy in range(1, count // 100):
        picked = ", ".join(
            f"code || '-{copy}'"
            if c == "code"
            else f"created_at + {copy}"
            if c == "created_at"
            else c
            for c in columns
        )
        db.execute(
            f"INSERT INTO orders ({', '.join(columns)}) SELECT {picked} FROM orders "
            "WHERE code GLOB 'seed-[0-9]*' AND code NOT GLOB 'seed-*-*'"
        )
    db.commit()
    db.close()


def _at_a_terminal(
    argv: list[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float]:
    """(wall s, peak RSS MB) of a command whose stdout is a pseudo-terminal."""
    import pty

    leader, follower = pty.openpty()
    started = time.perf_counter()
    child = subprocess.Popen(
        argv,
        env={**env, "COLUMNS": "150"},
        stdout=follower,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    os.close(follower)
    while True:
        try:
            if not os.read(leader, 1 << 16):
                break
        except OSError:
            break
    os.close(leader)
    _, _, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def bench_list(work: Path, entries: int) -> None:
    api = "https://api.kalixo.io/v1"
    env = env_for(work, api)
    data = Path(env["XDG_DATA_HOME"])
    _fill_journal(data / "kalixo" / "journal.sqlite3", api, entries)
    print(f"## orders list on a {entries:,}-entry journal\n")
    print("| command | wall s | CPU s | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for who, prefix, cwd in variants():
        for fmt in ("json", "jsonl", "csv"):
            try:
                wall, cpu, rss, _ = run_child(
                    [*prefix, "orders", "list", "-o", fmt], env, stdout=subprocess.DEVNULL, cwd=cwd
                )
            except SystemExit as failed:  # the baseline's -o csv crashed on any entry
                print(f"| {who}: orders list -o {fmt} (to a file) | {failed} | | |")
                continue
            print(
                f"| {who}: orders list -o {fmt} (to a file) | {wall:.1f} | {cpu:.1f} | {rss:.0f} |"
            )
        wall, rss = _at_a_terminal([*prefix, "orders", "list"], env, cwd)
        print(f"| {who}: orders list at a terminal (default) | {wall:.1f} | | {rss:.0f} |")
        if who == "kalixo":  # the baseline has no --all: its default is every row
            wall, rss = _at_a_terminal([*prefix, "orders", "list", "--all"], env, cwd)
            print(f"| {who}: orders list --all at a terminal | {wall:.1f} | | {rss:.0f} |")
    print(
        "\nOne run each, one after the other: on a loaded machine read the CPU column for "
        "speed.\nTargets: JSON <= 60 MB whatever the size; a table at a terminal shows a page by "
        "default, --all streams.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="rate-limit runs per setting")
    parser.add_argument(
        "--parallel", type=int, default=1, help="rate-limit runs at once (each has its own sandbox)"
    )
    parser.add_argument("--entries", type=int, default=100_000, help="journal size for list")
    parser.add_argument("--compare-orders", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the comparison")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="another kalixo checkout with its own .venv, measured in the same runs (before/after)",
    )
    parser.add_argument("--only", choices=("compare", "latency", "ratelimit", "validate", "list"))
    parser.add_argument(
        "--window",
        choices=("fixed", "sliding"),
        action="append",
        help="rate-limit window (both by default)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        action="append",
        help="rate-limit run concurrency (1 and 8 by default)",
    )
    args = parser.parse_args()
    global BASELINE
    BASELINE = args.baseline.resolve() if args.baseline else None
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if args.only in (None, "compare"):
            bench_compare(work, args.compare_orders, args.rounds)
        if args.only in (None, "validate"):
            bench_validate(work, args.lines)
        if args.only in (None, "list"):
            bench_list(work, args.entries)
        if args.only in (None, "latency"):
            bench_latency(work, args.orders)
        if args.only in (None, "ratelimit"):
            bench_rate_limit(
                work,
                args.orders,
                args.runs,
                args.parallel,
                args.window or ["fixed", "sliding"],
                args.concurrency or [1, 8],
            )


if __name__ == "__main__":
    main()
