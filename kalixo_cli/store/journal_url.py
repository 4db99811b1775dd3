"""Where the journal lives: `journal_url`, this machine's SQLite file or a shared PostgreSQL.

    sqlite:///ABSOLUTE/PATH           a local file (the default: the user data folder)
    postgresql://USER@HOST:PORT/DB    a database several machines share (libpq URL)

A PostgreSQL password is never part of the URL (the URL is typed on command lines and shown
in messages): libpq takes it from PGPASSWORD or ~/.pgpass, kalixo from the OS keyring
(`kalixo journal set-password`). Every URL kalixo prints goes through `mask_url` all the same.

Pure: no database is touched here; `open_journal` picks the backend and imports it lazily
(psycopg stays off the start-up path of every command that does not use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

if TYPE_CHECKING:
    from kalixo_cli.store.journal import JournalStore

SCHEMES = ("sqlite", "postgresql", "postgres")
PASSWORD_HINT = (
    "put the password in ~/.pgpass or PGPASSWORD, or store it in the OS keyring "
    "with `kalixo journal set-password`"
)


def mask_url(url: str) -> str:
    """The URL with any password (user:PASSWORD@, ?password=) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unreadable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    query = "&".join(
        f"{key}=***" if key.lower() == "password" else f"{key}={value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_journal_url(value: str) -> str:
    """Validate a `journal_url` setting; returns it trimmed. Raises ValueError saying why."""
    text = str(value).strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError("is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("must be sqlite:///ABSOLUTE/PATH or postgresql://USER@HOST:PORT/DB")
    if scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path.endswith("/"):
            raise ValueError(
                "must be sqlite:///ABSOLUTE/PATH/journal.sqlite3 (three slashes, "
                "then an absolute path to a file)"
            )
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return text
    if parts.password is not None or any(
        key.lower() == "password" for key, _ in parse_qsl(parts.query, keep_blank_values=True)
    ):
        raise ValueError(f"must not carry a password ({mask_url(text)}): {PASSWORD_HINT}")
    if parts.fragment:
        raise ValueError("must not have a fragment")
    if not parts.path.strip("/"):
        raise ValueError("must name the database: postgresql://USER@HOST:PORT/DB")
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    return text


@dataclass(frozen=True)
class JournalLocation:
    kind: Literal["sqlite", "postgresql"]
    url: str
    path: Path | None = None

    @property
    def shared(self) -> bool:
        return self.kind == "postgresql"

    def shown(self) -> str:
        return str(self.path) if self.path is not None else mask_url(self.url)


def locate(url: str | None) -> JournalLocation:
    """The journal a (validated) `journal_url` names; None means the local default file."""
    if url is None:
        from kalixo_cli.store.journal import default_journal_path

        path = default_journal_path()
        return JournalLocation("sqlite", f"sqlite://{path}", path)
    parts = urlsplit(url)
    if parts.scheme.lower() == "sqlite":
        return JournalLocation("sqlite", url, Path(parts.path))
    return JournalLocation("postgresql", url)


def open_journal(
    location: JournalLocation, *, readonly: bool = False, password: str | None = None
) -> JournalStore:
    """The backend for `location`. A shared journal that cannot be reached raises
    JournalUnreachable (exit 5): there is never a fall-back to the local file."""
    if location.kind == "sqlite":
        from kalixo_cli.store.journal_sqlite import Journal

        assert location.path is not None
        return Journal(location.path, readonly=readonly)
    from kalixo_cli.store.journal_pg import PostgresJournal

    return PostgresJournal(location.url, readonly=readonly, password=password)
