"""Every table kalixo prints for people at a terminal, and the CSV rows beside them. Pure:
models (or the JSON a command prints) in, rich renderables out. `Output.result(data,
view=..., csv=...)` prints them; commands load this module only for a table or CSV.

Data go in as plain strings (the console neither parses markup nor lets a control character
through) or as `Text` of `sanitize.clean`ed strings; kalixo's own styles are Text styles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kalixo_cli.domain.money import format_amount
from kalixo_cli.domain.order import Order
from kalixo_cli.domain.redact import mask_pin
from kalixo_cli.domain.sanitize import clean

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kalixo_cli.domain.catalog import CatalogPages, Product
    from kalixo_cli.domain.models import OrderRequest

STATUS_STYLES = {
    "completed": "green",
    "processing": "yellow",
    "requested": "yellow",
    "partially_completed": "yellow",
    "failed": "red",
    "cancelled": "red",
    "error": "red",
}


def _status_text(status: str | None) -> Any:
    from rich.text import Text

    if status is None:
        return Text("unknown", style="dim")
    return Text(clean(status), style=STATUS_STYLES.get(status, "bold"))


# Columns beside the PIN in an order table (ID, SKU, price, quantity, padding), at their
# narrowest; below this a terminal gets the stacked view.
TABLE_BESIDE_PIN = 34
PIN_FIELDS = ("orderId", "productId", "sku", "pin")
ORDER_CSV_FIELDS = (
    "orderId",
    "externalOrderCode",
    "status",
    "currency",
    "productId",
    "sku",
    "price",
    "quantity",
    "pin",
)


def pin_rows(order: Order) -> list[dict[str, Any]]:
    """One record per delivered PIN: what --pins-out files hold."""
    return [
        {"orderId": order.orderId, "productId": product.productId, "sku": product.sku, "pin": pin}
        for product in order.products
        for pin in product.pins
    ]


def order_csv_rows(order: Order) -> list[dict[str, Any]]:
    """One row per PIN, and one (with an empty pin) per line still waiting for its PINs."""
    rows: list[dict[str, Any]] = []
    for product in order.products:
        base = {
            "orderId": order.orderId,
            "externalOrderCode": order.externalOrderCode,
            "status": order.status,
            "currency": order.currency,
            "productId": product.productId,
            "sku": product.sku,
            "price": product.price,
            "quantity": product.quantity,
        }
        rows.extend({**base, "pin": pin} for pin in product.pins or [""])
    return rows


def _line_box(plain: bool) -> Any:
    from rich import box

    return None if plain else box.SIMPLE_HEAD


def order_view(
    order: Order, *, mask_pins: bool = False, plain: bool = False, width: int = 80
) -> RenderableType:
    """A summary grid, then one table row per PIN so no PIN is ever wrapped or cut.

    `plain` (output that is not a terminal) drops the rules, leaving aligned columns; a
    terminal too narrow for the table gets each line and then its PINs on lines of their own.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("Order", str(order.orderId) if order.orderId is not None else "-")
    summary.add_row("Code", order.externalOrderCode or "-")
    summary.add_row("Status", _status_text(order.status))
    summary.add_row("Total", format_amount(order.price, order.currency))

    widest_pin = max((len(clean(pin)) for p in order.products for pin in p.pins), default=10)
    if width < widest_pin + TABLE_BESIDE_PIN:
        stacked: list[Any] = [summary, ""]
        for product in order.products:
            stacked.append(
                Text(
                    f"{product.productId} {clean(product.sku or '-')} "
                    f"{format_amount(product.price, order.currency)} x{product.quantity}",
                    style="bold",
                )
            )
            pins = [mask_pin(pin) for pin in product.pins] if mask_pins else product.pins
            stacked.extend(Text(f"  {clean(pin)}", no_wrap=True, overflow="ignore") for pin in pins)
            if not pins:
                stacked.append(Text("  (not delivered)", style="dim"))
        return Group(*stacked)
    lines = Table(box=_line_box(plain), show_edge=False, pad_edge=False)
    lines.add_column("ID", justify="right")
    lines.add_column("SKU", overflow="fold")
    lines.add_column("Unit price", justify="right", no_wrap=True, overflow="fold")
    lines.add_column("Qty", justify="right")
    # A PIN is never cut or wrapped: the other columns give way first.
    lines.add_column("PIN", no_wrap=True, min_width=widest_pin, overflow="ignore")
    for product in order.products:
        pins = [mask_pin(pin) for pin in product.pins] if mask_pins else product.pins
        first = pins[0] if pins else "(not delivered)"
        lines.add_row(
            str(product.productId) if product.productId is not None else "-",
            product.sku or "-",
            format_amount(product.price, order.currency),
            str(product.quantity) if product.quantity is not None else "-",
            first if pins else Text(first, style="dim"),
        )
        for pin in pins[1:]:
            lines.add_row("", "", "", "", pin)
    return Group(summary, "", lines)


