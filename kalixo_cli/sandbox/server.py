"""Running the sandbox: in a daemon thread (`running_sandbox`, for tests and embedding) or in
the foreground (`serve`, for ``kalixo sandbox serve``).

We bind the socket ourselves, so port 0 gives a free port we can report, and a busy port is
a `UsageError` with a fix rather than a traceback from inside uvicorn. fastapi and uvicorn
are imported only here and only when a server is started: importing this module stays
cheap, and `require_sandbox_stack` turns their absence into an install hint.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kalixo_cli.errors import UsageError

from .catalog import PRODUCTS
from .store import Store, StoreError

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

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen since start or `reset_counts`, optionally only one method/path
        (a path such as ``/v1/orders/place-order``, without the query string)."""
        from .app import request_log

        return request_log(self.app).count(method, path)

    def reset_counts(self) -> None:
        from .app import request_log

        request_log(self.app).reset()


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
    slow_seconds: float = 10.0,
) -> Iterator[RunningSandbox]:
    """Serve the sandbox in a daemon thread for the duration of the ``with`` block.

    Returns once the server accepts connections; on exit it shuts down gracefully and
    closes the database. uvicorn installs no signal handlers outside the main thread.
    """
    require_sandbox_stack()
    import uvicorn

    from .app import create_app

    sock = _bind(host, port)
    try:
        store = _open_store(db_path)
        try:
            app = create_app(store, clock=clock, slow_seconds=slow_seconds)
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
    """uvicorn's logging, with the access log on stderr too: stdout carries data only."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


def _announce(url: str, db_path: Path) -> None:
    products = ", ".join(f"{p.sku} ({p.id})" for p in PRODUCTS if p.sku.startswith("KTEST-"))
    print(
        f"kalixo sandbox: serving the Kalixo API v1 at {url}/v1\n"
        f"  database: {db_path}\n"
        f"  point kalixo at it: export KALIXO_API_URL={url}/v1\n"
        "  log in with the sandbox test credentials (README, section Sandbox)\n"
        f"  test products: {products}\n"
        "Press Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )


def serve(host: str, port: int, db_path: Path) -> None:
    """Serve the sandbox in the foreground until Ctrl-C (or SIGTERM), then stop cleanly."""
    require_sandbox_stack()
    import uvicorn

    from .app import create_app

    sock = _bind(host, port)
    try:
        store = _open_store(db_path)
        try:
            config = uvicorn.Config(
                create_app(store),
                log_config=_serve_log_config(),
                log_level="info",
                lifespan="off",
                use_colors=sys.stderr.isatty() and not os.environ.get("NO_COLOR"),
                timeout_graceful_shutdown=5,
            )
            _announce(_url(host, sock), db_path)
            # uvicorn re-raises the Ctrl-C it handled once it has shut down
            with contextlib.suppress(KeyboardInterrupt):
                uvicorn.Server(config).run(sockets=[sock])
            print("kalixo sandbox: stopped", file=sys.stderr, flush=True)
        finally:
            store.close()
    finally:
        sock.close()
