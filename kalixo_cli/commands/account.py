"""wallet, ping and doctor: the account's balance, and whether kalixo can talk to the API."""

import math
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import JqOption, OutputChoice, OutputOption
from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import (
    AuthRejected,
    ConfigError,
    CredentialsMissing,
    ExitCode,
    KalixoError,
    RequestRejected,
    UsageError,
)

if TYPE_CHECKING:
    from kalixo_cli.api.probe import Probe
    from kalixo_cli.api.v2 import V2Client
    from kalixo_cli.store.config import Settings

CLOCK_SKEW_LIMIT = 30.0  # seconds; beyond it, signed requests and timestamps go wrong
DOCTOR_DEADLINE = 10.0  # seconds of retrying a doctor may spend before it says "unreachable"


def _v2_client(state: AppState, what: str, hint: str) -> "V2Client":
    """The client, when the API in force is v2; else a UsageError (exit 2) saying so."""
    if state.settings().version is ApiVersion.V2:  # before a client is built (credentials)
        from kalixo_cli.api.v2 import V2Client

        client = state.client()
        if isinstance(client, V2Client):
            return client
    raise UsageError(f"API v1 has no {what} endpoint; {what} needs API v2", hint=hint)


# --------------------------------------------------------------------------------------
# wallet


def wallet(ctx: typer.Context, output: OutputOption = None, jq: JqOption = None) -> None:
    """Show the wallet: balance per currency and the low-balance alert (API v2).

    Balances are in major units, as the API gives them (196.01 is 196.01 GBP).

    Example: kalixo --profile v2 wallet -o json
    """
    state = get_state(ctx)
    state.choose_output(output)
    client = _v2_client(
        state,
        "wallet",
        hint="v1 shows the balance only inside some order answers; for the wallet use API "
        "v2: `kalixo --profile NAME wallet` with a v2 profile, or KALIXO_API_VERSION=v2 with "
        "KALIXO_API_KEY",
    )
    from kalixo_cli.terminal.views import wallet_view

    found = client.wallet().to_json()
    state.out.result(found, view=lambda plain, _: wallet_view(found, plain=plain))
    if found["lowBalance"]:
        state.out.warn(
            "the wallet balance is low (below its alert threshold); top it up "
            "before orders are refused"
        )


# --------------------------------------------------------------------------------------
# ping


def ping(ctx: typer.Context, output: OutputOption = None, jq: JqOption = None) -> None:
    """Check that the API v2 answers: its status, server time and the round trip.

    Example: kalixo ping -o json
    """
    from kalixo_cli.terminal.views import ping_view

    state = get_state(ctx)
    state.choose_output(output)
    client = _v2_client(
        state, "ping", hint="`kalixo doctor` checks connectivity and credentials on v1 and v2"
    )
    probe = client.probe()
    if probe.error is not None:
        raise probe.error
    data = probe.data if isinstance(probe.data, dict) else {}
    skew = probe.clock_skew
    result = {
        "status": data.get("status"),
        "timestamp": data.get("timestamp"),
        "roundTripMs": None if probe.round_trip_ms is None else round(probe.round_trip_ms, 1),
        "clockSkewSeconds": None if skew is None else round(skew, 1),
    }
    state.out.result(result, view=lambda plain, _: ping_view(result))
    if skew is not None and abs(skew) > CLOCK_SKEW_LIMIT:
        state.out.warn(f"this machine's clock is {_skew_text(skew)}; set it right (NTP)")


def _skew_text(skew: float) -> str:
    return f"{abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} the server's"


# --------------------------------------------------------------------------------------
# doctor

CheckStatus = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[CheckStatus, ...] = get_args(CheckStatus)
# When checks fail for several reasons, the exit code of the first reason here wins.
_EXIT_PRIORITY = (ExitCode.TEMPORARY, ExitCode.AUTH, ExitCode.JOURNAL_UNUSABLE, ExitCode.USAGE)