def request_view(request: OrderRequest, *, plain: bool = False) -> RenderableType:
    """What --dry-run would send, for a person to check before spending money."""
    from rich.console import Group
    from rich.table import Table

    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("Code", request.externalOrderCode)
    summary.add_row("Total", format_amount(request.price, request.currency))
    lines = Table(box=_line_box(plain), show_edge=False, pad_edge=False)
    lines.add_column("ID", justify="right")
    lines.add_column("SKU", overflow="fold")
    lines.add_column("Unit price", justify="right", no_wrap=True)
    lines.add_column("Qty", justify="right")
    lines.add_column("Line total", justify="right", no_wrap=True)
    for line in request.orderProducts:
        lines.add_row(
            str(line.productId),
            line.sku,
            format_amount(line.price, line.currency),
            str(line.quantity),
            format_amount(line.total, line.currency),
        )
    return Group(summary, "", lines)


def settings_view(described: dict[str, Any], *, plain: bool = False) -> RenderableType:
    from rich.table import Table

    table = Table(box=_line_box(plain), show_edge=False, pad_edge=False)
    table.add_column("Key", style="bold")
    table.add_column("Value", overflow="fold")
    table.add_column("Source", overflow="fold")
    for key, entry in described.items():
        if isinstance(entry, dict):
            value = entry.get("value")
            table.add_row(key, "-" if value is None else str(value), entry.get("source") or "-")
    return table


# --------------------------------------------------------------------------------------
# The catalog: CSV rows, a product list, one product, paging notes.

CSV_FIELDS = (
    "id",
    "sku",
    "productCode",
    "name",
    "brand",
    "country",
    "category",
    "languages",
    "tags",
    "denominationType",
    "price",
    "currency",
    "denominationMin",
    "denominationMax",
    "denominationStep",
    "buyingPrice",
    "status",
)


def csv_row(product: Product) -> dict[str, Any]:
    """One CSV row: lists joined by spaces, amounts in minor units as everywhere."""
    data = product.to_json()
    row = {name: data[name] for name in CSV_FIELDS}
    for name in ("languages", "tags"):
        row[name] = " ".join(data[name])
    return row


def price_label(product: Product) -> str:
    """'32.99 GBP', or for an open denomination '5.00-100.00 GBP, step 1.00'."""
    if not product.is_open:
        return format_amount(product.price, product.currency)
    unit = f" {product.currency}" if product.currency else ""
    low = format_amount(product.denominationMin, product.currency).removesuffix(unit)
    high = format_amount(product.denominationMax, product.currency)
    label = f"{low}-{high}"
    if product.denominationStep:
        step = format_amount(product.denominationStep, product.currency).removesuffix(unit)
        label += f", step {step}"
    return label


def _box(plain: bool) -> Any:
    from rich import box

    return None if plain else box.SIMPLE_HEAD


def catalog_view(products: Sequence[Product], *, plain: bool = False) -> RenderableType:
    """One row a product; the price column shows open-denomination ranges."""
    from rich.table import Table

    table = Table(box=_box(plain), show_edge=False, pad_edge=False)
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("SKU", overflow="fold")
    table.add_column("Name", overflow="fold")
    table.add_column("Brand", overflow="fold")
    table.add_column("Country", no_wrap=True)
    table.add_column("Price", justify="right", no_wrap=True)
    for product in products:
        table.add_row(
            str(product.id),
            product.sku or "-",
            product.name or "-",
            product.brand or "-",
            product.country or "-",
            price_label(product),
        )
    return table


