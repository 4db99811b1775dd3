"""Per-invocation state shared by the commands: settings, the client, output choices.

Everything is built lazily: `kalixo config path` never loads requests, and a place-order
with an invalid file fails before any credential is looked up or sandbox started.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from kalixo_cli.domain.errors import (
    UsageError,
)
from kalixo_cli.terminal.output import Output, OutputFormat
from kalixo_cli.workflows.session import Session

ENV_DEBUG = "KALIXO_DEBUG"

if TYPE_CHECKING:
    from kalixo_cli.commands.options import OrderOutputChoice, OutputChoice


class AppState(Session):
    """A command's run: the session (settings, client, journal) and the output choices."""

    def __init__(self) -> None:
        # The session's warnings (the config file's, plain http://) on this run's stderr.
        super().__init__(on_warning=lambda message: self.out.warn(message))
        self.verbose = False
        self.quiet = False
        self.no_color = False
        self.out = Output()  # this run's: made again by start()
        self.json_errors = False

    def start(self) -> None:
        if self.sandbox and self.api_url_flag:
            raise UsageError(
                "--sandbox and --api-url cannot be used together", hint="drop one of them"
            )
        self.out = Output(quiet=self.quiet, no_color=self.no_color).activate()
        if self.verbose or os.environ.get(ENV_DEBUG, "").strip() not in ("", "0"):
            from kalixo_cli.terminal import verbose

            self.verbose = True
            self.stack.callback(verbose.enable(self.redactor))

    def choose_output(
        self, requested: OutputChoice | OrderOutputChoice | None, raw: bool = False
    ) -> OutputFormat:
        allowed = [choice.value for choice in type(requested)] if requested else ["table"]
        fmt = self.out.choose(requested.value if requested else None, raw, allowed)
        # Asked for by name only: a person piping to jq should not get JSON on their screen.
        explicit = requested is not None and fmt in ("json", "jsonl")
        self.json_errors = raw or explicit
        return fmt


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
