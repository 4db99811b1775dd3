"""schema: the JSON Schemas of kalixo's inputs and outputs, for editors and scripts."""

from enum import StrEnum
from typing import Annotated

import typer

from kalixo_cli.commands.context import get_state
from kalixo_cli.commands.options import JqOption, OutputOption
from kalixo_cli.domain.errors import UsageError


class SchemaName(StrEnum):
    """The names of `kalixo_cli.domain.schemas.SCHEMAS` (a test keeps them equal), here so that
    --help and the completions list them without loading pydantic's schema machinery."""

    order_file = "order-file"
    bulk_order = "bulk-order"
    order = "order"
    bulk_result = "bulk-result"
    error = "error"
    journal_entry = "journal-entry"
    product = "product"
    sync_result = "sync-result"
    wallet = "wallet"
    ping = "ping"
    doctor = "doctor"
    settings = "settings"
    profiles = "profiles"
    auth_status = "auth-status"


def schema(
    ctx: typer.Context,
    name: Annotated[
        SchemaName | None,
        typer.Argument(
            metavar="[NAME]", show_default=False, help="Which schema (--list describes them)."
        ),
    ] = None,
    list_names: Annotated[
        bool,
        typer.Option("--list", help="Name and describe the schemas."),
    ] = False,
    output: OutputOption = None,
    jq: JqOption = None,
) -> None:
    """Print the JSON Schema (2020-12) of what kalixo reads and prints.

    An order file, a batch order, the order JSON, a place-orders result line, the error
    object, and what every other command prints as JSON: generated from the models that
    validate and print them. Point an editor at the order-file schema and order
    files are checked as they are typed (see the README).

    Example: kalixo schema order-file > order-file.schema.json
    """
    from kalixo_cli.domain.schemas import SCHEMAS
    from kalixo_cli.domain.schemas import schema as build

    state = get_state(ctx)
    if list_names == (name is not None):
        raise UsageError(
            "give a schema NAME or --list, not both and not neither",
            hint=f"schemas: {', '.join(SCHEMAS)}",
        )
    if list_names:
        from kalixo_cli.terminal.views import schemas_view

        state.choose_output(output)
        rows = [
            {"name": key, "description": description}
            for key, (description, _build) in SCHEMAS.items()
        ]
        state.out.result(rows, view=lambda plain, _: schemas_view(rows, plain=plain))
        return
    assert name is not None
    if output is not None and output.value != "json":
        raise UsageError("a schema is JSON: -o table does not fit it", hint="drop -o")
    state.choose_output(None)
    state.out.json(build(name.value))
