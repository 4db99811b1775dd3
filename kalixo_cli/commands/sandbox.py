"""sandbox: run the offline emulator of the Kalixo API v1 as a local HTTP server.

The heavy stack (fastapi, uvicorn) is imported only when the server starts, so ``--help``
stays instant and a missing ``sandbox`` extra becomes an install hint, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Run the offline emulator of the Kalixo API v1 (test credentials, test products, "
    "fake PINs).\n\nExample: kalixo sandbox serve --port 8000",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    host: Annotated[
        str,
        typer.Option(
            metavar="HOST",
            help="Address to listen on; 0.0.0.0 exposes the sandbox to your network.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, metavar="PORT", help="Port to listen on; 0 picks a free one."
        ),
    ] = 8000,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            metavar="PATH",
            dir_okay=False,
            help="SQLite file holding the sandbox's orders; kept across restarts "
            "[default: sandbox.sqlite3 in kalixo's data folder].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the Kalixo API v1 emulator over HTTP until Ctrl-C.

    Example: kalixo sandbox serve --port 8000 --db ./sandbox.sqlite3
    """
    from kalixo_cli.sandbox.server import serve as serve_sandbox
    from kalixo_cli.sandbox.store import default_db_path

    serve_sandbox(host, port, db if db is not None else default_db_path())
