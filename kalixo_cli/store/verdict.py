"""The exactly-once rule, pure: may this code be sent now, given what the journal holds?

Apart from the journal so that every backend applies the same rule inside its own claim
transaction, and so that it is a plain unit test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from kalixo_cli.store.journal import Entry

VerdictKind = Literal["send", "placed", "unknown", "conflict", "reconcile", "busy"]


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    entry: Entry | None = None

    @property
    def may_send(self) -> bool:
        return self.kind in ("send", "reconcile")


def verdict(entry: Entry | None, body_hash: str, *, can_look_up: bool = False) -> Verdict:
    """Send only what nobody has placed, nobody might have placed and nobody is placing.

    - never sent, or sent and refused (4xx) or not placed (refused connection, 429): send;
    - being sent right now by a live kalixo process (this machine's or another's): busy;
    - placed: never again;
    - unknown (or left `sending` by a process that died): never again until resolved, by
      a person (v1) or by looking the code up first (v2: "reconcile");
    - placed, unknown or in flight under a different payload: the code is taken; refuse.
    """
    if entry is None or entry.effective_state in ("rejected", "failed"):
        return Verdict("send", entry)
    if entry.hash != body_hash:
        return Verdict("conflict", entry)
    if entry.effective_state == "sending":
        return Verdict("busy", entry)
    if entry.effective_state == "placed":
        return Verdict("placed", entry)
    # Unknown: an API that can look the code up (v2) settles it before anything is sent.
    return Verdict("reconcile" if can_look_up else "unknown", entry)
