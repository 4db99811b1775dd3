"""What the atomic claim costs: claim + finish per order, and two processes contending.

    python bench/journal.py [ORDERS]     # default 2000

Prints, for a journal in a temporary folder on the same disk as the repository:

- one process, one thread: the old write path (an upsert, then the outcome) beside the
  claim path (one BEGIN IMMEDIATE transaction that reads, decides and writes, then the
  outcome), orders per second and the ratio;
- two processes claiming the same ORDERS codes at once: how many claims each won (the sum
  must be ORDERS: every code won exactly once) and the combined rate.

Compare ratios, not absolutes: the machine is shared and fsync dominates.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kalixo_cli.store.journal import request_hash
from kalixo_cli.store.journal_sqlite import Journal

API = "bench"


def body(n: int) -> dict[str, object]:
    return {
        "externalOrderCode": f"B-{n}",
        "currency": "GBP",
        "price": 839,
        "orderProducts": [{"productId": 6, "price": 839, "quantity": 1}],
    }


def old_path(path: Path, orders: int) -> float:
    """The write path before claims: an upsert of the intent, then the outcome."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE orders (api TEXT, code TEXT, hash TEXT, body TEXT, state TEXT, "
        "order_id INTEGER, attempts INTEGER, created_at REAL, updated_at REAL, "
        "PRIMARY KEY (api, code))"
    )
    started = time.perf_counter()
    for n in range(orders):
        text = json.dumps(body(n))
        now = time.time()
        db.execute("SELECT * FROM orders WHERE api = ? AND code = ?", (API, f"B-{n}"))
        db.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, 'sending', NULL, 1, ?, ?) "
            "ON CONFLICT (api, code) DO UPDATE SET state = 'sending'",
            (API, f"B-{n}", request_hash(body(n)), text, now, now),
        )
        db.execute(
            "UPDATE orders SET state = 'placed', order_id = ? WHERE api = ? AND code = ?",
            (n, API, f"B-{n}"),
        )
    elapsed = time.perf_counter() - started
    db.close()
    return orders / elapsed


def claim_path(path: Path, orders: int) -> float:
    with Journal(path) as journal:
        started = time.perf_counter()
        for n in range(orders):
            assert journal.claim(API, f"B-{n}", body(n)).won
            journal.finish(API, f"B-{n}", "placed", order_id=n)
        return orders / (time.perf_counter() - started)


RACER = """
import json, sys, time
from pathlib import Path
from kalixo_cli.store.journal_sqlite import Journal
path, orders = Path(sys.argv[1]), int(sys.argv[2])
journal = Journal(path)
print("ready", flush=True)
sys.stdin.readline()  # start together
won = 0
started = time.perf_counter()
for n in range(orders):
    body = {"externalOrderCode": f"R-{n}", "n": n}
    if journal.claim("bench", f"R-{n}", body).won:
        won += 1
        journal.finish("bench", f"R-{n}", "placed", order_id=n)
print(json.dumps({"won": won, "seconds": time.perf_counter() - started}))
"""


def two_processes(path: Path, orders: int) -> tuple[list[int], float]:
    Journal(path).close()
    root = str(Path(__file__).resolve().parent.parent)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(orders)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        for _ in range(2)
    ]
    for racer in racers:  # both have opened the journal
        assert racer.stdout is not None
        assert racer.stdout.readline().strip() == "ready"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    results = [json.loads(racer.communicate(timeout=600)[0]) for racer in racers]
    return [r["won"] for r in results], orders / max(r["seconds"] for r in results)


def main() -> None:
    orders = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as folder:
        base = Path(folder)
        old = old_path(base / "old.sqlite3", orders)
        new = claim_path(base / "new.sqlite3", orders)
        won, rate = two_processes(base / "race.sqlite3", orders)
    print(f"orders: {orders}")
    print(f"upsert + outcome (before claims): {old:,.0f} orders/s")
    print(f"claim + outcome (now):            {new:,.0f} orders/s  ({new / old:.2f}x)")
    print(
        f"two processes, same {orders} codes: won {won[0]} + {won[1]} = {sum(won)} "
        f"(must be {orders}); {rate:,.0f} codes/s together"
    )
    if sum(won) != orders:
        raise SystemExit("a code was claimed twice or not at all")


if __name__ == "__main__":
    main()
