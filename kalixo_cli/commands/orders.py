"""place-order and retrieve-order: read input, call the client, hand the order to output."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from kalixo_cli.context import AppState, OrderOutputOption, RawOption, get_state
from kalixo_cli.errors import AlreadyPlaced, OrderUnsuccessful, OutcomeUnknown, UsageError
from kalixo_cli.order import Order
from kalixo_cli.output import (
    OutputFormat,
    note,
    print_csv,
    print_json,
    print_jsonl,
    print_raw,
    print_view,
)

if TYPE_CHECKING:
    from kalixo_cli.placement import Verdict


class InputFormat(StrEnum):
    json = "json"
    csv = "csv"


PinsOutOption = Annotated[
    Path | None,
    typer.Option("--pins-out", metavar="FILE", dir_okay=False,
                 help="Also save the PINs (orderId, productId, sku, pin) to FILE: CSV, or JSON "
                 "if it ends in .json; created mode 0600, never over an existing file."),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Let --pins-out replace an existing file."),
]
MaskPinsOption = Annotated[
    bool,
    typer.Option("--mask-pins", help="Mask the middle of each PIN in tables, for screens "
                 "others can see (JSON, CSV and --pins-out stay complete)."),
]


def _show_order(order: Order, raw_text: str | None, fmt: OutputFormat, *,
                mask_pins: bool) -> None:
    from kalixo_cli.render import ORDER_CSV_FIELDS, order_csv_rows, order_view

    if raw_text is not None:
        print_raw(raw_text)
    elif fmt == "json":
        print_json(order.to_json())
    elif fmt == "jsonl":
        print_jsonl([order.to_json()])
    elif fmt == "csv":
        print_csv(order_csv_rows(order), ORDER_CSV_FIELDS)
    else:
        print_view(lambda plain, width: order_view(order, mask_pins=mask_pins, plain=plain,
                                                    width=width))


def _save_pins(order: Order, pins_out: Path | None, *, force: bool) -> None:
    if pins_out is None:
        return
    from kalixo_cli.pinfile import write_pins
    from kalixo_cli.render import pin_rows

    rows = pin_rows(order)
    write_pins(pins_out, rows, force=force)
    note(f"{len(rows)} PIN{'s' if len(rows) != 1 else ''} saved to {pins_out} (mode 0600)")


def _check_pins_out(pins_out: Path | None, *, force: bool) -> None:
    if pins_out is not None:
        from kalixo_cli.pinfile import check_target

        check_target(pins_out, force=force)


def place_order(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="Order file (.json or .csv), or - to read stdin."),
    ],
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--format", help="Input format when the extension does not say "
                     "(always needed with -)."),
    ] = None,
    external_order_code: Annotated[
        str | None,
        typer.Option("--external-order-code", metavar="CODE",
                     help="Your unique code for this order (generated when absent)."),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option("--currency", metavar="CODE",
                     help="Order currency, such as GBP (for CSV without a currency column)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate and print the request; send nothing."),
    ] = False,
    output: OrderOutputOption = None,
    raw: RawOption = False,
    pins_out: PinsOutOption = None,
    force: ForceOption = False,
    mask_pins: MaskPinsOption = False,
) -> None:
    """Place an order from a JSON or CSV file and print its PINs.

    The file is validated in full before anything is sent; an invalid order is never sent.
    Prices are integers in minor units (3299 is 32.99). Without --external-order-code or
    an externalOrderCode in the file, a unique code is generated and shown.

    Example: kalixo place-order order.json -o json
    """
    from kalixo_cli import inputs

    state = get_state(ctx)
    fmt = state.choose_output(output, raw)
    _check_pins_out(pins_out, force=force)
    source_format = inputs.detect_format(file, input_format.value if input_format else None)
    data, name = inputs.read_source(file, sys.stdin.buffer)
    parsed = inputs.parse_order(
        data, name=name, fmt=source_format,
        external_order_code=external_order_code, currency=currency,
    )
    request = parsed.request
    if parsed.generated_code:
        note(f"generated externalOrderCode {request.externalOrderCode} "
             "(give --external-order-code to choose your own)")
    if dry_run:
        if fmt == "table":
            from kalixo_cli.render import request_view

            print_view(lambda plain, _: request_view(request, plain=plain))
        elif fmt == "jsonl":
            print_jsonl([request.body()])
        else:
            print_json(request.body())
        note("dry run: the order is valid; nothing was sent")
        return
    from kalixo_cli import placement

    journal = state.journal()
    api = state.endpoint().journal_key
    known = placement.check(journal, api, request)
    if not known.may_send:
        _refuse_known(state, known, request.externalOrderCode, fmt)
    result = placement.place(journal, api, state.v1_client(), request)
    order = result.order
    _show_order(order, result.answer.text if raw else None, fmt, mask_pins=mask_pins)
    _save_pins(order, pins_out, force=force)
    if order.status != "completed" and order.orderId is not None:
        note(f"order {order.orderId} is {order.status}: not every PIN is delivered yet; "
             f"fetch them later with `kalixo retrieve-order {order.orderId}`")


def _refuse_known(state: AppState, known: Verdict, code: str, fmt: OutputFormat) -> NoReturn:
    """The journal says this code was placed, or may have been: show it, send nothing."""
    from kalixo_cli.placement import resolution_hint

    entry = known.entry
    assert entry is not None
    when = entry.to_json()["createdAt"]
    if known.kind == "conflict":
        raise UsageError(
            f"externalOrderCode {code} was already sent on {when} with a different order "
            f"({entry.effective_state}); nothing was sent",
            hint="give this order a new --external-order-code",
        )
    if known.kind == "placed":
        if fmt == "json":
            print_json(entry.to_json())
        elif fmt == "jsonl":
            print_jsonl([entry.to_json()])
        raise AlreadyPlaced(
            f"order {code} was already placed on {when} as order {entry.order_id}; "
            "it was not sent again",
            hint=f"see it with `kalixo retrieve-order {entry.order_id}`; give a new "
            "--external-order-code to buy the same again",
        )
    raise OutcomeUnknown(
        f"order {code} was sent on {when} and its outcome is unknown "
        f"({entry.error or 'no answer'}); it was not sent again",
        hint=resolution_hint(code, entry),
    )


def retrieve_order(
    ctx: typer.Context,
    order_id: Annotated[
        int, typer.Argument(metavar="ORDER_ID", min=1, help="The orderId Kalixo gave the order."),
    ],
    exit_status: Annotated[
        bool,
        typer.Option("--exit-status", help="Exit 7 when the order ended failed, cancelled "
                     "or in error."),
    ] = False,
    output: OrderOutputOption = None,
    raw: RawOption = False,
    pins_out: PinsOutOption = None,
    force: ForceOption = False,
    mask_pins: MaskPinsOption = False,
) -> None:
    """Show an order's status, lines and PINs.

    Example: kalixo retrieve-order 59400 -o json
    """
    state = get_state(ctx)
    fmt = state.choose_output(output, raw)
    _check_pins_out(pins_out, force=force)
    result = state.v1_client().retrieve_order(order_id)
    order = result.order
    _show_order(order, result.answer.text if raw else None, fmt, mask_pins=mask_pins)
    _save_pins(order, pins_out, force=force)
    if exit_status and order.unsuccessful:
        raise OrderUnsuccessful(f"order {order_id} ended {order.status}")