def product_view(product: Product) -> RenderableType:
    """Every field of one product, a line each."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, str | None]] = [
        ("ID", str(product.id)),
        ("Name", product.name),
        ("SKU", product.sku),
        ("Product code", product.productCode),
        ("Brand", product.brand),
        ("Country", product.country),
        ("Category", " / ".join(product.categories) or None),
        ("Languages", ", ".join(product.languages) or None),
        ("Tags", ", ".join(product.tags) or None),
        ("Denomination", product.denominationType),
        ("Price" if not product.is_open else "Range", price_label(product)),
    ]
    if product.is_open and product.price is not None:
        rows.append(("Default amount", format_amount(product.price, product.currency)))
    rows.append(
        (
            "Buying price",
            format_amount(product.buyingPrice, product.currency)
            if product.buyingPrice is not None
            else None,
        )
    )
    rows.append(("Status", product.status))
    for label, value in rows:
        grid.add_row(label, value if value else "-")
    return grid


def summary_lines(
    pages: CatalogPages, *, filtered_here: bool, cache_age: float | None
) -> list[str]:
    """What a listing says on stderr once it is printed: what was left out, and whether
    the answer came from the cache."""
    lines: list[str] = []
    if pages.more:
        if filtered_here:
            lines.append(
                f"showing the first {pages.listed} matches; more may match: --all lists every one"
            )
        else:
            lines.append(
                f"showing {pages.listed} of {pages.count} products: --all lists "
                "every one, --limit N another number"
            )
    if cache_age is not None:
        lines.append(cache_note(cache_age))
    return lines


def cache_note(age: float) -> str:
    return f"from the local catalog cache ({_age_text(age)} old); --refresh fetches it again"


def _age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------------
# The journal: `kalixo orders list/show` and `orders sync`.

JOURNAL_COLUMNS = ("Code", "State", "Order", "Status", "Sent (UTC)", "Host", "Error")
"""Host: which machine sent it (several do, with a shared journal)."""


def journal_cells(record: Mapping[str, Any]) -> list[str]:
    """A row as shown: outside text cleaned here, so the widths are those of what is shown."""
    return [
        clean(record["externalOrderCode"]),
        record["state"],
        "-" if record["orderId"] is None else str(record["orderId"]),
        clean(record["status"] or "-"),
        record["createdAt"].replace("T", " ").rstrip("Z"),
        clean((record.get("sentBy") or {}).get("host") or "-"),
        clean(record["error"] or ""),
    ]


def journal_view(
    records: Sequence[Mapping[str, Any]],
    plain: bool,
    widths: list[int] | None = None,
    header: bool = True,
) -> RenderableType:
    """Journal entries (their JSON form), a row each; `widths` fixed by the caller when a
    long listing is printed a chunk at a time."""
    from rich.table import Table

    table = Table(box=_box(plain), show_edge=False, pad_edge=False, show_header=header)
    for index, column in enumerate(JOURNAL_COLUMNS):
        width = widths[index] if widths else None
        table.add_column(column, overflow="fold", width=width, min_width=width)
    for record in records:
        table.add_row(*journal_cells(record))
    return table


def sync_view(records: Sequence[Mapping[str, Any]], plain: bool) -> RenderableType:
    """What `orders sync` looked at: each order's state before and now."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=_box(plain), show_edge=False, pad_edge=False)
    for column in ("Code", "Order", "Before", "Now", "Detail"):
        table.add_column(column, overflow="fold")
    for record in records:
        before = f"{record['stateBefore']} {record['statusBefore'] or ''}".strip()
        now = f"{record['state']} {record['status'] or ''}".strip()
        table.add_row(
            Text(record["externalOrderCode"]),
            "-" if record["orderId"] is None else str(record["orderId"]),
            before,
            now if record["changed"] else Text("unchanged", style="dim"),
            Text(record["detail"] or ""),
        )
    return table


BULK_OUTCOMES = {
    "placed": "placed",
    "skipped": "skipped (placed before)",
    "rejected": "rejected by the API",
    "failed": "not placed (temporary failure)",
    "unknown": "outcome unknown",
    "skipped_unknown": "skipped (outcome unknown)",
    "skipped_busy": "skipped (being sent by another run)",
}


