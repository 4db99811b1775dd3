"""The local journal's group commit and per-thread readers (issue 13, point 4).

Writers of all threads queue their work and one of them commits the queue in one
transaction (one fsync for several rows); each claim is still decided inside a write
transaction and on disk before `claim` returns; reads use a connection of their own
thread and never wait for a writer. Commits are made to wait for each other here by work
that blocks inside the transaction until the test has seen what it needs (events, never
sleeps).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kalixo_cli.domain.errors import JournalUnusable
from kalixo_cli.store.journal_sqlite import Journal
from tests.test_exactly_once import wait_until

API = "https://api.example/v1"


def body(code: str) -> dict[str, Any]:
    return {"externalOrderCode": code, "currency": "GBP", "price": 1, "orderProducts": []}


class OtherProcess:
    """A separate process that reads the journal file with its own SQLite connection: what
    it sees was committed, not merely written into this process's memory."""

    SCRIPT = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], timeout=30)\n"
        "for line in sys.stdin:\n"
        "    row = db.execute('SELECT state FROM orders WHERE code = ?', (line.strip(),))"
        ".fetchone()\n"
        "    print(row[0] if row else '-', flush=True)\n"
    )

    def __init__(self, path: Path) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lock = threading.Lock()

    def state(self, code: str) -> str:
        assert self.child.stdin is not None and self.child.stdout is not None
        with self.lock:
            self.child.stdin.write(code + "\n")
            self.child.stdin.flush()
            return self.child.stdout.readline().strip()

    def close(self) -> None:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.close()
        self.child.wait(timeout=30)
        self.child.stdout.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as opened:
        yield opened


@pytest.fixture
def other(journal: Journal) -> Iterator[OtherProcess]:
    reader = OtherProcess(journal.path)
    yield reader
    reader.close()


