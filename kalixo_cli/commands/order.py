"""place-order and retrieve-order: read input, call the client, hand the order to output."""

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import JqOption, OrderOutputOption, RawOption
from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import (
    KalixoError,
    OrderUnsuccessful,
    PartiallyCompleted,
    PlacedNotRecorded,
    UsageError,
)
from kalixo_cli.domain.order import Order
from kalixo_cli.domain.sanitize import clean
from kalixo_cli.terminal.output import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kalixo_cli.api.base import OrderClient, OrderResult
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.terminal.output import CsvRows


class InputFormat(StrEnum):
    json = "json"
    csv = "csv"


PinsOutOption = Annotated[
    Path | None,
    typer.Option(
        "--pins-out",
        metavar="FILE",
        dir_okay=False,
        help="Also save the PINs (orderId, productId, sku, pin) to FILE: CSV, or JSON "
        "if it ends in .json; created mode 0600, never over an existing file.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Let --pins-out replace an existing file."),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Poll until the order leaves processing (v2 orders are "
        "asynchronous): first at estimatedReadyAt, then every --poll-interval.",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout", min=1, metavar="SECONDS", help="With --wait: give up after this long (exit 8)."
    ),
]
PollOption = Annotated[
    float,
    typer.Option(
        "--poll-interval",
        min=1,
        metavar="SECONDS",
        help="With --wait: seconds between polls after the first.",
    ),
]
MaskPinsOption = Annotated[
    bool,
    typer.Option(
        "--mask-pins",
        help="Mask the middle of each PIN in tables, for screens "
        "others can see (JSON, CSV and --pins-out stay complete).",
    ),
]


def _show_order(out: Output, order: Order, raw_text: str | None, *, mask_pins: bool) -> None:
    out.result(
        order.to_json(),
        raw=raw_text,
        csv=lambda: _order_csv(order),
        view=lambda plain, width: _order_view(order, mask_pins, plain, width),
    )


def _order_csv(order: Order) -> "CsvRows":
    from kalixo_cli.terminal.views import ORDER_CSV_FIELDS, order_csv_rows

    return ORDER_CSV_FIELDS, order_csv_rows(order)


def _order_view(order: Order, mask_pins: bool, plain: bool, width: int) -> "RenderableType":
    from kalixo_cli.terminal.views import order_view  # a table only: -o json loads no views

    return order_view(order, mask_pins=mask_pins, plain=plain, width=width)


def _save_pins(out: Output, order: Order, pins_out: Path | None, *, force: bool) -> None:
    if pins_out is None:
        return
    from kalixo_cli.terminal.pinfile import write_pins
    from kalixo_cli.terminal.views import pin_rows

    rows = pin_rows(order)
    write_pins(pins_out, rows, force=force)
    out.note(f"{len(rows)} PIN{'s' if len(rows) != 1 else ''} saved to {pins_out} (mode 0600)")


def _check_pins_out(pins_out: Path | None, *, force: bool) -> None:
    if pins_out is not None:
        from kalixo_cli.terminal.pinfile import check_target

        check_target(pins_out, force=force)


