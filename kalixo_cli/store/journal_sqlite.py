"""The journal in one SQLite file: this machine's, shared safely by threads and processes.

WAL with synchronous=FULL; writers of all threads share one transaction and one fsync
(group commit: whichever writer finds no commit under way commits what is queued), each
claim decided inside it and on disk before `claim` returns; reads use a connection per
thread and never wait for a writer. The rules (states, the claim, the lease) are
`store.journal`'s; PostgreSQL's backend is `store.journal_pg`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from kalixo_cli.domain.errors import JournalUnusable
from kalixo_cli.store.journal import (
    COLUMNS,
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    SCHEMA_VERSION,
    STATES,
    Claim,
    Entry,
    Health,
    JournalState,
    Owner,
    entry_filters,
    owner_alive,
    request_hash,
    unusable,
)
from kalixo_cli.store.verdict import verdict

# The local file's schema (PostgreSQL's is store.journal_pg's).
_ORDERS = """
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
    owner_token TEXT,
    owner_host  TEXT,
    owner_pid   INTEGER,
    owner_boot  TEXT,
    owner_start TEXT,
    lease_until REAL,
    rev         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (api, code)
)"""
_ADDED_COLUMNS = (
    ("owner_token", "TEXT"),
    ("owner_host", "TEXT"),
    ("owner_pid", "INTEGER"),
    ("owner_boot", "TEXT"),
    ("owner_start", "TEXT"),
    ("lease_until", "REAL"),
    ("rev", "INTEGER NOT NULL DEFAULT 0"),
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS orders_by_time ON orders (api, created_at)",
    "CREATE INDEX IF NOT EXISTS orders_by_owner ON orders (owner_token, state)",
)
_META = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


class Journal:
    """The journal in one SQLite file, shared safely by threads and processes.

    Threads of one process write through one connection by group commit (`_commit`):
    what several workers queue meanwhile goes in one transaction and one fsync, each
    claim still decided inside it and on disk before `claim` returns. Each thread reads
    through a connection of its own, which in WAL mode never waits for a writer.

    `readonly` opens it for reading only (orders list/show): no folder or file is
    created, nothing is upgraded, and a read-only file or folder is fine.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.where = str(path)
        self.readonly = readonly
        self.owner = Owner.current()
        self._lock = threading.RLock()
        # Group commit: writers queue their work and one of them (the leader) commits the
        # queue in one transaction, one fsync for all (see `_commit`).
        self._turn = threading.Condition(threading.Lock())
        self._pending: list[_Work[Any]] = []
        self._leading = False
        # Reads go to a connection of each thread's own (WAL: they never wait for a writer).
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self._db: sqlite3.Connection | None = None
        self._columns: tuple[str, ...] = COLUMNS
        self._schema = SCHEMA_VERSION
        try:
            if readonly:
                self._open_readonly()
            else:
                self._open()
        except (sqlite3.Error, OSError) as exc:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
            raise unusable(path, exc, "open") from None

    def _open(self) -> None:
        path = self.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        db = self._db
        _while_busy(lambda: db.execute("PRAGMA journal_mode=WAL"))
        _while_busy(lambda: db.execute("PRAGMA synchronous=FULL"))
        _while_busy(self._upgrade)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists() and side.stat().st_mode & 0o077:
                os.chmod(side, 0o600)

    def _open_readonly(self) -> None:
        if not self.path.exists():
            return  # nothing sent yet: an empty journal
        uri = f"file:{quote(str(self.path))}?mode=ro"
        self._db = sqlite3.connect(
            uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None
        )
        try:
            present = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
        except sqlite3.OperationalError:
            # A WAL journal in a folder nobody may write (a read-only mount, a chmod):
            # SQLite cannot make its shared-memory file, and nobody can be writing it.
            self._db.close()
            self._db = sqlite3.connect(
                f"{uri}&immutable=1",
                uri=True,
                timeout=30,
                check_same_thread=False,
                isolation_level=None,
            )
            present = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
        if not present:
            self._db.close()
            self._db = None
            return
        self._columns = tuple(name if name in present else f"NULL AS {name}" for name in COLUMNS)

    def _upgrade(self) -> None:
        """Create the tables, or bring a journal an older kalixo wrote up to date, in place.

        One transaction: the rows stay as they were, the new columns start empty (a row
        with no owner is held by nobody, so an old `sending` row still reads as unknown).
        """
        with self._write() as db:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "orders" in tables:
                present = {row[1] for row in db.execute("PRAGMA table_info(orders)")}
                for name, kind in _ADDED_COLUMNS:
                    if name not in present:
                        db.execute(f"ALTER TABLE orders ADD COLUMN {name} {kind}")
            else:
                db.execute(_ORDERS)
            for statement in _INDEXES:
                db.execute(statement)
            db.execute(_META)
            db.execute(
                "INSERT INTO meta (name, value) VALUES ('salt', ?) ON CONFLICT (name) DO NOTHING",
                (secrets.token_hex(16),),
            )
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            found = int(row[0]) if row else 1
            if found > SCHEMA_VERSION:
                raise JournalUnusable(
                    f"the journal {self.path} was written by a newer kalixo (schema {found}, "
                    f"this one reads {SCHEMA_VERSION})",
                    hint="upgrade kalixo (pip install -U kalixo-cli); the journal is kept as it is",
                )
            db.execute(
                "INSERT INTO meta (name, value) VALUES ('schema', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        with self._turn:
            queued = self._pending[-1] if self._pending else None
        if queued is not None and self._db is not None:  # outcomes nobody waited for
            with contextlib.suppress(Exception):
                self._await(queued, withdraw=False)
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
            with self._turn:
                readers, self._readers = self._readers, []
            for reader in readers:
                with contextlib.suppress(sqlite3.Error):
                    reader.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE: no upgrade deadlock)."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            if self.readonly:
                raise JournalUnusable(f"the journal {self.path} is opened read-only")
            raise JournalUnusable(f"the journal {self.path} is closed")
        return self._db

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to read from: the calling thread's own, which in WAL mode reads the
        last commit without waiting for a writer (or for the lock of the one connection
        writes go through); a read-only journal's one connection, under the lock."""
        if self.readonly:
            with self._lock:
                yield self._connection()
            return
        reader = getattr(self._local, "db", None)
        self._connection()  # closed: say so, whichever thread asks
        if reader is None:
            reader = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            try:
                # The first read opens the WAL; like `_open`, wait out a process that
                # holds the file meanwhile.
                _while_busy(
                    lambda: reader.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                )
            except BaseException:
                reader.close()
                raise
            with self._turn:
                self._readers.append(reader)
            self._local.db = reader
        yield reader

    def _commit(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` in a write transaction; what it wrote is on disk when this returns.

        Group commit: every thread's writes queue here, and the first writer that finds no
        commit under way leads: it runs all that is queued, in order, in one BEGIN
        IMMEDIATE ... COMMIT (one fsync for all), then wakes the others, whose writes are
        durable by then. Each piece of work reads and writes inside that transaction, so
        a claim is as atomic against other processes as in a transaction of its own. If
        any piece fails, the transaction is rolled back and each piece is run again in a
        transaction of its own, so that each gets its own result or error.
        """
        return self._await(self._enqueue(work), withdraw=True)

    def _enqueue(self, work: Callable[[sqlite3.Connection], _T]) -> _Work[_T]:
        item = _Work(work)
        with self._turn:
            self._pending.append(item)
        return item

    def _await(self, item: _Work[_T], *, withdraw: bool) -> _T:
        """Wait until `item` is committed, leading the commit when nobody else is.

        `withdraw`: a Ctrl-C while it waits in line takes it out of the line (it was
        never written); else it stays queued for the next commit (or `close`)."""
        with self._turn:
            try:
                while self._leading and not item.done:
                    self._turn.wait()
            except BaseException:
                if withdraw and item in self._pending:
                    self._pending.remove(item)
                raise
            if item.done:
                return item.outcome()
            self._leading = True
            batch, self._pending = self._pending, []
        try:
            self._run(batch)
        except BaseException:  # Ctrl-C in the leader: the others' work goes back in line
            with self._turn:
                self._leading = False
                for other in batch:
                    other.done = other.settled
                self._pending[:0] = [
                    other for other in batch if not other.settled and other is not item
                ]
                self._turn.notify_all()
            raise
        with self._turn:
            self._leading = False
            for other in batch:
                other.done = True
            self._turn.notify_all()
        return item.outcome()

    def _run(self, batch: list[_Work[Any]]) -> None:
        """Commit `batch` in one transaction and settle each piece of work in it."""
        try:
            with self._lock:
                db = self._connection()
                db.execute("BEGIN IMMEDIATE")
                try:
                    results = [item.work(db) for item in batch]
                    db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:  # each alone, for its own result or error
                    self._run([item])
                return
            batch[0].error = exc
            batch[0].settled = True
            return
        for item, result in zip(batch, results, strict=True):
            item.result = result
            item.settled = True

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise unusable(self.path, exc, doing) from exc

    def _entry(self, row: tuple[Any, ...], now: float) -> Entry:
        entry = Entry(*row)
        if entry.state == "sending" and owner_alive(entry, self.owner, now):
            return _with_held(entry)
        return entry

    def _select(self) -> str:
        return f"SELECT {', '.join(self._columns)} FROM orders"

    # -- reading -----------------------------------------------------------------------

    def get(self, api: str, code: str) -> Entry | None:
        if self._db is None and self.readonly:
            return None
        with self._guard("read"), self._reading() as db:
            row = db.execute(f"{self._select()} WHERE api = ? AND code = ?", (api, code)).fetchone()
        return self._entry(row, time.time()) if row else None

    def get_many(self, api: str, codes: Sequence[str]) -> dict[str, Entry]:
        """The entries of those of `codes` the journal knows: one query per 500 codes, for
        planning a batch at the speed of reading it."""
        found: dict[str, Entry] = {}
        if self._db is None and self.readonly:
            return found
        for start in range(0, len(codes), 500):
            part = codes[start : start + 500]
            marks = ", ".join("?" * len(part))
            with self._guard("read"), self._reading() as db:
                rows = db.execute(
                    f"{self._select()} WHERE api = ? AND code IN ({marks})", (api, *part)
                ).fetchall()
            now = time.time()
            for row in rows:
                entry = self._entry(row, now)
                found[entry.code] = entry
        return found

    def entries(
        self,
        api: str | None = None,
        *,
        state: str | None = None,
        since: float | None = None,
        until: float | None = None,
        code_like: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        if self._db is None and self.readonly:
            return
        clauses, params = entry_filters(
            "?", api=api, state=state, since=since, until=until, code_like=code_like
        )
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # Whether a `sending` row is unknown depends on its owner, so that filter (and the
        # limit after it) is applied here; any other limit goes to the database.
        by_owner = state in ("unknown", "sending")
        tail = f" LIMIT {int(limit)}" if limit is not None and not by_owner else ""
        with self._guard("read"), self._reading() as db:
            cursor = db.execute(f"{self._select()} {where} ORDER BY created_at, code{tail}", params)
        shown = 0
        while True:  # a batch at a time: a listing of any size in the memory of one batch
            with self._guard("read"), self._reading():  # (the lock, read-only)
                rows = cursor.fetchmany(1000)
            if not rows:
                return
            now = time.time()
            for row in rows:
                entry = self._entry(row, now)
                if by_owner and entry.effective_state != state:
                    continue
                if limit is not None and shown >= limit:
                    return
                shown += 1
                yield entry

    def code_salt(self) -> str:
        """A random value made once per journal: generated codes are unique to it."""
        with self._guard("read"), self._reading() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'salt'").fetchone()
        if row is None:
            raise JournalUnusable(
                f"the journal {self.path} has no salt yet",
                hint="run a command that writes it (place-order)",
            )
        return str(row[0])

    def health(self) -> Health:
        """Open it, run PRAGMA integrity_check, count its rows, measure the free space."""
        import shutil

        free: int | None
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            free = None
        if self._db is None:
            return Health(self.where, self._schema, 0, [], free)
        with self._guard("check"), self._lock:
            db = self._connection()
            found = [str(row[0]) for row in db.execute("PRAGMA integrity_check(20)")]
            count = int(db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
            schema = 1
            with contextlib.suppress(sqlite3.Error):
                row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
                schema = int(row[0]) if row else 1
        problems = [] if found == ["ok"] else found
        return Health(self.where, schema, count, problems, free)

    # -- claiming and recording -------------------------------------------------------

    def claim(
        self, api: str, code: str, body: Mapping[str, Any], *, can_look_up: bool = False
    ) -> Claim:
        """Atomically take `code` for this process if the rule lets it be sent now.

        Durable before it returns, so the intent is on disk before a byte is sent. The
        compare-and-set on `rev` (and the INSERT that ignores an existing row) keeps it
        correct on backends where two transactions may read the same row at once.
        """
        digest = request_hash(body)
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        me = self.owner

        def attempt(db: sqlite3.Connection) -> Claim | None:
            now = time.time()
            owner = (me.token, me.host, me.pid, me.boot, me.start, now + LEASE_SECONDS)
            # A code never sent (a bulk run's usual case) is won by the INSERT alone, as
            # the rule says (`verdict(None)` is "send"): one statement fewer inside the
            # transaction. A row already there is read and judged, then compared and set.
            cursor = db.execute(
                """INSERT INTO orders (api, code, hash, body, state, attempts,
                       created_at, updated_at, owner_token, owner_host, owner_pid,
                       owner_boot, owner_start, lease_until, rev)
                   VALUES (?, ?, ?, ?, 'sending', 1, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                   ON CONFLICT (api, code) DO NOTHING""",
                (api, code, digest, text, now, now, *owner),
            )
            if cursor.rowcount == 1:
                return Claim(verdict(None, digest, can_look_up=can_look_up), won=True)
            row = db.execute(f"{self._select()} WHERE api = ? AND code = ?", (api, code)).fetchone()
            if row is None:
                return None  # gone between the two statements: try again
            entry = self._entry(row, now)
            known = verdict(entry, digest, can_look_up=can_look_up)
            if not known.may_send:
                return Claim(known, won=False)
            cursor = db.execute(
                """UPDATE orders SET hash = ?, body = ?, state = 'sending',
                       error_kind = NULL, error = NULL, attempts = attempts + 1,
                       updated_at = ?, owner_token = ?, owner_host = ?,
                       owner_pid = ?, owner_boot = ?, owner_start = ?,
                       lease_until = ?, rev = rev + 1
                   WHERE api = ? AND code = ? AND rev = ?""",
                (digest, text, now, *owner, api, code, entry.rev),
            )
            # None: another process changed the row between our read and write.
            return Claim(known, won=True) if cursor.rowcount == 1 else None

        with self._guard("write"):
            for _ in range(5):
                claim = self._commit(attempt)
                if claim is None:
                    continue  # read again
                if claim.won:
                    self._start_heartbeat()
                return claim
        raise JournalUnusable(
            f"the journal {self.path} kept changing under the claim of {code}",
            hint="run the same command again",
        )

    def finish(
        self,
        api: str,
        code: str,
        state: JournalState,
        *,
        order_id: int | None = None,
        status: str | None = None,
        error_kind: str | None = None,
        error: str | None = None,
        expected_rev: int | None = None,
    ) -> bool:
        """Record an outcome; False when the row was not this writer's to change.

        An answer in hand (`placed`) is always recorded. Anything else never replaces
        `placed`, and is written only while this process owns the row's claim (if its
        lease ran out and another process took the code, that claim stands) or, with
        `expected_rev` (a row read earlier, as `orders sync` does), only if nobody has
        changed the row since it was read.
        """
        return self.finish_soon(
            api,
            code,
            state,
            order_id=order_id,
            status=status,
            error_kind=error_kind,
            error=error,
            expected_rev=expected_rev,
        )()

    def finish_soon(
        self,
        api: str,
        code: str,
        state: JournalState,
        *,
        order_id: int | None = None,
        status: str | None = None,
        error_kind: str | None = None,
        error: str | None = None,
        expected_rev: int | None = None,
    ) -> Callable[[], bool]:
        """`finish`, queued for the next group commit: the function returned waits until
        it is on disk and returns (or raises) what `finish` would. A bulk worker queues the
        outcome and takes its next order, whose claim then shares the outcome's fsync;
        nothing may be reported as recorded before that function has returned. (Queued
        work nobody waits for is committed by the next commit, or by `close`.)"""
        if state not in STATES or state == "sending":
            raise ValueError(f"not a final state: {state}")

        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                """UPDATE orders SET state = ?, order_id = COALESCE(?, order_id),
                       status = COALESCE(?, status), error_kind = ?, error = ?,
                       updated_at = ?, lease_until = NULL, rev = rev + 1
                   WHERE api = ? AND code = ?
                     AND (? = 'placed' OR (state <> 'placed' AND CASE
                          WHEN ? IS NOT NULL THEN rev = ?
                          ELSE owner_token = ? OR owner_token IS NULL OR state <> 'sending'
                          END))""",
                (
                    state,
                    order_id,
                    status,
                    error_kind,
                    error,
                    time.time(),
                    api,
                    code,
                    state,
                    expected_rev,
                    expected_rev,
                    self.owner.token,
                ),
            )
            return cursor.rowcount == 1

        with self._guard("write"):
            self._connection()  # closed or read-only: say so now
        item = self._enqueue(write)

        def durable() -> bool:
            with self._guard("write"):
                return self._await(item, withdraw=False)

        return durable

    def _set_by_hand(
        self,
        api: str,
        code: str,
        state: JournalState,
        *,
        order_id: int | None,
        status: str | None,
        error: str | None,
    ) -> None:
        with self._guard("write"):
            self._commit(
                lambda db: db.execute(
                    """UPDATE orders SET state = ?, order_id = COALESCE(?, order_id),
                       status = COALESCE(?, status), error_kind = 'resolved by hand',
                       error = ?, updated_at = ?, lease_until = NULL, rev = rev + 1
                   WHERE api = ? AND code = ?""",
                    (state, order_id, status, error, time.time(), api, code),
                )
            )

    def record_status(self, api: str, code: str, status: str | None) -> None:
        """The order's latest status as the API gave it, so the journal ends at `failed` or
        `completed`, not `processing` for ever. Only placed rows have a status to follow."""
        if status is None:
            return
        with self._guard("write"):
            self._commit(
                lambda db: db.execute(
                    "UPDATE orders SET status = ?, updated_at = ?, rev = rev + 1 "
                    "WHERE api = ? AND code = ? AND state = 'placed' AND status IS NOT ?",
                    (status, time.time(), api, code, status),
                )
            )

    def by_order_id(self, api: str, order_id: int) -> Entry | None:
        """The row of the order Kalixo knows as `order_id` (the newest, should two claim it)."""
        if self._db is None and self.readonly:
            return None
        with self._guard("read"), self._reading() as db:
            row = db.execute(
                f"{self._select()} WHERE api = ? AND order_id = ? ORDER BY created_at DESC",
                (api, order_id),
            ).fetchone()
        return self._entry(row, time.time()) if row else None

    def resolve(self, api: str, code: str, order_id: int, status: str | None = None) -> None:
        """The user checked: the order exists as `order_id`."""
        self._set_by_hand(api, code, "placed", order_id=order_id, status=status, error=None)

    def mark_not_placed(self, api: str, code: str) -> None:
        """The user checked: it was never placed, so it may be sent again."""
        self._set_by_hand(
            api, code, "failed", order_id=None, status=None, error="not placed, by the user's word"
        )

    def abandon_in_flight(self, api: str, codes: list[str], reason: str) -> None:
        """This process's rows still `sending` when a run stops become `unknown`."""
        rows = [(reason, time.time(), api, code, self.owner.token) for code in codes]
        with self._guard("write"):
            self._commit(
                lambda db: db.executemany(
                    """UPDATE orders SET state = 'unknown', error_kind = 'interrupted', error = ?,
                       updated_at = ?, lease_until = NULL, rev = rev + 1
                   WHERE api = ? AND code = ? AND state = 'sending' AND owner_token = ?""",
                    rows,
                )
            )

    # -- the lease ---------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._renew, name="kalixo-lease", daemon=True)
            self._heartbeat.start()

    def _renew(self) -> None:
        """Keep this process's claims alive for other machines while it runs."""
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(sqlite3.Error, JournalUnusable):
                self._commit(
                    lambda db: db.execute(
                        "UPDATE orders SET lease_until = ? WHERE owner_token = ? AND state = "
                        "'sending'",
                        (time.time() + LEASE_SECONDS, self.owner.token),
                    )
                )


def _while_busy(step: Callable[[], object], *, patience: float = 30.0) -> None:
    """Run `step`, waiting out another process that holds the file.

    While another process switches a new file to WAL, SQLite can answer "database is
    locked" at once, without calling its busy handler: two kalixo
    processes started together on a new journal must both open it, not one of them fail.
    """
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


_T = TypeVar("_T")


class _Work(Generic[_T]):
    """One writer's piece of a group commit: what to run, and once run, what came of it."""

    __slots__ = ("done", "error", "result", "settled", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], _T]) -> None:
        self.work = work
        self.result: _T | None = None
        self.error: Exception | None = None
        self.settled = False  # run: `result` or `error` holds its outcome
        self.done = False  # settled and told (its writer may read the outcome)

    def outcome(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def _with_held(entry: Entry) -> Entry:
    from dataclasses import replace

    return replace(entry, held=True)
