"""config: show the settings in force and where each comes from; change the file."""

from __future__ import annotations

from typing import Annotated

import typer

from kalixo_cli.config import (
    SECRET_KEYS,
    SETTABLE_KEYS,
    config_path,
    save_config,
)
from kalixo_cli.context import OutputOption, get_state
from kalixo_cli.errors import ConfigError, UsageError
from kalixo_cli.output import note, print_json, print_view

app = typer.Typer(
    help="Show and change settings.\n\nExample: kalixo config set api_url https://api.kalixo.io/v1",
    no_args_is_help=True,
)

_KEYS = ", ".join(sorted(SETTABLE_KEYS))


def _check_key(key: str) -> None:
    if key in SECRET_KEYS:
        raise UsageError(
            f"{key} is a secret and is never given on the command line",
            hint="use `kalixo auth set-token` (it prompts, or reads stdin with --with-token)",
        )
    if key not in SETTABLE_KEYS:
        raise UsageError(f"unknown setting {key!r}", hint=f"settings: {_KEYS}")


@app.command("show")
def show(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show every setting in force, its source, and the token masked.

    Example: kalixo config show -o json
    """
    state = get_state(ctx)
    fmt = state.choose_output(output)
    described = state.settings().describe()
    if fmt == "json":
        print_json(described)
    else:
        from kalixo_cli.render import settings_view

        print_view(lambda plain, _: settings_view(described, plain=plain))


@app.command("set")
def set_value(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help=f"One of: {_KEYS}.")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="The new value.")],
) -> None:
    """Change a setting in the config file.

    Example: kalixo config set timeout 60
    """
    _check_key(key)
    try:
        parsed = SETTABLE_KEYS[key](value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} {exc}") from exc
    config = get_state(ctx).config_file()
    values = dict(config.values)
    values[key] = parsed
    save_config(config.path, values)
    note(f"{key} set in {config.path}")


@app.command("unset")
def unset_value(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help=f"One of: {_KEYS}.")],
) -> None:
    """Remove a setting from the config file, so its default applies.

    Example: kalixo config unset api_url
    """
    _check_key(key)
    config = get_state(ctx).config_file()
    if key not in config.values:
        note(f"{key} was not set in {config.path}")
        return
    save_config(config.path, {k: v for k, v in config.values.items() if k != key})
    note(f"{key} removed from {config.path}")


@app.command("path")
def path() -> None:
    """Print the config file's path.

    Example: kalixo config path
    """
    typer.echo(str(config_path()))