@dataclass(frozen=True)
class Check:
    """One line of `kalixo doctor`: ok, warn, fail, or skip (not checkable after a fail)."""

    name: str
    status: CheckStatus
    detail: str
    hint: str | None = None
    exit_code: ExitCode | None = None  # a fail's reason, for the command's exit status

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


def doctor_exit_code(checks: list[Check]) -> ExitCode:
    """0 with nothing failed; else 5 unreachable, 4 credentials, 11 journal, 2 the rest."""
    codes = {check.exit_code or ExitCode.USAGE for check in checks if check.status == "fail"}
    return next((code for code in _EXIT_PRIORITY if code in codes), ExitCode.OK)


def check_config_file(state: AppState) -> Check:
    """The config file: absent is fine; present, it must be readable TOML only we can read."""
    from kalixo_cli.store.config import config_path

    name = "config file"
    path = config_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return Check(
            name, "ok", f"none at {path}: settings come from flags, the environment and defaults"
        )
    except OSError as exc:
        return Check(name, "fail", f"cannot read {path}: {exc.strerror}", exit_code=ExitCode.USAGE)
    mode = stat.S_IMODE(info.st_mode)
    try:
        state.config_file()  # parses it (and makes a loose mode 0600, with a warning)
    except ConfigError as exc:
        return Check(name, "fail", exc.message, hint=exc.hint, exit_code=ExitCode.USAGE)
    if mode & 0o077:
        return Check(
            name,
            "warn",
            f"{path} was mode {mode:04o}, readable by others; it may "
            "hold credentials (kalixo has made it 0600)",
            hint=f"chmod 600 {path}",
        )
    return Check(name, "ok", f"{path} (mode {mode:04o})")


JOURNAL_FREE_WARN = 50 * 1024 * 1024  # below this, a busy batch could fill the disk


def check_shared_journal(state: AppState) -> Check:
    """The shared journal (journal_url = postgresql://...): it answers, accepts the
    credentials, and has the schema this kalixo needs (`kalixo journal migrate` otherwise)."""
    from kalixo_cli.domain.errors import JournalUnusable

    try:
        health = state.journal(readonly=True).health()
    except JournalUnusable as exc:
        return Check("journal", "fail", exc.message, hint=exc.hint, exit_code=exc.exit_code)
    detail = f"shared journal {health.path}: {health.entries} entries, schema {health.schema}"
    if health.problems:
        return Check(
            "journal",
            "fail",
            f"{detail}; {'; '.join(health.problems)}",
            hint="`kalixo journal migrate`",
            exit_code=ExitCode.JOURNAL_UNUSABLE,
        )
    return Check("journal", "ok", detail)


def check_journal(state: AppState) -> Check:
    """The journal: it opens, `PRAGMA integrity_check` passes, and its disk has room; or
    the shared one journal_url names answers with the right schema."""
    from kalixo_cli.domain.errors import JournalUnusable
    from kalixo_cli.store.journal_sqlite import Journal
    from kalixo_cli.store.journal_url import locate

    name = "journal"
    try:
        location = locate(state.settings().journal_url.value)
    except ConfigError:  # the profile check says what is wrong with the settings
        location = locate(None)
    if location.shared:
        return check_shared_journal(state)
    assert location.path is not None
    path = location.path
    try:
        with Journal(path, readonly=True) as journal:
            health = journal.health()
    except JournalUnusable as exc:
        return Check(name, "fail", exc.message, hint=exc.hint, exit_code=ExitCode.JOURNAL_UNUSABLE)
    free = (
        "free space unknown"
        if health.free_bytes is None
        else f"{health.free_bytes / 1024 / 1024:,.0f} MiB free"
    )
    if health.problems:
        return Check(
            name,
            "fail",
            f"{path} is damaged: {'; '.join(health.problems[:3])}",
            hint=f"do not delete it: it records every order placed from here. Keep "
            f"a copy, then recover it: `sqlite3 {path} .recover > journal.sql`",
            exit_code=ExitCode.JOURNAL_UNUSABLE,
        )
    if path.exists():
        detail = f"{path}: {health.entries} entries, schema {health.schema}, integrity ok, {free}"
    else:
        detail = f"none yet at {path} (the first order creates it); {free}"
    if health.free_bytes is not None and health.free_bytes < JOURNAL_FREE_WARN:
        return Check(
            name,
            "warn",
            detail,
            hint=f"free space on the disk of {path.parent}: "
            "an order placed while the journal cannot be written exits 10",
        )
    if path.exists() and not os.access(path, os.W_OK):
        return Check(
            name, "warn", f"{detail}; read-only: orders cannot be placed", hint=f"chmod u+w {path}"
        )
    return Check(name, "ok", detail)


