"""The shared journal on PostgreSQL: exactly once across machines.

The same rows, states and rule as the SQLite journal (`journal.JournalStore`), in tables
`kalixo_orders` and `kalixo_meta` of the database the URL names (its search_path decides the
schema). A claim is one transaction: read the row, apply `verdict.verdict`, then an INSERT
that does nothing on an existing row or an UPDATE that compares and sets the row's revision;
of two machines claiming one code, exactly one changes a row and wins.

Liveness of a claim: on the owner's own machine its pid is checked (`journal.owner_alive`);
from another machine, the lease its process renews every HEARTBEAT_SECONDS. Leases and row
times use the *server's* clock, so machines whose clocks disagree still agree on who holds a
code. A row left `sending` by a machine that died reads `unknown` to everyone once its lease
has run out. Each row records the host, pid and user that sent it.

The schema is versioned (`kalixo_meta.schema`) and created or upgraded only by
`kalixo journal migrate` (several machines share it: one of them should not upgrade it under
the others by surprise). Failures to connect, refused credentials and lost connections raise
`JournalUnreachable` (exit 5) with the URL, password masked; there is no fall-back.

psycopg 3 is an optional dependency (`pip install 'kalixo[postgres]'`), imported only here.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kalixo_cli.domain.errors import JournalUnreachable, JournalUnusable
from kalixo_cli.store.journal import (
    COLUMNS,
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    STATES,
    Claim,
    Entry,
    Health,
    JournalState,
    Owner,
    entry_filters,
    owner_alive,
    request_hash,
)
from kalixo_cli.store.journal_url import PASSWORD_HINT, mask_url
from kalixo_cli.store.verdict import verdict

if TYPE_CHECKING:
    import psycopg

PG_COLUMNS = (*COLUMNS, "owner_user")
CONNECT_TIMEOUT = 10
PAGE = 1000  # rows `entries` reads at a time

# Versioned, in order; `migrate` applies those above the database's version in one
# transaction. Never edit a released step: add one.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE kalixo_orders (
            api         text NOT NULL,
            code        text NOT NULL,
            hash        text NOT NULL,
            body        text NOT NULL,
            state       text NOT NULL CHECK (state IN
                            ('sending', 'placed', 'rejected', 'failed', 'unknown')),
            order_id    bigint,
            status      text,
            error_kind  text,
            error       text,
            attempts    integer NOT NULL DEFAULT 0,
            created_at  double precision NOT NULL,
            updated_at  double precision NOT NULL,
            owner_token text,
            owner_host  text,
            owner_pid   integer,
            owner_boot  text,
            owner_start text,
            lease_until double precision,
            rev         bigint NOT NULL DEFAULT 0,
            owner_user  text,
            PRIMARY KEY (api, code)
        )""",
            "CREATE INDEX kalixo_orders_by_time ON kalixo_orders (api, created_at)",
            "CREATE INDEX kalixo_orders_by_owner ON kalixo_orders (owner_token, state)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
_NOW = "extract(epoch FROM clock_timestamp())::float8"


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise JournalUnusable(
            "journal_url names a PostgreSQL journal, but psycopg is not installed",
            hint="pip install 'kalixo[postgres]' (or point journal_url back at a sqlite:/// "
            "file: that journal does not know the other machines' orders)",
        ) from None
    return psycopg


