"""Settings: flag > environment > config file > default, and the 0600 TOML file behind them.

The config file holds the API token, so it is created 0600 in a 0700 folder whatever the
umask, written atomically, and a copy that others can read is repaired with a warning.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import ConfigError

APP_NAME = "kalixo"
DEFAULT_API_URL = "https://api.kalixo.io/v1"
DEFAULT_API_URLS = {"v1": DEFAULT_API_URL, "v2": "https://api.kalixo.io/v2"}
API_VERSIONS = tuple(version.value for version in ApiVersion)
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3

ENV_API_URL = "KALIXO_API_URL"
ENV_TOKEN = "KALIXO_TOKEN"
ENV_TIMEOUT = "KALIXO_TIMEOUT"
ENV_RETRIES = "KALIXO_RETRIES"
ENV_DEADLINE = "KALIXO_DEADLINE"
DEFAULT_DEADLINE = 120.0
ENV_API_VERSION = "KALIXO_API_VERSION"
ENV_API_KEY = "KALIXO_API_KEY"
ENV_PROFILE = "KALIXO_PROFILE"
ENV_JOURNAL_URL = "KALIXO_JOURNAL_URL"
JOURNAL_PASSWORD_KEY = "journal_password"
"""The shared journal's password, in the OS keyring only (never in the config file)."""

SECRET_KEYS = frozenset({"token", "api_key", "refresh_token"})


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME))


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME))


def config_path() -> Path:
    return config_dir() / "config.toml"


# --------------------------------------------------------------------------------------
# Validation of single values, shared by `config set`, the environment and the file.


def parse_api_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://api.kalixo.io/v1")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use `kalixo auth set-token`")
    return value.strip().rstrip("/")


def parse_api_version(value: str) -> ApiVersion:
    text = str(value).strip().lower()
    if text not in API_VERSIONS:
        raise ValueError(f"must be one of {', '.join(API_VERSIONS)}")
    return ApiVersion(text)