def check_profile(settings: "Settings", url: str) -> Check:
    return Check(
        "profile",
        "ok",
        f"profile {settings.profile.value} ({settings.profile.source}); API "
        f"{settings.api_version.value} ({settings.api_version.source}) at {url}",
    )


def check_api_version(settings: "Settings", *, sandbox: bool) -> Check:
    from kalixo_cli.store.config import version_from_url

    name = "api version"
    version = settings.api_version.value
    if sandbox:
        return Check(name, "ok", f"API {version} on the built-in sandbox")
    url = settings.api_url.value
    in_path = version_from_url(url)
    if in_path is None:
        return Check(
            name,
            "warn",
            f"{url} does not end in /v1 or /v2; kalixo speaks "
            f"API {version} to it ({settings.api_version.source})",
            hint="make sure the URL is the base URL of that API version",
        )
    if in_path != version:
        return Check(
            name,
            "fail",
            f"API {version} ({settings.api_version.source}) but the "
            f"URL {url} is an API {in_path} URL",
            hint="make KALIXO_API_VERSION / `kalixo config set api_version` and the API URL agree",
            exit_code=ExitCode.USAGE,
        )
    return Check(name, "ok", f"API {version}, as the URL path says")


def check_credential(state: AppState, settings: "Settings") -> Check:
    from kalixo_cli.store.config import mask_secret

    name = "credential"
    if state.sandbox:
        return Check(name, "ok", "the sandbox's built-in test credential")
    credential = settings.credential
    kind = settings.version.credential_name
    if credential is None:
        return Check(
            name,
            "fail",
            f"no {kind} for profile {settings.profile.value}",
            hint=(
                "run `kalixo auth set-key` or set KALIXO_API_KEY"
                if kind == "API key"
                else "run `kalixo auth login` or `kalixo auth set-token`, or set KALIXO_TOKEN"
            ),
            exit_code=ExitCode.AUTH,
        )
    return Check(name, "ok", f"{kind} {mask_secret(credential.value)} from {credential.source}")


def network_checks(probe: "Probe", version: ApiVersion) -> list[Check]:
    """Connectivity, credential accepted and clock skew, from one request's answer."""
    what = "GET /ping" if version is ApiVersion.V2 else "GET catalog/products?take=1"
    error = probe.error
    if probe.status is None:
        message = error.message if error is not None else "no answer"
        hint = error.hint if error is not None else None
        return [
            Check(
                "connectivity",
                "fail",
                f"{what}: {message}",
                hint=hint,
                exit_code=ExitCode.TEMPORARY,
            ),
            Check("credential accepted", "skip", "not checked: the API did not answer"),
            Check("clock", "skip", "not checked: the API did not answer"),
        ]
    trip = f" in {probe.round_trip_ms:.0f} ms" if probe.round_trip_ms is not None else ""
    checks: list[Check] = []
    if probe.status == 429 or probe.status >= 500:
        checks.append(
            Check(
                "connectivity",
                "fail",
                f"{what} answered HTTP {probe.status}{trip}: the API is unavailable",
                hint=error.hint if error is not None else None,
                exit_code=ExitCode.TEMPORARY,
            )
        )
        checks.append(Check("credential accepted", "skip", "not checked: the API is unavailable"))
    else:
        checks.append(Check("connectivity", "ok", f"{probe.url} answered{trip}"))
        checks.append(_credential_accepted(probe, what, error))
    skew = probe.clock_skew
    if skew is None:
        checks.append(Check("clock", "warn", "cannot tell: the answer carried no server time"))
    elif abs(skew) > CLOCK_SKEW_LIMIT:
        checks.append(
            Check(
                "clock",
                "warn",
                f"this machine's clock is {_skew_text(skew)}",
                hint="set the clock right (NTP); expiry times and estimatedReadyAt will look wrong",
            )
        )
    else:
        checks.append(
            Check("clock", "ok", f"within {max(math.ceil(abs(skew)), 1)} s of the server's")
        )
    return checks


