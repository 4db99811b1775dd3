"""The sandbox's documented test credentials, its HS256 JWTs (v1) and its API key (v2).

Kalixo v1 logs in with email and password and hands out a JWT access token (~4 h) and a
refresh token (~8 h). The sandbox does the same with fixed, public test credentials and a
fixed signing key: it is an emulator holding fake PINs, so nothing here is a secret.
Verification still checks what a real server checks (algorithm, signature, type, expiry),
so a client's refresh-on-401 logic meets realistic failures.

Kalixo v2 takes an ``x-api-key`` header instead: ``kal_test_...`` keys for the sandbox,
``kal_live_...`` for production. The sandbox knows one key, `SANDBOX_API_KEY`, and refuses
every other, live keys included. The v1 test credentials and the key are one account: its
wallet pays for the orders of both generations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any, Literal

SANDBOX_EMAIL = "sandbox@kalixo.test"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_TOKEN = "sandbox-test-token-kx1"
"""A static access token the sandbox always accepts; what ``kalixo --sandbox`` sends."""

SANDBOX_API_KEY = "kal_test_sandbox_0123456789abcdef"
"""The v2 API key the sandbox accepts (``x-api-key``); what ``kalixo --sandbox`` sends on v2."""

ACCESS_TTL_SECONDS = 4 * 3600
REFRESH_TTL_SECONDS = 8 * 3600

_SIGNING_KEY = b"kalixo-sandbox-signing-key: public on purpose, this is a test emulator"
_HEADER = {"alg": "HS256", "typ": "JWT"}

TokenType = Literal["access", "refresh"]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: bytes) -> str:
    return _b64encode(hmac.new(_SIGNING_KEY, signing_input, hashlib.sha256).digest())


def credentials_valid(email: str, password: str) -> bool:
    """Whether ``email``/``password`` are the sandbox's test credentials (constant time)."""
    email_ok = hmac.compare_digest(email.strip().lower().encode(), SANDBOX_EMAIL.encode())
    password_ok = hmac.compare_digest(password.encode(), SANDBOX_PASSWORD.encode())
    return email_ok and password_ok


def issue_token(token_type: TokenType, now: float) -> str:
    """A signed JWT of ``token_type``; a random ``jti`` makes every token unique."""
    issued = int(now)
    ttl = ACCESS_TTL_SECONDS if token_type == "access" else REFRESH_TTL_SECONDS
    claims = {
        "sub": SANDBOX_EMAIL,
        "typ": token_type,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
    }
    signing_input = ".".join(
        _b64encode(json.dumps(part, separators=(",", ":")).encode()) for part in (_HEADER, claims)
    )
    return f"{signing_input}.{_sign(signing_input.encode())}"


def issue_pair(now: float) -> dict[str, str]:
    """The body of a login or refresh answer."""
    return {"accessToken": issue_token("access", now), "refreshToken": issue_token("refresh", now)}


def verify_token(token: str, token_type: TokenType, now: float) -> dict[str, Any] | None:
    """The claims of ``token`` if it is a sandbox JWT of ``token_type`` still valid at ``now``.

    Anything else (garbage, another key, ``alg: none``, the wrong type, expired) is None:
    the caller answers 401 without saying which, as a real server would.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header_b64, claims_b64, signature = parts
    expected = _sign(f"{header_b64}.{claims_b64}".encode())
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return None
    if not isinstance(claims, dict) or claims.get("typ") != token_type:
        return None
    expires = claims.get("exp")
    if not isinstance(expires, int) or isinstance(expires, bool) or now >= expires:
        return None
    return claims


def access_allowed(token: str, now: float) -> bool:
    """Whether ``token`` may call the API: the static test token or a live access JWT."""
    if hmac.compare_digest(token.encode(), SANDBOX_TOKEN.encode()):
        return True
    return verify_token(token, "access", now) is not None


def api_key_allowed(key: str) -> bool:
    """Whether ``key`` is the sandbox's v2 API key (constant time); a live key never is."""
    return hmac.compare_digest(key.encode(), SANDBOX_API_KEY.encode())


V1_WALLET_KEY = SANDBOX_API_KEY
"""Wallets are kept per API key; v1 orders (test credentials, their tokens) pay from this
key's, as one Kalixo account holds both kinds of credential."""
