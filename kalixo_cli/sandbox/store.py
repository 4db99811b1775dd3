"""The sandbox's state: orders, their lines and PINs, and wallets, in one SQLite file.

State survives restarts, so a user can place an order today and retrieve it tomorrow, and a
test can close the server and reopen the same file. The file may be shared by two processes
(WAL, a busy timeout, ``BEGIN IMMEDIATE`` for writes); within a process one connection is
guarded by a lock, which is plenty for an emulator. Uniqueness that matters (external order
codes, PINs) is enforced by UNIQUE constraints, so concurrent requests can never
double-create an order. Nothing here knows about time or statuses: lines keep their
``outcome`` and PINs (as many as the line will ever deliver), orders their ``placed_at``,
the API generation that placed them and (v2) their ``ready_at``, and the app derives the
status from its clock.

Wallets hold a balance per account and currency, in minor units; an account's currencies
are opened at their opening balance the first time it is used. An order placed for an
account is debited its total in the transaction that records it, and refused with
`InsufficientFunds` (nothing recorded) when that would overdraw the balance. Schema 1 files
(before v2) are upgraded in place on open.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

FIRST_ORDER_ID = 59401
SCHEMA_VERSION = 2
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
    placed_at REAL NOT NULL,
    api_version INTEGER NOT NULL DEFAULT 1,
    ready_at REAL
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
CREATE TABLE IF NOT EXISTS wallets (
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    PRIMARY KEY (account, currency)
);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'orders', {FIRST_ORDER_ID - 1}
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'orders');
"""
_ADDED_COLUMNS = {  # schema 1 -> 2
    "api_version": "ALTER TABLE orders ADD COLUMN api_version INTEGER NOT NULL DEFAULT 1",
    "ready_at": "ALTER TABLE orders ADD COLUMN ready_at REAL",
}


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


class InsufficientFunds(Exception):
    """The order's total is more than the account's balance in its currency."""

    def __init__(self, currency: str, balance: int, total: int) -> None:
        super().__init__(f"{currency} balance {balance} is less than the order total {total}")
        self.currency = currency
        self.balance = balance
        self.total = total


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
    delivered: int | None = None
    """Units that get a PIN; None: all of them if ``delivers``, else none."""

    @property
    def pin_count(self) -> int:
        if self.delivered is not None:
            return self.delivered
        return self.quantity if self.delivers else 0


