"""The journal contract, run on both backends: the local SQLite file and a shared PostgreSQL.

Every test here gets `journal_backend` twice (tests/conftest.py): once for SQLite, once for a
fresh, migrated database of the tests' own PostgreSQL server. Two handles opened on one
backend are what two processes (or two machines) have; a claim made by a real process that
then exits is what a kill -9 leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from kalixo_cli.store.journal import LEASE_SECONDS, JournalStore, Owner, request_hash
from kalixo_cli.store.verdict import verdict
from tests.helpers import JournalBackend

API = "https://api.example/v1"
BODY = {"externalOrderCode": "J-1", "price": 1, "currency": "GBP", "orderProducts": []}
OTHER = {**BODY, "price": 2}


def claim_in_a_process(backend: JournalBackend, codes: list[str], *, die: bool) -> list[str]:
    """Claim `codes` from a real kalixo process; returns the codes it won. With `die`, it
    exits without recording any outcome (what kill -9 mid-request leaves)."""
    script = (
        "import json, os, sys\n"
        "from kalixo_cli.store.journal_url import locate, open_journal\n"
        "j = open_journal(locate(sys.argv[1]))\n"
        "won = [c for c in json.loads(sys.argv[2]) if j.claim(sys.argv[3], c, "
        "json.loads(sys.argv[4])).won]\n"
        "print(json.dumps(won), flush=True)\n"
        "if sys.argv[5] == 'die': os._exit(0)\n"
        "j.close()\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            backend.url,
            json.dumps(codes),
            API,
            json.dumps(BODY),
            "die" if die else "live",
        ],
        timeout=120,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_claim_is_durable_and_seen_by_another_handle_as_held(
    journal_backend: JournalBackend,
) -> None:
    mine = journal_backend.open()
    assert mine.claim(API, "J-1", BODY).won
    entry = journal_backend.open().get(API, "J-1")  # another process sees it, now
    assert entry is not None and entry.state == "sending"
    assert entry.effective_state == "sending" and entry.held  # its owner is alive
    assert entry.hash == request_hash(BODY)
    assert entry.owner_pid == os.getpid() and entry.owner_host == Owner.current().host
    assert not journal_backend.open().claim(API, "J-1", BODY).won  # busy, not "unknown"
    assert journal_backend.open().claim(API, "J-1", BODY).verdict.kind == "busy"


def test_a_claim_whose_process_died_reads_as_unknown(journal_backend: JournalBackend) -> None:
    assert claim_in_a_process(journal_backend, ["J-1"], die=True) == ["J-1"]
    journal = journal_backend.open()
    entry = journal.get(API, "J-1")
    assert entry is not None and entry.state == "sending"
    assert entry.effective_state == "unknown" and not entry.held
    claim = journal.claim(API, "J-1", BODY)
    assert not claim.won and claim.verdict.kind == "unknown"  # never resent unchecked
    assert journal.claim(API, "J-1", BODY, can_look_up=True).won  # v2 looks it up first


def test_states_and_verdicts(journal_backend: JournalBackend) -> None:
    journal = journal_backend.open()
    digest = request_hash(BODY)
    assert journal.claim(API, "J-1", BODY).won
    journal.finish(API, "J-1", "rejected", error_kind="RequestRejected", error="price")
    assert verdict(journal.get(API, "J-1"), "another-payload").kind == "send"
    assert journal.claim(API, "J-1", BODY).won  # a rejected code may be sent again
    journal.finish(API, "J-1", "failed")
    assert journal.claim(API, "J-1", BODY).won
    journal.finish(API, "J-1", "placed", order_id=7, status="completed")
    assert verdict(journal.get(API, "J-1"), digest).kind == "placed"
    assert journal.claim(API, "J-1", OTHER).verdict.kind == "conflict"
    assert journal.claim(API, "J-1", BODY).verdict.kind == "placed"
    entry = journal_backend.open().get(API, "J-1")
    assert entry is not None and entry.attempts == 3 and entry.order_id == 7
    assert entry.status == "completed" and entry.effective_state == "placed"
    with pytest.raises(ValueError):
        journal.finish(API, "J-1", "sending")


def test_of_many_handles_claiming_one_code_at_once_exactly_one_wins(
    journal_backend: JournalBackend,
) -> None:
    handles = [journal_backend.open() for _ in range(8)]
    start = threading.Barrier(len(handles))

    def race(handle: JournalStore) -> bool:
        start.wait(timeout=120)
        return handle.claim(API, "RACE-1", BODY).won

    # Futures hand a thread's failure to the test (a bare Thread would only print it).
    with ThreadPoolExecutor(max_workers=len(handles)) as pool:
        wins = [
            future.result(timeout=120)
            for future in [pool.submit(race, handle) for handle in handles]
        ]
    assert sorted(wins) == [False] * 7 + [True]


def test_two_processes_claiming_the_same_codes_win_each_exactly_once(
    journal_backend: JournalBackend,
) -> None:
    codes = [f"P-{n}" for n in range(40)]
    # Futures hand a failed process's stderr to the test (a bare Thread would only print it).
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(claim_in_a_process, journal_backend, codes, die=False) for _ in range(2)
        ]
        results = [future.result(timeout=180) for future in futures]
    assert sorted(results[0] + results[1]) == sorted(codes)  # each won by exactly one


def test_another_machines_claim_holds_while_its_lease_runs(journal_backend: JournalBackend) -> None:
    other_machine = journal_backend.open_as(Owner("t" * 32, "machine-b", 4242, "boot-of-b", None))
    assert other_machine.claim(API, "M-1", BODY).won
    here = journal_backend.open()
    entry = here.get(API, "M-1")
    assert entry is not None and entry.owner_host == "machine-b"
    assert entry.effective_state == "sending"  # pid 4242 is not checked: not this machine
    assert here.claim(API, "M-1", BODY).verdict.kind == "busy"
    journal_backend.sql(
        "UPDATE {orders} SET lease_until = lease_until - ? WHERE code = ?",
        (LEASE_SECONDS * 2, "M-1"),
    )  # machine-b died: nobody renews it
    entry = here.get(API, "M-1")
    assert entry is not None and entry.effective_state == "unknown"
    assert here.claim(API, "M-1", BODY).verdict.kind == "unknown"


def test_entries_are_per_api_and_filterable(journal_backend: JournalBackend) -> None:
    journal = journal_backend.open()
    assert journal.claim(API, "A-1", BODY).won
    journal.finish(API, "A-1", "placed", order_id=1)
    assert journal.claim(API, "A-2", BODY).won
    journal.abandon_in_flight(API, ["A-2"], "interrupted")
    assert journal.claim("https://other/v1", "A-3", BODY).won
    assert [e.code for e in journal.entries(API)] == ["A-1", "A-2"]
    assert [e.code for e in journal.entries(API, state="unknown")] == ["A-2"]
    assert [e.code for e in journal.entries(API, state="placed")] == ["A-1"]
    assert [e.code for e in journal.entries(API, code_like="A-1")] == ["A-1"]
    assert [e.code for e in journal.entries(API, code_like="A-%", limit=1)] == ["A-1"]
    assert [e.code for e in journal.entries()] == ["A-1", "A-2", "A-3"]
    assert [e.code for e in journal.entries(API, since=10**10)] == []


def test_abandon_in_flight_marks_only_its_own_claims_unknown(
    journal_backend: JournalBackend,
) -> None:
    mine, theirs = journal_backend.open(), journal_backend.open()
    assert mine.claim(API, "A-1", BODY).won
    assert theirs.claim(API, "A-2", BODY).won
    mine.abandon_in_flight(API, ["A-1", "A-2"], "interrupted twice")
    first, second = mine.get(API, "A-1"), mine.get(API, "A-2")
    assert first is not None and first.state == "unknown" and first.error == "interrupted twice"
    assert second is not None and second.state == "sending"  # not mine to abandon


def test_resolving_by_hand(journal_backend: JournalBackend) -> None:
    journal = journal_backend.open()
    assert journal.claim(API, "R-1", BODY).won
    journal.abandon_in_flight(API, ["R-1"], "killed")
    journal.resolve(API, "R-1", 99)
    entry = journal_backend.open().get(API, "R-1")
    assert entry is not None and entry.effective_state == "placed" and entry.order_id == 99
    assert journal.claim(API, "R-2", BODY).won
    journal.abandon_in_flight(API, ["R-2"], "killed")
    journal.mark_not_placed(API, "R-2")
    assert journal.claim(API, "R-2", BODY).won  # the user said so: it may go again


def test_the_code_salt_is_one_per_journal(journal_backend: JournalBackend) -> None:
    salt = journal_backend.open().code_salt()
    assert len(salt) >= 16 and journal_backend.open().code_salt() == salt


def test_health_counts_rows_and_knows_the_schema(journal_backend: JournalBackend) -> None:
    journal = journal_backend.open()
    assert journal.claim(API, "H-1", BODY).won
    health = journal.health()
    assert health.entries == 1 and health.problems == [] and health.schema >= 1


def test_a_read_only_handle_reads_and_refuses_to_claim(journal_backend: JournalBackend) -> None:
    from kalixo_cli.domain.errors import JournalUnusable

    writer = journal_backend.open()
    assert writer.claim(API, "RO-1", BODY).won
    reader = journal_backend.open(readonly=True)
    assert [e.code for e in reader.entries(API)] == ["RO-1"]
    with pytest.raises(JournalUnusable):
        reader.claim(API, "RO-2", BODY)


def test_entries_come_in_order_across_pages(
    journal_backend: JournalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kalixo_cli.store.journal_pg

    monkeypatch.setattr(kalixo_cli.store.journal_pg, "PAGE", 3)  # PostgreSQL reads 3 rows a query
    journal = journal_backend.open()
    codes = [f"PG-{n}" for n in range(8)]
    for code in codes:
        assert journal.claim(API, code, BODY).won
        journal.finish(API, code, "placed", order_id=1)
    journal_backend.sql("UPDATE {orders} SET created_at = 1000")  # ties: the code orders them
    assert [e.code for e in journal.entries(API)] == sorted(codes)
    assert [e.code for e in journal.entries(API, limit=5)] == sorted(codes)[:5]
    assert [e.code for e in journal.entries(API, state="placed", code_like="PG-1%")] == ["PG-1"]


def test_an_outcome_never_replaces_placed_and_sync_writes_only_an_unchanged_row(
    journal_backend: JournalBackend,
) -> None:
    journal = journal_backend.open()
    assert journal.claim(API, "S-1", BODY).won
    assert journal.finish(API, "S-1", "placed", order_id=5)
    assert not journal.finish(API, "S-1", "failed")  # an answer in hand stays
    entry = journal.get(API, "S-1")
    assert entry is not None and entry.effective_state == "placed" and entry.order_id == 5
    assert claim_in_a_process(journal_backend, ["S-2"], die=True) == ["S-2"]
    read = journal.get(API, "S-2")  # what `orders sync` read, before asking the API
    assert read is not None and read.effective_state == "unknown"
    journal_backend.open().resolve(API, "S-2", 77)  # meanwhile, someone settled it
    assert not journal.finish(API, "S-2", "failed", expected_rev=read.rev)
    settled = journal.get(API, "S-2")
    assert settled is not None and settled.order_id == 77
    assert journal.finish(
        API, "S-2", "placed", order_id=77, status="completed", expected_rev=settled.rev
    )


def test_get_many_reads_the_known_codes_with_their_state(
    journal_backend: JournalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kalixo_cli.store.journal_pg

    monkeypatch.setattr(kalixo_cli.store.journal_pg, "PAGE", 2)
    journal = journal_backend.open()
    for code in ("G-1", "G-2", "G-3"):
        assert journal.claim(API, code, BODY).won
    journal.finish(API, "G-1", "placed", order_id=3)
    found = journal_backend.open().get_many(API, ["G-1", "G-2", "G-3", "G-4", "G-5"])
    assert sorted(found) == ["G-1", "G-2", "G-3"]
    assert found["G-1"].effective_state == "placed" and found["G-1"].order_id == 3
    assert found["G-2"].effective_state == "sending"  # held by this live process


def test_status_follows_the_api_and_rows_are_found_by_order_id(
    journal_backend: JournalBackend,
) -> None:
    journal = journal_backend.open()
    assert journal.claim(API, "O-1", BODY).won
    journal.finish(API, "O-1", "placed", order_id=321, status="processing")
    journal.record_status(API, "O-1", "completed")
    found = journal_backend.open().by_order_id(API, 321)
    assert found is not None and found.code == "O-1" and found.status == "completed"
    assert journal.by_order_id(API, 999) is None
