"""API-key authentication, per hackatime-api.md §1.1 (``api_user_from_credentials``)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .users import User

AuthForm = Literal["bearer", "basic", "query"]
UNAUTHORIZED = {"error": "Unauthorized"}


@dataclass(frozen=True)
class Allowed:
    """Which credential sources an endpoint family accepts (the table in §1.1)."""

    bearer: bool = True
    basic: bool = True
    query: bool = True


WAKATIME_COMPATIBLE = Allowed()  # /api/hackatime/v1/*
MY_HEARTBEATS = Allowed(query=False)  # /api/v1/my/heartbeats*
STATS_MY = Allowed(basic=False, query=False)  # /api/v1/users/my/stats


@dataclass(frozen=True)
class AuthResult:
    user: User | None
    form: AuthForm | None  # the source that was used (or tried); None when no credential came


def authenticate(
    authorization: str | None, api_key_param: str | None, keys: Mapping[str, User], allowed: Allowed
) -> AuthResult:
    """Bearer, then Basic, then ``?api_key=`` only when the header scheme was neither.

    A Bearer or Basic header that does not match answers 401: it never falls through to the
    query parameter. Basic carries ``base64(key)``: the whole decoded string is the key, so
    ``base64("key:")`` (what ``curl -u key:`` sends) does not match.
    """
    scheme, token = "", ""
    if authorization:
        parts = re.split(r"\s+", authorization.strip(), maxsplit=1)
        scheme, token = parts[0], parts[1] if len(parts) > 1 else ""
    if scheme == "Bearer":
        return AuthResult(keys.get(token) if allowed.bearer and token else None, "bearer")
    if scheme == "Basic":
        if not allowed.basic:
            return AuthResult(None, "basic")
        try:
            key = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(None, "basic")
        return AuthResult(keys.get(key), "basic")
    if allowed.query and api_key_param:
        return AuthResult(keys.get(api_key_param), "query")
    return AuthResult(None, None)


def basic_header(key: str) -> str:
    """What wakatime-cli sends: ``Basic base64(api_key)``, no colon."""
    return "Basic " + base64.b64encode(key.encode()).decode()
