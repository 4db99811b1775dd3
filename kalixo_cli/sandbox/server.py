"""Running the sandbox, v1 and v2 on one port: in a daemon thread (`running_sandbox`, for
tests and embedding) or in the foreground (`serve`, for ``kalixo sandbox serve``).

We bind the socket ourselves, so port 0 gives a free port we can report, and a busy port is
a `UsageError` with a fix rather than a traceback from inside uvicorn. fastapi and uvicorn
are imported only here and only when a server is started: importing this module stays
cheap, and `require_sandbox_stack` turns their absence into an install hint.

Both take faults to inject (faults.py); a running sandbox's faults can be changed between
requests through `RunningSandbox.faults`, and `fault_counts` says what was injected.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import importlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from kalixo_cli.domain.errors import UsageError

from .auth import SANDBOX_API_KEY
from .catalog import PRODUCTS, READY_SECONDS, SLOW_SECONDS
from .faults import FaultInjector, FaultOptions, Faults
from .store import Store, StoreError
from .wallet import Wallet

if TYPE_CHECKING:
    from fastapi import FastAPI

INSTALL_HINT = "pip install 'kalixo[sandbox]'"
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10


def require_sandbox_stack() -> None:
    """Raise a `UsageError` with the install command when fastapi or uvicorn is missing."""
    for module in ("fastapi", "uvicorn"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UsageError("the sandbox needs the 'sandbox' extra", hint=INSTALL_HINT) from exc


@dataclass
class RunningSandbox:
    """A sandbox serving in a background thread; what a test needs to talk to it."""

    base_url: str
    app: FastAPI
    store: Store

    @property
    def v1_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def v2_url(self) -> str:
        return f"{self.base_url}/v2"

    @property
    def wallet(self) -> Wallet:
        """The opening balances and low-balance threshold the sandbox was started with."""
        wallet = self.app.state.wallet
        assert isinstance(wallet, Wallet)
        return wallet

    def balances(self) -> dict[str, int]:
        """The sandbox account's balances now, in minor units (what ``/v2/wallet`` shows)."""
        return self.store.balances(SANDBOX_API_KEY, self.wallet.opening)

    def set_balance(self, currency: str, amount: int) -> None:
        """Top up or drain one balance (minor units), to test low balances and refusals."""
        self.store.set_balance(SANDBOX_API_KEY, currency, amount)

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen since start or `reset_counts`, optionally only one method/path
        (a path such as ``/v1/orders/place-order``, without the query string)."""
        from .app import request_log

        return request_log(self.app).count(method, path)

    def place_attempts(self) -> dict[str, int]:
        """Place-order requests received per externalOrderCode since start or
        `reset_counts`, whatever the answer (injected faults included): how often a
        client tried each code, where `Store.orders_by_code` says what was committed."""
        from .app import request_log

        return request_log(self.app).attempts()

    def reset_counts(self) -> None:
        """Zero the request, attempt and fault counts and restart the fault sequence and
        the rate-limit windows; the faults themselves stay as they are."""
        from .app import fault_injector, request_log

        request_log(self.app).reset()
        fault_injector(self.app).reset()

    @property
    def faults(self) -> FaultInjector:
        """The faults in force, changeable while serving: ``faults.update(hang_rate=0.5)``,
        ``faults.clear()``, or assign a whole new ``Faults(...)``; ``faults.config`` is the
        current `Faults`."""
        from .app import fault_injector

        return fault_injector(self.app)

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.faults.configure(faults)

    def fault_counts(self) -> dict[str, int]:
        """Faults injected since start or `reset_counts`, by kind: ``latency``,
        ``rate_limited``, ``error_500``, ``error_502``, ``hang``, ``drop_after_commit``."""
        return self.faults.counts()


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or a `UsageError` saying why not."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise UsageError(
            f"cannot listen on {where}: {exc.strerror}",
            hint="pass --host an address of this machine, such as 127.0.0.1",
        ) from exc
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # on Windows SO_REUSEADDR would let two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"cannot listen on {where}: the port is already in use",
                hint="stop what is using it, or pick another port with --port "
                "(--port 0 picks a free one)",
            ) from exc
        raise UsageError(
            f"cannot listen on {where}: {exc.strerror or exc}",
            hint="pick another --host or --port",
        ) from exc
    return sock


def _url(host: str, sock: socket.socket) -> str:
    """The base URL clients use: a wildcard host is reached via loopback."""
    port = sock.getsockname()[1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _open_store(db_path: Path) -> Store:
    try:
        return Store(db_path)
    except StoreError as exc:
        raise UsageError(str(exc), hint="pass another file with --db") from exc


@contextmanager
def running_sandbox(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.time,
    slow_seconds: float = SLOW_SECONDS,
    ready_seconds: float = READY_SECONDS,
    wallet: Wallet | None = None,
    faults: Faults | None = None,
    **fault_options: Unpack[FaultOptions],
) -> Iterator[RunningSandbox]:
    """Serve the sandbox in a daemon thread for the duration of the ``with`` block.

    Returns once the server accepts connections; on exit it shuts down gracefully and
    closes the database. uvicorn installs no signal handlers outside the main thread.
    Faults to inject come as ``faults=Faults(...)``, as `Faults`' fields
    (``error_rate_502=0.2, seed=1``), or both (the fields win); ``clock`` also drives the
    rate-limit windows. ``ready_seconds`` is how long a v2 order is ``processing`` (KTEST-SLOW:
    ``slow_seconds``); ``wallet`` the opening balances and low-balance threshold of a new
    database (large by default: see wallet.py).
    """
    faults = replace(faults or Faults(), **fault_options)
    require_sandbox_stack()
    import uvicorn

    from .app import create_app

    sock = _bind(host, port)
    try:
        store = _open_store(db_path)
        try:
            app = create_app(
                store,
                clock=clock,
                slow_seconds=slow_seconds,
                faults=faults,
                ready_seconds=ready_seconds,
                wallet=wallet,
            )
            config = uvicorn.Config(
                app,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_SECONDS // 2,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name="kalixo-sandbox", daemon=True
            )
            thread.start()
            try:
                _wait_started(server, thread)
                yield RunningSandbox(base_url=_url(host, sock), app=app, store=store)
            finally:
                server.should_exit = True
                thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        finally:
            store.close()
    finally:
        sock.close()


def _wait_started(server: Any, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped while starting")
        if time.monotonic() > deadline:
            raise RuntimeError("the sandbox server did not start in time")
        time.sleep(0.005)


def _serve_log_config() -> dict[str, Any]:
    """uvicorn's logging, with the access log on stderr too: stdout carries data only; the
    sandbox's own log (injected faults, unhandled errors) goes to stderr beside it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["kalixo.sandbox"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


