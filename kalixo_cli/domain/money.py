"""Amounts travel in minor units (pence, cents); people read major ones."""

from __future__ import annotations

ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX"})


def format_amount(minor: int | None, currency: str | None) -> str:
    """4138 GBP -> '41.38 GBP'."""
    if minor is None:
        return "-"
    unit = currency or ""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{minor:,} {unit}".strip()
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {unit}".strip()