def batch_sizes(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch `journal` commits from now on."""
    sizes: list[int] = []
    run = journal._run

    def counted(batch: list[Any]) -> None:
        sizes.append(len(batch))
        run(batch)

    monkeypatch.setattr(journal, "_run", counted)
    return sizes


class Held:
    """Work that holds the write transaction open until released: the commits queued
    meanwhile wait for it, and go together in the next batch."""

    def __init__(self, journal: Journal) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=journal._commit, args=(self.work,))

    def work(self, db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta (name, value) VALUES ('held', '1') ON CONFLICT (name) DO NOTHING"
        )
        self.inside.set()
        assert self.release.wait(60)

    def __enter__(self) -> Held:
        self.thread.start()
        assert self.inside.wait(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(60)


def in_threads(count: int, target: Callable[[int], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_many_threads_claiming_the_same_codes_win_each_once_and_on_disk_first(
    journal: Journal, other: OtherProcess
) -> None:
    codes = [f"G-{n}" for n in range(40)]
    won: dict[str, list[int]] = {code: [] for code in codes}
    seen_by_other: dict[str, str] = {}
    failures: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            for code in codes[n % 5 :] + codes[: n % 5]:  # each thread its own order
                if journal.claim(API, code, body(code)).won:
                    # Returned: another process must already see the claim.
                    seen_by_other[code] = other.state(code)
                    won[code].append(n)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    for thread in in_threads(12, claimer):
        thread.join(120)
    assert not failures
    assert all(len(winners) == 1 for winners in won.values()), won
    assert seen_by_other == dict.fromkeys(codes, "sending")


def test_claims_queued_behind_a_commit_share_the_next_one(
    journal: Journal, other: OtherProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = batch_sizes(journal, monkeypatch)
    results: dict[int, bool] = {}
    with Held(journal):
        threads = in_threads(
            6, lambda n: results.__setitem__(n, journal.claim(API, f"B-{n}", body(f"B-{n}")).won)
        )
        wait_until(lambda: len(journal._pending) == 6, "six claims to queue")
        assert other.state("B-0") == "-"  # nothing of them is written before their commit
        assert not results  # and no claim returned before it
    for thread in threads:
        thread.join(60)
    assert results == dict.fromkeys(range(6), True)
    assert sizes[-1] == 6  # the six claims: one transaction, one fsync
    assert [other.state(f"B-{n}") for n in range(6)] == ["sending"] * 6


def test_a_failing_piece_of_a_batch_fails_alone(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = batch_sizes(journal, monkeypatch)
    outcomes: dict[str, object] = {}

    def write(name: str, sql: str) -> Callable[[int], None]:
        def run(_: int) -> None:
            try:
                journal._commit(lambda db: db.execute(sql))
                outcomes[name] = "ok"
            except sqlite3.Error as exc:
                outcomes[name] = exc

        return run

    with Held(journal):
        threads = [
            *in_threads(1, write("good-1", "INSERT INTO meta VALUES ('a', '1')")),
            *in_threads(1, write("bad", "INSERT INTO no_such_table VALUES (1)")),
            *in_threads(1, write("good-2", "INSERT INTO meta VALUES ('b', '2')")),
        ]
        wait_until(lambda: len(journal._pending) == 3, "three writes to queue")
    for thread in threads:
        thread.join(60)
    assert outcomes["good-1"] == "ok" and outcomes["good-2"] == "ok"
    assert isinstance(outcomes["bad"], sqlite3.OperationalError)
    assert 3 in sizes  # tried together, then each alone
    db = sqlite3.connect(journal.path)
    assert dict(db.execute("SELECT name, value FROM meta WHERE name IN ('a', 'b')")) == {
        "a": "1",
        "b": "2",
    }
    db.close()


def test_reads_do_not_wait_for_a_commit_under_way(journal: Journal) -> None:
    assert journal.claim(API, "R-1", body("R-1")).won
    with Held(journal):
        # The writer holds the transaction open: a read still answers, with the last commit.
        entry = journal.get(API, "R-1")
        assert entry is not None and entry.state == "sending"
        assert journal.get_many(API, ["R-1", "R-2"]).keys() == {"R-1"}
        assert [e.code for e in journal.entries(API)] == ["R-1"]


def test_an_outcome_queued_with_finish_soon_is_on_disk_when_its_wait_returns(
    journal: Journal, other: OtherProcess
) -> None:
    assert journal.claim(API, "F-1", body("F-1")).won
    durable = journal.finish_soon(API, "F-1", "placed", order_id=7, status="completed")
    assert other.state("F-1") == "sending"  # queued, not written yet
    assert durable() is True
    assert other.state("F-1") == "placed"
    # The next claim commits an outcome queued before it, in the same transaction.
    assert journal.claim(API, "F-2", body("F-2")).won
    durable = journal.finish_soon(API, "F-2", "placed", order_id=8)
    assert journal.claim(API, "F-3", body("F-3")).won
    assert other.state("F-2") == "placed"
    assert durable() is True


def test_close_commits_the_outcomes_nobody_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    assert journal.claim(API, "C-1", body("C-1")).won
    journal.finish_soon(API, "C-1", "placed", order_id=9)
    journal.close()
    with Journal(path, readonly=True) as again:
        entry = again.get(API, "C-1")
        assert entry is not None and entry.state == "placed" and entry.order_id == 9


def test_a_closed_journal_refuses_reads_and_writes_from_any_thread(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    assert journal.claim(API, "X-1", body("X-1")).won
    errors: list[JournalUnusable] = []

    def read_in_a_thread() -> None:
        journal.get(API, "X-1")  # opens this thread's reader
        journal.close()
        try:
            journal.get(API, "X-1")
        except JournalUnusable as exc:
            errors.append(exc)

    thread = threading.Thread(target=read_in_a_thread)
    thread.start()
    thread.join(60)
    assert len(errors) == 1 and "closed" in errors[0].message
    with pytest.raises(JournalUnusable, match="closed"):
        journal.finish_soon(API, "X-1", "placed", order_id=1)
    with pytest.raises(JournalUnusable, match="closed"):
        journal.claim(API, "X-2", body("X-2"))


def test_readers_of_a_new_journal_opened_by_two_processes_at_once(tmp_path: Path) -> None:
    """Per-thread readers wait out the other process's switch to WAL, as `_open` does."""
    path = tmp_path / "journal.sqlite3"
    script = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from kalixo_cli.store.journal_sqlite import Journal\n"
        "j = Journal(Path(sys.argv[1]))\n"
        "seen = []\n"
        "def read(n):\n"
        "    seen.append(j.get('api', f'{sys.argv[2]}-{n}') is None)\n"
        "threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(j.claim('api', sys.argv[2], {'n': 1}).won and all(seen) and len(seen) == 4)\n"
        "j.close()\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("P-1", "P-2")
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [json.loads(out.strip().lower()) for out, _ in outputs] == [True, True], outputs