def place_order(
    ctx: typer.Context,
    file: Annotated[
        str | None,
        typer.Argument(metavar="[FILE]", help="Order file (.json or .csv), or - to read stdin."),
    ] = None,
    products: Annotated[
        list[str] | None,
        typer.Option(
            "--product",
            "-p",
            metavar="ID:QTY[:AMOUNT]",
            help="Order from the command line instead of a file: productId and "
            "quantity (and, for an open-denomination product, the amount in minor "
            "units); price, SKU and currency come from the catalog. Repeatable.",
        ),
    ] = None,
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--format",
            help="Input format when the extension does not say "
            "(with -, a first non-blank { or [ means JSON, anything else CSV).",
        ),
    ] = None,
    external_order_code: Annotated[
        str | None,
        typer.Option(
            "--external-order-code",
            metavar="CODE",
            help="Your unique code for this order (generated when absent: from "
            "the order's content and today's date, so a re-run is recognised).",
        ),
    ] = None,
    new_code: Annotated[
        bool,
        typer.Option(
            "--new-code",
            help="Generate a fresh random code: buy the same content again today, on purpose.",
        ),
    ] = False,
    currency: Annotated[
        str | None,
        typer.Option(
            "--currency",
            metavar="CODE",
            help="Order currency, such as GBP (for CSV without a currency column).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate and print the request; send nothing."),
    ] = False,
    skeleton: Annotated[
        bool,
        typer.Option(
            "--skeleton",
            help="Print a valid order file to start from, and send "
            "nothing; with --product, priced from today's catalog.",
        ),
    ] = False,
    output: OrderOutputOption = None,
    jq: JqOption = None,
    raw: RawOption = False,
    pins_out: PinsOutOption = None,
    force: ForceOption = False,
    mask_pins: MaskPinsOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    poll_interval: PollOption = 15.0,
) -> None:
    """Place an order from a JSON or CSV file and print its PINs.

    The file is validated in full before anything is sent; an invalid order is never sent.
    Prices are integers in minor units (3299 is 32.99). Without --external-order-code or
    an externalOrderCode in the file, the code is made from the order's content and today's
    date (UTC), so running the same order again today replays it instead of buying it
    twice; --new-code buys it again.

    Example: kalixo place-order order.json -o json   (or: --product 2:1 --product 6:2)
    """
    from kalixo_cli.inputs import order_file as inputs

    state = get_state(ctx)
    out = state.out
    fmt = state.choose_output(output, raw)
    if skeleton:
        _print_skeleton(state, file, products, fmt, code=external_order_code, currency=currency)
        return
    _check_pins_out(pins_out, force=force)
    if (file is None) == (not products):
        raise UsageError(
            "give an order FILE or --product, not both and not neither",
            hint="kalixo place-order order.json, or kalixo place-order --product 2:1 --product 6:2",
        )
    if new_code and external_order_code is not None:
        raise UsageError("give --external-order-code or --new-code, not both")
    if file is not None:
        explicit: inputs.OrderFormat | None = input_format.value if input_format else None
        if file != "-":
            inputs.detect_format(file, explicit)  # a bad extension fails before any read
        data, name = inputs.read_source(file, sys.stdin.buffer)
        source_format = inputs.detect_format(file, explicit, data)
        parsed = inputs.parse_order(
            data,
            name=name,
            fmt=source_format,
            external_order_code=external_order_code,
            currency=currency,
        )
        request, generated = parsed.request, parsed.generated_code
    else:
        from kalixo_cli.commands.catalog import catalog_source
        from kalixo_cli.inputs.product_spec import request_from_products

        generated = external_order_code is None
        code = external_order_code or inputs.generate_order_code()
        request = request_from_products(
            products or [], lookup=catalog_source(state).product, currency=currency, code=code
        )
    if generated and new_code:
        out.note(f"generated a new externalOrderCode {request.externalOrderCode} (--new-code)")
    elif generated:
        request = request.model_copy(
            update={
                "externalOrderCode": inputs.content_code(request, salt=state.journal().code_salt())
            }
        )
        out.note(
            f"generated externalOrderCode {request.externalOrderCode} from the order's "
            "content and today's date: the same order again today is recognised, not "
            "bought twice (--new-code buys it again; --external-order-code chooses one)"
        )
    elif new_code:
        raise UsageError(
            "--new-code is for orders without a code, and this file gives "
            f"externalOrderCode {request.externalOrderCode}",
            hint="change the code in the file to buy the same again",
        )
    state.redactor.allow(request.externalOrderCode)  # the user's own code: shown whole
    if dry_run:
        if fmt == "csv":  # a request has no PIN rows: its JSON
            out.json(request.body())
        else:
            out.result(request.body(), view=lambda plain, _: _request_view(request, plain))
        out.note("dry run: the order is valid; nothing was sent")
        return
    from kalixo_cli.workflows import placement

    journal = state.journal()
    api = state.endpoint().journal_key
    client = state.client()
    try:
        result, replayed = placement.place_or_replay(journal, api, client, request, note=out.note)
    except PlacedNotRecorded as exc:  # the answer in hand is printed before the exit 10
        if exc.result is not None:
            _finish_order(
                out,
                exc.result,
                raw=raw,
                mask_pins=mask_pins,
                pins_out=pins_out,
                force=force,
                exit_on_status=False,
            )
        raise
    if not replayed:
        _warn_low_balance(out, result)

    def finish(result: "OrderResult", *, exit_on_status: bool) -> None:
        placement.record_final(journal, api, request, result.order, warn=out.warn)
        _finish_order(
            out,
            result,
            raw=raw,
            mask_pins=mask_pins,
            pins_out=pins_out,
            force=force,
            exit_on_status=exit_on_status,
        )

    if wait:
        result = _wait(
            out,
            client,
            result,
            timeout=timeout,
            interval=poll_interval,
            in_hand=lambda latest: finish(latest, exit_on_status=False),
        )
    finish(result, exit_on_status=True)


