"""place-order and retrieve-order: read input, call the client, hand the order to output."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from kalixo_cli.context import OutputOption, RawOption, get_state
from kalixo_cli.errors import OrderUnsuccessful
from kalixo_cli.order import Order
from kalixo_cli.output import note, print_json, print_raw, print_renderable


class InputFormat(StrEnum):
    json = "json"
    csv = "csv"


def _show_order(order: Order, raw_text: str | None, fmt: str) -> None:
    if raw_text is not None:
        print_raw(raw_text)
    elif fmt == "json":
        print_json(order.to_json())
    else:
        from kalixo_cli.render import order_view

        print_renderable(order_view(order))


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
    output: OutputOption = None,
    raw: RawOption = False,
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
        if fmt == "json":
            print_json(request.body())
        else:
            from kalixo_cli.render import request_view

            print_renderable(request_view(request))
        note("dry run: the order is valid; nothing was sent")
        return
    result = state.v1_client().place_order(request)
    order = result.order
    _show_order(order, result.answer.text if raw else None, fmt)
    if order.status != "completed" and order.orderId is not None:
        note(f"order {order.orderId} is {order.status}: not every PIN is delivered yet; "
             f"fetch them later with `kalixo retrieve-order {order.orderId}`")


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
    output: OutputOption = None,
    raw: RawOption = False,
) -> None:
    """Show an order's status, lines and PINs.

    Example: kalixo retrieve-order 59400 -o json
    """
    state = get_state(ctx)
    fmt = state.choose_output(output, raw)
    result = state.v1_client().retrieve_order(order_id)
    order = result.order
    _show_order(order, result.answer.text if raw else None, fmt)
    if exit_status and order.unsuccessful:
        raise OrderUnsuccessful(f"order {order_id} ended {order.status}")
