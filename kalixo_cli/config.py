"""Settings: flag > environment > config file > default, and the 0600 TOML file behind them.

The config file holds the API token, so it is created 0600 in a 0700 folder whatever the
umask, written atomically, and a copy that others can read is repaired with a warning.
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kalixo_cli.errors import ConfigError

APP_NAME = "kalixo"
DEFAULT_API_URL = "https://api.kalixo.io/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3

ENV_API_URL = "KALIXO_API_URL"
ENV_TOKEN = "KALIXO_TOKEN"
ENV_TIMEOUT = "KALIXO_TIMEOUT"
ENV_RETRIES = "KALIXO_RETRIES"

SECRET_KEYS = frozenset({"token"})


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


def parse_timeout(value: str | float | int) -> float:
    number = float(value)
    if isinstance(value, bool) or not math.isfinite(number) or not 0 < number <= 600:
        raise ValueError("must be a number of seconds between 0 and 600")
    return number


def parse_retries(value: str | int) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number from 0 to 10")
    number = int(value)
    if not 0 <= number <= 10:
        raise ValueError("must be a whole number from 0 to 10")
    return number


SETTABLE_KEYS: dict[str, Callable[[Any], Any]] = {
    "api_url": parse_api_url,
    "timeout": parse_timeout,
    "retries": parse_retries,
}
KNOWN_KEYS = frozenset(SETTABLE_KEYS) | SECRET_KEYS


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
        raise ConfigError(
            f"cannot write the config file: {exc.strerror}", where=str(path)
        ) from exc


# --------------------------------------------------------------------------------------
# Resolution.


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str


@dataclass(frozen=True)
class Settings:
    api_url: Setting
    token: Setting | None
    timeout: Setting
    retries: Setting
    config_path: Path

    def describe(self) -> dict[str, Any]:
        """The settings as `config show` prints them: secrets masked, sources named."""
        token = (
            {"value": mask_secret(self.token.value), "source": self.token.source}
            if self.token
            else {"value": None, "source": None}
        )
        return {
            "api_url": {"value": self.api_url.value, "source": self.api_url.source},
            "token": token,
            "timeout": {"value": self.timeout.value, "source": self.timeout.source},
            "retries": {"value": self.retries.value, "source": self.retries.source},
            "config_path": str(self.config_path),
        }


def _pick(
    key: str,
    parse: Callable[[Any], Any],
    *,
    flag: Any,
    flag_name: str | None,
    env: Mapping[str, str],
    env_name: str,
    file: ConfigFile,
    default: Any,
) -> Setting:
    candidates: list[tuple[Any, str]] = []
    if flag is not None and flag_name:
        candidates.append((flag, flag_name))
    if env.get(env_name):
        candidates.append((env[env_name], f"env {env_name}"))
    if key in file.values:
        candidates.append((file.values[key], f"config {file.path}"))
    for raw, source in candidates:
        try:
            return Setting(parse(raw), source)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key} {exc}", where=source) from exc
    return Setting(default, "default")


def resolve_settings(
    *, api_url_flag: str | None, env: Mapping[str, str], file: ConfigFile
) -> Settings:
    unknown = sorted(set(file.values) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in the config file",
            where=str(file.path),
            hint=f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
        )
    api_url = _pick(
        "api_url", parse_api_url, flag=api_url_flag, flag_name="--api-url",
        env=env, env_name=ENV_API_URL, file=file, default=DEFAULT_API_URL,
    )
    timeout = _pick(
        "timeout", parse_timeout, flag=None, flag_name=None,
        env=env, env_name=ENV_TIMEOUT, file=file, default=DEFAULT_TIMEOUT,
    )
    retries = _pick(
        "retries", parse_retries, flag=None, flag_name=None,
        env=env, env_name=ENV_RETRIES, file=file, default=DEFAULT_RETRIES,
    )
    token: Setting | None = None
    if env.get(ENV_TOKEN, "").strip():
        token = Setting(env[ENV_TOKEN].strip(), f"env {ENV_TOKEN}")
    elif isinstance(file.values.get("token"), str) and file.values["token"].strip():
        token = Setting(file.values["token"].strip(), f"config {file.path}")
    return Settings(
        api_url=api_url, token=token, timeout=timeout, retries=retries, config_path=file.path
    )
