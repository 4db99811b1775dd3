"""Rich renderables for people at a terminal. Pure: models in, renderables out.

Data go in as plain strings (the console neither parses markup nor lets a control character
through) or as `Text` of `sanitize.clean`ed strings; kalixo's own styles are Text styles.
"""

from __future__ import annotations

from collections.abc import Sequence
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
ORDER_CSV_FIELDS = ("orderId", "externalOrderCode", "status", "currency", "productId", "sku",
                    "price", "quantity", "pin")


def pin_rows(order: Order) -> list[dict[str, Any]]:
    """One record per delivered PIN: what --pins-out files hold."""
    return [
        {"orderId": order.orderId, "productId": product.productId, "sku": product.sku,
         "pin": pin}
        for product in order.products
        for pin in product.pins
    ]


def order_csv_rows(order: Order) -> list[dict[str, Any]]:
    """One row per PIN, and one (with an empty pin) per line still waiting for its PINs."""
    rows: list[dict[str, Any]] = []
    for product in order.products:
        base = {"orderId": order.orderId, "externalOrderCode": order.externalOrderCode,
                "status": order.status, "currency": order.currency,
                "productId": product.productId, "sku": product.sku, "price": product.price,
                "quantity": product.quantity}
        rows.extend({**base, "pin": pin} for pin in product.pins or [""])
    return rows


def _line_box(plain: bool) -> Any:
    from rich import box

    return None if plain else box.SIMPLE_HEAD


def order_view(order: Order, *, mask_pins: bool = False, plain: bool = False,
               width: int = 80) -> RenderableType:
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
            stacked.append(Text(
                f"{product.productId} {clean(product.sku or '-')} "
                f"{format_amount(product.price, order.currency)} x{product.quantity}",
                style="bold",
            ))
            pins = [mask_pin(pin) for pin in product.pins] if mask_pins else product.pins
            stacked.extend(Text(f"  {clean(pin)}", no_wrap=True, overflow="ignore")
                           for pin in pins)
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
            str(line.productId), line.sku, format_amount(line.price, line.currency),
            str(line.quantity), format_amount(line.total, line.currency),
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

CSV_FIELDS = ("id", "sku", "productCode", "name", "brand", "country", "category",
              "languages", "tags", "denominationType", "price", "currency",
              "denominationMin", "denominationMax", "denominationStep", "buyingPrice", "status")


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
        table.add_row(str(product.id), product.sku or "-", product.name or "-",
                      product.brand or "-", product.country or "-", price_label(product))
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
    rows.append(("Buying price", format_amount(product.buyingPrice, product.currency)
                 if product.buyingPrice is not None else None))
    rows.append(("Status", product.status))
    for label, value in rows:
        grid.add_row(label, value if value else "-")
    return grid


def summary_lines(pages: CatalogPages, *, filtered_here: bool,
                  cache_age: float | None) -> list[str]:
    """What a listing says on stderr once it is printed: what was left out, and whether
    the answer came from the cache."""
    lines: list[str] = []
    if pages.more:
        if filtered_here:
            lines.append(f"showing the first {pages.listed} matches; more may match: "
                         "--all lists every one")
        else:
            lines.append(f"showing {pages.listed} of {pages.count} products: --all lists "
                         "every one, --limit N another number")
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
