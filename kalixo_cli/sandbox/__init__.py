"""The offline emulator of the Kalixo API v1: `kalixo sandbox serve` and `kalixo --sandbox`.

It is both the default a new user tries kalixo on and the real HTTP server the test suite
runs against, so it answers as Kalixo does: same routes, shapes, statuses and error
messages. Layout:

    catalog.py  seed products, including one test product per outcome (KTEST-*)
    store.py    SQLite state: orders, lines, PINs; survives restarts
    auth.py     the documented test credentials and HS256 JWTs
    app.py      the FastAPI app: routes, validation, statuses from an injectable clock
    server.py   running it in a thread (`running_sandbox`) or the foreground (`serve`)

This package root imports only light, stdlib-only modules: fastapi and uvicorn are
imported by `server` when a server starts, never by `import kalixo_cli.sandbox`.
"""

from __future__ import annotations

from .auth import SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_TOKEN
from .catalog import (
    KTEST_CANCEL_ID,
    KTEST_ERROR_ID,
    KTEST_FAIL_ID,
    KTEST_OK_ID,
    KTEST_OPEN_ID,
    KTEST_SLOW_ID,
)

__all__ = [
    "KTEST_CANCEL_ID",
    "KTEST_ERROR_ID",
    "KTEST_FAIL_ID",
    "KTEST_OK_ID",
    "KTEST_OPEN_ID",
    "KTEST_SLOW_ID",
    "SANDBOX_EMAIL",
    "SANDBOX_PASSWORD",
    "SANDBOX_TOKEN",
]
