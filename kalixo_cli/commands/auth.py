"""auth: credentials for the active profile: v1 tokens (login or pasted), v2 API keys.

A credential is never a command-line argument (shell history, `ps`); it comes from a hidden
prompt or stdin, and is stored in the profile's section of the 0600 config file. A password
is never stored at all.
"""

import os
import re
import sys
from typing import Annotated, Any

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import JqOption, OutputOption
from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import UsageError
from kalixo_cli.store.config import ENV_API_KEY, ENV_TOKEN, mask_secret

app = typer.Typer(
    help="Manage credentials: log in (v1), or store a token (v1) or an API key (v2).\n\n"
    "Example: kalixo auth set-token --with-token < token.txt",
    no_args_is_help=True,
)

_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{8,8192}")
SECRET_KEYS = ("token", "refresh_token", "api_key")


def _read_secret(label: str, from_stdin: bool, flag: str) -> str:
    if from_stdin:
        secret = sys.stdin.read().strip()
    elif sys.stdin.isatty():
        secret = str(typer.prompt(f"Paste your Kalixo {label}", hide_input=True)).strip()
    else:
        raise UsageError(
            f"no terminal to ask for the {label} on", hint=f"pipe it in: kalixo auth {flag}"
        )
    if not secret:
        raise UsageError(f"the {label} is empty")
    if not _TOKEN_SHAPE.fullmatch(secret):
        raise UsageError(
            f"that does not look like an {label} (one line of printable characters without spaces)"
        )
    return secret


@app.command("set-token")
def set_token(
    ctx: typer.Context,
    with_token: Annotated[
        bool, typer.Option("--with-token", help="Read the token from stdin instead of a prompt.")
    ] = False,
) -> None:
    """Store an API v1 token for the active profile (config file, mode 0600).

    Example: kalixo auth set-token --with-token < token.txt
    """
    state = get_state(ctx)
    token = _read_secret("API token", with_token, "set-token --with-token < token.txt")
    path = state.update_profile({"token": token}, remove=("refresh_token",))
    state.out.note(f"token {mask_secret(token)} saved for profile {state.profile_name()} in {path}")


@app.command("set-key")
def set_key(
    ctx: typer.Context,
    with_key: Annotated[
        bool, typer.Option("--with-key", help="Read the key from stdin instead of a prompt.")
    ] = False,
) -> None:
    """Store an API v2 key (kal_live_ or kal_test_) for the active profile.

    Example: kalixo --profile v2 auth set-key --with-key < key.txt
    """
    state = get_state(ctx)
    key = _read_secret("API key", with_key, "set-key --with-key < key.txt")
    if not key.startswith(("kal_live_", "kal_test_")):
        state.out.warn("Kalixo API keys start with kal_live_ (production) or kal_test_ (sandbox)")
    from kalixo_cli.store.config import profile_values

    changes: dict[str, Any] = {"api_key": key}
    try:
        section = profile_values(state.config_file(), state.profile_name())
    except UsageError:
        section = {}
    if "api_version" not in section and not str(section.get("api_url", "")).endswith("/v1"):
        changes["api_version"] = "v2"
    path = state.update_profile(changes)
    state.out.note(f"API key {mask_secret(key)} saved for profile {state.profile_name()} in {path}")


@app.command("login")
def login(
    ctx: typer.Context,
    email: Annotated[
        str | None, typer.Option("--email", help="The account's email (prompted if absent).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Log in to API v1 by email and password; keep the tokens, not the password.

    Example: kalixo auth login --email ops@example.com --password-stdin < password.txt
    """
    from kalixo_cli.api.auth import jwt_expiry
    from kalixo_cli.api.auth import login as sign_in
    from kalixo_cli.api.http import Transport

    state = get_state(ctx)
    settings = state.settings()
    if settings.version is not ApiVersion.V1:
        raise UsageError("login is for API v1; API v2 uses keys", hint="use `kalixo auth set-key`")
    if email is None:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask for the email on", hint="give --email")
        email = str(typer.prompt("Email")).strip()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = str(typer.prompt("Password", hide_input=True))
    else:
        raise UsageError(
            "no terminal to ask for the password on", hint="pipe it in with --password-stdin"
        )
    if not email or not password:
        raise UsageError("the email and the password must not be empty")
    state.redactor.add(password)
    transport = Transport(
        settings.api_url.value,
        None,
        timeout=settings.timeout.value,
        retries=settings.retries.value,
        allow_plain_http=state.allow_plain_http(settings.api_url.value),
    )
    try:
        tokens = sign_in(transport, email, password)
    finally:
        transport.close()
    state.redactor.add(tokens.access)
    state.redactor.add(tokens.refresh)
    path = state.update_profile({"token": tokens.access, "refresh_token": tokens.refresh})
    expires = jwt_expiry(tokens.access)
    until = f"; the access token expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    state.out.note(f"logged in as {email} for profile {state.profile_name()} ({path}){until}")


def _store(source: str) -> str:
    from kalixo_cli.store.credstore import store_name

    if source.startswith("env"):
        return "environment"
    if source.startswith("OS keyring"):
        return store_name()
    return "config file (mode 0600)"


def _status(state: AppState) -> dict[str, Any]:
    from kalixo_cli.api.auth import jwt_expiry

    settings = state.settings()
    credential = settings.credential
    report: dict[str, Any] = {
        "profile": settings.profile.value,
        "apiUrl": settings.api_url.value,
        "apiVersion": settings.api_version.value,
        "authenticated": credential is not None,
        "credential": "api key" if settings.version is ApiVersion.V2 else "token",
        "masked": mask_secret(credential.value) if credential else None,
        "source": credential.source if credential else None,
        "store": _store(credential.source) if credential else None,
        "accessTokenExpires": None,
        "refreshTokenExpires": None,
    }
    if settings.version is ApiVersion.V1 and settings.token is not None:
        expiry = jwt_expiry(settings.token.value)
        report["accessTokenExpires"] = expiry.isoformat() if expiry else None
    if settings.refresh_token is not None:
        expiry = jwt_expiry(settings.refresh_token.value)
        report["refreshTokenExpires"] = expiry.isoformat() if expiry else None
    return report


@app.command("status")
def status(ctx: typer.Context, output: OutputOption = None, jq: JqOption = None) -> None:
    """Show the active credential: its source, masked, and when it expires.

    Example: kalixo auth status -o json
    """
    from kalixo_cli.terminal.views import auth_status_view

    state = get_state(ctx)
    state.choose_output(output)
    report = _status(state)
    state.out.result(report, view=lambda plain, _: auth_status_view(report))


@app.command("logout")
def logout(ctx: typer.Context) -> None:
    """Remove the active profile's stored credentials.

    Example: kalixo auth logout
    """
    state = get_state(ctx)
    config = state.config_file()
    from kalixo_cli.store.config import profile_values

    try:
        present = [k for k in SECRET_KEYS if k in profile_values(config, state.profile_name())]
    except UsageError:
        present = []
    if present:
        path = state.update_profile({}, remove=SECRET_KEYS)
        state.out.note(f"credentials removed for profile {state.profile_name()} from {path}")
    else:
        state.out.note(f"no credentials were stored for profile {state.profile_name()}")
    for variable in (ENV_TOKEN, ENV_API_KEY):
        if os.environ.get(variable):
            state.out.warn(f"{variable} is set in the environment and still applies; unset it too")
