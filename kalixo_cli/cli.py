"""The root command: global options, wiring of the command groups, and the error seam.

`KalixoGroup.invoke` is the one place where exceptions become a message and an exit code,
so the same rules hold under `main()` and under Typer's test runner.
"""

import sys
from gettext import gettext as _
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer._click import Command, Context, HelpFormatter
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from kalixo_cli import __version__
from kalixo_cli.domain.errors import EXIT_CODE_MEANINGS, ExitCode, FilterFailed, KalixoError
from kalixo_cli.lazy import LazyCommand, LazyCommands

if TYPE_CHECKING:
    from kalixo_cli.commands.context import AppState

# Every command, in the order `kalixo --help` lists them (commands, then groups): where it
# lives ("module:function" or "module:Typer app") and the first paragraph of its help, which
# the list shows without importing the module. A new command is one more line here;
# tests/test_lazy.py checks that each summary is the command's own.
COMMANDS: dict[str, LazyCommand] = {
    "place-order": LazyCommand(
        "kalixo_cli.commands.order:place_order",
        "Place an order from a JSON or CSV file and print its PINs.",
    ),
    "retrieve-order": LazyCommand(
        "kalixo_cli.commands.order:retrieve_order", "Show an order's status, lines and PINs."
    ),
    "place-orders": LazyCommand(
        "kalixo_cli.commands.place_orders:place_orders",
        "Place many orders from one file, each exactly once; re-runs resume.",
    ),
    "wallet": LazyCommand(
        "kalixo_cli.commands.account:wallet",
        "Show the wallet: balance per currency and the low-balance alert (API v2).",
    ),
    "ping": LazyCommand(
        "kalixo_cli.commands.account:ping",
        "Check that the API v2 answers: its status, server time and the round trip.",
    ),
    "doctor": LazyCommand(
        "kalixo_cli.commands.account:doctor",
        "Check the setup: config file, profile, credential, connectivity, clock.",
    ),
    "schema": LazyCommand(
        "kalixo_cli.commands.schema:schema",
        "Print the JSON Schema (2020-12) of what kalixo reads and prints.",
    ),
    "api": LazyCommand(
        "kalixo_cli.commands.api:api",
        "Call any path of the configured API, authenticated, and print the answer.",
    ),
    "orders": LazyCommand(
        "kalixo_cli.commands.orders:app",
        "What was sent: the journal of placed orders (this machine's, or the shared one "
        "journal_url names).",
    ),
    "journal": LazyCommand(
        "kalixo_cli.commands.journal:app",
        "Set up the shared journal (PostgreSQL) that several machines use.",
    ),
    "auth": LazyCommand(
        "kalixo_cli.commands.auth:app",
        "Manage credentials: log in (v1), or store a token (v1) or an API key (v2).",
    ),
    "config": LazyCommand("kalixo_cli.commands.config:app", "Show and change settings."),
    "sandbox": LazyCommand(
        "kalixo_cli.commands.sandbox:app",
        "Run the offline emulator of the Kalixo API v1 and v2 (test credentials and API key, "
        "test products, fake PINs).",
    ),
    "catalog": LazyCommand(
        "kalixo_cli.commands.catalog:app",
        "Browse the catalog: products, prices and open-denomination ranges.",
    ),
}

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
            moved.extend(tail[index : index + 2])
            index += 1
        elif arg.split("=", 1)[0] in _GLOBAL_OPTIONS_WITH_VALUE and "=" in arg:
            moved.append(arg)
        else:
            kept.append(arg)
        index += 1
    return head + moved + kept


def _state_of(ctx: Any) -> "AppState | None":
    from kalixo_cli.commands.context import AppState

    return ctx.obj if isinstance(ctx.obj, AppState) else None