def _credential_accepted(probe: "Probe", what: str, error: KalixoError | None) -> Check:
    name = "credential accepted"
    if isinstance(error, AuthRejected):
        detail = f"the API refused it (HTTP {error.status}"
        detail += f": {error.server_message})" if error.server_message else ")"
        return Check(name, "fail", detail, hint=error.hint, exit_code=ExitCode.AUTH)
    if isinstance(error, RequestRejected):
        return Check(
            name,
            "fail",
            f"{what} answered HTTP {error.status}"
            + (f": {error.server_message}" if error.server_message else ""),
            hint="is the API URL the base URL of a Kalixo API?",
            exit_code=ExitCode.USAGE,
        )
    if error is not None:
        return Check(name, "fail", error.message, hint=error.hint, exit_code=error.exit_code)
    return Check(name, "ok", f"HTTP {probe.status}")


def run_checks(state: AppState) -> list[Check]:
    checks = [check_config_file(state)]
    if checks[0].status == "fail":
        return checks
    checks.append(check_journal(state))
    try:
        settings = state.settings()
    except ConfigError as exc:
        return [
            *checks,
            Check("profile", "fail", exc.message, hint=exc.hint, exit_code=ExitCode.USAGE),
        ]
    url = "the built-in sandbox" if state.sandbox else str(settings.api_url.value)
    checks.append(check_profile(settings, url))
    checks.append(check_api_version(settings, sandbox=state.sandbox))
    credential = check_credential(state, settings)
    checks.append(credential)
    unchecked = ("connectivity", "credential accepted", "clock")
    if credential.status == "fail":
        return [*checks, *(Check(name, "skip", "not checked: no credential") for name in unchecked)]
    try:
        client = state.new_client(deadline=DOCTOR_DEADLINE)
    except (UsageError, CredentialsMissing) as exc:
        checks[-1] = Check(
            credential.name, "fail", exc.message, hint=exc.hint, exit_code=exc.exit_code
        )
        return [
            *checks,
            *(Check(name, "skip", f"not checked: {exc.message}") for name in unchecked),
        ]
    return [*checks, *network_checks(client.probe(), settings.api_version.value)]


def doctor(
    ctx: typer.Context,
    output: Annotated[
        OutputChoice | None,
        typer.Option(
            "--output",
            "-o",
            show_default=False,
            help="Output format: table (default at a terminal) or json (default "
            "when piped): the list of checks.",
        ),
    ] = None,
    jq: JqOption = None,
) -> None:
    """Check the setup: config file, profile, credential, connectivity, clock.

    Each check is ok, warn or fail (skip: not checkable after a failure). Exit status 0
    when nothing failed, 5 when the API is unreachable, 4 when the credential is missing or
    refused, 2 for another failure. The credential is shown masked, never in full.

    Example: kalixo --profile v2 doctor -o json
    """
    from kalixo_cli.terminal.views import doctor_view

    state = get_state(ctx)
    state.choose_output(output)
    checks = run_checks(state)
    records = [check.to_json() for check in checks]
    state.out.result(records, view=lambda plain, _: doctor_view(records, plain=plain))
    counts = {status: sum(check.status == status for check in checks) for status in STATUSES}
    code = doctor_exit_code(checks)
    state.out.note(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
    if code != ExitCode.OK:
        raise typer.Exit(int(code))
