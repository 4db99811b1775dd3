"""--pins-out: PINs written to a file only the user can read, never over an existing one.

The file is created with O_EXCL and mode 0600 whatever the umask, so no other user ever sees
a PIN, and an earlier export is never clobbered by accident (--force replaces it atomically).
Checked before an order is placed, so a bad path can't cost money and lose the PINs.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kalixo_cli.domain.errors import PinsNotSaved, UsageError
from kalixo_cli.terminal.views import PIN_FIELDS


def check_target(path: Path, *, force: bool) -> None:
    """Everything that can be known before an order is sent (exit 2, nothing sent)."""
    if path.is_symlink() and not path.exists():
        raise UsageError(
            f"--pins-out {path} is a symbolic link to {os.readlink(path)}, which does not "
            "exist; refusing to write PINs through it",
            hint="name a regular file in a folder you own",
        )
    if path.is_dir():
        raise UsageError(f"--pins-out {path} is a directory", hint="name a file")
    if path.exists() and not force:
        raise UsageError(
            f"--pins-out {path} already exists; refusing to overwrite PINs",
            hint="choose another file, or add --force to replace it",
        )
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(
            f"--pins-out {path}: folder {folder} does not exist",
            hint="create it first, or name a file in an existing folder",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(
            f"--pins-out {path}: folder {folder} is not writable",
            hint="name a file in a folder you can write to",
        )


def render_pins(rows: Sequence[dict[str, Any]], path: Path) -> bytes:
    """JSON with unsafe characters as \\u escapes; CSV with every cell cleaned and a
    would-be formula defused (`sanitize`), since this file is opened in spreadsheets."""
    from kalixo_cli.domain.sanitize import json_safe
    from kalixo_cli.terminal.output import csv_rows

    if path.suffix.lower() == ".json":
        return (json_safe(json.dumps(list(rows), indent=2, ensure_ascii=False)) + "\n").encode()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(PIN_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(rows))
    return buffer.getvalue().encode()


def _create_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_pins(path: Path, rows: Sequence[dict[str, Any]], *, force: bool) -> None:
    data = render_pins(rows, path)
    try:
        if force:
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                _create_private(temporary, data)
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        else:
            _create_private(path, data)
    except OSError as exc:
        raise PinsNotSaved(
            f"could not write the PINs to {path}: {exc.strerror}; the order itself succeeded "
            "and its PINs are in the output above",
            hint="save them again with `kalixo retrieve-order ID --pins-out FILE`",
        ) from exc
