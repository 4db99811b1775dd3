"""The --verbose log: kalixo's loggers written to stderr, redacted.

Its own module so that `logging` is imported only when a run asks for the log.
"""

import logging
import sys
from collections.abc import Callable

from kalixo_cli.domain.redact import Redactor


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (tests swap it), redacted and cleaned
    (a logged URL or header may hold a server's control characters)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        from kalixo_cli.domain.sanitize import clean

        sys.stderr.write(f"kalixo: {clean(self.redact(self.format(record)))}\n")


def enable(redact: Redactor) -> Callable[[], None]:
    """Send kalixo's DEBUG log to stderr; returns the undo."""
    logger = logging.getLogger("kalixo")
    handler = _StderrHandler(redact)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return lambda: logger.removeHandler(handler)
