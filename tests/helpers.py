"""What tests share besides fixtures: the in-process runner, clocks, journal backends, kills.

Fixtures stay in tests/conftest.py; tests import these by name (`from tests.helpers import run`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner, Result

from kalixo_cli.cli import app

if TYPE_CHECKING:
    from kalixo_cli.store.journal import JournalStore, Owner


@dataclass
class Clock:
    """The sandbox's time, which tests move forward instead of sleeping."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class FakeClock:
    """A sandbox's time standing still at `start` until a test moves it."""

    def __init__(self, start: float) -> None:
        self.start = self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def at(self, seconds_after_start: float) -> None:
        self.now = self.start + seconds_after_start


@dataclass
class JournalBackend:
    """One journal backend under test: its `journal_url`, and fresh handles on it (each one
    is what another process, or another machine, would have)."""

    kind: str
    url: str
    opened: list[JournalStore] = field(default_factory=list)

    def open(self, *, readonly: bool = False) -> JournalStore:
        """A new handle; the fixture closes it after the test."""
        from kalixo_cli.store.journal_url import locate, open_journal

        journal = open_journal(locate(self.url), readonly=readonly)
        self.opened.append(journal)
        return journal

    def close(self) -> None:
        for journal in self.opened:
            journal.close()

    def open_as(self, owner: Owner) -> JournalStore:
        """A handle whose claims are `owner`'s (a process of another machine, say)."""
        from kalixo_cli.store.journal_pg import PostgresJournal
        from kalixo_cli.store.journal_sqlite import Journal

        journal = self.open()
        assert isinstance(journal, Journal | PostgresJournal)
        journal.owner = owner
        return journal

    def sql(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Change rows behind kalixo's back (`{orders}` names the table, `?` a value)."""
        if self.kind == "sqlite":
            import sqlite3

            path = self.url.removeprefix("sqlite://")
            with closing(sqlite3.connect(path)) as db, db:
                db.execute(statement.format(orders="orders"), params)
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as pg:
                pg.execute(statement.format(orders="kalixo_orders").replace("?", "%s"), params)


_runner = CliRunner()

# Every exit code a test saw kalixo end with; tests/test_zz_exit_codes.py checks that each
# code of the README's table is among them once the whole suite has run.
EXIT_CODES_SEEN: set[int] = set()


def record_exit(code: int | None) -> int | None:
    """Note the exit code of a kalixo run in a subprocess (`run` notes its own)."""
    if code is not None:
        EXIT_CODES_SEEN.add(code)
    return code


def run(args: Sequence[str], *, input: str | bytes | None = None) -> Result:
    """Run kalixo in-process, as a user would type it."""
    result = _runner.invoke(app, list(args), input=input, catch_exceptions=False)
    record_exit(result.exit_code)
    return result


def kill_repeatedly(
    command: Sequence[str], env: dict[str, str], *, seed: int, kills: int = 3, tries: int = 8
) -> int:
    """Start `command` and SIGKILL it at a random moment, until it has been killed `kills`
    times (or `tries` runs went by); returns how many runs were killed."""
    import random
    import signal
    import subprocess

    rng = random.Random(seed)
    killed = 0
    for _ in range(tries):
        process = subprocess.Popen(
            list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.5, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
        if killed == kills:
            break
    return killed
