"""Masking of secrets and PINs in anything meant for eyes or logs. Pure string functions."""

from __future__ import annotations

import re

# Kalixo PINs are groups of capitals and digits joined by dashes (ABCDE-FGHIJ-...).
PIN_PATTERN = re.compile(r"\b[A-Z0-9]{4,}(?:-[A-Z0-9]{4,}){2,}\b")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s,;\"']+")
_API_KEY = re.compile(r"\b(kal_(?:live|test)_)[A-Za-z0-9_\-]+")
REDACTED = "[REDACTED]"


def mask_pin(pin: str) -> str:
    """ABCDE-FGHIJ-KLMNO-PQRST-UVWXY -> ABCDE-*****-*****-*****-UVWXY: enough to match a
    card to a customer on a shared screen, not enough to redeem it."""
    groups = pin.split("-")
    if len(groups) >= 3:
        return "-".join([groups[0], *("*" * len(g) for g in groups[1:-1]), groups[-1]])
    if len(pin) > 8:
        return pin[:4] + "*" * (len(pin) - 8) + pin[-4:]
    return "*" * len(pin)


class Redactor:
    """Removes every registered secret, bearer credential, API key and PIN from text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._public: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def allow(self, text: str | None) -> None:
        """`text` is not a secret though it may look like a PIN: an order code the user
        gave or kalixo generated (SHOP-2026-0042), which an error must show whole."""
        if text and len(text) >= 4:
            self._public.add(text)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
        text = _API_KEY.sub(lambda m: m.group(1) + REDACTED, text)
        kept: dict[str, str] = {}  # allowed codes, out of the PIN pattern's way
        for number, code in enumerate(sorted(self._public, key=len, reverse=True)):
            if code in text:
                kept[f"\x00{number}\x00"] = code
                text = text.replace(code, f"\x00{number}\x00")
        text = PIN_PATTERN.sub(lambda m: mask_pin(m.group(0)), text)
        for token, code in kept.items():
            text = text.replace(token, code)
        return text
