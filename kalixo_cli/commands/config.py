"""config: show the settings in force and where each comes from; change the file."""

from typing import Annotated

import typer

from kalixo_cli.commands.context import get_state
from kalixo_cli.commands.options import JqOption, OutputOption
from kalixo_cli.domain.errors import ConfigError, UsageError
from kalixo_cli.store.config import SECRET_KEYS, SETTABLE_KEYS, config_path

app = typer.Typer(
    help="Show and change settings.\n\nExample: kalixo config set api_url https://api.kalixo.io/v1",
    no_args_is_help=True,
)

_KEYS = ", ".join(sorted(SETTABLE_KEYS))


def _check_key(key: str) -> None:
    if key in SECRET_KEYS:
        raise UsageError(
            f"{key} is a secret and is never given on the command line",
            hint="use `kalixo auth set-token`, `auth set-key` or `auth login` (they prompt, "
            "or read stdin)",
        )
    if key not in SETTABLE_KEYS:
        raise UsageError(f"unknown setting {key!r}", hint=f"settings: {_KEYS}")


@app.command("show")
def show(ctx: typer.Context, output: OutputOption = None, jq: JqOption = None) -> None:
    """Show every setting in force, its source, and the token masked.

    Example: kalixo config show -o json
    """
    from kalixo_cli.terminal.views import settings_view

    state = get_state(ctx)
    state.choose_output(output)
    described = state.settings().describe()
    state.out.result(described, view=lambda plain, _: settings_view(described, plain=plain))


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
    state = get_state(ctx)
    path = state.update_profile({key: parsed})
    state.out.note(f"{key} set for profile {state.profile_name()} in {path}")


@app.command("unset")
def unset_value(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help=f"One of: {_KEYS}.")],
) -> None:
    """Remove a setting from the config file, so its default applies.

    Example: kalixo config unset api_url
    """
    _check_key(key)
    state = get_state(ctx)
    path = state.update_profile({}, remove=(key,))
    state.out.note(f"{key} unset for profile {state.profile_name()} in {path}")


@app.command("profiles")
def profiles(ctx: typer.Context, output: OutputOption = None, jq: JqOption = None) -> None:
    """List the profiles in the config file, credentials masked.

    Example: kalixo config profiles -o json
    """
    from kalixo_cli.store.config import mask_secret, profile_names, profile_values
    from kalixo_cli.terminal.views import profiles_view

    state = get_state(ctx)
    state.choose_output(output)
    file = state.config_file()
    active = state.settings().profile.value
    rows = []
    for name in profile_names(file):
        values = profile_values(file, name)
        rows.append(
            {
                "profile": name,
                "active": name == active,
                "api_url": values.get("api_url"),
                "api_version": values.get("api_version"),
                "token": mask_secret(values["token"]) if "token" in values else None,
                "api_key": mask_secret(values["api_key"]) if "api_key" in values else None,
            }
        )
    state.out.result(rows, view=lambda plain, _: profiles_view(rows, plain=plain))


@app.command("path")
def path() -> None:
    """Print the config file's path.

    Example: kalixo config path
    """
    typer.echo(str(config_path()))
