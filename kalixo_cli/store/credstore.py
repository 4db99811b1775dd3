"""Where credentials are kept: the OS keyring when one is there, else the 0600 config file.

`keyring` is an optional dependency (`pip install 'kalixo[keyring]'`). With a usable backend
(macOS Keychain, Windows Credential Locker, Secret Service...), a secret goes to the keyring
and the config file holds only the marker `@keyring`; without one, the secret goes to the
config file, created 0600. KALIXO_NO_KEYRING=1 keeps everything in the file.
"""

from __future__ import annotations

import os
from typing import Any

SERVICE = "kalixo"
MARKER = "@keyring"
ENV_NO_KEYRING = "KALIXO_NO_KEYRING"


def _keyring() -> Any | None:
    """The keyring module when its active backend can store secrets; None otherwise."""
    if os.environ.get(ENV_NO_KEYRING, "").strip() not in ("", "0"):
        return None
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken backend configuration is no keyring at all
        return None
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


def available() -> bool:
    """Whether secrets would go to an OS keyring (not the config file)."""
    return _keyring() is not None


def store_name() -> str:
    module = _keyring()
    if module is None:
        return "config file (mode 0600)"
    return f"OS keyring ({type(module.get_keyring()).__name__})"


def put(profile: str, key: str, secret: str) -> str:
    """Store a secret; returns what to write in the config file for it."""
    module = _keyring()
    if module is None:
        return secret
    module.set_password(SERVICE, f"{profile}:{key}", secret)
    return MARKER


def get(profile: str, key: str) -> str | None:
    """The secret behind a `@keyring` marker; None when the keyring has lost it."""
    module = _keyring()
    if module is None:
        return None
    value = module.get_password(SERVICE, f"{profile}:{key}")
    return value if isinstance(value, str) else None


def delete(profile: str, key: str) -> None:
    module = _keyring()
    if module is None:
        return
    try:
        module.delete_password(SERVICE, f"{profile}:{key}")
    except Exception:  # already gone: nothing to remove
        return
