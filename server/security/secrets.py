"""Hashing people's secrets (passwords, PINs) with Argon2: no Flask here, so the
station workflow's adapter can check a PIN without the web stack."""

from __future__ import annotations

import functools
from secrets import token_urlsafe

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    if not secret_hash:
        return False
    try:
        return _hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """The hash of a secret nobody knows, made by the same hasher as real ones.

    Sign-in checks an unknown user name (or a person without a password) against it, so
    the answer takes as long as for a known name and response times do not tell which
    names exist. Made once per process, on first use (``auth.init_app`` warms it)."""
    return _hasher.hash(token_urlsafe(32))
