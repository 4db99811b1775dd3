"""Journal figures: what the exactly-once journal costs per order, SQLite against PostgreSQL.

    .venv/bin/python bench/journal_shared.py              # everything, a few minutes
    .venv/bin/python bench/journal_shared.py --orders 200 # smaller runs

Each order costs the journal one claim (a transaction committed before the POST) and one
outcome (a transaction after it): that pair is the latency the journal adds to an order, and
its rate is the most orders a second the journal lets through. Measured:

- c=1: one process, one thread, claim + finish per order (the added latency, median and p95);
- c=8: one process, eight threads on one journal handle (as `place-orders -c 8` uses it);
- 2 machines: two processes with handles of their own ("two machines": each has its own
  owner, as two config folders would) both claiming the same codes, half each, c=4 each.
  Every code must be won exactly once; the script checks and says so.

PostgreSQL is a cluster of its own started for the run (tests/pgserver.py) with fsync and
synchronous_commit on, like a production server; SQLite is the local journal as kalixo
opens it (WAL, synchronous=FULL). Both on this machine's disk, over loopback for PostgreSQL:
a real team database is across a network, which adds its round trip (4 per claim, 1 per
outcome) to every order. Prints figures; asserts only exactly-once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API = "https://api.kalixo.io/v1"
BODY = {"currency": "GBP", "orderProducts": [{"productId": 6, "price": 839, "quantity": 1}]}


def open_store(url: str) -> Any:
    from kalixo_cli.store.journal_url import locate, open_journal

    return open_journal(locate(url))


def one_order(journal: Any, code: str) -> tuple[bool, float]:
    """Claim, then record the outcome (placed): the journal's part of one order."""
    started = time.perf_counter()
    claim = journal.claim(API, code, {**BODY, "externalOrderCode": code})
    if claim.won:
        journal.finish(API, code, "placed", order_id=1, status="completed")
    return claim.won, time.perf_counter() - started


def run_threads(journal: Any, codes: list[str], threads: int) -> tuple[int, list[float], float]:
    """Claim `codes` from `threads` threads on one handle; (won, latencies, seconds)."""
    queue = list(reversed(codes))
    lock = threading.Lock()
    won = 0
    latencies: list[float] = []

    def work() -> None:
        nonlocal won
        while True:
            with lock:
                if not queue:
                    return
                code = queue.pop()
            ok, seconds = one_order(journal, code)
            with lock:
                won += ok
                latencies.append(seconds)

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return won, latencies, time.perf_counter() - started


def worker(url: str, prefix: str, count: int, threads: int) -> None:
    """One "machine": its own process and journal handle; prints what it won, as JSON."""
    journal = open_store(url)
    codes = [f"{prefix}-{n}" for n in range(count)]
    print("ready", flush=True)
    sys.stdin.readline()  # both machines start together
    won, latencies, seconds = run_threads(journal, codes, threads)
    journal.close()
    print(json.dumps({"won": won, "latencies": latencies, "seconds": seconds}), flush=True)


def two_machines(url: str, prefix: str, count: int, threads: int) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, prefix, str(count), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.communicate(timeout=1800)[0]) for proc in procs]
    seconds = time.perf_counter() - started
    won = sum(r["won"] for r in results)
    return {
        "won": won,
        "seconds": seconds,
        "latencies": [x for r in results for x in r["latencies"]],
    }


def figures(
    label: str, backend: str, won: int, orders: int, latencies: list[float], seconds: float
) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "backend": backend,
        "run": label,
        "orders": orders,
        "won": won,
        "orders_per_s": orders / seconds,
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
    }


def bench_backend(backend: str, url: str, orders: int) -> list[dict[str, Any]]:
    rows = []
    journal = open_store(url)
    one_order(journal, f"{backend}-warm")  # connection, schema, first page: not per order
    won, lat, secs = run_threads(journal, [f"{backend}-c1-{n}" for n in range(orders)], 1)
    rows.append(figures("c=1", backend, won, orders, lat, secs))
    won, lat, secs = run_threads(journal, [f"{backend}-c8-{n}" for n in range(orders)], 8)
    rows.append(figures("c=8", backend, won, orders, lat, secs))
    journal.close()
    both = two_machines(url, f"{backend}-two", orders, 4)
    row = figures(
        "2 machines, c=4 each", backend, both["won"], orders, both["latencies"], both["seconds"]
    )
    row["exactly_once"] = both["won"] == orders
    rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400, help="orders per run (default 400)")
    args = parser.parse_args()
    from tests.pgserver import running_postgres

    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kalixo-bench-") as work:
        rows += bench_backend("sqlite", f"sqlite://{Path(work) / 'journal.sqlite3'}", args.orders)
        with running_postgres(durable=True) as server:
            os.environ["PGPASSWORD"] = server.password
            url = server.create_database("bench")
            from kalixo_cli.store.journal_pg import PostgresJournal

            with PostgresJournal(url, check_schema=False) as fresh:
                fresh.migrate()
            with server.connect() as admin:
                version = admin.execute("SHOW server_version").fetchone()
            print(f"# PostgreSQL {version[0] if version else '?'}, fsync on, loopback", flush=True)
            rows += bench_backend("postgresql", url, args.orders)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(
        "| backend | run | orders | orders/s | added latency per order, median (ms) "
        "| p95 (ms) | each code won once |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        once = (
            "yes"
            if row.get("exactly_once", row["won"] == row["orders"])
            else f"NO ({row['won']} won)"
        )
        print(
            f"| {row['backend']} | {row['run']} | {row['orders']} | "
            f"{row['orders_per_s']:.0f} | {row['median_ms']:.2f} | {row['p95_ms']:.2f} | "
            f"{once} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