def bulk_summary_view(counts: Mapping[str, int], not_sent: int, plain: bool) -> RenderableType:
    """A place-orders run: how many orders ended each way."""
    from rich.table import Table

    table = Table(box=_box(plain), show_edge=False, pad_edge=False)
    table.add_column("Outcome")
    table.add_column("Orders", justify="right")
    for key, label in BULK_OUTCOMES.items():
        table.add_row(label, str(counts[key]))
    if not_sent:
        table.add_row("not sent (the run stopped)", str(not_sent))
    return table


# --------------------------------------------------------------------------------------
# The account and the set-up: wallet, ping, doctor, auth status, profiles, schemas.


def _major(amount: float, currency: str) -> str:
    from kalixo_cli.domain.money import ZERO_DECIMAL_CURRENCIES

    return f"{amount:,.0f}" if currency in ZERO_DECIMAL_CURRENCIES else f"{amount:,.2f}"


def wallet_view(wallet: Mapping[str, Any], *, plain: bool = False) -> RenderableType:
    """The wallet (its JSON form): balances a currency a line (major units, as the API
    gives them), then the alert."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=_box(plain), show_edge=False, pad_edge=False)
    table.add_column("Currency", no_wrap=True)
    table.add_column("Balance", justify="right", no_wrap=True)
    for currency, amount in sorted(wallet["balances"].items()):
        table.add_row(currency, _major(amount, currency))
    threshold = "none set" if wallet["threshold"] is None else f"{wallet['threshold']:,g}"
    low = (
        Text(f"yes (alert threshold {threshold})", style="bold red")
        if wallet["lowBalance"]
        else Text(f"no (alert threshold {threshold})")
    )
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("Low balance", low)
    if not wallet["balances"]:
        return Group(Text("no balances"), "", summary)
    return Group(table, "", summary)


def ping_view(result: Mapping[str, Any]) -> RenderableType:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Status", str(result["status"] or "-"))
    grid.add_row("Server time", str(result["timestamp"] or "-"))
    trip = result["roundTripMs"]
    grid.add_row("Round trip", "-" if trip is None else f"{trip:.0f} ms")
    return grid


DOCTOR_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def doctor_view(checks: Sequence[Mapping[str, Any]], *, plain: bool = False) -> RenderableType:
    """`kalixo doctor`'s checks (their JSON form): status, name, detail and hint."""
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for check in checks:
        detail = Text(clean(check["detail"]))
        if check["hint"]:
            detail.append(f"\nhint: {clean(check['hint'])}", style="dim")
        table.add_row(
            Text(check["status"], style="" if plain else DOCTOR_STYLES[check["status"]]),
            check["check"],
            detail,
        )
    return table


def auth_status_view(report: Mapping[str, Any]) -> RenderableType:
    """`kalixo auth status`: the active credential, masked, and where it comes from."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Profile", report["profile"])
    grid.add_row("API", f"{report['apiUrl']} ({report['apiVersion']})")
    hint = "`kalixo auth set-key`" if report["apiVersion"] == "v2" else "`kalixo auth login`"
    grid.add_row(report["credential"].capitalize(), report["masked"] or f"none (run {hint})")
    grid.add_row("Source", report["source"] or "-")
    grid.add_row("Stored in", report["store"] or "-")
    for label, key in (
        ("Access expires", "accessTokenExpires"),
        ("Refresh expires", "refreshTokenExpires"),
    ):
        if report[key]:
            grid.add_row(label, report[key])
    return grid


def profiles_view(rows: Sequence[Mapping[str, Any]], *, plain: bool = False) -> RenderableType:
    """The config file's profiles, credentials masked; * marks the active one."""
    from rich.table import Table

    table = Table(box=_box(plain), show_edge=False, pad_edge=False)
    for column in ("", "Profile", "API", "Version", "Token", "API key"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            "*" if row["active"] else "",
            row["profile"],
            row["api_url"] or "-",
            row["api_version"] or "-",
            row["token"] or "-",
            row["api_key"] or "-",
        )
    return table


def schemas_view(rows: Sequence[Mapping[str, Any]], *, plain: bool = False) -> RenderableType:
    """`kalixo schema --list`: each schema's name and what it describes."""
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, show_header=not plain)
    table.add_column("Name", no_wrap=True)
    table.add_column("Describes")
    for row in rows:
        table.add_row(row["name"], row["description"])
    return table
