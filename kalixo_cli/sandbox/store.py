"""The sandbox's state: orders, their lines and PINs, in one SQLite file.

State survives restarts, so a user can place an order today and retrieve it tomorrow, and a
test can close the server and reopen the same file. The file may be shared by two processes
(WAL, a busy timeout, ``BEGIN IMMEDIATE`` for writes); within a process one connection is
guarded by a lock, which is plenty for an emulator. Uniqueness that matters (external order
codes, PINs) is enforced by UNIQUE constraints, so concurrent requests can never
double-create an order. Nothing here knows about time or statuses: lines keep their
``outcome`` and orders their ``placed_at``, and the app derives the status from its clock.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

FIRST_ORDER_ID = 59401
SCHEMA_VERSION = 1
PIN_PREFIX = "SANDBOX-"
_PIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: PINs get read aloud
_PIN_GROUPS = 4
_PIN_GROUP_LENGTH = 5

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    external_order_code TEXT NOT NULL UNIQUE,
    price INTEGER NOT NULL,
    currency TEXT NOT NULL,
    placed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS order_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    position INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    sku TEXT NOT NULL,
    price INTEGER NOT NULL,
    buying_price INTEGER NOT NULL,
    currency TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 1),
    outcome TEXT NOT NULL,
    UNIQUE (order_id, position)
);
CREATE TABLE IF NOT EXISTS pins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line_id INTEGER NOT NULL REFERENCES order_lines(id),
    unit INTEGER NOT NULL,
    pin TEXT NOT NULL UNIQUE,
    UNIQUE (line_id, unit)
);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'orders', {FIRST_ORDER_ID - 1}
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'orders');
"""


def default_db_path() -> Path:
    """Where ``kalixo sandbox serve`` keeps its state unless told otherwise (``--db``)."""
    return Path(platformdirs.user_data_dir("kalixo")) / "sandbox.sqlite3"


def new_pin() -> str:
    """A fresh sandbox PIN, ``SANDBOX-XXXXX-XXXXX-XXXXX-XXXXX`` (100 random bits)."""
    groups = (
        "".join(secrets.choice(_PIN_ALPHABET) for _ in range(_PIN_GROUP_LENGTH))
        for _ in range(_PIN_GROUPS)
    )
    return PIN_PREFIX + "-".join(groups)


class StoreError(Exception):
    """The database file cannot be used (not SQLite, newer schema, unreadable)."""


class DuplicateOrder(Exception):
    """An order with this external order code already exists."""

    def __init__(self, external_order_code: str) -> None:
        super().__init__(external_order_code)
        self.external_order_code = external_order_code


@dataclass(frozen=True)
class NewLine:
    """A validated order line, as the app priced it."""

    product_id: int
    sku: str
    price: int
    buying_price: int
    currency: str
    quantity: int
    outcome: str
    delivers: bool


@dataclass(frozen=True)
class NewOrder:
    external_order_code: str
    price: int
    currency: str
    placed_at: float
    lines: Sequence[NewLine]


@dataclass(frozen=True)
class StoredLine:
    product_id: int
    sku: str
    price: int
    buying_price: int
    currency: str
    quantity: int
    outcome: str
    pins: tuple[str, ...]


@dataclass(frozen=True)
class StoredOrder:
    order_id: int
    external_order_code: str
    price: int
    currency: str
    placed_at: float
    lines: tuple[StoredLine, ...]


class Store:
    """The sandbox database at ``path``; create it (0700 parents, 0600 file) if absent."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot use {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        with self._transaction(write=True) as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer kalixo (schema {version}); "
                    "upgrade kalixo or use another --db"
                )
            # not executescript(): it would commit the transaction half way
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------

    def place_order(self, order: NewOrder) -> StoredOrder:
        """Record ``order`` with a fresh id and one PIN per unit of delivering lines.

        Raises DuplicateOrder when the external order code is taken, by this process or
        another one sharing the file.
        """
        for attempt in range(3):
            try:
                with self._transaction(write=True) as conn:
                    stored = self._load(conn, self._insert(conn, order))
                assert stored is not None
                return stored
            except sqlite3.IntegrityError as exc:
                if "orders.external_order_code" in str(exc):
                    raise DuplicateOrder(order.external_order_code) from exc
                if "pins.pin" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _insert(conn: sqlite3.Connection, order: NewOrder) -> int:
        cursor = conn.execute(
            "INSERT INTO orders (external_order_code, price, currency, placed_at)"
            " VALUES (?, ?, ?, ?)",
            (order.external_order_code, order.price, order.currency, order.placed_at),
        )
        order_id = cursor.lastrowid
        assert order_id is not None
        for position, line in enumerate(order.lines):
            cursor = conn.execute(
                "INSERT INTO order_lines (order_id, position, product_id, sku, price,"
                " buying_price, currency, quantity, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    order_id,
                    position,
                    line.product_id,
                    line.sku,
                    line.price,
                    line.buying_price,
                    line.currency,
                    line.quantity,
                    line.outcome,
                ),
            )
            if line.delivers:
                conn.executemany(
                    "INSERT INTO pins (line_id, unit, pin) VALUES (?, ?, ?)",
                    [(cursor.lastrowid, unit, new_pin()) for unit in range(line.quantity)],
                )
        return order_id

    # -- reading ------------------------------------------------------------------------

    def get_order(self, order_id: int) -> StoredOrder | None:
        with self._transaction(write=False) as conn:
            return self._load(conn, order_id)

    def orders_by_code(self, external_order_code: str) -> list[StoredOrder]:
        """Every order with this code: a ledger for tests (never more than one)."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT id FROM orders WHERE external_order_code = ? ORDER BY id",
                (external_order_code,),
            ).fetchall()
            loaded = (self._load(conn, order_id) for (order_id,) in rows)
            return [order for order in loaded if order is not None]

    def count_orders(self) -> int:
        with self._transaction(write=False) as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
            return int(count)

    @staticmethod
    def _load(conn: sqlite3.Connection, order_id: int) -> StoredOrder | None:
        row = conn.execute(
            "SELECT id, external_order_code, price, currency, placed_at FROM orders WHERE id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        lines = []
        for line_id, product_id, sku, price, buying, currency, quantity, outcome in conn.execute(
            "SELECT id, product_id, sku, price, buying_price, currency, quantity, outcome"
            " FROM order_lines WHERE order_id = ? ORDER BY position",
            (order_id,),
        ).fetchall():
            pins = tuple(
                pin
                for (pin,) in conn.execute(
                    "SELECT pin FROM pins WHERE line_id = ? ORDER BY unit", (line_id,)
                )
            )
            lines.append(
                StoredLine(product_id, sku, price, buying, currency, quantity, outcome, pins)
            )
        found_id, code, total, order_currency, placed_at = row
        return StoredOrder(found_id, code, total, order_currency, placed_at, tuple(lines))