@dataclass
class ImportReport:
    """What `kalixo journal import` did: rows added, rows already there the same, and
    rows that differ from the shared journal's (never overwritten)."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    conflicts: list[tuple[Entry, Entry]] = field(default_factory=list)


def _same(mine: Entry, theirs: Entry) -> bool:
    return (mine.hash, mine.effective_state, mine.order_id) == (
        theirs.hash,
        theirs.effective_state,
        theirs.order_id,
    )


class PostgresJournal:
    """`JournalStore` on a PostgreSQL database shared by several machines.

    One connection per process, used under a lock by the threads of a bulk run (each
    operation is short), and re-opened by the next operation after it was lost.
    """

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        password: str | None = None,
        check_schema: bool = True,
    ) -> None:
        self.url = url
        self.where = mask_url(url)
        self.readonly = readonly
        self.owner = Owner.current()
        self.user = _user()
        self._password = password
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._psycopg = _driver()
        with self._lock:
            self._connection()
        if check_schema:
            try:
                self._check_schema()
            except BaseException:  # no journal to hand back: nothing may stay open
                self.close()
                raise

    # -- connection and failures --------------------------------------------------------

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._discard()
        options: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "kalixo",
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        if self._password is not None:
            options["password"] = self._password
        try:
            self._conn = self._psycopg.connect(self.url, **options)
        except self._psycopg.Error as exc:
            raise self._connect_error(exc) from None
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def _clean(self, text: str) -> str:
        first = " ".join(text.strip().splitlines()[:1]) or "no detail"
        if self._password:
            first = first.replace(self._password, "***")
        return first

    def _connect_error(self, exc: Exception) -> JournalUnusable:
        text = str(exc)
        lowered = text.lower()
        if (
            "password authentication failed" in lowered
            or "28p01" in lowered
            or getattr(exc, "sqlstate", None) in ("28P01", "28000")
        ):
            return JournalUnreachable(
                f"the shared journal {self.where} refused the credentials "
                f"({self._clean(text)}); nothing was sent",
                hint=f"check the user in journal_url and its password: {PASSWORD_HINT}",
            )
        if "no password supplied" in lowered:
            return JournalUnreachable(
                f"the shared journal {self.where} asks for a password and none was given; "
                "nothing was sent",
                hint=PASSWORD_HINT,
            )
        if "does not exist" in lowered and "database" in lowered:
            return JournalUnreachable(
                f"the shared journal {self.where}: {self._clean(text)}; nothing was sent",
                hint="create the database (createdb), then run `kalixo journal migrate`",
            )
        return JournalUnreachable(
            f"cannot reach the shared journal {self.where} ({self._clean(text)}); nothing was sent",
            hint="check that PostgreSQL runs and that this machine may connect to it; kalixo "
            "never falls back to the local journal, which does not know the other machines' "
            "orders",
        )

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """The connection, for one operation; psycopg's errors become kalixo's."""
        psycopg = self._psycopg
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except psycopg.OperationalError as exc:
                lost = conn.closed or conn.broken
                self._discard()
                if lost:
                    raise JournalUnreachable(
                        f"lost the connection to the shared journal {self.where} while it "
                        f"was to {doing} ({self._clean(str(exc))})",
                        hint="check the network and the PostgreSQL server, then run the "
                        "same command again",
                    ) from None
                raise self._unusable(exc, doing) from None
            except psycopg.Error as exc:
                raise self._unusable(exc, doing) from None

    def _unusable(self, exc: Exception, doing: str) -> JournalUnusable:
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate == "42P01":
            return self._no_schema()
        if sqlstate.startswith("42501"):
            return JournalUnusable(
                f"the shared journal {self.where} does not let this user {doing} it "
                f"({self._clean(str(exc))})",
                hint="GRANT SELECT, INSERT, UPDATE ON kalixo_orders, kalixo_meta TO the user "
                "in journal_url",
            )
        return JournalUnusable(
            f"cannot {doing} the shared journal {self.where}: {self._clean(str(exc))}",
            hint="`kalixo doctor` checks the connection and the schema",
        )

    def _no_schema(self) -> JournalUnusable:
        return JournalUnusable(
            f"the shared journal {self.where} has no kalixo tables yet",
            hint="create them once, from any machine: `kalixo journal migrate`",
        )

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        with self._lock:
            self._discard()

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------

    def schema_version(self) -> int | None:
        """The database's kalixo schema version; None when it has none yet."""
        with self._guard("read") as conn:
            exists = conn.execute("SELECT to_regclass('kalixo_meta') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return None
            row = conn.execute("SELECT value FROM kalixo_meta WHERE name = 'schema'").fetchone()
        return int(row[0]) if row else None

    def _check_schema(self) -> None:
        found = self.schema_version()
        if found is None:
            raise self._no_schema()
        if found > SCHEMA_VERSION:
            raise JournalUnusable(
                f"the shared journal {self.where} has schema {found}, newer than this kalixo "
                f"knows ({SCHEMA_VERSION})",
                hint="upgrade kalixo on this machine (pip install -U 'kalixo[postgres]')",
            )
        if found < SCHEMA_VERSION:
            raise JournalUnusable(
                f"the shared journal {self.where} has schema {found}; this kalixo needs "
                f"{SCHEMA_VERSION}",
                hint="upgrade it once, from any machine: `kalixo journal migrate` (older "
                "kalixo versions on other machines must be upgraded too)",
            )

    def migrate(self) -> tuple[int | None, int]:
        """Create or upgrade the schema in one transaction; (version before, after).

        Idempotent, and safe when several machines run it at once: an advisory lock makes
        them take turns, and each applies only the steps the database lacks.
        """
        if self.readonly:
            raise JournalUnusable(f"the shared journal {self.where} is opened read-only")
        with self._guard("migrate") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('kalixo journal migrate'))")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kalixo_meta "
                "(name text PRIMARY KEY, value text NOT NULL)"
            )
            row = conn.execute("SELECT value FROM kalixo_meta WHERE name = 'schema'").fetchone()
            before = int(row[0]) if row else None
            if before is not None and before > SCHEMA_VERSION:
                raise JournalUnusable(
                    f"the shared journal {self.where} has schema {before}, newer than this "
                    f"kalixo knows ({SCHEMA_VERSION}); nothing was changed",
                    hint="upgrade kalixo (pip install -U 'kalixo[postgres]')",
                )
            for version, statements in MIGRATIONS:
                if before is None or version > before:
                    for statement in statements:
                        conn.execute(statement)
            conn.execute(
                "INSERT INTO kalixo_meta (name, value) VALUES ('salt', %s) "
                "ON CONFLICT (name) DO NOTHING",
                (secrets.token_hex(16),),
            )
            conn.execute(
                "INSERT INTO kalixo_meta (name, value) VALUES ('schema', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
        return before, SCHEMA_VERSION

    # -- reading ---------------------------------------------------------------------------

    def _entry(self, row: tuple[Any, ...], now: float) -> Entry:
        *base, user = row
        entry = replace(Entry(*base), owner_user=user)
        if entry.state == "sending" and owner_alive(entry, self.owner, now):
            return replace(entry, held=True)
        return entry

    def get(self, api: str, code: str) -> Entry | None:
        with self._guard("read") as conn:
            row = conn.execute(
                f"SELECT {_NOW}, {', '.join('o.' + c for c in PG_COLUMNS)} FROM (SELECT 1) one "
                "LEFT JOIN kalixo_orders o ON o.api = %s AND o.code = %s",
                (api, code),
            ).fetchone()
        assert row is not None
        now, *rest = row
        return self._entry(tuple(rest), now) if rest[0] is not None else None

    def get_many(self, api: str, codes: Sequence[str]) -> dict[str, Entry]:
        """The entries of those of `codes` the journal knows, a page of codes a query (for
        planning a batch at the speed of reading it)."""
        found: dict[str, Entry] = {}
        for start in range(0, len(codes), PAGE):
            part = list(codes[start : start + PAGE])
            with self._guard("read") as conn:
                now_row = conn.execute(f"SELECT {_NOW}").fetchone()
                rows = conn.execute(
                    f"SELECT {', '.join(PG_COLUMNS)} FROM kalixo_orders "
                    "WHERE api = %s AND code = ANY(%s)",
                    (api, part),
                ).fetchall()
            now = float(now_row[0]) if now_row else 0.0
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
        clauses, params = entry_filters(
            "%s", api=api, state=state, since=since, until=until, code_like=code_like
        )
        shown = 0
        after: tuple[float, str] | None = None
        while True:  # a page at a time (keyset): a listing of any size in one page's memory
            page = [*clauses, "(created_at, code) > (%s, %s)"] if after else clauses
            where = f"WHERE {' AND '.join(page)}" if page else ""
            with self._guard("read") as conn:
                now_row = conn.execute(f"SELECT {_NOW}").fetchone()
                rows = conn.execute(
                    f"SELECT {', '.join(PG_COLUMNS)} FROM kalixo_orders {where} "
                    f"ORDER BY created_at, code LIMIT {PAGE}",
                    [*params, *after] if after else params,
                ).fetchall()
            now = float(now_row[0]) if now_row else 0.0
            for row in rows:
                entry = self._entry(row, now)
                if state is not None and entry.effective_state != state:
                    continue
                if limit is not None and shown >= limit:
                    return
                shown += 1
                yield entry
            if len(rows) < PAGE:
                return
            last = rows[-1]
            after = (
                float(last[PG_COLUMNS.index("created_at")]),
                str(last[PG_COLUMNS.index("code")]),
            )

    def code_salt(self) -> str:
        with self._guard("read") as conn:
            row = conn.execute("SELECT value FROM kalixo_meta WHERE name = 'salt'").fetchone()
        if row is None:
            raise self._no_schema()
        return str(row[0])

    def health(self) -> Health:
        """Connection, schema version and row count, for `kalixo doctor`."""
        problems: list[str] = []
        schema = self.schema_version() or 0
        count = 0
        if schema == 0:
            problems.append("no kalixo tables yet: run `kalixo journal migrate`")
        elif schema != SCHEMA_VERSION:
            problems.append(
                f"schema {schema}, this kalixo needs {SCHEMA_VERSION}: run `kalixo journal migrate`"
                if schema < SCHEMA_VERSION
                else f"schema {schema} is newer than this kalixo: upgrade kalixo"
            )
        else:
            with self._guard("read") as conn:
                row = conn.execute("SELECT count(*) FROM kalixo_orders").fetchone()
            count = int(row[0]) if row else 0
        return Health(self.where, schema, count, problems, None)

    # -- claiming and recording --------------------------------------------------------------

    def _writable(self) -> None:
        if self.readonly:
            raise JournalUnusable(f"the shared journal {self.where} is opened read-only")

    def claim(
        self, api: str, code: str, body: Mapping[str, Any], *, can_look_up: bool = False
    ) -> Claim:
        """Atomically take `code` for this process if the rule lets it be sent now; committed
        (durable on the server) before it returns, so before a byte is sent."""
        self._writable()
        digest = request_hash(body)
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        me = self.owner
        select = (
            f"SELECT {_NOW}, {', '.join('o.' + c for c in PG_COLUMNS)} "
            "FROM (SELECT 1) one LEFT JOIN kalixo_orders o "
            "ON o.api = %s AND o.code = %s"
        )
        with self._guard("claim an order in") as conn:
            for _ in range(5):
                with conn.transaction():
                    row = conn.execute(select, (api, code)).fetchone()
                    assert row is not None
                    now, *rest = row
                    entry = self._entry(tuple(rest), now) if rest[0] is not None else None
                    known = verdict(entry, digest, can_look_up=can_look_up)
                    if not known.may_send:
                        return Claim(known, won=False)
                    owner = (
                        me.token,
                        me.host,
                        me.pid,
                        me.boot,
                        me.start,
                        now + LEASE_SECONDS,
                        self.user,
                    )
                    if entry is None:
                        cursor = conn.execute(
                            """INSERT INTO kalixo_orders (api, code, hash, body, state,
                                   attempts, created_at, updated_at, owner_token, owner_host,
                                   owner_pid, owner_boot, owner_start, lease_until, owner_user,
                                   rev)
                               VALUES (%s, %s, %s, %s, 'sending', 1, %s, %s, %s, %s, %s, %s,
                                       %s, %s, %s, 1)
                               ON CONFLICT (api, code) DO NOTHING""",
                            (api, code, digest, text, now, now, *owner),
                        )
                    else:
                        cursor = conn.execute(
                            """UPDATE kalixo_orders SET hash = %s, body = %s, state = 'sending',
                                   error_kind = NULL, error = NULL, attempts = attempts + 1,
                                   updated_at = %s, owner_token = %s, owner_host = %s,
                                   owner_pid = %s, owner_boot = %s, owner_start = %s,
                                   lease_until = %s, owner_user = %s, rev = rev + 1
                               WHERE api = %s AND code = %s AND rev = %s""",
                            (digest, text, now, *owner, api, code, entry.rev),
                        )
                    if cursor.rowcount == 1:
                        self._start_heartbeat()
                        return Claim(known, won=True)
                # Another machine changed the row between our read and write: read again.
        raise JournalUnusable(
            f"the shared journal {self.where} kept changing under the claim of {code}",
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

        The same rule as the local journal: `placed` (an answer in hand) is always
        recorded; anything else never replaces `placed`, and is written only while this
        process owns the claim or, with `expected_rev` (`orders sync`), only if nobody has
        changed the row since it was read."""
        if state not in STATES or state == "sending":
            raise ValueError(f"not a final state: {state}")
        self._writable()
        with self._guard("record an outcome in") as conn:
            cursor = conn.execute(
                f"""UPDATE kalixo_orders SET state = %s, order_id = COALESCE(%s, order_id),
                       status = COALESCE(%s, status), error_kind = %s, error = %s,
                       updated_at = {_NOW}, lease_until = NULL, rev = rev + 1
                   WHERE api = %s AND code = %s
                     AND (%s::text = 'placed' OR (state <> 'placed' AND CASE
                          WHEN %s::bigint IS NOT NULL THEN rev = %s::bigint
                          ELSE owner_token = %s OR owner_token IS NULL
                               OR state <> 'sending'
                          END))""",
                (
                    state,
                    order_id,
                    status,
                    error_kind,
                    error,
                    api,
                    code,
                    state,
                    expected_rev,
                    expected_rev,
                    self.owner.token,
                ),
            )
        return cursor.rowcount == 1

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
        """`finish`, done now (the connection commits each statement as it comes): the
        function returned gives its result, or raises its error, as `finish` would."""
        try:
            done = self.finish(
                api,
                code,
                state,
                order_id=order_id,
                status=status,
                error_kind=error_kind,
                error=error,
                expected_rev=expected_rev,
            )
        except JournalUnusable as exc:
            failure = exc

            def failed() -> bool:
                raise failure

            return failed
        return lambda: done

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
        self._writable()
        with self._guard("record a resolution in") as conn:
            conn.execute(
                f"""UPDATE kalixo_orders SET state = %s, order_id = COALESCE(%s, order_id),
                       status = COALESCE(%s, status), error_kind = 'resolved by hand',
                       error = %s, updated_at = {_NOW}, lease_until = NULL, rev = rev + 1
                   WHERE api = %s AND code = %s""",
                (state, order_id, status, error, api, code),
            )

    def record_status(self, api: str, code: str, status: str | None) -> None:
        """The order's latest status as the API gave it (placed rows only)."""
        if status is None:
            return
        self._writable()
        with self._guard("record a status in") as conn:
            conn.execute(
                f"UPDATE kalixo_orders SET status = %s, updated_at = {_NOW}, rev = rev + 1 "
                "WHERE api = %s AND code = %s AND state = 'placed' "
                "AND status IS DISTINCT FROM %s",
                (status, api, code, status),
            )

    def by_order_id(self, api: str, order_id: int) -> Entry | None:
        """The row of the order Kalixo knows as `order_id` (the newest, should two claim it)."""
        with self._guard("read") as conn:
            now_row = conn.execute(f"SELECT {_NOW}").fetchone()
            row = conn.execute(
                f"SELECT {', '.join(PG_COLUMNS)} FROM kalixo_orders WHERE api = %s "
                "AND order_id = %s ORDER BY created_at DESC LIMIT 1",
                (api, order_id),
            ).fetchone()
        return self._entry(row, float(now_row[0]) if now_row else 0.0) if row else None

    def resolve(self, api: str, code: str, order_id: int, status: str | None = None) -> None:
        self._set_by_hand(api, code, "placed", order_id=order_id, status=status, error=None)

    def mark_not_placed(self, api: str, code: str) -> None:
        self._set_by_hand(
            api, code, "failed", order_id=None, status=None, error="not placed, by the user's word"
        )

    def abandon_in_flight(self, api: str, codes: list[str], reason: str) -> None:
        self._writable()
        with self._guard("record an outcome in") as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"""UPDATE kalixo_orders SET state = 'unknown', error_kind = 'interrupted',
                       error = %s, updated_at = {_NOW}, lease_until = NULL, rev = rev + 1
                   WHERE api = %s AND code = %s AND state = 'sending'
                     AND owner_token = %s""",
                [(reason, api, code, self.owner.token) for code in codes],
            )

    # -- import ------------------------------------------------------------------------------

    def import_entries(self, entries: Iterable[Entry]) -> ImportReport:
        """Copy rows from another journal (a machine's SQLite file) in one transaction.

        A code the shared journal does not have is added as it was (a row its process left
        `sending` keeps its owner, so it reads as unknown); a code it has is never
        overwritten: the same row is `present`, a different one a conflict.
        """
        self._writable()
        report = ImportReport()
        columns = ", ".join(PG_COLUMNS)
        marks = ", ".join(["%s"] * len(PG_COLUMNS))
        with self._guard("import into") as conn, conn.transaction():
            now_row = conn.execute(f"SELECT {_NOW}").fetchone()
            now = float(now_row[0]) if now_row else 0.0
            for entry in entries:
                values = tuple(getattr(entry, name) for name in PG_COLUMNS)
                cursor = conn.execute(
                    f"INSERT INTO kalixo_orders ({columns}) VALUES ({marks}) "
                    "ON CONFLICT (api, code) DO NOTHING",
                    values,
                )
                if cursor.rowcount == 1:
                    report.added.append(entry.code)
                    continue
                row = conn.execute(
                    f"SELECT {columns} FROM kalixo_orders WHERE api = %s AND code = %s",
                    (entry.api, entry.code),
                ).fetchone()
                assert row is not None
                theirs = self._entry(row, now)
                if _same(entry, theirs):
                    report.present.append(entry.code)
                else:
                    report.conflicts.append((entry, theirs))
        return report

    # -- the lease ---------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._renew, name="kalixo-lease", daemon=True)
            self._heartbeat.start()

    def _renew(self) -> None:
        """Keep this process's claims alive for the other machines while it runs."""
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(JournalUnusable), self._guard("renew the lease in") as conn:
                conn.execute(
                    f"UPDATE kalixo_orders SET lease_until = {_NOW} + %s "
                    "WHERE owner_token = %s AND state = 'sending'",
                    (LEASE_SECONDS, self.owner.token),
                )


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return None
