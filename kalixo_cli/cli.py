"""The root command: global options, wiring of the command groups, and the error seam.

`KalixoGroup.invoke` is the one place where exceptions become a message and an exit code,
so the same rules hold under `main()` and under Typer's test runner.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from kalixo_cli import __version__
from kalixo_cli.commands import account, auth, bulk, catalog, config, journal, orders, sandbox
from kalixo_cli.context import AppState, get_state
from kalixo_cli.errors import EXIT_CODE_MEANINGS, ExitCode, KalixoError
from kalixo_cli.output import error_lines

# Global flags that may also be typed after the command name; moved before it on parsing.
_GLOBAL_FLAGS = frozenset({"--sandbox", "--verbose", "--quiet", "-q", "--no-color"})
_GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--api-url", "--profile"})


def hoist_global_options(args: list[str]) -> list[str]:
    """`kalixo retrieve-order 1 --sandbox` means `kalixo --sandbox retrieve-order 1`."""
    command_at = 0
    while command_at < len(args):
        arg = args[command_at]
        if arg == "--":
            return args
        if arg in _GLOBAL_OPTIONS_WITH_VALUE:
            command_at += 2
        elif arg.startswith("-"):
            command_at += 1
        else:
            break
    if command_at >= len(args):
        return args
    head, tail = list(args[:command_at]), list(args[command_at:])
    moved: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(tail):
        arg = tail[index]
        if arg == "--":
            kept.extend(tail[index:])
            break
        if arg in _GLOBAL_FLAGS:
            moved.append(arg)
        elif arg in _GLOBAL_OPTIONS_WITH_VALUE and index + 1 < len(tail):
            moved.extend(tail[index:index + 2])
            index += 1
        elif arg.split("=", 1)[0] in _GLOBAL_OPTIONS_WITH_VALUE and "=" in arg:
            moved.append(arg)
        else:
            kept.append(arg)
        index += 1
    return head + moved + kept


def _report(state: AppState | None, error: KalixoError) -> None:
    error_lines(error.lines(), error.hint)
    context = state.error_context() if state is not None else None
    if context:
        sys.stderr.write(f"kalixo: (profile {context['profile']}, {context['apiUrl']})\n")
    if state is not None and state.json_errors:
        data = error.to_json()
        if context:
            data["error"].update(context)
        sys.stderr.write(json.dumps(data) + "\n")


class KalixoGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KalixoError as exc:
            _report(ctx.obj if isinstance(ctx.obj, AppState) else None, exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except (typer.Exit, typer.TyperException):
            raise
        except (KeyboardInterrupt, typer.Abort):
            sys.stderr.write("\nkalixo: interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:  # a bug: say so plainly, traceback only on request
            state = ctx.obj if isinstance(ctx.obj, AppState) else None
            if state is not None and state.verbose:
                traceback.print_exc(file=sys.stderr)
            error_lines(
                [f"unexpected error: {type(exc).__name__}: {exc}"],
                "this is a bug in kalixo; run again with --verbose for the traceback "
                "and report it",
            )
            raise typer.Exit(int(ExitCode.UNEXPECTED)) from None


EXIT_CODES_HELP = "\n".join(
    f"{int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()
)

app = typer.Typer(
    cls=KalixoGroup,
    name="kalixo",
    help="Place and inspect Kalixo orders: gift cards and game keys, with their PINs.\n\n"
    "Example: kalixo --sandbox place-order examples/order.json",
    epilog=f"Exit codes:\n\n\b\n{EXIT_CODES_HELP}\n",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"kalixo {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", metavar="URL",
            help="API base URL including the version [env KALIXO_API_URL; "
            "default https://api.kalixo.io/v1].",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="NAME", help="Settings and credentials of this "
                     "profile of the config file [env KALIXO_PROFILE; default: default].",
                     show_default=False),
    ] = None,
    use_sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="Run against the built-in offline sandbox, "
                     "started for this command (test credentials, persistent data)."),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", help="Show the HTTP exchange on stderr: method, URL, "
                     "status, time, retries, correlation key; credentials and PINs masked "
                     "[env KALIXO_DEBUG=1]."),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print results only: no notes or warnings "
                     "(errors still go to stderr)."),
    ] = False,
    no_color: Annotated[
        bool,
        typer.Option("--no-color", help="No colour, even at a terminal (as NO_COLOR=1)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    state = get_state(ctx)
    state.api_url_flag = api_url
    state.profile_flag = profile
    state.sandbox = use_sandbox
    state.verbose = verbose
    state.quiet = quiet
    state.no_color = no_color
    ctx.call_on_close(state.close)
    state.start()


app.command("place-order")(orders.place_order)
app.command("retrieve-order")(orders.retrieve_order)
app.command("place-orders")(bulk.place_orders)
app.add_typer(journal.app, name="orders")
app.add_typer(auth.app, name="auth")
app.add_typer(config.app, name="config")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(catalog.app, name="catalog")
app.command("wallet")(account.wallet)
app.command("ping")(account.ping)
app.command("doctor")(account.doctor)


def main() -> None:
    app(prog_name="kalixo")
