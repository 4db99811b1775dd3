"""A session with the API: settings, credentials, the client, the journal, the sandbox.

What a command needs before it can do its work, without the command line: `AppState`
(commands/context.py) is a Session with output choices, and `Kalixo` (the Python API) is
one with methods. Everything is built lazily: `kalixo config path` never loads requests,
and an invalid order file fails before any credential is looked up or sandbox started.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import (
    ConfigError,
    CredentialsMalformed,
    CredentialsMissing,
    UsageError,
)
from kalixo_cli.domain.redact import Redactor
from kalixo_cli.store.config import (
    JOURNAL_PASSWORD_KEY,
    ConfigFile,
    Settings,
    config_path,
    load_config,
    resolve_settings,
)

if TYPE_CHECKING:
    from kalixo_cli.api.base import OrderClient
    from kalixo_cli.store.journal import JournalStore

ENV_ALLOW_INSECURE_HTTP = "KALIXO_ALLOW_INSECURE_HTTP"


def log_warning(message: str) -> None:
    """Where a session's warnings go when no one says: the `kalixo` logger (the Python
    API's default; the commands print them on stderr)."""
    import logging

    logging.getLogger("kalixo").warning("%s", message)


class Session:
    """Flags as given (None: not given), and what is built from them on first use.

    `close()` ends what it started: the client's connections, the journal, the sandbox.
    (A plain class, not a dataclass: every command builds one, and start-up pays for a
    dataclass's generated code.)
    """

    def __init__(
        self,
        *,
        api_url_flag: str | None = None,
        profile_flag: str | None = None,
        sandbox: bool = False,
        on_warning: Callable[[str], None] = log_warning,
    ) -> None:
        self.api_url_flag = api_url_flag
        self.profile_flag = profile_flag
        self.sandbox = sandbox
        self.on_warning = on_warning
        self.redactor = Redactor()
        self.stack = ExitStack()
        self._config: ConfigFile | None = None
        self._settings: Settings | None = None
        self._endpoint: Endpoint | None = None
        self._client: OrderClient | None = None
        self._journal: JournalStore | None = None
        self._warned_insecure = False

    def close(self) -> None:
        self.stack.close()

    def config_file(self) -> ConfigFile:
        if self._config is None:
            self._config = load_config(config_path())
            for message in self._config.warnings:
                self.on_warning(message)
        return self._config

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve_settings(
                api_url_flag=self.api_url_flag,
                env=os.environ,
                file=self.config_file(),
                profile_flag=self.profile_flag,
            )
        return self._settings

    def endpoint(self) -> Endpoint:
        """Where to send requests and with what credential; starts the sandbox if asked."""
        if self._endpoint is not None:
            return self._endpoint
        settings = self.settings()
        for secret in (settings.token, settings.api_key, settings.refresh_token):
            if secret is not None:
                self.redactor.add(secret.value)
        version = settings.version
        if not self.sandbox:
            self.check_credentials(settings)
            self.allow_plain_http(settings.api_url.value)
        if self.sandbox:
            self._endpoint = self._start_sandbox(version)
        else:
            credential = settings.credential
            if credential is None:
                raise CredentialsMissing(
                    f"no API {'key' if version is ApiVersion.V2 else 'token'} "
                    f"for profile {settings.profile.value}",
                    where=f"api {settings.api_url.value}",
                    hint=(
                        "run `kalixo auth set-key` or set KALIXO_API_KEY"
                        if version is ApiVersion.V2
                        else "run `kalixo auth login` or `kalixo auth set-token`, or set "
                        "KALIXO_TOKEN"
                    )
                    + "; or try the offline sandbox with `kalixo --sandbox ...`",
                )
            check_key_matches_url(credential.value, settings.api_url.value)
            self._endpoint = Endpoint(
                settings.api_url.value,
                credential.value,
                journal_key=self.journal_key(),
                version=version,
            )
        self.redactor.add(self._endpoint.token)
        return self._endpoint

    def check_credentials(self, settings: Settings) -> None:
        """A malformed token or key is refused as such, before any request, never quoted."""
        from kalixo_cli.store.config import credential_problem

        used = [(settings.credential, settings.version.credential_name)]
        if settings.version is ApiVersion.V1:
            used.append((settings.refresh_token, "refresh token"))
        for secret, label in used:
            problem = credential_problem(secret.value) if secret is not None else None
            if secret is not None and problem:
                source = secret.source.removeprefix("env ")
                command = "set-key" if label == "API key" else "set-token"
                raise CredentialsMalformed(
                    f"the {label} in {source} is malformed ({problem})",
                    hint=f"copy it again, without line breaks or spaces, and store it with "
                    f"`kalixo auth {command}`"
                    + (f" or set {source}" if source.startswith("KALIXO_") else ""),
                )

    def allow_plain_http(self, url: str) -> bool:
        """Plain http:// beyond this machine only when KALIXO_ALLOW_INSECURE_HTTP=1 says
        so, with a warning on every command; otherwise the Transport refuses it (exit 2)."""
        from kalixo_cli.api.http import insecure_url

        if not insecure_url(url):
            return False
        if os.environ.get(ENV_ALLOW_INSECURE_HTTP, "").strip() not in ("1", "true", "yes"):
            return False
        if not self._warned_insecure:
            self._warned_insecure = True
            self.on_warning(
                f"{url} is plain http://: the credential and every PIN cross "
                f"the network unencrypted ({ENV_ALLOW_INSECURE_HTTP} is set)"
            )
        return True

    def new_client(self, **transport_options: Any) -> OrderClient:
        """A client of its own (one per thread: a requests.Session is not shared). The
        API version's retry rules unless `rules=` says otherwise (`kalixo api`)."""
        from kalixo_cli.api.http import Transport
        from kalixo_cli.api.retry import V1_RULES, V2_RULES

        endpoint = self.endpoint()
        settings = self.settings()
        v2 = endpoint.version is ApiVersion.V2
        rules = transport_options.pop("rules", None) or (V2_RULES if v2 else V1_RULES)
        transport = Transport(
            endpoint.base_url,
            None if v2 else endpoint.token,
            api_key=endpoint.token if v2 else None,
            rules=rules,
            timeout=settings.timeout.value,
            retries=settings.retries.value,
            allow_plain_http=not self.sandbox and self.allow_plain_http(endpoint.base_url),
            **transport_options,
        )
        self.stack.callback(transport.close)
        if v2:
            from kalixo_cli.api.v2 import V2Client

            return V2Client(transport)
        if self.refreshes(settings) and settings.refresh_token is not None:
            from kalixo_cli.api.auth import RefreshingV1Client, Tokens

            def save(tokens: Tokens) -> None:
                self.redactor.add(tokens.access)
                self.redactor.add(tokens.refresh)
                self.update_profile({"token": tokens.access, "refresh_token": tokens.refresh})

            return RefreshingV1Client(transport, settings.refresh_token.value, save)
        from kalixo_cli.api.v1 import V1Client

        return V1Client(transport)

    def refreshes(self, settings: Settings) -> bool:
        """Refresh only the stored token the stored refresh token belongs to: a credential
        given in the environment is the only one used, so a script meant for one account
        never acts as the account saved on the machine."""
        token, refresh = settings.token, settings.refresh_token
        return (
            not self.sandbox
            and token is not None
            and refresh is not None
            and not token.source.startswith("env ")
            and not refresh.source.startswith("env ")
        )

    def credential_variable(self) -> str | None:
        """The environment variable the credential in use came from, if it did."""
        if self._settings is None or self.sandbox:
            return None
        credential = self._settings.credential
        if credential is None or not credential.source.startswith("env "):
            return None
        return credential.source.removeprefix("env ")

    def profile_name(self) -> str:
        """The active profile's name, which need not exist yet (commands that write
        settings create it)."""
        from kalixo_cli.store.config import ENV_PROFILE, parse_profile_name

        for raw, source in (
            (self.profile_flag, "--profile"),
            (os.environ.get(ENV_PROFILE), f"env {ENV_PROFILE}"),
            (self.config_file().values.get("profile"), "config"),
        ):
            if raw:
                try:
                    return parse_profile_name(raw)
                except ValueError as exc:
                    raise ConfigError(f"profile {exc}", where=source) from exc
        return "default"

    def update_profile(self, changes: dict[str, Any], remove: tuple[str, ...] = ()) -> Path:
        """Set and remove keys of the active profile in the config file (0600, atomic)."""
        from kalixo_cli.store import credstore
        from kalixo_cli.store.config import (
            SECRET_KEYS,
            load_config,
            profile_values,
            save_config,
            with_profile_values,
        )

        name = self.profile_name()
        file = load_config(config_path())  # fresh: another command may have written it
        try:
            values = profile_values(file, name)
        except ConfigError:
            values = {}
        for key in remove:
            if key in SECRET_KEYS and values.get(key) == credstore.MARKER:
                credstore.delete(name, key)
        changes = {
            key: credstore.put(name, key, value) if key in SECRET_KEYS else value
            for key, value in changes.items()
        }
        values = {k: v for k, v in {**values, **changes}.items() if k not in remove}
        save_config(file.path, with_profile_values(file, name, values))
        self._config = None
        return file.path

    def client(self) -> OrderClient:
        """The client of a single-order command: its retries end at the command's deadline.

        (A bulk run makes its own clients, bounded by a retry budget instead.)"""
        if self._client is None:
            self._client = self.new_client(deadline=self.settings().deadline.value)
        return self._client

    def error_context(self) -> dict[str, str | None] | None:
        """Which profile and URL a failing command was using, once they were known (the
        sandbox's URL is known once it has started; the configured one is not in use)."""
        if self._settings is None:
            return None
        url: str | None = None
        if self._endpoint is not None:
            url = self._endpoint.base_url
        elif not self.sandbox:
            url = str(self._settings.api_url.value)
        return {"profile": str(self._settings.profile.value), "apiUrl": url}

    def journal_key(self) -> str:
        """The API the journal files entries under, without starting or calling anything."""
        if self.sandbox:
            from kalixo_cli.sandbox.store import default_db_path

            return f"sandbox:{self.settings().api_version.value}:{default_db_path()}"
        return str(self.settings().api_url.value)

    def journal(self, *, readonly: bool = False) -> JournalStore:
        """The journal `journal_url` names (this machine's file by default); `readonly` for
        commands that only read it (they work on a read-only file and create nothing).

        A shared journal that cannot be reached is an error (exit 5), never a reason to use
        the local file instead: that one does not know the other machines' orders."""
        if self._journal is None or (self._journal.readonly and not readonly):
            from kalixo_cli.store.journal_url import locate, open_journal

            location = locate(self.settings().journal_url.value)
            password = self.journal_password() if location.shared else None
            self._journal = open_journal(location, readonly=readonly, password=password)
            self.stack.callback(self._journal.close)
        return self._journal

    def journal_password(self) -> str | None:
        """The shared journal's password from the OS keyring (`kalixo journal
        set-password`), unless libpq has one of its own (PGPASSWORD; ~/.pgpass is read by
        libpq itself when none is given here)."""
        if os.environ.get("PGPASSWORD"):
            self.redactor.add(os.environ["PGPASSWORD"])
            return None
        from kalixo_cli.store import credstore

        password = credstore.get(self.profile_name(), JOURNAL_PASSWORD_KEY)
        if password:
            self.redactor.add(password)
        return password

    def _start_sandbox(self, version: ApiVersion) -> Endpoint:
        """The emulator, in-process on an ephemeral loopback port, for this command only.

        Its journal key is its database, not its URL: the port changes with every run.
        """
        from kalixo_cli.sandbox.server import require_sandbox_stack

        require_sandbox_stack()
        from kalixo_cli.sandbox import SANDBOX_API_KEY, SANDBOX_TOKEN
        from kalixo_cli.sandbox.server import running_sandbox
        from kalixo_cli.sandbox.store import default_db_path

        self.redactor.add(SANDBOX_TOKEN)
        self.redactor.add(SANDBOX_API_KEY)
        running = self.stack.enter_context(running_sandbox(default_db_path()))
        url = running.v2_url if version is ApiVersion.V2 else running.v1_url
        import logging

        logging.getLogger("kalixo.sandbox").info("sandbox serving at %s", url)
        credential = SANDBOX_API_KEY if version is ApiVersion.V2 else SANDBOX_TOKEN
        return Endpoint(url, credential, journal_key=self.journal_key(), version=version)


class Endpoint:
    """Where requests go, with what credential, and the API the journal files them under."""

    __slots__ = ("base_url", "journal_key", "token", "version")

    def __init__(
        self, base_url: str, token: str, *, journal_key: str, version: ApiVersion = ApiVersion.V1
    ) -> None:
        self.base_url = base_url
        self.token = token  # the credential: a v1 bearer token or a v2 API key
        self.journal_key = journal_key
        self.version = version


def is_sandbox_url(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return "sandbox" in host or host in ("localhost", "::1") or host.startswith("127.")


def check_key_matches_url(credential: str, url: str) -> None:
    """A live key never goes to a sandbox, nor a test key to production."""
    if credential.startswith("kal_live_") and is_sandbox_url(url):
        raise UsageError(
            f"refusing to send a live key (kal_live_...) to the sandbox at {url}",
            hint="use a kal_test_ key for the sandbox, or point --api-url at production",
        )
    if credential.startswith("kal_test_") and not is_sandbox_url(url):
        raise UsageError(
            f"refusing to send a test key (kal_test_...) to {url}, which is not a sandbox",
            hint="use your kal_live_ key for production, or point --api-url at the sandbox",
        )
