"""Who is asking, and may they? One decorator every view goes through.

``@require("supervisor")`` admits that role and the roles above it
(operator < supervisor < admin); ``@public`` marks a view anyone may see.
``tests/test_auth.py`` fails when a registered view carries neither.

Three kinds of principal (docs/security.md):
- a person, signed in by a session cookie (desktop password or station badge);
- an integration, with ``Authorization: Bearer <token>`` on ``/api/`` routes only: an
  API token passes ``require`` when its scopes allow the route's scope (``scope=`` or,
  by default, ``<area>:read`` for GET/HEAD and ``<area>:write`` otherwise, where
  ``<area>`` is the first path segment after ``/api/v1/``);
- a station tablet, bound to one station by a device token in a long-lived cookie
  (``bound_station()``); the station blueprint decides what a bound tablet may do.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update
from sqlmodel import Session, col, select
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as BaseResponse

from server import audit
from server.db import begin_write, get_session
from server.models import ApiToken, DeviceToken, Operator, Station
from server.models.types import Role, utcnow
from server.security.ratelimit import RateLimited, SignInLimiter
from server.security.secrets import dummy_hash, hash_secret, verify_secret

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=BaseResponse)
RANK = {Role.OPERATOR: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}
# Re-exported: views catch auth.RateLimited; pages hash with auth.hash_secret.
__all__ = ["RateLimited", "hash_secret", "verify_secret"]

DEVICE_COOKIE = "taktline_device"
# Browsers cap cookie lifetime at 400 days; an admin re-binds a tablet after that.
DEVICE_COOKIE_MAX_AGE = int(timedelta(days=400).total_seconds())
# A browser that signed in as a person before: its tries for that person skip the
# account limit and the address throttle (server.security.ratelimit).
KNOWN_BROWSER_COOKIE = "taktline_known"
KNOWN_BROWSER_MAX_AGE = int(timedelta(days=180).total_seconds())
KNOWN_BROWSER_NAMES = 8  # people remembered per browser (a shared desk PC)
SCOPE_RE = re.compile(r"^(\*|[a-z][a-z0-9_-]*)(:(read|write|\*))?$")
_API_AREA = re.compile(r"^/api/(?:v\d+/)?([^/]+)")


# -- secrets -------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """What is stored for a token: tokens are 256 random bits, so SHA-256 is enough and
    lets us find the row by its hash (argon2 is for guessable passwords and PINs)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(kind: str) -> str:
    return f"tl{kind}_{secrets.token_urlsafe(32)}"


# -- the decorators ------------------------------------------------------------------


def public(view: F) -> F:
    view.access = "public"  # type: ignore[attr-defined]
    return view


def require(role: str, *, scope: str | None = None) -> Callable[[F], F]:
    """Admit ``role`` and above; on /api/ routes also an API token allowed ``scope``."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")
    if scope is not None and not SCOPE_RE.match(scope):
        raise ValueError(f"bad scope {scope!r}; expected area:read or area:write")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("bearer"):
                return _check_token(scope) or view(*args, **kwargs)
            user = g.get("user")
            if user is None:
                if _is_api():
                    return _api_error(401, "sign in or send an API token")
                if _wants_json() or request.headers.get("HX-Request"):
                    abort(401)
                return redirect(url_for("security.login", next=request.full_path))
            if RANK.get(Role(user.role), 0) < RANK[Role(role)]:
                log.warning(
                    "%s (%s) refused %s %s", user.name, user.role, request.method, request.path
                )
                if _is_api():
                    return _api_error(403, f"needs the {role} role")
                abort(403)
            return view(*args, **kwargs)

        wrapped.access = role  # type: ignore[attr-defined]
        wrapped.scope = scope  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def _check_token(scope: str | None) -> Response | None:
    """None when the request's API token may call this view, else the refusal."""
    token: ApiToken | None = g.get("api_token")
    if token is None:
        return _api_error(401, "unknown or revoked API token")
    needed = scope or default_scope(request.method, request.path)
    if not scope_allows(token.scopes, needed):
        log.warning(
            "API token %r (scopes %s) refused %s %s: needs %s",
            token.name,
            token.scopes,
            request.method,
            request.path,
            needed,
        )
        return _api_error(403, f"token scope does not include {needed}")
    return None


def _api_error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="taktline"'
    return response


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _wants_json() -> bool:
    return _is_api() or request.accept_mimetypes.best == "application/json"


# -- scopes --------------------------------------------------------------------------


def default_scope(method: str, path: str) -> str:
    """``<area>:read`` for GET/HEAD/OPTIONS, ``<area>:write`` otherwise."""
    match = _API_AREA.match(path)
    area = match.group(1) if match else "api"
    return f"{area}:{'read' if method in ('GET', 'HEAD', 'OPTIONS') else 'write'}"


def scope_allows(granted: list[str], needed: str) -> bool:
    """``orders:write`` implies ``orders:read``; ``*`` / ``orders:*`` / ``*:read`` widen."""
    area, _, verb = needed.partition(":")
    for scope in granted:
        g_area, _, g_verb = scope.partition(":")
        g_verb = g_verb or "*"
        if g_area not in ("*", area):
            continue
        if g_verb in ("*", verb) or (g_verb == "write" and verb == "read"):
            return True
    return False


