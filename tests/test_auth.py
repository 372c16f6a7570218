"""Who may call what: every route x every kind of caller, with the expected status.

The matrix is built from ``app.url_map`` at collection time, so a route added later is
tested automatically, and a view without an access marker (``@auth.public``,
``@auth.require(role)``, or the station blueprint's device check) fails
``test_every_view_declares_its_access``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select
from werkzeug.routing import Rule

from server import create_app
from server.db import dispose_engine, write_session
from server.models import ApiToken, AuditEntry, Operator, Station
from server.security import auth
from tests.support.apps import login, make_app

ROLES = ["operator", "supervisor", "admin"]
DEVICE = "station-device"
ACCESS = {"public", DEVICE, *ROLES}
# Public views that check a credential themselves and refuse a wrong one with 401/403:
# the sign-in form, the tablet binding link.
CHECKS_OWN_CREDENTIAL = {("security.login", "POST"), ("station.bind", "GET")}
MISSING_INT = 987654  # ids that do not exist: a request that gets past access does nothing


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every route of the app as it is now."""
    tmp = tempfile.mkdtemp(prefix="taktline-routes-")
    url = f"sqlite:///{tmp}/routes.db"
    app = create_app(
        {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x", "RUN_INGEST": False},
        instance_path=tmp,
    )
    rules = [
        (r.endpoint, m, r.rule)
        for r in app.url_map.iter_rules()
        if r.endpoint != "static"
        for m in sorted(r.methods or ())
        if m not in ("HEAD", "OPTIONS")
    ]
    dispose_engine(url)
    shutil.rmtree(tmp, ignore_errors=True)
    return sorted(rules)


ROUTES = _routes()


def _access(app: Flask, endpoint: str) -> str | None:
    return getattr(app.view_functions[endpoint], "access", None)


def test_every_view_declares_its_access(app: Flask) -> None:
    missing = sorted(
        e for e in app.view_functions if e != "static" and _access(app, e) not in ACCESS
    )
    assert missing == [], f"views without @auth.public / @auth.require(role): {missing}"


def test_the_matrix_covers_the_admin_and_audit_routes() -> None:
    endpoints = {e for e, _, _ in ROUTES}
    assert {
        "admin.users",
        "admin.api_tokens",
        "admin.devices",
        "audit.index",
        "audit.export",
        "security.login",
        "home.index",
    } <= endpoints


# -- the matrix ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix(
    _sqlite_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One demo app for the whole matrix, with a signed-in session per role and tokens."""
    tmp = tmp_path_factory.mktemp("matrix")
    shutil.copy(_sqlite_templates["demo"], tmp / "taktline.db")
    url = f"sqlite:///{tmp / 'taktline.db'}"
    app = make_app(url, tmp, PROPAGATE_EXCEPTIONS=False)
    engine = app.extensions["taktline.engine"]
    with write_session(engine) as db:
        op = db.exec(select(Operator).where(Operator.badge == "OP1001")).one()
        op.username, op.password_hash = "op1001", auth.hash_secret("op1001-pw")
        db.add(op)
        kit = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        brd = db.exec(select(Station).where(Station.code == "BRD-1")).one()
        tokens = {
            "token": auth.issue_api_token(db, name="all", scopes=["*"], by=None),
            "token-other-scope": auth.issue_api_token(
                db, name="other", scopes=["nothing:read"], by=None
            ),
            "token-revoked": auth.issue_api_token(db, name="gone", scopes=["*"], by=None),
        }
        db.flush()
        gone = db.exec(select(ApiToken).where(ApiToken.name == "gone")).one()
        auth.revoke_api_token(db, token=gone, by=None)
        devices = {
            "device-KIT-1": auth.issue_device_token(db, station=kit, by=None),
            "device-BRD-1": auth.issue_device_token(db, station=brd, by=None),
        }
    cookies = {role: _session_cookie(app, role) for role in ROLES}
    yield {"app": app, "cookies": cookies, "tokens": tokens, "devices": devices}
    dispose_engine(url)


def _session_cookie(app: Flask, role: str) -> str:
    user, password = {
        "operator": ("op1001", "op1001-pw"),
        "supervisor": ("supervisor", "supervisor"),
        "admin": ("admin", "admin"),
    }[role]
    client = app.test_client()
    login(client, user, password)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def _path(rule: Rule, *, code: str) -> str:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__  # noqa: SLF001 - werkzeug API
        if name == "code":
            values[name] = code
        elif converter in ("IntegerConverter", "NumberConverter", "FloatConverter"):
            values[name] = MISSING_INT
        elif converter == "AnyConverter":
            values[name] = sorted(rule._converters[name].items)[0]  # type: ignore[attr-defined]
        else:
            values[name] = f"nope-{name}"
    path: str = rule.build(values, append_unknown=False)[1]  # type: ignore[index]
    return path


def _call(matrix: dict[str, Any], principal: str, method: str, path: str) -> tuple[int, str]:
    app: Flask = matrix["app"]
    client: FlaskClient = app.test_client()
    headers: dict[str, str] = {"Accept": "text/html"}
    if principal in ROLES:
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], matrix["cookies"][principal])
    elif principal.startswith("token"):
        headers["Authorization"] = f"Bearer {matrix['tokens'][principal]}"
    elif principal.startswith("device"):
        client.set_cookie(auth.DEVICE_COOKIE, matrix["devices"][principal])
    response = client.open(path, method=method, headers=headers, data={})
    status, location = response.status_code, response.headers.get("Location", "")
    response.close()  # never read an SSE stream to its (missing) end
    if principal in ROLES and path == "/logout":
        # Signing out ends every session of that person: sign in again for what follows.
        matrix["cookies"][principal] = _session_cookie(app, principal)
    return status, location


def _cases() -> Iterator[Any]:
    for endpoint, method, rule in ROUTES:
        principals = ["anonymous", *ROLES]
        if rule.startswith("/api/"):
            principals += ["token", "token-other-scope", "token-revoked"]
        if "<code>" in rule:
            principals += ["device-KIT-1", "device-BRD-1"]
        for principal in principals:
            yield pytest.param(
                endpoint, method, rule, principal, id=f"{method} {rule} as {principal}"
            )


def _expected(access: str, principal: str, endpoint: str, method: str, rule: str) -> str:
    """ "ok" (admitted: not 401/403), "out" (401 or redirect to sign in) or "forbidden"."""
    if access == "public":
        return "ok"
    if access == DEVICE:
        if not principal.startswith("device"):
            return "out"
        return "ok" if principal == "device-KIT-1" else "forbidden"
    if principal.startswith("token") and rule.startswith("/api/"):
        return {"token": "ok", "token-other-scope": "forbidden", "token-revoked": "out"}[principal]
    if principal in ROLES:
        return "ok" if ROLES.index(principal) >= ROLES.index(access) else "forbidden"
    return "out"


@pytest.mark.parametrize(("endpoint", "method", "rule", "principal"), list(_cases()))
def test_route_access(
    matrix: dict[str, Any], endpoint: str, method: str, rule: str, principal: str
) -> None:
    app: Flask = matrix["app"]
    access = _access(app, endpoint)
    assert access in ACCESS, f"{endpoint} has no access marker"
    werkzeug_rule = next(r for r in app.url_map.iter_rules(endpoint) if r.rule == rule)
    status, location = _call(matrix, principal, method, _path(werkzeug_rule, code="KIT-1"))
    expected = _expected(access, principal, endpoint, method, rule)
    # Sent away to sign in: the login page, or for a tablet the "not bound" page.
    where = urlsplit(location).path
    to_sign_in = status in (302, 303) and where in ("/login", "/station/")
    # A 500 for an admitted caller is the view's own bug (its module's tests catch it);
    # this test is about who gets in.
    if expected == "ok":
        if access != "public" or (endpoint, method) not in CHECKS_OWN_CREDENTIAL:
            assert status not in (401, 403), (status, location)
        assert not (access != "public" and to_sign_in), (status, location)
    elif expected == "forbidden":
        assert status == 403, (status, location)
    else:
        assert status == 401 or to_sign_in, (status, location)


# -- API tokens and scopes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        (["orders:read"], "orders:read", True),
        (["orders:read"], "orders:write", False),
        (["orders:write"], "orders:read", True),
        (["orders:*"], "orders:write", True),
        (["*:read"], "trace:read", True),
        (["*:read"], "trace:write", False),
        (["*"], "stock:write", True),
        (["orders"], "orders:write", True),
        (["trace:read"], "orders:read", False),
    ],
)
def test_scopes(granted: list[str], needed: str, allowed: bool) -> None:
    assert auth.scope_allows(granted, needed) is allowed


def test_default_scope_follows_the_api_area_and_method() -> None:
    assert auth.default_scope("GET", "/api/v1/orders/12") == "orders:read"
    assert auth.default_scope("POST", "/api/v1/orders/12/release") == "orders:write"
    assert auth.default_scope("DELETE", "/api/v1/scans") == "scans:write"


def test_bad_scopes_are_refused() -> None:
    with pytest.raises(ValueError, match="bad scope"):
        auth.parse_scopes("orders:read, Orders:drop")
    assert auth.parse_scopes("trace:read orders:write,trace:read") == ["orders:write", "trace:read"]


def test_admin_issues_and_revokes_an_api_token(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    page = client.post("/admin/api-tokens", data={"name": "ERP", "scopes": "orders:read"})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    token = html.split("<code>", 1)[1].split("</code>", 1)[0]
    assert token.startswith("tla_")
    with Session(demo_app.extensions["taktline.engine"]) as db:
        row = db.exec(select(ApiToken).where(ApiToken.name == "ERP")).one()
        assert row.scopes == ["orders:read"] and token not in row.token_hash
        assert (
            db.exec(select(AuditEntry).where(AuditEntry.action == "api_token.issue")).one().actor
            == "Ada Admin (admin)"
        )
    refused = client.post("/admin/api-tokens", data={"name": "x", "scopes": "DROP TABLE"})
    assert refused.status_code == 400 and "bad scope" in refused.get_data(as_text=True)
    assert client.post(f"/admin/api-tokens/{row.id}/revoke").status_code == 303
    with Session(demo_app.extensions["taktline.engine"]) as db:
        assert db.get(ApiToken, row.id).revoked_at is not None  # type: ignore[union-attr]
        assert db.exec(
            select(AuditEntry).where(AuditEntry.action == "api_token.revoke")
        ).one().entity_id == str(row.id)


def test_bearer_token_is_ignored_outside_the_api(demo_app: Flask) -> None:
    with write_session(demo_app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="bi", scopes=["*"], by=None)
    r = demo_app.test_client().get("/admin/users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 302 and "/login" in r.headers["Location"]


# -- device tokens -------------------------------------------------------------------


def test_device_tokens_bind_one_station_until_revoked(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        kit = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        token = auth.issue_device_token(db, station=kit, by=None, label="tablet 7")
    with Session(engine) as db:
        assert auth.station_for_device(db, token).code == "KIT-1"  # type: ignore[union-attr]
        assert auth.station_for_device(db, token + "x") is None
        assert auth.station_for_device(db, None) is None
    client = demo_app.test_client()
    login(client, "admin")
    page = client.get("/admin/devices").get_data(as_text=True)
    assert "tablet 7" in page
    token_id = page.split("/admin/devices/", 1)[1].split("/revoke", 1)[0]
    assert client.post(f"/admin/devices/{token_id}/revoke").status_code == 303
    with Session(engine) as db:
        assert auth.station_for_device(db, token) is None
        actions = [e.action for e in db.exec(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-2:] == ["device_token.issue", "device_token.revoke"]
    with write_session(engine) as db:  # a station taken out of service binds no tablet
        fin = db.exec(select(Station).where(Station.code == "FIN-1")).one()
        other = auth.issue_device_token(db, station=fin, by=None, label="tablet 8")
    with Session(engine) as db:
        assert auth.station_for_device(db, other).code == "FIN-1"  # type: ignore[union-attr]
    with write_session(engine) as db:
        fin = db.exec(select(Station).where(Station.code == "FIN-1")).one()
        fin.active = False
        db.add(fin)
    with Session(engine) as db:
        assert auth.station_for_device(db, other) is None


def test_admin_binds_the_browser_it_stands_at(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    r = client.post("/admin/devices", data={"station": "FIN-1", "label": "", "bind_here": "on"})
    assert r.status_code == 303
    cookie = client.get_cookie(auth.DEVICE_COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert cookie.value not in r.get_data(as_text=True)
    assert "bound to FIN-1" in client.get("/admin/devices").get_data(as_text=True)
    shown = client.post("/admin/devices", data={"station": "TST-1"}).get_data(as_text=True)
    assert "/station/bind?token=tld_" in shown


# -- people ----------------------------------------------------------------------------


def test_admin_creates_and_changes_people_audited(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    r = client.post(
        "/admin/users",
        data={
            "name": "Pat Planner",
            "badge": "SV2002",
            "username": "pat",
            "password": "long-enough",
            "role": "supervisor",
            "skills": "final, test",
            "locale": "fr",
        },
    )
    assert r.status_code == 303
    short = client.post(
        "/admin/users",
        data={"name": "X", "badge": "B9", "username": "x", "password": "short", "role": "operator"},
    )
    assert short.status_code == 400 and "at least 8" in short.get_data(as_text=True)
    dup = client.post("/admin/users", data={"name": "Y", "badge": "SV2002", "role": "operator"})
    assert dup.status_code == 400 and "already taken" in dup.get_data(as_text=True)
    pat_client = demo_app.test_client()
    login(pat_client, "pat", "long-enough")
    assert pat_client.get("/audit/").status_code == 200
    engine = demo_app.extensions["taktline.engine"]
    with Session(engine) as db:
        pat = db.exec(select(Operator).where(Operator.username == "pat")).one()
        assert pat.skills == ["final", "test"] and pat.pin_hash is None
    assert (
        client.post(
            f"/admin/users/{pat.id}",
            data={
                "name": "Pat Planner",
                "badge": "SV2002",
                "username": "pat",
                "role": "operator",
                "skills": "final",
                "locale": "fr",
                "active": "on",
            },
        ).status_code
        == 303
    )
    assert pat_client.get("/audit/").status_code == 403  # the new role counts at once
    assert client.post(f"/admin/users/{pat.id}/pin", data={"pin": "12ab"}).status_code == 400
    assert (
        client.post(f"/admin/users/{pat.id}/password", data={"password": "another-one"}).status_code
        == 303
    )
    # A password reset signs the person out everywhere.
    assert pat_client.get("/healthz").json["user"] == ""  # type: ignore[index]
    with Session(engine) as db:
        trail = db.exec(
            select(AuditEntry).where(AuditEntry.entity_id == str(pat.id)).order_by(AuditEntry.id)
        ).all()
    assert [e.action for e in trail] == ["user.create", "user.update", "user.password_reset"]
    assert trail[1].detail["role"] == ["supervisor", "operator"]
    assert all(e.actor == "Ada Admin (admin)" and e.address == "127.0.0.1" for e in trail)
    assert "long-enough" not in str([e.detail for e in trail])


def test_admin_cannot_demote_itself(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    with Session(demo_app.extensions["taktline.engine"]) as db:
        admin_id = db.exec(select(Operator.id).where(Operator.username == "admin")).one()
    r = client.post(
        f"/admin/users/{admin_id}",
        data={
            "name": "Ada Admin",
            "badge": "AD3001",
            "username": "admin",
            "role": "operator",
            "locale": "en",
            "active": "on",
        },
    )
    assert r.status_code == 400 and "own admin role" in r.get_data(as_text=True)


# -- sign-in: rate limit, expiry -----------------------------------------------------


def test_sign_in_is_rate_limited_and_failures_logged(
    demo_db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(demo_db_url, tmp_path, SIGNIN_MAX_FAILURES=3)
    client = app.test_client()
    for _ in range(3):
        r = client.post("/login", data={"username": "supervisor", "password": "guess"})
        assert r.status_code == 401
    assert caplog.text.count("failed desktop sign-in for 'supervisor'") == 3
    blocked = client.post("/login", data={"username": "supervisor", "password": "supervisor"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)
    login(client, "admin")  # another name from the same address still works


def test_sliding_window_forgets_old_failures() -> None:
    from server.security.ratelimit import RateLimited, SignInLimiter

    now = [1000.0]
    limiter = SignInLimiter(
        per_account=2, per_source=3, window_seconds=60, max_delay=30, clock=lambda: now[0]
    )
    limiter.failed(limiter.begin("user:ann", "address:10.0.0.1"))
    limiter.failed(limiter.begin("user:ann", "address:10.0.0.1"))
    with pytest.raises(RateLimited) as exc:
        limiter.begin("user:ann", "address:10.0.0.2")
    assert exc.value.retry_after == 60
    limiter.failed(limiter.begin("user:bob", "address:10.0.0.1"))
    # The address is past its allowance: slowed down for a second, not locked out.
    with pytest.raises(RateLimited) as exc:
        limiter.begin("user:carl", "address:10.0.0.1")
    assert exc.value.retry_after == 1
    now[0] += 61
    limiter.begin("user:ann", "address:10.0.0.1")


def test_idle_session_expires(demo_db_url: str, tmp_path: Path) -> None:
    app = make_app(demo_db_url, tmp_path, SESSION_MINUTES=1)
    client = app.test_client()
    login(client, "supervisor")
    assert client.get("/healthz").json["user"] == "Sam Sutherland"  # type: ignore[index]
    with client.session_transaction() as sess:  # as if the last request was 2 minutes ago
        sess["seen"] -= 120
    assert client.get("/healthz").json["user"] == ""  # type: ignore[index]
    assert client.get("/audit/").status_code == 302


def test_session_cookie_flags(demo_db_url: str, tmp_path: Path) -> None:
    app = make_app(demo_db_url, tmp_path, SECURE_COOKIES=True)
    client = app.test_client()
    r = client.post("/login", data={"username": "admin", "password": "admin"})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert r.status_code == 303
