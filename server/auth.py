"""Who is asking, and may they? One decorator every view goes through.

``@require("supervisor")`` admits that role and the roles above it
(operator < supervisor < admin); ``@public`` marks a view anyone may see.
``tests/test_auth.py`` fails when a registered view carries neither.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, abort, g, redirect, request, session, url_for
from sqlmodel import select

from server.db import get_session
from server.models import Operator
from server.models.types import Role

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
RANK = {Role.OPERATOR: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}
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


def public(view: F) -> F:
    view.access = "public"  # type: ignore[attr-defined]
    return view


def require(role: str) -> Callable[[F], F]:
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = g.get("user")
            if user is None:
                if _wants_json() or request.headers.get("HX-Request"):
                    abort(401)
                return redirect(url_for("views.login", next=request.full_path))
            if RANK.get(Role(user.role), 0) < RANK[Role(role)]:
                log.warning("%s (%s) refused %s %s", user.name, user.role, request.method,
                            request.path)
                abort(403)
            return view(*args, **kwargs)

        wrapped.access = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def actor() -> str:
    """Who is acting in this request, for ledger and audit entries."""
    user = g.get("user")
    if user is not None:
        return f"{user.name} ({user.role})"
    token = g.get("api_token")
    if token is not None:
        return f"token:{token.name}"
    return "anonymous"


def address() -> str:
    return request.remote_addr or ""


def sign_in(operator: Operator) -> None:
    session.clear()
    session["operator_id"] = operator.id
    session.permanent = True


def sign_out() -> None:
    session.clear()


def _load_user() -> None:
    g.user = None
    operator_id = session.get("operator_id")
    if operator_id is not None:
        operator = get_session().get(Operator, operator_id)
        if operator is not None and operator.active:
            g.user = operator


def find_user(username: str) -> Operator | None:
    return get_session().exec(
        select(Operator).where(Operator.username == username, Operator.active == True)  # noqa: E712
    ).first()


def init_app(app: Flask) -> None:
    app.permanent_session_lifetime = timedelta(minutes=app.config["SESSION_MINUTES"])
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=app.config["SECURE_COOKIES"])
    app.before_request(_load_user)