def parse_scopes(text: str) -> list[str]:
    """Scopes from a comma/space separated string; ``ValueError`` names a bad one."""
    scopes = [s for s in re.split(r"[\s,]+", text.strip()) if s]
    if not scopes:
        raise ValueError("give at least one scope, e.g. orders:read")
    for scope in scopes:
        if not SCOPE_RE.match(scope):
            raise ValueError(f"bad scope {scope!r}; expected area:read, area:write or *")
    return sorted(set(scopes))


# -- who is acting -------------------------------------------------------------------


def actor() -> str:
    """Who is acting in this request, for ledger and audit entries."""
    user = g.get("user")
    if user is not None:
        return f"{user.name} ({user.role})"
    token = g.get("api_token")
    if token is not None:
        return f"token:{token.name}"
    station = g.get("device_station")
    if station is not None:
        return f"device:{station.code}"
    return "anonymous"


def address() -> str:
    return request.remote_addr or ""


def _fingerprint(operator: Operator) -> str:
    # Changing a password or PIN signs out every session of that person.
    raw = f"{operator.password_hash or ''}|{operator.pin_hash or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def sign_in(operator: Operator) -> None:
    session.clear()
    session["operator_id"] = operator.id
    session["fp"] = _fingerprint(operator)
    session["epoch"] = operator.session_epoch
    session["seen"] = int(utcnow().timestamp())
    session.permanent = True


def sign_out() -> None:
    """End this session, and on the server every session of the signed-in person: the
    cookie is only signed, so a copy of it would otherwise work until it expires."""
    user: Operator | None = g.get("user")
    if user is not None and user.id is not None:
        end_sessions(user.id)
    session.clear()


def end_sessions(operator_id: int) -> None:
    """Every session of this person is refused from its next request (a new epoch)."""
    db = get_session()
    if db.in_transaction():
        db.commit()
    begin_write(db)
    db.exec(
        update(Operator)
        .where(col(Operator.id) == operator_id)
        .values(session_epoch=Operator.session_epoch + 1)
    )
    db.commit()
    log.info("sessions of operator %s ended", operator_id)


# -- sign-in with rate limiting ------------------------------------------------------


def limiter() -> SignInLimiter:
    limiter_: SignInLimiter = current_app.extensions["taktline.signin_limiter"]
    return limiter_


def authenticate(username: str, password: str) -> Operator | None:
    """The active person with this user name and password, or None (failure logged).

    Raises ``RateLimited`` when this try must wait: too many recent failures for this
    name (unless this browser signed in as that person before), or the address is
    throttled (server.security.ratelimit). An unknown name, or a person without a
    password, is checked against a dummy hash, so it takes as long as a known one.
    """
    where = address()
    attempt = limiter().begin(
        f"user:{username.lower()}", f"address:{where}", browser=known_browser(username)
    )
    try:
        user = find_user(username)
        stored = user.password_hash if user is not None else None
        right = verify_secret(stored or dummy_hash(), password) and bool(stored)
    except BaseException:
        limiter().release(attempt)
        raise
    if user is not None and right:
        limiter().succeeded(attempt)
        return user
    limiter().failed(attempt)
    log.warning("failed desktop sign-in for %r from %s", username, where)
    return None


# -- known browsers ------------------------------------------------------------------


def _browser_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="taktline-known-browser")  # type: ignore[arg-type]


def _known_browser() -> dict[str, Any] | None:
    raw = request.cookies.get(KNOWN_BROWSER_COOKIE)
    if not raw:
        return None
    try:
        data = _browser_serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    names = data.get("names")
    if not isinstance(names, list):
        return None
    return {"id": data["id"], "names": [n for n in names if isinstance(n, str)]}


def known_browser(username: str) -> str | None:
    """The limiter's key for this browser when it signed in as ``username`` before."""
    data = _known_browser()
    if data is None or username.lower() not in data["names"]:
        return None
    return f"browser:{data['id']}"


def remember_browser(response: R, username: str) -> R:
    """After a right password: this browser is known for ``username`` (signed cookie)."""
    data = _known_browser() or {"id": secrets.token_urlsafe(16), "names": []}
    names = [n for n in data["names"] if n != username.lower()] + [username.lower()]
    value = _browser_serializer().dumps({"id": data["id"], "names": names[-KNOWN_BROWSER_NAMES:]})
    response.set_cookie(
        KNOWN_BROWSER_COOKIE,
        value,
        max_age=KNOWN_BROWSER_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SECURE_COOKIES"],
    )
    return response


def find_user(username: str) -> Operator | None:
    return (
        get_session()
        .exec(
            select(Operator).where(Operator.username == username, Operator.active == True)  # noqa: E712
        )
        .first()
    )


# -- device tokens (station tablets) -------------------------------------------------