def version_from_url(url: str) -> ApiVersion | None:
    """Kalixo writes the version into the base URL: .../v1 or .../v2."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].lower()
    return ApiVersion(last) if last in API_VERSIONS else None


def parse_profile_name(value: str) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", text):
        raise ValueError("must be a name of letters, digits, '.', '_' or '-'")
    return text


def parse_timeout(value: str | float | int) -> float:
    number = float(value)
    if isinstance(value, bool) or not math.isfinite(number) or not 0 < number <= 600:
        raise ValueError("must be a number of seconds between 0 and 600")
    return number


def parse_deadline(value: str | float | int) -> float:
    number = float(value)
    if isinstance(value, bool) or not math.isfinite(number) or not 1 <= number <= 86400:
        raise ValueError("must be a number of seconds between 1 and 86400")
    return number


def parse_retries(value: str | int) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number from 0 to 10")
    number = int(value)
    if not 0 <= number <= 10:
        raise ValueError("must be a whole number from 0 to 10")
    return number


def parse_journal_url(value: str) -> str:
    from kalixo_cli.store.journal_url import parse_journal_url as parse

    return parse(value)


SETTABLE_KEYS: dict[str, Callable[[Any], Any]] = {
    "api_url": parse_api_url,
    "api_version": parse_api_version,
    "timeout": parse_timeout,
    "retries": parse_retries,
    "deadline": parse_deadline,
    "journal_url": parse_journal_url,
}
KNOWN_KEYS = frozenset(SETTABLE_KEYS) | SECRET_KEYS


def credential_problem(secret: str) -> str | None:
    """What makes `secret` unusable as a token or key, in words that do not quote it.

    Tokens and keys are one run of printable ASCII; anything else would break the header
    (and requests would quote the whole value in its error)."""
    if any(char in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029" for char in secret):
        return "it holds a line break"
    if any(char.isspace() for char in secret):
        return "it holds white space"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in secret):
        return "it holds a control character"
    if not secret.isascii():
        return "it holds a character that is not ASCII"
    return None


def mask_secret(secret: str) -> str:
    """Enough of a credential to tell two apart, never enough to use one."""
    if len(secret) < 20:
        return "*" * 8
    return f"{secret[:4]}…{secret[-4:]} ({len(secret)} chars)"


# --------------------------------------------------------------------------------------
# The file.


@dataclass
class ConfigFile:
    path: Path
    values: dict[str, Any]
    warnings: list[str]


def load_config(path: Path) -> ConfigFile:
    """Read the TOML config; repair loose permissions; refuse what we can't trust."""
    warnings: list[str] = []
    try:
        info = path.stat()
    except FileNotFoundError:
        return ConfigFile(path, {}, warnings)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", where=str(path)) from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("the config file is not a regular file", where=str(path))
    if info.st_mode & 0o077:
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise ConfigError(
                f"the config file is readable by others (mode {stat.S_IMODE(info.st_mode):04o}) "
                "and owned by another user; refusing to use it",
                where=str(path),
                hint=f"chmod 600 {path}",
            )
        os.chmod(path, 0o600)
        warnings.append(
            f"the config file was readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"it may hold a token, so its mode is now 0600 ({path})"
        )
    import tomllib  # here: most runs have no config file to parse

    try:
        text = path.read_bytes().decode("utf-8-sig")
        values = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError("the config file is not UTF-8 text", where=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the config file is not valid TOML: {exc}",
            where=str(path),
            hint=f"fix it, or remove it and run `kalixo config set` again ({path})",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", where=str(path)) from exc
    return ConfigFile(path, values, warnings)


def save_config(path: Path, values: Mapping[str, Any]) -> None:
    """Write atomically: a 0600 temporary file beside it, then rename over it."""
    import tomli_w

    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    text = tomli_w.dumps({key: values[key] for key in sorted(values)})
    temporary = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, text.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the config file: {exc.strerror}", where=str(path)) from exc


# --------------------------------------------------------------------------------------
# Resolution.


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str


@dataclass(frozen=True)
class Settings:
    profile: Setting
    api_url: Setting
    api_version: Setting
    token: Setting | None
    api_key: Setting | None
    refresh_token: Setting | None
    timeout: Setting
    retries: Setting
    deadline: Setting
    config_path: Path
    journal_url: Setting = Setting(None, "default")
    """None: this machine's journal file in the user data folder."""

    @property
    def version(self) -> ApiVersion:
        return ApiVersion(self.api_version.value)

    @property
    def credential(self) -> Setting | None:
        """What authenticates requests for this API generation."""
        return self.api_key if self.version is ApiVersion.V2 else self.token

    def describe(self) -> dict[str, Any]:
        """The settings as `config show` prints them: secrets masked, sources named."""

        def shown(setting: Setting | None, secret: bool = False) -> dict[str, Any]:
            if setting is None:
                return {"value": None, "source": None}
            value = mask_secret(setting.value) if secret else setting.value
            return {"value": value, "source": setting.source}

        return {
            "profile": shown(self.profile),
            "api_url": shown(self.api_url),
            "api_version": shown(self.api_version),
            "token": shown(self.token, secret=True),
            "api_key": shown(self.api_key, secret=True),
            "timeout": shown(self.timeout),
            "retries": shown(self.retries),
            "deadline": shown(self.deadline),
            "journal_url": {
                "value": _shown_journal_url(self.journal_url.value),
                "source": self.journal_url.source,
            },
            "config_path": str(self.config_path),
        }


def _shown_journal_url(url: str | None) -> str:
    from kalixo_cli.store.journal_url import locate, mask_url

    return mask_url(url) if url else locate(None).url


def profile_names(file: ConfigFile) -> list[str]:
    profiles = file.values.get("profiles", {})
    names = sorted(profiles) if isinstance(profiles, dict) else []
    return ["default", *(name for name in names if name != "default")]


def profile_values(file: ConfigFile, name: str) -> dict[str, Any]:
    """A profile's own keys; `default` is the file's top level."""
    if name == "default":
        return {k: v for k, v in file.values.items() if k not in ("profiles", "profile")}
    profiles = file.values.get("profiles", {})
    section = profiles.get(name) if isinstance(profiles, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(
            f"no profile {name!r} in the config file",
            where=str(file.path),
            hint=f"profiles: {', '.join(profile_names(file))}; create one with "
            f"`kalixo --profile {name} config set api_url URL`",
        )
    return dict(section)


def with_profile_values(file: ConfigFile, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The whole file's values with one profile's keys replaced: what to save."""
    if name == "default":
        kept = {k: v for k, v in file.values.items() if k in ("profiles", "profile")}
        return {**kept, **values}
    whole = dict(file.values)
    profiles = dict(whole.get("profiles", {}))
    profiles[name] = values
    whole["profiles"] = profiles
    return whole


def _pick(
    key: str,
    parse: Callable[[Any], Any],
    *,
    flag: Any,
    flag_name: str | None,
    env: Mapping[str, str],
    env_name: str,
    section: Mapping[str, Any],
    section_name: str,
    default: Any,
) -> Setting:
    candidates: list[tuple[Any, str]] = []
    if flag is not None and flag_name:
        candidates.append((flag, flag_name))
    if env.get(env_name):
        candidates.append((env[env_name], f"env {env_name}"))
    if key in section:
        candidates.append((section[key], section_name))
    for raw, source in candidates:
        try:
            return Setting(parse(raw), source)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} {exc}", where=source) from exc
    return Setting(default, "default")


def _secret(
    key: str,
    env_name: str,
    env: Mapping[str, str],
    section: Mapping[str, Any],
    section_name: str,
    profile: str,
) -> Setting | None:
    if env.get(env_name, "").strip():
        return Setting(env[env_name].strip(), f"env {env_name}")
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    from kalixo_cli.store import credstore

    if value.strip() == credstore.MARKER:
        secret = credstore.get(profile, key)
        if secret is None:
            raise ConfigError(
                f"the {key} of profile {profile!r} is kept in the OS keyring, which is not "
                "available now or no longer has it",
                where=section_name,
                hint="store it again with `kalixo auth ...`",
            )
        return Setting(secret, f"OS keyring (profile {profile})")
    return Setting(value.strip(), section_name)


def resolve_settings(
    *,
    api_url_flag: str | None,
    env: Mapping[str, str],
    file: ConfigFile,
    profile_flag: str | None = None,
) -> Settings:
    top_unknown = sorted(set(file.values) - KNOWN_KEYS - {"profiles", "profile"})
    if top_unknown:
        raise ConfigError(
            f"unknown key {top_unknown[0]!r} in the config file",
            where=str(file.path),
            hint=f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
        )
    profile = _pick(
        "profile",
        parse_profile_name,
        flag=profile_flag,
        flag_name="--profile",
        env=env,
        env_name=ENV_PROFILE,
        section=file.values,
        section_name=f"config {file.path}",
        default="default",
    )
    section = profile_values(file, profile.value)
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in profile {profile.value!r}",
            where=str(file.path),
            hint=f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
        )
    where = (
        f"config {file.path}"
        if profile.value == "default"
        else f"profile {profile.value} in {file.path}"
    )
    common = dict(env=env, section=section, section_name=where)
    api_url = _pick(
        "api_url",
        parse_api_url,
        flag=api_url_flag,
        flag_name="--api-url",
        env_name=ENV_API_URL,
        default=None,
        **common,  # type: ignore[arg-type]
    )
    version = _pick(
        "api_version",
        parse_api_version,
        flag=None,
        flag_name=None,
        env_name=ENV_API_VERSION,
        default=None,
        **common,  # type: ignore[arg-type]
    )
    if version.value is None:
        inferred = version_from_url(api_url.value) if api_url.value else None
        version = (
            Setting(inferred, f"the path of {api_url.value}")
            if inferred
            else Setting("v1", "default")
        )
    if api_url.value is None:
        api_url = Setting(DEFAULT_API_URLS[version.value], "default")
    timeout = _pick(
        "timeout",
        parse_timeout,
        flag=None,
        flag_name=None,
        env_name=ENV_TIMEOUT,
        default=DEFAULT_TIMEOUT,
        **common,  # type: ignore[arg-type]
    )
    retries = _pick(
        "retries",
        parse_retries,
        flag=None,
        flag_name=None,
        env_name=ENV_RETRIES,
        default=DEFAULT_RETRIES,
        **common,  # type: ignore[arg-type]
    )
    deadline = _pick(
        "deadline",
        parse_deadline,
        flag=None,
        flag_name=None,
        env_name=ENV_DEADLINE,
        default=DEFAULT_DEADLINE,
        **common,  # type: ignore[arg-type]
    )
    journal_url = _pick(
        "journal_url",
        parse_journal_url,
        flag=None,
        flag_name=None,
        env_name=ENV_JOURNAL_URL,
        default=None,
        **common,  # type: ignore[arg-type]
    )
    return Settings(
        profile=profile,
        deadline=deadline,
        api_url=api_url,
        api_version=version,
        token=_secret("token", ENV_TOKEN, env, section, where, profile.value),
        api_key=_secret("api_key", ENV_API_KEY, env, section, where, profile.value),
        refresh_token=_secret(
            "refresh_token", "KALIXO_REFRESH_TOKEN", env, section, where, profile.value
        ),
        timeout=timeout,
        retries=retries,
        config_path=file.path,
        journal_url=journal_url,
    )
