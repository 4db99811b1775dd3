"""Per-invocation state shared by the commands: settings, the client, output choices.

Everything is built lazily: `kalixo config path` never loads requests, and a place-order
with an invalid file fails before any credential is looked up or sandbox started.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kalixo_cli.config import ConfigFile, Settings, config_path, load_config, resolve_settings
from kalixo_cli.errors import CredentialsMissing, UsageError
from kalixo_cli.output import OutputFormat, resolve_format, warn
from kalixo_cli.output import configure as configure_output
from kalixo_cli.redact import Redactor

ENV_DEBUG = "KALIXO_DEBUG"

if TYPE_CHECKING:
    from kalixo_cli.api.v1 import V1Client
    from kalixo_cli.journal import Journal


class OutputChoice(StrEnum):
    table = "table"
    json = "json"


class OrderOutputChoice(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


OutputOption = Annotated[
    OutputChoice | None,
    typer.Option(
        "--output", "-o",
        help="Output format: table (default at a terminal) or json (default when piped).",
        show_default=False,
    ),
]
OrderOutputOption = Annotated[
    OrderOutputChoice | None,
    typer.Option(
        "--output", "-o",
        help="Output format: table (default at a terminal), json (default when piped), "
        "jsonl (one line per order) or csv (one row per PIN).",
        show_default=False,
    ),
]
RawOption = Annotated[
    bool,
    typer.Option("--raw", help="Print the server's JSON body unchanged (implies -o json)."),
]


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (tests swap it), redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"kalixo: {self.redact(self.format(record))}\n")


@dataclass
class AppState:
    api_url_flag: str | None = None
    sandbox: bool = False
    verbose: bool = False
    quiet: bool = False
    no_color: bool = False
    redactor: Redactor = field(default_factory=Redactor)
    output_format: OutputFormat | None = None
    json_errors: bool = False
    stack: ExitStack = field(default_factory=ExitStack)
    _config: ConfigFile | None = None
    _settings: Settings | None = None
    _endpoint: Endpoint | None = None
    _client: V1Client | None = None
    _journal: Journal | None = None

    def start(self) -> None:
        if self.sandbox and self.api_url_flag:
            raise UsageError("--sandbox and --api-url cannot be used together",
                             hint="drop one of them")
        configure_output(quiet=self.quiet, no_color=self.no_color)
        if self.verbose or os.environ.get(ENV_DEBUG, "").strip() not in ("", "0"):
            self.verbose = True
            logger = logging.getLogger("kalixo")
            handler = _StderrHandler(self.redactor)
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            self.stack.callback(logger.removeHandler, handler)

    def close(self) -> None:
        self.stack.close()

    def choose_output(
        self, requested: OutputChoice | OrderOutputChoice | None, raw: bool = False
    ) -> OutputFormat:
        allowed = [choice.value for choice in type(requested)] if requested else ["table"]
        self.output_format = resolve_format(
            requested.value if requested else None, raw, allowed
        )
        # Asked for by name only: a person piping to jq should not get JSON on their screen.
        explicit = requested is not None and self.output_format in ("json", "jsonl")
        self.json_errors = raw or explicit
        return self.output_format

    def config_file(self) -> ConfigFile:
        if self._config is None:
            self._config = load_config(config_path())
            for message in self._config.warnings:
                warn(message)
        return self._config

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve_settings(
                api_url_flag=self.api_url_flag, env=os.environ, file=self.config_file()
            )
        return self._settings

    def endpoint(self) -> Endpoint:
        """Where to send requests and with what credential; starts the sandbox if asked."""
        if self._endpoint is not None:
            return self._endpoint
        settings = self.settings()
        if settings.token is not None:
            self.redactor.add(settings.token.value)
        if self.sandbox:
            self._endpoint = self._start_sandbox()
        else:
            if settings.token is None:
                raise CredentialsMissing(
                    "no API token",
                    where=f"api {settings.api_url.value}",
                    hint="run `kalixo auth set-token`, set KALIXO_TOKEN, "
                    "or try the offline sandbox with `kalixo --sandbox ...`",
                )
            self._endpoint = Endpoint(settings.api_url.value, settings.token.value,
                                      journal_key=self.journal_key())
        self.redactor.add(self._endpoint.token)
        return self._endpoint

    def new_v1_client(self, **transport_options: Any) -> V1Client:
        """A client of its own (one per thread: a requests.Session is not shared)."""
        from kalixo_cli.api.http import Transport
        from kalixo_cli.api.v1 import V1Client

        endpoint = self.endpoint()
        settings = self.settings()
        transport = Transport(
            endpoint.base_url, endpoint.token, timeout=settings.timeout.value,
            retries=settings.retries.value, **transport_options,
        )
        self.stack.callback(transport.close)
        return V1Client(transport)

    def v1_client(self) -> V1Client:
        if self._client is None:
            self._client = self.new_v1_client()
        return self._client

    def journal_key(self) -> str:
        """The API the journal files entries under, without starting or calling anything."""
        if self.sandbox:
            from kalixo_cli.sandbox.store import default_db_path

            return f"sandbox:{default_db_path()}"
        return str(self.settings().api_url.value)

    def journal(self) -> Journal:
        if self._journal is None:
            from kalixo_cli.journal import Journal, default_journal_path

            self._journal = Journal(default_journal_path())
            self.stack.callback(self._journal.close)
        return self._journal

    def _start_sandbox(self) -> Endpoint:
        """The emulator, in-process on an ephemeral loopback port, for this command only.

        Its journal key is its database, not its URL: the port changes with every run.
        """
        from kalixo_cli.sandbox.server import require_sandbox_stack

        require_sandbox_stack()
        from kalixo_cli.sandbox.auth import SANDBOX_TOKEN
        from kalixo_cli.sandbox.server import running_sandbox
        from kalixo_cli.sandbox.store import default_db_path

        self.redactor.add(SANDBOX_TOKEN)
        running = self.stack.enter_context(running_sandbox(default_db_path()))
        logging.getLogger("kalixo.sandbox").info("sandbox serving at %s", running.v1_url)
        return Endpoint(running.v1_url, SANDBOX_TOKEN, journal_key=self.journal_key())


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    token: str
    journal_key: str


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