def issue_device_token(
    db: Session, *, station: Station, by: Operator | None, label: str = ""
) -> str:
    """A new token binding a tablet to ``station``; only its hash is kept. Audited."""
    token = _new_token("d")
    assert station.id is not None, "a station from the database"
    row = DeviceToken(
        station_id=station.id,
        token_hash=token_digest(token),
        label=label,
        issued_by_id=by.id if by else None,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=_who(by),
        action="device_token.issue",
        entity="device_token",
        entity_id=row.id,
        detail={"station": station.code, "label": label},
        address=_maybe_address(),
    )
    return token


def revoke_device_token(db: Session, *, token: DeviceToken, by: Operator | None) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.add(token)
        audit.record(
            db,
            actor=_who(by),
            action="device_token.revoke",
            entity="device_token",
            entity_id=token.id,
            detail={"label": token.label},
            address=_maybe_address(),
        )


def station_for_device(db: Session, token: str | None) -> Station | None:
    """The station a device token is bound to; None for unknown or revoked tokens."""
    if not token:
        return None
    # One statement on every tablet request (each partial, each stream).
    return db.exec(
        select(Station)
        .join(DeviceToken, col(DeviceToken.station_id) == col(Station.id))
        .where(
            DeviceToken.token_hash == token_digest(token),
            col(DeviceToken.revoked_at).is_(None),
            col(Station.active).is_(True),
        )
    ).first()


def bound_station() -> Station | None:
    """The station this browser is bound to (device cookie), cached for the request."""
    if "device_station" not in g:
        g.device_station = station_for_device(get_session(), request.cookies.get(DEVICE_COOKIE))
    station: Station | None = g.device_station
    return station


def set_device_cookie(response: R, token: str) -> R:
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=DEVICE_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SECURE_COOKIES"],
    )
    return response


# -- API tokens ----------------------------------------------------------------------


def issue_api_token(db: Session, *, name: str, scopes: list[str], by: Operator | None) -> str:
    """A new Bearer token for an integration; only its hash is kept. Audited."""
    token = _new_token("a")
    row = ApiToken(
        name=name, token_hash=token_digest(token), scopes=scopes, issued_by_id=by.id if by else None
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=_who(by),
        action="api_token.issue",
        entity="api_token",
        entity_id=row.id,
        detail={"name": name, "scopes": scopes},
        address=_maybe_address(),
    )
    return token


def revoke_api_token(db: Session, *, token: ApiToken, by: Operator | None) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.add(token)
        audit.record(
            db,
            actor=_who(by),
            action="api_token.revoke",
            entity="api_token",
            entity_id=token.id,
            detail={"name": token.name},
            address=_maybe_address(),
        )


def _who(by: Operator | None) -> str:
    return f"{by.name} ({by.role})" if by is not None else "system"


def _maybe_address() -> str:
    return address() if has_request_context() else ""


# -- per request ---------------------------------------------------------------------


def _load_principal() -> None:
    g.user = None
    g.api_token = None
    g.bearer = False
    db = get_session()
    header = request.headers.get("Authorization", "")
    if _is_api() and header[:7].lower() == "bearer ":
        # A Bearer request is the integration alone: the session cookie is ignored,
        # which is also why such requests need no CSRF token (server.security).
        g.bearer = True
        row = db.exec(
            select(ApiToken).where(ApiToken.token_hash == token_digest(header[7:].strip()))
        ).first()
        if row is not None and row.revoked_at is None:
            g.api_token = row
        else:
            log.warning(
                "unknown or revoked API token from %s for %s %s",
                address(),
                request.method,
                request.path,
            )
    elif session.get("operator_id") is not None:
        g.user = _session_user(db)
    # End the read transaction so views can start a write one (db.begin_write).
    db.commit()


def _session_user(db: Session) -> Operator | None:
    now = int(utcnow().timestamp())
    idle = now - int(session.get("seen", 0))
    if idle > current_app.permanent_session_lifetime.total_seconds():
        log.info("session of operator %s expired after %ss idle", session.get("operator_id"), idle)
        session.clear()
        return None
    operator = db.get(Operator, session["operator_id"])
    if (
        operator is None
        or not operator.active
        or session.get("fp") != _fingerprint(operator)
        or session.get("epoch") != operator.session_epoch
    ):
        session.clear()
        return None
    if now - int(session.get("seen", 0)) > 60:
        session["seen"] = now
    return operator


def init_app(app: Flask) -> None:
    app.permanent_session_lifetime = timedelta(minutes=app.config["SESSION_MINUTES"])
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["SECURE_COOKIES"],
    )
    # One limiter per app (not per module), so test apps never share counters.
    app.extensions["taktline.signin_limiter"] = SignInLimiter(
        per_account=app.config["SIGNIN_MAX_FAILURES"],
        per_source=app.config["SIGNIN_MAX_FAILURES"] * 4,
        window_seconds=app.config["SIGNIN_WINDOW_SECONDS"],
        max_delay=app.config["SIGNIN_THROTTLE_MAX_SECONDS"],
    )
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        # The client address (and http/https) from the X-Forwarded-For/-Proto headers
        # the last ``hops`` proxies added; without proxies those headers are ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    if not app.testing:
        dummy_hash()  # made now, so the first unknown user name is not slower
    app.before_request(_load_principal)
