"""The offline emulator of the Kalixo API, v1 and v2: `kalixo sandbox serve` and
`kalixo --sandbox`.

It is both the default a new user tries kalixo on and the real HTTP server the test suite
runs against, so it answers as Kalixo does: same routes, shapes, statuses and error
messages. Layout:

    catalog.py     seed products, including one test product per outcome (KTEST-*), and
                   the scenarios v2 lists
    store.py       SQLite state: orders, lines, PINs, wallets; survives restarts
    auth.py        the documented test credentials, HS256 JWTs (v1) and API key (v2)
    wallet.py      opening balances, the low-balance threshold, the wallet's JSON
    validation.py  what v1 and v2 share: the error shape, body validation, pricing
    app.py         the FastAPI app: envelope, fault injection, the v1 routes
    v2.py          the v2 routes: async orders, idempotent codes, wallet, scenarios
    faults.py      what faults to inject, and the rate limiter
    server.py      running it in a thread (`running_sandbox`) or the foreground (`serve`)

This package root imports only light, stdlib-only modules: fastapi and uvicorn are
imported by `server` when a server starts, never by `import kalixo_cli.sandbox`.
"""

from __future__ import annotations

from .auth import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_TOKEN
from .catalog import (
    KTEST_CANCEL_ID,
    KTEST_ERROR_ID,
    KTEST_FAIL_ID,
    KTEST_OK_ID,
    KTEST_OPEN_ID,
    KTEST_PARTIAL_ID,
    KTEST_SLOW_ID,
)
from .wallet import Wallet

__all__ = [
    "KTEST_CANCEL_ID",
    "KTEST_ERROR_ID",
    "KTEST_FAIL_ID",
    "KTEST_OK_ID",
    "KTEST_OPEN_ID",
    "KTEST_PARTIAL_ID",
    "KTEST_SLOW_ID",
    "SANDBOX_API_KEY",
    "SANDBOX_EMAIL",
    "SANDBOX_PASSWORD",
    "SANDBOX_TOKEN",
    "Wallet",
]