@dataclass(frozen=True)
class NewOrder:
    external_order_code: str
    price: int
    currency: str
    placed_at: float
    lines: Sequence[NewLine]
    api_version: int = 1
    ready_at: float | None = None
    """v2: when the order stops being ``processing`` (its ``estimatedReadyAt``)."""


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
    api_version: int = 1
    ready_at: float | None = None


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
            columns = {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
            for column, statement in _ADDED_COLUMNS.items():
                if column not in columns:
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

    def place_order(
        self,
        order: NewOrder,
        *,
        account: str | None = None,
        opening: Mapping[str, int] | None = None,
    ) -> StoredOrder:
        """Record ``order`` with a fresh id and one PIN per delivered unit; with an
        ``account``, debit its wallet (opened at ``opening`` if new) the order's total.

        Raises DuplicateOrder when the external order code is taken, by this process or
        another one sharing the file, and InsufficientFunds when the debit would overdraw
        the balance; either way nothing is recorded.
        """
        for attempt in range(3):
            try:
                with self._transaction(write=True) as conn:
                    order_id = self._insert(conn, order)
                    if account is not None:
                        self._debit(conn, account, opening or {}, order.currency, order.price)
                    stored = self._load(conn, order_id)
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
            "INSERT INTO orders (external_order_code, price, currency, placed_at, api_version,"
            " ready_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                order.external_order_code,
                order.price,
                order.currency,
                order.placed_at,
                order.api_version,
                order.ready_at,
            ),
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
            if line.pin_count:
                conn.executemany(
                    "INSERT INTO pins (line_id, unit, pin) VALUES (?, ?, ?)",
                    [(cursor.lastrowid, unit, new_pin()) for unit in range(line.pin_count)],
                )
        return order_id

    @staticmethod
    def _open_wallet(conn: sqlite3.Connection, account: str, opening: Mapping[str, int]) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO wallets (account, currency, balance) VALUES (?, ?, ?)",
            [(account, currency, amount) for currency, amount in opening.items()],
        )

    @classmethod
    def _debit(
        cls,
        conn: sqlite3.Connection,
        account: str,
        opening: Mapping[str, int],
        currency: str,
        amount: int,
    ) -> None:
        cls._open_wallet(conn, account, opening)
        row = conn.execute(
            "SELECT balance FROM wallets WHERE account = ? AND currency = ?", (account, currency)
        ).fetchone()
        balance = row[0] if row else 0
        if amount > balance:
            raise InsufficientFunds(currency, balance, amount)
        conn.execute(
            "UPDATE wallets SET balance = balance - ? WHERE account = ? AND currency = ?",
            (amount, account, currency),
        )

    def balances(self, account: str, opening: Mapping[str, int] | None = None) -> dict[str, int]:
        """The account's balance per currency, in minor units (opened at ``opening``)."""
        with self._transaction(write=False) as conn:
            found = self._balances(conn, account)
        if set(opening or {}) <= set(found):
            return found
        with self._transaction(write=True) as conn:
            self._open_wallet(conn, account, opening or {})
            return self._balances(conn, account)

    @staticmethod
    def _balances(conn: sqlite3.Connection, account: str) -> dict[str, int]:
        rows = conn.execute(
            "SELECT currency, balance FROM wallets WHERE account = ? ORDER BY currency",
            (account,),
        ).fetchall()
        return {currency: balance for currency, balance in rows}

    def set_balance(self, account: str, currency: str, amount: int) -> None:
        """Set one balance (minor units, >= 0), as a sandbox top-up or drain would."""
        if amount < 0:
            raise ValueError(f"a balance cannot be negative, not {amount}")
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO wallets (account, currency, balance) VALUES (?, ?, ?)"
                " ON CONFLICT (account, currency) DO UPDATE SET balance = excluded.balance",
                (account, currency, amount),
            )

    # -- reading ------------------------------------------------------------------------

    def get_order(self, order_id: int) -> StoredOrder | None:
        with self._transaction(write=False) as conn:
            return self._load(conn, order_id)

    def order_by_code(self, external_order_code: str) -> StoredOrder | None:
        """The order placed under ``external_order_code``, if any."""
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT id FROM orders WHERE external_order_code = ?", (external_order_code,)
            ).fetchone()
            return self._load(conn, row[0]) if row else None

    def orders_by_code(self, external_order_code: str) -> list[StoredOrder]:
        """Every order with this code: a ledger for tests (never more than one)."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT id FROM orders WHERE external_order_code = ? ORDER BY id",
                (external_order_code,),
            ).fetchall()
            loaded = (self._load(conn, order_id) for (order_id,) in rows)
            return [order for order in loaded if order is not None]

    def order_codes(self) -> list[str]:
        """The external order code of every order, oldest first: the ledger in one list."""
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT external_order_code FROM orders ORDER BY id").fetchall()
            return [code for (code,) in rows]

    def count_orders(self) -> int:
        with self._transaction(write=False) as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
            return int(count)

    @staticmethod
    def _load(conn: sqlite3.Connection, order_id: int) -> StoredOrder | None:
        row = conn.execute(
            "SELECT id, external_order_code, price, currency, placed_at, api_version, ready_at"
            " FROM orders WHERE id = ?",
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
        found_id, code, total, order_currency, placed_at, api_version, ready_at = row
        return StoredOrder(
            found_id, code, total, order_currency, placed_at, tuple(lines), api_version, ready_at
        )
