"""The journal: what was sent, so no order is ever bought twice, by any process.

Keyed by (API, externalOrderCode). Sending a code starts with a *claim*: one transaction
reads the row, applies the exactly-once rule (`verdict.verdict`) and writes `sending` with
this process as its owner, by an INSERT that fails on an existing row or an UPDATE that
compares and sets the row's revision. Of two processes claiming one code, exactly one wins;
the other learns who holds it. The outcome is written after the answer:

    sending --> placed      the API answered with the order
            \\-> rejected    a 4xx: nothing was created; may be sent again once fixed
             \\-> failed      nothing was placed (connection refused, 429): may be sent again
              \\-> unknown    it may have been placed: never sent again without resolving

A `sending` row names its owner: a random token, the host, the pid, the process's start
time and boot id, and a lease its process renews while it runs. On the owner's machine the
process is checked directly (pid alive and started when recorded); from another machine
the lease decides. A live owner's row is `sending` (busy: never sent, never "unknown"); a
dead owner's row reads as `unknown`. No file locks, and the pid is never the only truth, so
the same claim holds on a database shared by several machines. `JournalStore` is the
interface both backends implement: `store.journal_sqlite` (this machine's file, the
default) and `store.journal_pg` (a team's PostgreSQL).

PINs are never stored: the API gives them again on retrieve-order. Any database or OS
failure becomes a `JournalUnusable` naming the journal and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from kalixo_cli.domain.errors import JournalUnusable
from kalixo_cli.store.verdict import Verdict

# A row's life: sending (claimed, its request may be in flight), then one outcome.
JournalState = Literal["sending", "placed", "rejected", "failed", "unknown"]
STATES: tuple[JournalState, ...] = get_args(JournalState)
SCHEMA_VERSION = 2
LEASE_SECONDS = 60.0
"""A claim from another machine is trusted this long after its owner last renewed it."""
HEARTBEAT_SECONDS = LEASE_SECONDS / 4

# Columns added since the first journal (schema 1), in order: the upgrade adds them.
COLUMNS = (
    "api",
    "code",
    "hash",
    "body",
    "state",
    "order_id",
    "status",
    "error_kind",
    "error",
    "attempts",
    "created_at",
    "updated_at",
    "owner_token",
    "owner_host",
    "owner_pid",
    "owner_boot",
    "owner_start",
    "lease_until",
    "rev",
)


def request_hash(body: Mapping[str, Any]) -> str:
    """Stable across runs and key order: the same order always hashes the same."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_journal_path() -> Path:
    from kalixo_cli.store.config import data_dir

    return data_dir() / "journal.sqlite3"


# ------------------------------------------------------------------------------------------
# Who owns a claim, and whether that process still runs.


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


@cache
def boot_id() -> str | None:
    """This boot of this machine (Linux); None where the system does not say."""
    return _read("/proc/sys/kernel/random/boot_id")


def process_start(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (Linux): tells a reused pid apart."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Owner:
    """The process that holds a claim, as recorded in its row."""

    token: str
    host: str
    pid: int
    boot: str | None
    start: str | None

    @classmethod
    def current(cls) -> Owner:
        return cls(
            secrets.token_hex(16),
            socket.gethostname(),
            os.getpid(),
            boot_id(),
            process_start(os.getpid()),
        )

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def owner_alive(entry: Entry, me: Owner, now: float) -> bool:
    """Whether the process recorded as sending `entry` still runs (so it still holds it)."""
    if entry.owner_token is None:
        return False  # written before claims had owners: nobody holds it
    if entry.owner_token == me.token:
        return True
    same_machine = (
        entry.owner_host == me.host and entry.owner_boot is not None and entry.owner_boot == me.boot
    )
    if same_machine and entry.owner_pid is not None:
        if not pid_alive(entry.owner_pid):
            return False
        started = process_start(entry.owner_pid)
        return entry.owner_start is None or started is None or started == entry.owner_start
    if (
        entry.owner_host == me.host
        and entry.owner_pid is not None
        and me.boot is None
        and not pid_alive(entry.owner_pid)
    ):
        return False
    # Another machine (or one that cannot be told apart): trust the lease it renews.
    return entry.lease_until is not None and entry.lease_until > now


# ------------------------------------------------------------------------------------------
# Rows.


@dataclass(frozen=True)
class Entry:
    api: str
    code: str
    hash: str
    body: str
    state: JournalState
    order_id: int | None
    status: str | None
    error_kind: str | None
    error: str | None
    attempts: int
    created_at: float
    updated_at: float
    owner_token: str | None = None
    owner_host: str | None = None
    owner_pid: int | None = None
    owner_boot: str | None = None
    owner_start: str | None = None
    lease_until: float | None = None
    rev: int = 0
    held: bool = False
    """Read time: the row is `sending` and its owner still runs."""
    owner_user: str | None = None
    """The user who sent it: recorded by the shared (PostgreSQL) journal; a local file is
    one user's already."""

    @property
    def effective_state(self) -> str:
        """`sending` is only true while its process runs; after that nobody knows."""
        if self.state == "sending":
            return "sending" if self.held else "unknown"
        return self.state

    @property
    def owner_text(self) -> str:
        """ "pid N" on this host, "pid N on HOST" elsewhere, for messages."""
        where = "" if self.owner_host == socket.gethostname() else f" on {self.owner_host}"
        return f"pid {self.owner_pid}{where}"

    def to_json(self) -> dict[str, Any]:
        held = self.effective_state == "sending"
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
            "sentBy": (
                {"host": self.owner_host, "pid": self.owner_pid, "user": self.owner_user}
                if self.owner_host is not None
                else None
            ),
            "leaseUntil": _iso(self.lease_until) if held and self.lease_until else None,
        }


