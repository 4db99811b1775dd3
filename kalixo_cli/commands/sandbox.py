"""sandbox: run the offline emulator of the Kalixo API (v1 and v2) as a local HTTP server.

The heavy stack (fastapi, uvicorn) is imported only when the server starts, so ``--help``
stays instant and a missing ``sandbox`` extra becomes an install hint, not a traceback.
The fault-injection flags map one to one onto `kalixo_cli.sandbox.faults.Faults`.
"""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from kalixo_cli.domain.errors import UsageError

app = typer.Typer(
    help="Run the offline emulator of the Kalixo API v1 and v2 (test credentials and API key, "
    "test products, fake PINs).\n\nExample: kalixo sandbox serve --port 8000",
    no_args_is_help=True,
)

_FLAGS = {
    "latency_jitter_ms": "--latency-jitter-ms",
    "latency_ms": "--latency-ms",
    "error_rate_500": "--error-rate-500",
    "error_rate_502": "--error-rate-502",
    "hang_rate": "--hang-rate",
    "hang_seconds": "--hang-seconds",
    "drop_after_commit_rate": "--drop-after-commit",
}
_RATES_HINT = (
    "lower --error-rate-500, --error-rate-502, --hang-rate or --drop-after-commit "
    "(or their KALIXO_SANDBOX_* variables) so that they add up to 1 at most"
)


class Window(StrEnum):
    fixed = "fixed"
    sliding = "sliding"


def _rate(flag: str, env: str, help: str) -> Any:
    return typer.Option(
        flag, envvar=env, min=0.0, max=1.0, metavar="SHARE", help=help, show_default=False
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
    latency_ms: Annotated[
        float,
        typer.Option(
            "--latency-ms",
            envvar="KALIXO_SANDBOX_LATENCY_MS",
            min=0.0,
            metavar="MS",
            help="Fault: delay every request by this many milliseconds.",
            show_default=False,
        ),
    ] = 0.0,
    latency_jitter_ms: Annotated[
        float,
        typer.Option(
            "--latency-jitter-ms",
            envvar="KALIXO_SANDBOX_LATENCY_JITTER_MS",
            min=0.0,
            metavar="MS",
            help="Fault: add a random 0..MS milliseconds on top of --latency-ms.",
            show_default=False,
        ),
    ] = 0.0,
    error_rate_500: Annotated[
        float,
        _rate(
            "--error-rate-500",
            "KALIXO_SANDBOX_ERROR_RATE_500",
            "Fault: answer this share (0-1) of order requests (/v1/orders/*, /v2/orders*) 500, "
            "before any processing.",
        ),
    ] = 0.0,
    error_rate_502: Annotated[
        float,
        _rate(
            "--error-rate-502",
            "KALIXO_SANDBOX_ERROR_RATE_502",
            "Fault: answer this share (0-1) of order requests (/v1/orders/*, /v2/orders*) 502, "
            "before any processing.",
        ),
    ] = 0.0,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            "--rate-limit",
            envvar="KALIXO_SANDBOX_RATE_LIMIT",
            min=1,
            metavar="N",
            help="Fault: allow N requests a minute per token (v1) or API key (v2), then 429 with "
            "Retry-After; X-RateLimit-* headers on every answer. Kalixo documents 60 for v2; "
            "the sandbox has no limit unless set.",
            show_default=False,
        ),
    ] = None,
    rate_limit_window: Annotated[
        Window,
        typer.Option(
            "--rate-limit-window",
            envvar="KALIXO_SANDBOX_RATE_LIMIT_WINDOW",
            help="How --rate-limit counts: a fixed minute from a token's first request, or "
            "the last 60 s.",
        ),
    ] = Window.fixed,
    drop_after_commit: Annotated[
        float,
        _rate(
            "--drop-after-commit",
            "KALIXO_SANDBOX_DROP_AFTER_COMMIT",
            "Fault: for this share (0-1) of place-orders, commit the order, then drop the "
            "connection mid-answer.",
        ),
    ] = 0.0,
    hang_rate: Annotated[
        float,
        _rate(
            "--hang-rate",
            "KALIXO_SANDBOX_HANG_RATE",
            "Fault: never answer this share (0-1) of order requests (held --hang-seconds, then "
            "dropped).",
        ),
    ] = 0.0,
    hang_seconds: Annotated[
        float,
        typer.Option(
            "--hang-seconds",
            envvar="KALIXO_SANDBOX_HANG_SECONDS",
            min=0.001,
            metavar="SECONDS",
            help="How long --hang-rate holds a request before dropping it.",
        ),
    ] = 30.0,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            envvar="KALIXO_SANDBOX_SEED",
            metavar="N",
            help="Make the random faults reproducible: same seed, same requests, same faults.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the Kalixo API v1 emulator, with v2 beside it, until Ctrl-C.

    It can inject faults for testing clients: latency, 500/502 answers, a rate limit, hung
    requests, and answers dropped after the order is committed. They are off unless a
    "Fault:" flag or its KALIXO_SANDBOX_* variable turns them on. A request meets one
    random fault at most, so the 500, 502, hang and drop shares add up to 1 at most.
    Injected faults are logged on stderr.

    Example: kalixo sandbox serve --port 8000 --db ./sandbox.sqlite3
    """
    from kalixo_cli.sandbox.faults import Faults
    from kalixo_cli.sandbox.server import serve as serve_sandbox
    from kalixo_cli.sandbox.store import default_db_path

    try:
        faults = Faults(
            latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms,
            error_rate_500=error_rate_500,
            error_rate_502=error_rate_502,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            drop_after_commit_rate=drop_after_commit,
            rate_limit_per_minute=rate_limit,
            rate_limit_window=rate_limit_window.value,
            seed=seed,
        )
    except ValueError as exc:
        message = str(exc)
        for name, flag in _FLAGS.items():
            message = message.replace(name, flag)
        shares = "add up to" in message  # Faults checks the sum; the flags need naming
        raise UsageError(message, hint=_RATES_HINT if shares else None) from None
    serve_sandbox(host, port, db if db is not None else default_db_path(), faults)
