"""The sandbox account's wallet: opening balances, the low-balance threshold, and the JSON
v2 shows them in (stdlib only, so `running_sandbox` and the CLI take it without fastapi).

Amounts are kept in minor units (pence), as everywhere in the sandbox; v2 shows balances and
the threshold as numbers in major units (``{"GBP": 196.01}``), as Kalixo's spec does.

Rules:

- Balances are per API key and currency, opened at `Wallet.opening` the first time the key
  is used, and persisted with the orders (store.py); the v1 test credentials pay from
  `SANDBOX_API_KEY`'s wallet.
- Every order placed, on v1 or v2, is debited its total (sum of unit price x quantity) in the
  currency of the order, in the transaction that records it, and never refunded: a failed or
  partial order keeps its debit (Kalixo: contact support).
- An order that would take a balance below zero is refused with Kalixo's 422 "Your account
  order limit has been exceeded. Contact support for assistance." and records nothing.
- ``lowBalance`` is true when any balance is below `Wallet.threshold`.

The default opening balances are large (1,000,000.00 GBP and EUR): the test suites and
benchmarks place thousands of orders against one sandbox, and a v1 client must never meet a
refusal it did not meet before wallets existed. Tests of low balances and refusals open a
sandbox with a small wallet: ``running_sandbox(db, wallet=Wallet({"GBP": 150_00}))``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_OPENING: Mapping[str, int] = {"GBP": 100_000_000, "EUR": 100_000_000}
DEFAULT_THRESHOLD = 10_000
"""100.00 in any currency, as in Kalixo's example."""

_CURRENCY = re.compile(r"[A-Z]{3}")


def major_units(amount: int) -> float:
    """19601 -> 196.01, how v2 shows money in a wallet."""
    return amount / 100


@dataclass(frozen=True)
class Wallet:
    """Opening balances per currency and the low-balance threshold, in minor units."""

    opening: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_OPENING))
    threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        for currency, amount in self.opening.items():
            if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
                raise ValueError(f"wallet currencies are ISO 4217 codes, not {currency!r}")
            if not _whole(amount) or amount < 0:
                raise ValueError(
                    f"opening balance of {currency} must be whole minor units >= 0, not {amount!r}"
                )
        if not _whole(self.threshold) or self.threshold < 0:
            raise ValueError(f"threshold must be whole minor units >= 0, not {self.threshold!r}")

    def low(self, balances: Mapping[str, int]) -> bool:
        return any(amount < self.threshold for amount in balances.values())

    def snapshot_json(self, balances: Mapping[str, int]) -> dict[str, Any]:
        """The ``wallet`` embedded in every v2 order answer (WalletSnapshot)."""
        return {
            "balances": {currency: major_units(amount) for currency, amount in balances.items()},
            "lowBalance": self.low(balances),
        }

    def to_json(self, balances: Mapping[str, int]) -> dict[str, Any]:
        """The ``GET /v2/wallet`` answer (Wallet): the snapshot and the threshold."""
        return {**self.snapshot_json(balances), "threshold": major_units(self.threshold)}


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