def _request_view(request: "OrderRequest", plain: bool) -> "RenderableType":
    from kalixo_cli.terminal.views import request_view

    return request_view(request, plain=plain)


def _status_problem(order: Order) -> KalixoError | None:
    """Exit 7 for an order that ended failed, cancelled or in error; 12 for a partial one."""
    reference = order.orderId if order.orderId is not None else order.externalOrderCode
    if order.unsuccessful:
        reason = f": {order.reason}" if order.reason else ""
        return OrderUnsuccessful(
            f"order {reference} ended {order.status}{reason}",
            hint="see why with Kalixo support before ordering again",
        )
    if order.status == "partially_completed":
        short = ", ".join(
            f"product {p.productId} ({len(p.pins)} of {p.quantity})" for p in order.short_lines
        )
        return PartiallyCompleted(
            f"order {reference} was partially completed: {order.delivered} of "
            f"{order.total} codes delivered; short: {short}",
            hint="keep every delivered PIN and do not re-order the missing units: contact "
            "Kalixo support",
        )
    return None


# The README's example order (productId, unit price, SKU, quantity): what --skeleton
# starts from without --product.
SKELETON_LINES = ((2, 3299, "GB-EN-4251604177278", 1), (6, 839, "GB-EN-4251604133182", 1))


def _print_skeleton(
    state: AppState,
    file: str | None,
    products: list[str] | None,
    fmt: OutputFormat,
    *,
    code: str | None,
    currency: str | None,
) -> None:
    """An order file that place-order accepts as it is: the README's example, or with
    --product the catalog's products at today's prices. Sends nothing, records nothing."""
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.inputs import order_file as inputs

    if file is not None:
        raise UsageError(
            "--skeleton prints a new order file: it takes no FILE",
            hint="kalixo place-order --skeleton > order.json, or with "
            "--product 2:1 for catalog prices",
        )
    if fmt != "json":
        raise UsageError(
            f"--skeleton prints an order file, which is JSON: -o {fmt} does not fit it",
            hint="drop -o",
        )
    chosen = code or inputs.generate_order_code()
    if products:
        from kalixo_cli.commands.catalog import catalog_source
        from kalixo_cli.inputs.product_spec import request_from_products

        request = request_from_products(
            products, lookup=catalog_source(state).product, currency=currency, code=chosen
        )
    else:
        from pydantic import ValidationError

        unit = (currency or "GBP").strip().upper()
        try:
            request = OrderRequest.model_validate(
                {
                    "externalOrderCode": chosen,
                    "currency": unit,
                    "price": sum(price * quantity for _, price, _, quantity in SKELETON_LINES),
                    "orderProducts": [
                        {
                            "productId": product,
                            "price": price,
                            "sku": sku,
                            "currency": unit,
                            "quantity": quantity,
                        }
                        for product, price, sku, quantity in SKELETON_LINES
                    ],
                }
            )
        except ValidationError as exc:  # only --currency and --external-order-code vary
            first = exc.errors()[0]
            flag = "--currency" if "currency" in first["loc"] else "--external-order-code"
            raise UsageError(f"{flag}: {first['msg']}") from None
        state.out.note(
            "skeleton: the README's example products; `kalixo catalog list` shows "
            "what you can order, and --product ID:QTY prices them from the catalog"
        )
    state.out.json(request.body())
    state.out.note(
        f"keep externalOrderCode {request.externalOrderCode} in the file: a re-run "
        "of the same file is then never bought twice"
    )


def _warn_low_balance(out: Output, result: "OrderResult") -> None:
    from kalixo_cli.api.v2 import wallet_of

    wallet = wallet_of(result)
    if wallet is not None and wallet.low_balance:
        balances = ", ".join(
            f"{amount:,.2f} {currency}" for currency, amount in sorted(wallet.balances.items())
        )
        out.warn(
            f"the wallet is low ({balances}); top it up before it runs out "
            "(`kalixo wallet` shows it)"
        )