def _redacted(value: Any, redact: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value


def _name_the_variable(state: "AppState | None", error: KalixoError) -> None:
    """A refused credential from the environment is named, so a script's owner knows which."""
    from kalixo_cli.domain.errors import AuthRejected

    variable = state.credential_variable() if state is not None else None
    if variable is not None and isinstance(error, AuthRejected) and variable not in error.message:
        error.message = error.message.replace("the credentials", f"the credential in {variable}")
        if variable not in error.message:
            error.message = f"{error.message} (credential from {variable})"
        error.hint = (
            f"fix or unset {variable}: a credential in the environment is the only "
            f"one used, never the saved one instead" + (f"; {error.hint}" if error.hint else "")
        )


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    import io
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (a test runner's buffer): nothing will flush it


def _report(state: "AppState | None", error: KalixoError) -> None:
    """The error on stderr: lines, hint, context, and with -o json a JSON object; every
    part redacted as --verbose is (a server may echo a credential) and cleaned."""
    import json

    from kalixo_cli.domain.redact import Redactor
    from kalixo_cli.domain.sanitize import clean, json_safe
    from kalixo_cli.terminal.output import Output

    _name_the_variable(state, error)
    redact = state.redactor if state is not None else Redactor()
    (state.out if state is not None else Output()).error(
        [redact(line) for line in error.lines()], redact(error.hint) if error.hint else None
    )
    context = state.error_context() if state is not None else None
    if context:
        where = redact(context["apiUrl"]) if context["apiUrl"] else "the offline sandbox"
        sys.stderr.write(clean(f"kalixo: (profile {context['profile']}, {where})") + "\n")
    if state is not None and state.json_errors:
        data = error.to_json()
        if context:
            data["error"].update(context)
        sys.stderr.write(json_safe(json.dumps(_redacted(data, redact))) + "\n")


def load_command(name: str, entry: LazyCommand) -> Command:
    """Build one command as `app.command(name)` or `app.add_typer(sub_app, name=name)` would."""
    target = entry.load_target()
    if isinstance(target, typer.Typer):
        return typer.main.get_group_from_info(
            TyperInfo(target, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )
    if not callable(target):
        raise TypeError(f"{entry.target} is neither a command function nor a Typer app")
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=target),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


def _check_filter(state: "AppState | None") -> None:
    """A command that ran to its end, whose --jq failed on a result: exit 9."""
    out = state.out if state is not None else None
    if out is not None and out.jq_failure is not None:
        program = out.jq
        raise FilterFailed(
            f"--jq {program.expression if program else ''!r} failed on "
            f"the result: {out.jq_failure}; the unfiltered JSON was printed instead",
            hint="the command itself ran (an order it placed is placed); fix the expression "
            "and filter the printed JSON (`kalixo schema --list` names the shapes)",
        )


class KalixoGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = self.lazy = LazyCommands(COMMANDS, load_command)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # names only: the default would build every command

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """TyperGroup's list of commands, from summaries: `--help` imports no command."""
        rows = [(name, self.lazy.peek(name)) for name in self.list_commands(ctx)]
        visible = [(name, command) for name, command in rows if not command.hidden]
        if not visible:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in visible)
        with formatter.section(_("Commands")):
            formatter.write_dl(
                [(name, command.get_short_help_str(limit)) for name, command in visible]
            )

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: Any) -> Any:
        try:
            result = super().invoke(ctx)
            _check_filter(_state_of(ctx))
            return result
        except KalixoError as exc:
            state = _state_of(ctx)
            if (
                not isinstance(exc, FilterFailed)
                and state is not None
                and state.out.jq_failure is not None
            ):
                state.out.error([f"--jq failed on the result: {state.out.jq_failure}"])
            _report(state, exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except (typer.Exit, typer.TyperException):
            raise
        except BrokenPipeError:  # `| head -1`: the reader has all it wanted; end as cat does
            _silence_stdout()
            raise typer.Exit(int(ExitCode.BROKEN_PIPE)) from None
        except (KeyboardInterrupt, typer.Abort):
            sys.stderr.write("\nkalixo: interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:  # a bug: say so plainly, traceback only on request
            import traceback

            from kalixo_cli.terminal.output import Output

            state = _state_of(ctx)
            if state is not None and state.verbose:
                traceback.print_exc(file=sys.stderr)
            redact = state.redactor if state is not None else str
            (state.out if state is not None else Output()).error(
                [redact(f"unexpected error: {type(exc).__name__}: {exc}")],
                "this is a bug in kalixo; run again with --verbose for the traceback and report it",
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
            "--api-url",
            metavar="URL",
            help="API base URL including the version [env KALIXO_API_URL; "
            "default https://api.kalixo.io/v1].",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="Settings and credentials of this "
            "profile of the config file [env KALIXO_PROFILE; default: default].",
            show_default=False,
        ),
    ] = None,
    use_sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Run against the built-in offline sandbox, "
            "started for this command (test credentials, persistent data).",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Show the HTTP exchange on stderr: method, URL, "
            "status, time, retries, correlation key; credentials and PINs masked "
            "[env KALIXO_DEBUG=1].",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print results only: no notes or warnings (errors still go to stderr).",
        ),
    ] = False,
    no_color: Annotated[
        bool,
        typer.Option("--no-color", help="No colour, even at a terminal (as NO_COLOR=1)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    from kalixo_cli.commands.context import get_state

    state = get_state(ctx)
    state.api_url_flag = api_url
    state.profile_flag = profile
    state.sandbox = use_sandbox
    state.verbose = verbose
    state.quiet = quiet
    state.no_color = no_color
    ctx.call_on_close(state.close)
    state.start()


def main() -> None:
    try:
        app(prog_name="kalixo")
    except BrokenPipeError:  # raised outside a command (help, usage): as quiet
        _silence_stdout()
        sys.exit(int(ExitCode.BROKEN_PIPE))
