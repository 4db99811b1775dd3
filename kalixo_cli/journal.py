"""The local journal: what this machine sent, so no order is ever bought twice.

Keyed by (API, externalOrderCode). The intent (code, request hash, time) is committed
*before* the request is written to the socket, the outcome after it, so whatever happens in
between (a timeout, Ctrl-C, kill -9, a power cut) leaves a row that says so:

    sending --> placed      the API answered with the order
            \\-> rejected    a 4xx: nothing was created; may be sent again once fixed
             \\-> failed      nothing was placed (connection refused, 429): may be sent again
              \\-> unknown    it may have been placed: never sent again without resolving

A row left in `sending` by a killed process is read as `unknown`. PINs are never stored:
the API gives them again on retrieve-order.

SQLite in WAL mode with synchronous=FULL, mode 0600 in the user data folder; safe for the
threads of one bulk run (one connection, one lock) and for several processes (busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATES = ("sending", "placed", "rejected", "failed", "unknown")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    api         TEXT NOT NULL,
    code        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    order_id    INTEGER,
    status      TEXT,
    error_kind  TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (api, code)
);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (api, created_at);
"""


def request_hash(body: Mapping[str, Any]) -> str:
    """Stable across runs and key order: the same order always hashes the same."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_journal_path() -> Path:
    from kalixo_cli.config import data_dir

    return data_dir() / "journal.sqlite3"


@dataclass(frozen=True)
class Entry:
    api: str
    code: str
    hash: str
    body: str
    state: str
    order_id: int | None
    status: str | None
    error_kind: str | None
    error: str | None
    attempts: int
    created_at: float
    updated_at: float

    @property
    def effective_state(self) -> str:
        """`sending` with no process behind it means nobody knows: unknown."""
        return "unknown" if self.state == "sending" else self.state

    def to_json(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "externalOrderCode": self.code,
            "state": self.effective_state,
            "orderId": self.order_id,
            "status": self.status,
            "errorKind": self.error_kind,
            "error": self.error,
            "attempts": self.attempts,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
            "requestHash": self.hash,
        }


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------

    def get(self, api: str, code: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM orders WHERE api = ? AND code = ?", (api, code)
            ).fetchone()
        return Entry(*row) if row else None

    def get_many(self, api: str, codes: Sequence[str]) -> dict[str, Entry]:
        """The entries of those of `codes` the journal knows: one query per 500 codes, for
        planning a batch at the speed of reading it."""
        found: dict[str, Entry] = {}
        for start in range(0, len(codes), 500):
            part = codes[start:start + 500]
            marks = ", ".join("?" * len(part))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT * FROM orders WHERE api = ? AND code IN ({marks})", (api, *part)
                ).fetchall()
            for row in rows:
                entry = Entry(*row)
                found[entry.code] = entry
        return found

    def begin(self, api: str, code: str, body: Mapping[str, Any]) -> None:
        """Record the intent, durably, before a byte is sent. Callers check `get` first."""
        now = time.time()
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._db.execute(
                """INSERT INTO orders (api, code, hash, body, state, attempts, created_at,
                                       updated_at)
                   VALUES (?, ?, ?, ?, 'sending', 1, ?, ?)
                   ON CONFLICT (api, code) DO UPDATE SET
                       hash = excluded.hash, body = excluded.body, state = 'sending',
                       error_kind = NULL, error = NULL, attempts = attempts + 1,
                       updated_at = excluded.updated_at""",
                (api, code, request_hash(body), text, now, now),
            )

    def finish(self, api: str, code: str, state: str, *, order_id: int | None = None,
               status: str | None = None, error_kind: str | None = None,
               error: str | None = None) -> None:
        if state not in STATES or state == "sending":
            raise ValueError(f"not a final state: {state}")
        with self._lock:
            self._db.execute(
                """UPDATE orders SET state = ?, order_id = COALESCE(?, order_id),
                       status = COALESCE(?, status), error_kind = ?, error = ?,
                       updated_at = ?
                   WHERE api = ? AND code = ?""",
                (state, order_id, status, error_kind, error, time.time(), api, code),
            )

    def resolve(self, api: str, code: str, order_id: int, status: str | None = None) -> None:
        """The user checked: the order exists as `order_id`."""
        self.finish(api, code, "placed", order_id=order_id, status=status,
                    error_kind="resolved by hand")

    def mark_not_placed(self, api: str, code: str) -> None:
        """The user checked: it was never placed, so it may be sent again."""
        self.finish(api, code, "failed", error_kind="resolved by hand",
                    error="not placed, by the user's word")

    def abandon_in_flight(self, api: str, codes: list[str], reason: str) -> None:
        """Rows still `sending` when a run stops become `unknown`, saying why."""
        with self._lock:
            self._db.executemany(
                """UPDATE orders SET state = 'unknown', error_kind = 'interrupted', error = ?,
                       updated_at = ? WHERE api = ? AND code = ? AND state = 'sending'""",
                [(reason, time.time(), api, code) for code in codes],
            )

    def entries(self, api: str | None = None, *, state: str | None = None,
                since: float | None = None, until: float | None = None,
                code_like: str | None = None, limit: int | None = None) -> Iterator[Entry]:
        clauses: list[str] = []
        params: list[Any] = []
        if api is not None:
            clauses.append("api = ?")
            params.append(api)
        if state == "unknown":
            clauses.append("state IN ('unknown', 'sending')")
        elif state is not None:
            clauses.append("state = ?")
            params.append(state)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("created_at < ?")
            params.append(until)
        if code_like is not None:
            clauses.append("code LIKE ? ESCAPE '\\'")
            params.append(code_like)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        with self._lock:
            cursor = self._db.execute(
                f"SELECT * FROM orders {where} ORDER BY created_at, code{tail}", params)
        while True:  # a batch at a time: a listing of any size in the memory of one batch
            with self._lock:
                rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield Entry(*row)