def _wait(
    out: Output,
    client: "OrderClient",
    result: "OrderResult",
    *,
    timeout: float,
    interval: float,
    in_hand: Callable[["OrderResult"], None],
) -> "OrderResult":
    """Poll the order until it is no longer processing; a spinner at a terminal.

    If the wait ends without it (--timeout, exit 8; or a failed poll), `in_hand` gets the
    order as last seen before the error is raised: an order in hand is never lost."""
    from kalixo_cli.workflows.waiting import PENDING, wait_for_order

    order = result.order
    if (order.status or "") not in PENDING:
        return result
    reference = order.orderId if order.orderId is not None else order.externalOrderCode
    assert reference is not None
    latest = [result]

    def fetch() -> Order:
        latest[0] = client.retrieve_order(reference)
        return latest[0].order

    spinner = _Spinner(out, f"waiting for order {reference}")
    try:
        wait_for_order(
            order,
            fetch,
            timeout=timeout,
            interval=interval,
            on_poll=lambda o, delay: spinner.update(
                f"order {reference} is {o.status}; next look in {delay:.0f} s"
            ),
        )
    except KalixoError:
        spinner.stop()
        in_hand(latest[0])
        raise
    finally:
        spinner.stop()
    return latest[0]


class _Spinner:
    """A rich spinner on stderr at a terminal (not with -q); silent otherwise."""

    def __init__(self, out: Output, text: str) -> None:
        self.status: Any = None
        if sys.stderr.isatty() and not out.quiet:
            self.status = out.console(stderr=True).status(clean(text))
            self.status.start()

    def update(self, text: str) -> None:
        if self.status is not None:
            self.status.update(clean(text))

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()


def _finish_order(
    out: Output,
    result: "OrderResult",
    *,
    raw: bool,
    mask_pins: bool,
    pins_out: Path | None,
    force: bool,
    exit_on_status: bool,
) -> None:
    """Print the order, save its PINs, then say (or, with `exit_on_status`, exit with)
    what its status means."""
    order = result.order
    _show_order(out, order, result.answer.text if raw else None, mask_pins=mask_pins)
    _save_pins(out, order, pins_out, force=force)
    reference = order.orderId if order.orderId is not None else order.externalOrderCode
    if order.status in ("processing", "requested"):
        out.note(
            f"order {reference} is {order.status}: not every PIN is delivered yet; "
            f"fetch them later with `kalixo retrieve-order {reference}` (--wait polls)"
        )
    problem = _status_problem(order)
    if problem is None:
        return
    if exit_on_status:
        raise problem
    out.warn(problem.message + (f". {problem.hint}" if problem.hint else ""))


def retrieve_order(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="ORDER_ID",
            help="The orderId Kalixo gave the order; on API v2 also your externalOrderCode.",
        ),
    ],
    exit_status: Annotated[
        bool,
        typer.Option(
            "--exit-status",
            help="Exit 7 when the order ended failed, cancelled "
            "or in error, 12 when it was partially completed.",
        ),
    ] = False,
    output: OrderOutputOption = None,
    jq: JqOption = None,
    raw: RawOption = False,
    pins_out: PinsOutOption = None,
    force: ForceOption = False,
    mask_pins: MaskPinsOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    poll_interval: PollOption = 15.0,
) -> None:
    """Show an order's status, lines and PINs.

    Example: kalixo retrieve-order 59400 -o json
    """
    state = get_state(ctx)
    state.choose_output(output, raw)
    _check_pins_out(pins_out, force=force)
    key = _reference(reference, state.settings().version)
    state.redactor.allow(reference.strip())
    client = state.client()
    result = client.retrieve_order(key)

    def finish(result: "OrderResult", *, exit_on_status: bool) -> None:
        if client.can_look_up:  # v2 leaves out what the journal and the catalog know
            from kalixo_cli.workflows.placement import complete_retrieved

            complete_retrieved(state.journal(), state.journal_key(), client, result.order)
        _finish_order(
            state.out,
            result,
            raw=raw,
            mask_pins=mask_pins,
            pins_out=pins_out,
            force=force,
            exit_on_status=exit_on_status,
        )

    if wait:
        result = _wait(
            state.out,
            client,
            result,
            timeout=timeout,
            interval=poll_interval,
            in_hand=lambda latest: finish(latest, exit_on_status=False),
        )
    finish(result, exit_on_status=exit_status)


def _reference(text: str, version: ApiVersion) -> int | str:
    """An orderId (a positive integer), or on v2 an externalOrderCode too."""
    value = text.strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    if version.finds_orders_by_code and value and value.isprintable():
        return value
    raise UsageError(
        f"ORDER_ID {text!r} is not a positive integer",
        hint="API v1 finds orders by orderId only" if version is ApiVersion.V1 else None,
    )
