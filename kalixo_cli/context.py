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
from typing import TYPE_CHECKING, Annotated

import typer

from kalixo_cli.config import ConfigFile, Settings, config_path, load_config, resolve_settings
from kalixo_cli.errors import CredentialsMissing, UsageError
from kalixo_cli.output import OutputFormat, resolve_format, warn

if TYPE_CHECKING:
    from kalixo_cli.api.v1 import V1Client


class OutputChoice(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputChoice | None,
    typer.Option(
        "--output", "-o",
        help="Output format: table (default at a terminal) or json (default when piped).",
        show_default=False,
    ),
]
RawOption = Annotated[
    bool,
    typer.Option("--raw", help="Print the server's JSON body unchanged (implies -o json)."),
]


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"kalixo: {self.format(record)}\n")


@dataclass
class AppState:
    api_url_flag: str | None = None
    sandbox: bool = False
    verbose: bool = False
    output_format: OutputFormat | None = None
    json_errors: bool = False
    stack: ExitStack = field(default_factory=ExitStack)
    _config: ConfigFile | None = None
    _settings: Settings | None = None

    def start(self) -> None:
        if self.sandbox and self.api_url_flag:
            raise UsageError("--sandbox and --api-url cannot be used together",
                             hint="drop one of them")
        if self.verbose:
            logger = logging.getLogger("kalixo")
            handler = _StderrHandler()
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            self.stack.callback(logger.removeHandler, handler)

    def close(self) -> None:
        self.stack.close()

    def choose_output(self, requested: OutputChoice | None, raw: bool = False) -> OutputFormat:
        self.output_format = resolve_format(requested.value if requested else None, raw)
        # Asked for by name only: a person piping to jq should not get JSON on their screen.
        self.json_errors = raw or requested is OutputChoice.json
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

    def v1_client(self) -> V1Client:
        from kalixo_cli.api.http import Transport
        from kalixo_cli.api.v1 import V1Client

        settings = self.settings()
        if self.sandbox:
            base_url, token = self._start_sandbox()
        else:
            if settings.token is None:
                raise CredentialsMissing(
                    "no API token",
                    where=f"api {settings.api_url.value}",
                    hint="run `kalixo auth set-token`, set KALIXO_TOKEN, "
                    "or try the offline sandbox with `kalixo --sandbox ...`",
                )
            base_url, token = settings.api_url.value, settings.token.value
        transport = Transport(
            base_url, token, timeout=settings.timeout.value, retries=settings.retries.value
        )
        self.stack.callback(transport.close)
        return V1Client(transport)

    def _start_sandbox(self) -> tuple[str, str]:
        """The emulator, in-process on an ephemeral loopback port, for this command only."""
        from kalixo_cli.sandbox.server import require_sandbox_stack

        require_sandbox_stack()
        from kalixo_cli.sandbox.auth import SANDBOX_TOKEN
        from kalixo_cli.sandbox.server import running_sandbox
        from kalixo_cli.sandbox.store import default_db_path

        running = self.stack.enter_context(running_sandbox(default_db_path()))
        logging.getLogger("kalixo.sandbox").info("sandbox serving at %s", running.v1_url)
        return running.v1_url, SANDBOX_TOKEN


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
