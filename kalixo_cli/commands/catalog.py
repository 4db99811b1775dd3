"""catalog: list and show products, through the local catalog cache (kalixo_cli.domain.catalog)."""

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import JqOption, OrderOutputChoice
from kalixo_cli.domain.errors import UsageError

if TYPE_CHECKING:
    from kalixo_cli.domain.catalog import Product
    from kalixo_cli.workflows.catalog_source import CatalogSource

app = typer.Typer(
    help="Browse the catalog: products, prices and open-denomination ranges.\n\n"
    "Example: kalixo catalog list --country GB --brand Xbox",
    no_args_is_help=True,
)

DEFAULT_LIMIT = 100  # one request's worth

CatalogOutputOption = Annotated[
    OrderOutputChoice | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: table (default at a terminal), json (default when piped), "
        "jsonl (one product a line) or csv (one row a product; amounts in minor units).",
        show_default=False,
    ),
]
RefreshOption = Annotated[
    bool,
    typer.Option(
        "--refresh",
        help="Fetch from the API even when the local catalog cache "
        "has a fresh answer, and cache what comes back. Answers are kept "
        "KALIXO_CATALOG_TTL seconds (default 3600; 0 turns the cache off).",
    ),
]


def _filter_option(flag: str, what: str, example: str) -> Any:
    return typer.Option(
        flag,
        metavar="LIST",
        show_default=False,
        help=f"Only products of these {what}: a comma list, any of which matches (e.g. {example}).",
    )


def catalog_source(state: AppState, *, refresh: bool = False) -> "CatalogSource":
    """The active API's catalog through the cache: also what place-order's --product uses
    (`request_from_products(..., lookup=catalog_source(state).product, ...)`)."""
    from kalixo_cli.store.catalog_cache import (
        CatalogCache,
        cache_dir,
        catalog_ttl,
        credential_fingerprint,
    )
    from kalixo_cli.workflows.catalog_source import CatalogSource

    ttl = catalog_ttl(os.environ)
    endpoint = state.endpoint()
    return CatalogSource(
        state.client(),
        api=endpoint.journal_key,
        version=endpoint.version,
        account=credential_fingerprint(endpoint.token),
        cache=CatalogCache(cache_dir(), ttl),
        refresh=refresh,
    )


def _print_one(state: AppState, product: "Product") -> None:
    from kalixo_cli.terminal.views import CSV_FIELDS, csv_row, product_view

    state.out.result(
        product.to_json(),
        csv=(CSV_FIELDS, [csv_row(product)]),
        view=lambda plain, _: product_view(product),
    )


@app.command("list")
def list_products(
    ctx: typer.Context,
    country: Annotated[str | None, _filter_option("--country", "countries", "GB,IE")] = None,
    language: Annotated[str | None, _filter_option("--language", "languages", "en")] = None,
    brand: Annotated[str | None, _filter_option("--brand", "brands", "Xbox,PlayStation")] = None,
    category: Annotated[str | None, _filter_option("--category", "categories", "Gaming")] = None,
    tag: Annotated[str | None, _filter_option("--tag", "tags", "bestseller")] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            metavar="TEXT",
            show_default=False,
            help="Only products whose name or product code contains TEXT.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            metavar="N",
            show_default=False,
            help=f"List at most N products [default: {DEFAULT_LIMIT}].",
        ),
    ] = None,
    list_all: Annotated[
        bool,
        typer.Option("--all", help="List every product, 100 a request."),
    ] = False,
    refresh: RefreshOption = False,
    output: CatalogOutputOption = None,
    jq: JqOption = None,
) -> None:
    """List catalog products, with filters, and prices in major units.

    Filters of different kinds must all match. API v2 filters on the server; API v1 has
    no filters, so kalixo fetches the v1 catalog page by page and filters it here. jsonl
    and csv rows are printed as each page arrives.

    Example: kalixo catalog list --country GB,IE --brand Xbox -o csv
    """
    from kalixo_cli.domain.catalog import CatalogFilters
    from kalixo_cli.terminal.views import CSV_FIELDS, catalog_view, csv_row, summary_lines

    state = get_state(ctx)
    fmt = state.choose_output(output)
    if list_all and limit is not None:
        raise UsageError("--all and --limit cannot be used together", hint="drop one of them")
    filters = CatalogFilters.parse(
        country=country, language=language, brand=brand, category=category, tag=tag, search=search
    )
    wanted = None if list_all else (limit or DEFAULT_LIMIT)
    source = catalog_source(state, refresh=refresh)
    pages = source.pages(filters, limit=wanted, page_size=wanted)
    if fmt in ("jsonl", "csv"):  # a line or row as each page arrives
        state.out.result(
            None,
            jsonl=(product.to_json() for product in pages),
            csv=(CSV_FIELDS, (csv_row(product) for product in pages)),
        )
    else:
        products = list(pages)
        state.out.result(
            [product.to_json() for product in products],
            view=(lambda plain, _: catalog_view(products, plain=plain)) if products else None,
        )
    if pages.listed == 0:
        state.out.note("no products match" if not filters.empty else "the catalog is empty")
    for line in summary_lines(
        pages,
        filtered_here=not (source.filters_on_server or filters.empty),
        cache_age=source.oldest,
    ):
        state.out.note(line)


@app.command("show")
def show(
    ctx: typer.Context,
    product_id: Annotated[
        int | None,
        typer.Argument(
            metavar="ID",
            min=1,
            show_default=False,
            help="The product's id (what orders name as productId).",
        ),
    ] = None,
    ean: Annotated[
        str | None,
        typer.Option(
            "--ean",
            metavar="EAN",
            show_default=False,
            help="Find the product by its EAN (v2: its productCode) instead.",
        ),
    ] = None,
    sku: Annotated[
        str | None,
        typer.Option(
            "--sku",
            metavar="SKU",
            show_default=False,
            help="Find the product by its SKU, such as GB-EN-4251604177278.",
        ),
    ] = None,
    refresh: RefreshOption = False,
    output: CatalogOutputOption = None,
    jq: JqOption = None,
) -> None:
    """Show one product: price or open range, SKU, brand, country, tags.

    API v2 reads it by id; API v1 finds an id in the product list, and an EAN or SKU
    with its catalog/product route.

    Example: kalixo catalog show 2 -o json
    """
    state = get_state(ctx)
    state.choose_output(output)
    given = [
        name
        for name, value in (("ID", product_id), ("--ean", ean), ("--sku", sku))
        if value is not None
    ]
    if len(given) != 1:
        raise UsageError(
            "give one of ID, --ean or --sku"
            if not given
            else f"give only one of {' and '.join(given)}",
            hint="kalixo catalog show 2, or kalixo catalog show --ean 4251604177278",
        )
    for flag, value in (("--ean", ean), ("--sku", sku)):
        if value is not None and not value.strip():
            raise UsageError(f"{flag} is empty")
    source = catalog_source(state, refresh=refresh)
    if product_id is not None:
        product = source.product(product_id)
    else:
        product = source.product_by_code(
            ean=ean.strip() if ean else None, sku=sku.strip() if sku else None
        )
    _print_one(state, product)
    if source.fetched == 0 and source.oldest is not None:
        from kalixo_cli.terminal.views import cache_note

        state.out.note(cache_note(source.oldest))
