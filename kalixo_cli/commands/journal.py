"""journal: set up the shared journal (PostgreSQL) and bring a machine's local journal into it.

`migrate` creates or upgrades the shared schema (versioned, idempotent); `import` copies a
machine's SQLite journal into the shared one without overwriting anything; `set-password`
keeps the database password in the OS keyring (never on the command line).
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import OutputOption
from kalixo_cli.domain.errors import ExitCode, KalixoError, UsageError

if TYPE_CHECKING:
    from kalixo_cli.store.journal_pg import PostgresJournal

app = typer.Typer(
    help="Set up the shared journal (PostgreSQL) that several machines use.\n\n"
    "Example: kalixo journal migrate",
    no_args_is_help=True,
)


class ImportConflicts(KalixoError):
    """Rows of the imported file differ from the shared journal's: reported, not copied."""

    exit_code = ExitCode.REJECTED
    kind = "import_conflicts"


def _shared(state: AppState, *, check_schema: bool = True) -> "PostgresJournal":
    """The shared journal journal_url names; a usage error when it names a local file."""
    from kalixo_cli.store.journal_url import locate

    location = locate(state.settings().journal_url.value)
    if not location.shared:
        raise UsageError(
            f"journal_url names a local journal ({location.shown()}), not a shared one",
            hint="kalixo config set journal_url postgresql://USER@HOST:5432/DB (or set "
            "KALIXO_JOURNAL_URL)",
        )
    from kalixo_cli.store.journal_pg import PostgresJournal

    password = state.journal_password()
    journal = PostgresJournal(location.url, password=password, check_schema=check_schema)
    state.stack.callback(journal.close)
    return journal


@app.command("migrate")
def migrate(ctx: typer.Context, output: OutputOption = None) -> None:
    """Create the shared journal's tables, or upgrade them to this kalixo's schema.

    Idempotent: run it again (from any machine, even several at once) and nothing changes.

    Example: kalixo journal migrate
    """

    state = get_state(ctx)
    out = state.out
    state.choose_output(output)
    journal = _shared(state, check_schema=False)
    before, after = journal.migrate()
    out.result({"journal": journal.where, "schemaBefore": before, "schema": after})
    if before is None:
        out.note(f"created the shared journal's tables in {journal.where} (schema {after})")
    elif before == after:
        out.note(f"the shared journal {journal.where} is up to date (schema {after})")
    else:
        out.note(f"upgraded the shared journal {journal.where} from schema {before} to {after}")


@app.command("import")
def import_journal(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A local journal (journal.sqlite3).")
    ],
    output: OutputOption = None,
) -> None:
    """Copy a machine's local journal into the shared one; nothing is overwritten.

    Codes the shared journal already holds the same way are left as they are; codes it
    holds differently are reported as conflicts (exit 3) and not copied.

    Example: kalixo journal import ~/.local/share/kalixo/journal.sqlite3
    """
    from kalixo_cli.store.journal_sqlite import Journal

    state = get_state(ctx)
    out = state.out
    state.choose_output(output)
    if not file.is_file():
        raise UsageError(
            f"no journal file at {file}",
            hint="the local journal is journal.sqlite3 in kalixo's data folder",
        )
    shared = _shared(state)
    source = Journal(file, readonly=True)
    state.stack.callback(source.close)
    report = shared.import_entries(source.entries())
    conflicts: list[dict[str, Any]] = [
        {
            "api": mine.api,
            "externalOrderCode": mine.code,
            "file": {
                "state": mine.effective_state,
                "orderId": mine.order_id,
                "requestHash": mine.hash,
            },
            "shared": {
                "state": theirs.effective_state,
                "orderId": theirs.order_id,
                "requestHash": theirs.hash,
                "host": theirs.owner_host,
            },
        }
        for mine, theirs in report.conflicts
    ]
    out.result(
        {
            "file": str(file),
            "journal": shared.where,
            "added": len(report.added),
            "present": len(report.present),
            "conflicts": conflicts,
        }
    )
    for item in conflicts:
        out.warn(
            f"conflict: {item['externalOrderCode']} ({item['api']}) is "
            f"{item['file']['state']} in {file} but {item['shared']['state']} in the "
            f"shared journal"
            + (f" (sent from {item['shared']['host']})" if item["shared"]["host"] else "")
            + "; not copied"
        )
    out.note(
        f"imported {len(report.added)} orders from {file} into {shared.where}; "
        f"{len(report.present)} were already there, {len(conflicts)} conflict"
    )
    if conflicts:
        raise ImportConflicts(
            f"{len(conflicts)} orders in {file} differ from the shared journal's; they were "
            "not copied and nothing was overwritten",
            hint="check each with `kalixo orders show CODE` and Kalixo; the shared journal "
            "is what every machine goes by",
        )


@app.command("set-password")
def set_password(
    ctx: typer.Context,
    with_password: Annotated[
        bool,
        typer.Option("--with-password", help="Read the password from stdin instead of a prompt."),
    ] = False,
) -> None:
    """Keep the shared journal's password in the OS keyring (per profile).

    ~/.pgpass or PGPASSWORD work too (libpq reads them); the password is never a
    command-line argument nor written to the config file.

    Example: kalixo journal set-password --with-password < pw.txt
    """
    from kalixo_cli.store import credstore
    from kalixo_cli.store.config import JOURNAL_PASSWORD_KEY

    state = get_state(ctx)
    if not credstore.available():
        raise UsageError(
            "no OS keyring is available here to keep the password in",
            hint="use ~/.pgpass (chmod 600) or PGPASSWORD instead",
        )
    if with_password:
        password = sys.stdin.read().rstrip("\n")
    elif sys.stdin.isatty():
        password = str(typer.prompt("Password of the shared journal's database", hide_input=True))
    else:
        raise UsageError(
            "no terminal to ask for the password on",
            hint="pipe it in: kalixo journal set-password --with-password",
        )
    if not password:
        raise UsageError("the password is empty")
    state.redactor.add(password)
    credstore.put(state.profile_name(), JOURNAL_PASSWORD_KEY, password)
    state.out.note(
        f"the shared journal's password is in the {credstore.store_name()} for "
        f"profile {state.profile_name()}"
    )