def entry_filters(
    mark: str,
    *,
    api: str | None,
    state: str | None,
    since: float | None,
    until: float | None,
    code_like: str | None,
) -> tuple[list[str], list[Any]]:
    """The WHERE clauses of `entries()`, for either backend (`mark` is its placeholder)."""
    clauses: list[str] = []
    params: list[Any] = []
    if state in ("unknown", "sending"):
        clauses.append("state IN ('unknown', 'sending')")  # which, the owner decides
    elif state is not None:
        clauses.append(f"state = {mark}")
        params.append(state)
    for column, value in (("api = ", api), ("created_at >= ", since), ("created_at < ", until)):
        if value is not None:
            clauses.append(f"{column}{mark}")
            params.append(value)
    if code_like is not None:
        clauses.append(f"code LIKE {mark} ESCAPE '\\'")
        params.append(code_like)
    return clauses, params


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a code: `won` means this process may send it now."""

    verdict: Verdict
    won: bool

    @property
    def entry(self) -> Entry | None:
        return self.verdict.entry


@dataclass(frozen=True)
class Health:
    """What `kalixo doctor` reports about the journal."""

    path: str
    schema: int
    entries: int
    problems: list[str]
    free_bytes: int | None


class JournalStore(Protocol):
    """What any journal backend (this SQLite file; a shared PostgreSQL later) provides.

    `claim` is the only way to start sending: atomic, whatever the number of processes or
    machines. `finish` records the outcome of a claim this process holds.
    """

    where: str
    readonly: bool

    def get(self, api: str, code: str) -> Entry | None: ...

    def get_many(self, api: str, codes: Sequence[str]) -> dict[str, Entry]: ...

    def claim(
        self, api: str, code: str, body: Mapping[str, Any], *, can_look_up: bool = False
    ) -> Claim: ...

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
    ) -> bool: ...

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
        """`finish`, possibly queued: the function returned waits until the outcome is
        durable and returns (or raises) what `finish` would."""
        ...

    def resolve(self, api: str, code: str, order_id: int, status: str | None = None) -> None: ...

    def record_status(self, api: str, code: str, status: str | None) -> None: ...

    def by_order_id(self, api: str, order_id: int) -> Entry | None: ...

    def mark_not_placed(self, api: str, code: str) -> None: ...

    def abandon_in_flight(self, api: str, codes: list[str], reason: str) -> None: ...

    def entries(
        self,
        api: str | None = None,
        *,
        state: str | None = None,
        since: float | None = None,
        until: float | None = None,
        code_like: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Entry]: ...

    def code_salt(self) -> str: ...

    def health(self) -> Health: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------------
# Failures, in words a user can act on.


def _is_full(exc: BaseException, path: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error) and "full" in str(exc).lower():
        return True
    # SQLite says "unable to open" or "disk I/O error" when it cannot create its -wal file.
    import shutil

    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024
    except OSError:
        return False


def _writable(path: Path) -> bool:
    """Whether SQLite could write the journal and the files beside it (-wal, -shm)."""
    folder_ok = path.parent.is_dir() and os.access(path.parent, os.W_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def unusable(path: Path, exc: BaseException, doing: str) -> JournalUnusable:
    """Translate an SQLite or OS failure on the journal into what it means and what to do.

    Never suggests deleting the file: it is the only record of what this machine placed.
    """
    text = str(exc).lower()
    keep = (
        "do not delete it: it is the record of every order kalixo placed from here, and "
        "without it a re-run could buy them again"
    )
    if _is_full(exc, path):
        return JournalUnusable(
            f"no space left to {doing} the journal {path}",
            hint=f"free some space on the disk that holds {path.parent}, then run the same "
            "command again",
        )
    if (
        isinstance(exc, PermissionError)
        or "readonly" in text
        or "read-only" in text
        or (isinstance(exc, OSError) and exc.errno == errno.EROFS)
        or ("unable to open" in text and not _writable(path))
    ):
        return JournalUnusable(
            f"the journal {path} is read-only: kalixo cannot {doing} it",
            hint=f"make {path} and its folder writable by this user (chmod u+w); read-only "
            "commands such as `kalixo orders list` still work",
        )
    if "not a database" in text or "malformed" in text or type(exc) is sqlite3.DatabaseError:
        return JournalUnusable(
            f"the journal {path} is damaged and cannot be used ({exc})",
            hint=f"{keep}. Keep a copy, then recover what it holds: `sqlite3 {path} .recover "
            f"> journal.sql`; `kalixo doctor` checks it",
        )
    if "locked" in text or "busy" in text:
        return JournalUnusable(
            f"the journal {path} stayed locked by another process for 30 s",
            hint="another kalixo (or an sqlite3 shell) is holding it; let it finish and run "
            "the same command again",
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        target = exc.filename or path
        return JournalUnusable(
            f"cannot {doing} the journal {path}: {reason} ({target})",
            hint=f"make sure {path.parent} can be created and written by this user "
            "(XDG_DATA_HOME moves the data folder)",
        )
    return JournalUnusable(
        f"cannot {doing} the journal {path}: {exc}",
        hint=f"{keep}; `kalixo doctor` checks it",
    )