def _announce(url: str, db_path: Path, faults: Faults) -> None:
    products = ", ".join(f"{p.sku} ({p.id})" for p in PRODUCTS if p.sku.startswith("KTEST-"))
    injected = "".join(f"  fault: {line}\n" for line in faults.describe())
    print(
        f"kalixo sandbox: serving the Kalixo API v1 at {url}/v1\n"
        f"  and the Kalixo API v2 at {url}/v2\n"
        f"  database: {db_path}\n"
        f"  point kalixo at it: export KALIXO_API_URL={url}/v1 (or {url}/v2)\n"
        "  log in with the sandbox test credentials (v1) or send its test API key (v2): "
        "README, section Sandbox\n"
        f"  test products: {products}\n"
        f"{injected}"
        "Press Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )


def serve(host: str, port: int, db_path: Path, faults: Faults | None = None) -> None:
    """Serve the sandbox in the foreground until Ctrl-C (or SIGTERM), then stop cleanly."""
    faults = faults or Faults()
    require_sandbox_stack()
    import uvicorn

    from .app import create_app

    sock = _bind(host, port)
    try:
        store = _open_store(db_path)
        try:
            config = uvicorn.Config(
                create_app(store, faults=faults),
                log_config=_serve_log_config(),
                log_level="info",
                lifespan="off",
                use_colors=sys.stderr.isatty() and not os.environ.get("NO_COLOR"),
                timeout_graceful_shutdown=5,
            )
            _announce(_url(host, sock), db_path, faults)
            # uvicorn re-raises the Ctrl-C it handled once it has shut down
            with contextlib.suppress(KeyboardInterrupt):
                uvicorn.Server(config).run(sockets=[sock])
            print("kalixo sandbox: stopped", file=sys.stderr, flush=True)
        finally:
            store.close()
    finally:
        sock.close()
