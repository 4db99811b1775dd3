"""auth: store, show (masked) and remove the API token. A token is never an argument."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer

from kalixo_cli.config import ENV_TOKEN, mask_secret, save_config
from kalixo_cli.context import OutputOption, get_state
from kalixo_cli.errors import UsageError
from kalixo_cli.output import note, print_json, print_renderable, warn

app = typer.Typer(
    help="Manage the API token.\n\nExample: kalixo auth set-token --with-token < token.txt",
    no_args_is_help=True,
)

_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{8,8192}")


def _read_token(with_token: bool) -> str:
    if with_token:
        token = sys.stdin.read().strip()
    elif sys.stdin.isatty():
        token = str(typer.prompt("Paste your Kalixo API token", hide_input=True)).strip()
    else:
        raise UsageError(
            "no terminal to ask for the token on",
            hint="pipe it in: kalixo auth set-token --with-token < token.txt",
        )
    if not token:
        raise UsageError("the token is empty")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise UsageError("that does not look like a token (it must be one line of "
                         "printable characters without spaces)")
    return token


@app.command("set-token")
def set_token(
    ctx: typer.Context,
    with_token: Annotated[
        bool, typer.Option("--with-token", help="Read the token from stdin instead of a prompt.")
    ] = False,
) -> None:
    """Store the API token in the config file (mode 0600).

    Example: kalixo auth set-token --with-token < token.txt
    """
    state = get_state(ctx)
    token = _read_token(with_token)
    config = state.config_file()
    values = dict(config.values)
    values["token"] = token
    save_config(config.path, values)
    note(f"token {mask_secret(token)} saved to {config.path}")


@app.command("status")
def status(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show where the token comes from, masked.

    Example: kalixo auth status -o json
    """
    state = get_state(ctx)
    fmt = state.choose_output(output)
    settings = state.settings()
    token = settings.token
    report = {
        "apiUrl": settings.api_url.value,
        "authenticated": token is not None,
        "token": mask_secret(token.value) if token else None,
        "source": token.source if token else None,
    }
    if fmt == "json":
        print_json(report)
    else:
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("API", settings.api_url.value)
        grid.add_row("Token", report["token"] or "none (run `kalixo auth set-token`)")
        grid.add_row("Source", report["source"] or "-")
        print_renderable(grid)


@app.command("logout")
def logout(ctx: typer.Context) -> None:
    """Remove the stored token from the config file.

    Example: kalixo auth logout
    """
    import os

    state = get_state(ctx)
    config = state.config_file()
    if "token" in config.values:
        values = {k: v for k, v in config.values.items() if k != "token"}
        save_config(config.path, values)
        note(f"token removed from {config.path}")
    else:
        note("no token was stored in the config file")
    if os.environ.get(ENV_TOKEN):
        warn(f"{ENV_TOKEN} is set in the environment and still applies; unset it too")
