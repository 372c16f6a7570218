"""Sign-in hardening (issue 14): where a sign-in may send the browser, limits that stop
guessing without locking the rightful user out, sessions that end on the server,
sign-in that takes as long for an unknown name as for a known one, and search fields
that take ``%`` and ``_`` literally. docs/security.md, "What is defended and how"."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from server import audit
from server.db import like_escaped, migrate, write_session
from server.models import Operator
from server.security import auth
from server.security.ratelimit import RateLimited, SignInLimiter
from server.security.views import local_path
from tests.support.apps import login, make_app
from tests.test_station_views import CASE_MT, HX, banner, bind, post, release_order, scan


def sign_in(client: FlaskClient, username: str, password: str, **kwargs: Any) -> Any:
    return client.post("/login", data={"username": username, "password": password}, **kwargs)


def healthz_user(client: FlaskClient) -> str:
    return str(client.get("/healthz").json["user"])  # type: ignore[index]


# -- 2. where a sign-in may send the browser -----------------------------------------


@pytest.mark.parametrize(
    "raw_next",
    [
        "/%09/evil.example",  # the report: the browser drops the tab, "//evil.example"
        "/%0A/evil.example",
        "/%0D%0A/evil.example",
        "%09//evil.example",
        "%20//evil.example",
        "%00//evil.example",
        "//evil.example",
        "/%5Cevil.example",  # "/\evil.example": a backslash is a slash to the browser
        "%5C%5Cevil.example",
        "/%09%5Cevil.example",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/a%00b",  # other control characters: refused rather than guessed at
    ],
)
def test_sign_in_never_sends_the_browser_to_another_site(
    demo_client: FlaskClient, raw_next: str
) -> None:
    r = demo_client.post(
        f"/login?next={raw_next}", data={"username": "supervisor", "password": "supervisor"}
    )
    assert r.status_code == 303
    assert r.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("raw_next", "location"),
    [
        ("/audit/?actor=Sam", "/audit/?actor=Sam"),
        (quote("/audit/?actor=a b&action=x", safe="/"), "/audit/?actor=a b&action=x"),
        ("%20/orders/%09", "/orders/"),  # what the browser would follow, cleaned
        ("/orders/%00", "/orders/"),
    ],
)
def test_sign_in_follows_next_on_this_site(
    demo_client: FlaskClient, raw_next: str, location: str
) -> None:
    r = demo_client.post(
        f"/login?next={raw_next}", data={"username": "supervisor", "password": "supervisor"}
    )
    assert r.status_code == 303
    assert r.headers["Location"] in (location, quote(location, safe="/?&="))


def test_local_path_normalises_as_the_browser_does() -> None:
    assert local_path(" \t/a\tb/\r\n") == "/ab/"
    assert local_path("/\t/evil.example") is None
    assert local_path("\x01//evil.example") is None
    assert local_path("/\\evil.example") is None
    assert local_path("") is None
    assert local_path("/a\\b") == "/a\\b"  # the browser reads /a/b: still this site


# -- 4. limits that stop guessing without locking the rightful user out ---------------


def test_an_address_is_slowed_down_not_locked_out_and_a_right_password_gets_in(
    demo_db_url: str, tmp_path: Path
) -> None:
    """The report: 20 failures from one address (a proxy: the whole plant) refused every
    sign-in from it for 300 s, right passwords too."""
    app = make_app(demo_db_url, tmp_path, SIGNIN_MAX_FAILURES=2)  # address allowance 8
    guesser = app.test_client()
    for n in range(8):  # names that do not exist: no account limit is reached
        assert sign_in(guesser, f"nobody-{n}", "guess").status_code == 401
    refused = sign_in(guesser, "nobody-9", "guess")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    colleague = app.test_client()  # the same address, a browser that never signed in
    early = sign_in(colleague, "supervisor", "supervisor")
    assert early.status_code == 429 and int(early.headers["Retry-After"]) <= 1
    time.sleep(1.05)
    assert sign_in(colleague, "supervisor", "supervisor").status_code == 303
    assert healthz_user(colleague) == "Sam Sutherland"


def test_the_address_throttle_grows_to_its_cap_and_waiting_does_not_make_it_grow() -> None:
    now = [0.0]
    limiter = SignInLimiter(
        per_account=100, per_source=3, window_seconds=300, max_delay=5, clock=lambda: now[0]
    )
    waits = []
    for n in range(8):
        try:
            attempt = limiter.begin(f"user:u{n}", "address:a")
        except RateLimited as exc:
            waits.append(exc.retry_after)
            for _ in range(3):  # a refused try is no failure: asking again changes nothing
                with pytest.raises(RateLimited) as again:
                    limiter.begin("user:other", "address:a")
                assert again.value.retry_after == exc.retry_after
            now[0] += exc.retry_after
            attempt = limiter.begin(f"user:u{n}", "address:a")
        else:
            waits.append(0)
        limiter.failed(attempt)
    assert waits == [0, 0, 0, 1, 2, 4, 5, 5]


def test_tries_started_together_cannot_pass_the_account_limit() -> None:
    limiter = SignInLimiter(per_account=3, per_source=100, window_seconds=60, max_delay=30)
    started = [limiter.begin("user:sam", f"address:10.0.0.{n}") for n in range(3)]
    with pytest.raises(RateLimited):  # the three still running count already
        limiter.begin("user:sam", "address:10.0.0.9")
    limiter.release(started[0])  # one was not a failure after all
    limiter.begin("user:sam", "address:10.0.0.9")


def test_a_known_browser_signs_in_while_someone_guesses_that_persons_password(
    demo_db_url: str, tmp_path: Path
) -> None:
    app = make_app(demo_db_url, tmp_path, SIGNIN_MAX_FAILURES=3)
    desk = app.test_client()  # the supervisor's own PC: signed in there before
    login(desk, "supervisor")
    desk.post("/logout")
    guesser = app.test_client()
    elsewhere = {"REMOTE_ADDR": "10.9.9.9"}
    for _ in range(3):
        r = sign_in(guesser, "supervisor", "guess", environ_base=elsewhere)
        assert r.status_code == 401
    # The guessing stops: not even the right password from there.
    r = sign_in(guesser, "supervisor", "supervisor", environ_base=elsewhere)
    assert r.status_code == 429
    # The rightful user, from the browser they always use, is not locked out.
    assert sign_in(desk, "supervisor", "supervisor").status_code == 303
    assert healthz_user(desk) == "Sam Sutherland"
    # The cookie vouches for that person only, and is signed.
    other = app.test_client()
    cookie = desk.get_cookie(auth.KNOWN_BROWSER_COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    other.set_cookie(auth.KNOWN_BROWSER_COOKIE, cookie.value[:-2] + "xx")
    assert sign_in(other, "supervisor", "supervisor").status_code == 429


def test_a_known_browser_has_its_own_limit(demo_db_url: str, tmp_path: Path) -> None:
    app = make_app(demo_db_url, tmp_path, SIGNIN_MAX_FAILURES=2)
    desk = app.test_client()
    login(desk, "supervisor")
    for _ in range(2):
        assert sign_in(desk, "supervisor", "guess").status_code == 401
    # Past its own limit the browser is one like any other: the account counts now.
    for _ in range(2):
        assert sign_in(desk, "supervisor", "guess").status_code == 401
    assert sign_in(desk, "supervisor", "supervisor").status_code == 429


def test_trusted_proxies_give_the_client_address(demo_db_url: str, tmp_path: Path) -> None:
    behind = make_app(demo_db_url, tmp_path / "behind", SIGNIN_MAX_FAILURES=1, TRUSTED_PROXIES=1)
    for n in range(4):  # allowance 4 for 10.0.0.1
        r = sign_in(behind.test_client(), f"x{n}", "x", headers={"X-Forwarded-For": "10.0.0.1"})
        assert r.status_code == 401
    one = behind.test_client()
    assert sign_in(one, "y", "y", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429
    two = behind.test_client()
    assert sign_in(two, "y", "y", headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 401
    # Without a trusted proxy the header is the client's word and is ignored.
    direct = make_app(demo_db_url, tmp_path / "direct", SIGNIN_MAX_FAILURES=1)
    for n in range(4):
        forged = {"X-Forwarded-For": f"10.1.0.{n}"}
        assert sign_in(direct.test_client(), f"x{n}", "x", headers=forged).status_code == 401
    forged = {"X-Forwarded-For": "10.1.0.99"}
    assert sign_in(direct.test_client(), "y", "y", headers=forged).status_code == 429


def test_a_bad_trusted_proxies_setting_is_refused(demo_db_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        make_app(demo_db_url, tmp_path, TRUSTED_PROXIES=-1)


@pytest.fixture
def station_app(demo_db_url: str, tmp_path: Path) -> Flask:
    app = make_app(demo_db_url, tmp_path, SIGNIN_MAX_FAILURES=2, STATION_HEARTBEAT_SECONDS=0.2)
    release_order(app)
    return app


@pytest.fixture
def tablet(station_app: Flask) -> FlaskClient:
    client = station_app.test_client()
    bind(station_app, client, "KIT-1")
    return client


def test_tablet_failures_do_not_lock_the_desktop_sign_in_out(
    station_app: Flask, tablet: FlaskClient
) -> None:
    for n in range(10):  # past the tablet's allowance (8)
        post(tablet, "/station/KIT-1/sign-in", badge=f"NOBODY{n}")
    # Same address (127.0.0.1), but the desk's sign-in is not the tablet's.
    assert sign_in(station_app.test_client(), "supervisor", "supervisor").status_code == 303


def test_a_slowed_tablet_still_takes_the_worker_s_part_scans(
    station_app: Flask, tablet: FlaskClient
) -> None:
    assert banner(scan(tablet, "OP1001"))[0] == "ok"
    post(tablet, "/station/KIT-1/start")
    for n in range(8):  # someone types unknown badges at the tablet
        post(tablet, "/station/KIT-1/sign-in", badge=f"NOBODY{n}")
    kind, text = banner(post(tablet, "/station/KIT-1/sign-in", badge="NOBODY9"))
    assert kind == "reject" and text.startswith("Too many failed sign-ins")
    # The worker's scans are parts, not sign-ins: never held back.
    assert banner(scan(tablet, CASE_MT))[0] == "ok"


def test_a_slowed_tablet_signs_the_right_badge_in_seconds_later(
    station_app: Flask, tablet: FlaskClient
) -> None:
    for n in range(8):  # scans with nobody signed in are badges
        scan(tablet, f"NOBODY{n}")
    kind, text = banner(scan(tablet, "OP1001"))
    assert kind == "reject" and text == "Too many failed sign-ins. Try again in 1 seconds."
    time.sleep(1.05)
    assert banner(scan(tablet, "OP1001")) == ("ok", "Welcome, Alice Martin.")


def test_wrong_pins_are_limited_per_badge_from_any_tablet(
    station_app: Flask, tablet: FlaskClient
) -> None:
    for _ in range(2):
        assert banner(post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="0000"))[0] == (
            "reject"
        )
    other = station_app.test_client()
    bind(station_app, other, "BRD-1")
    r = other.post("/station/BRD-1/pin", data={"badge": "OP1002", "pin": "4321"}, headers=HX)
    kind, text = banner(r.text)
    assert kind == "reject" and text.startswith("Too many failed sign-ins")
    # Another person's badge at the first tablet is not affected.
    assert banner(scan(tablet, "OP1001")) == ("ok", "Welcome, Alice Martin.")


def test_forgotten_names_do_not_pile_up() -> None:
    now = [0.0]
    limiter = SignInLimiter(
        per_account=5, per_source=10**6, window_seconds=60, max_delay=30, clock=lambda: now[0]
    )
    for n in range(1000):
        limiter.failed(limiter.begin(f"user:made-up-{n}", "address:a"))
    now[0] += 61
    for n in range(1100):
        limiter.failed(limiter.begin(f"user:later-{n}", "address:a"))
    assert len(limiter.accounts) <= 1100


# -- 5. sign-out ends the session on the server --------------------------------------


def test_a_copied_session_cookie_stops_working_at_sign_out(demo_app: Flask) -> None:
    browser = demo_app.test_client()
    login(browser, "supervisor")
    copied = browser.get_cookie(demo_app.config["SESSION_COOKIE_NAME"])
    assert copied is not None
    assert browser.post("/logout").status_code == 303
    thief = demo_app.test_client()
    thief.set_cookie(demo_app.config["SESSION_COOKIE_NAME"], copied.value)
    assert healthz_user(thief) == ""
    r = thief.get("/audit/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_sign_out_ends_every_session_of_that_person_only(demo_app: Flask) -> None:
    desk, laptop, admin = (demo_app.test_client() for _ in range(3))
    login(desk, "supervisor")
    login(laptop, "supervisor")
    login(admin, "admin")
    desk.post("/logout")
    assert healthz_user(laptop) == ""
    assert healthz_user(admin) == "Ada Admin"
    login(laptop, "supervisor")  # signing in again works
    assert healthz_user(laptop) == "Sam Sutherland"


def test_a_password_or_pin_reset_ends_the_persons_sessions(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    supervisor = demo_app.test_client()
    login(supervisor, "supervisor")
    with write_session(engine) as db:
        sam = db.exec(select(Operator).where(Operator.username == "supervisor")).one()
        sam.pin_hash = auth.hash_secret("2468")
        db.add(sam)
    assert healthz_user(supervisor) == ""
    login(supervisor, "supervisor")
    with write_session(engine) as db:
        sam = db.exec(select(Operator).where(Operator.username == "supervisor")).one()
        sam.password_hash = auth.hash_secret("supervisor")  # the same password, a new hash
        db.add(sam)
    assert healthz_user(supervisor) == ""


def test_a_session_from_before_the_epoch_is_refused(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "supervisor")
    with client.session_transaction() as sess:  # a cookie signed before revision 0006
        del sess["epoch"]
    assert healthz_user(client) == ""


def test_migration_0006_gives_existing_people_epoch_0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0005")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO operator (name, badge, role, skills, locale, active)"
                " VALUES ('Old Timer', 'OLD1', 'operator', '[]', 'en', 1)"
            )
        )
    migrate.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT session_epoch FROM operator")).scalar() == 0
    migrate.downgrade(url, "0005")
    with engine.connect() as conn:
        assert "session_epoch" not in {c["name"] for c in sa.inspect(conn).get_columns("operator")}
        assert conn.execute(sa.text("SELECT name FROM operator")).scalar() == "Old Timer"
    engine.dispose()


# -- 6. an unknown user name answers as slowly as a known one ------------------------


def test_an_unknown_name_is_checked_against_a_dummy_hash(
    demo_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str | None] = []
    real = auth.verify_secret

    def spy(secret_hash: str | None, secret: str) -> bool:
        checked.append(secret_hash)
        return real(secret_hash, secret)

    monkeypatch.setattr(auth, "verify_secret", spy)
    with write_session(demo_app.extensions["taktline.engine"]) as db:
        alice = db.exec(select(Operator).where(Operator.badge == "OP1001")).one()
        alice.username, alice.password_hash = "alice", None  # a name, but no password
        db.add(alice)
    client = demo_app.test_client()
    for name in ("nobody", "alice", "supervisor"):
        assert sign_in(client, name, "guess").status_code == 401
    assert len(checked) == 3 and all(h and h.startswith("$argon2id$") for h in checked)
    assert checked[0] == checked[1] != checked[2]
    # Even a password that matched the dummy hash would sign nobody in.
    monkeypatch.setattr(auth, "verify_secret", lambda secret_hash, secret: True)
    assert sign_in(client, "nobody", "guess").status_code == 401
    assert sign_in(client, "alice", "guess").status_code == 401


def test_unknown_and_known_names_take_about_as_long(demo_db_url: str, tmp_path: Path) -> None:
    app = make_app(demo_db_url, tmp_path, SIGNIN_MAX_FAILURES=1000)
    client = app.test_client()
    sign_in(client, "nobody", "warm-up")  # the dummy hash is made on first use

    def timed(name: str) -> float:
        started = time.perf_counter()
        assert sign_in(client, name, "wrong").status_code == 401
        return time.perf_counter() - started

    known = statistics.median(timed("supervisor") for _ in range(5))
    unknown = statistics.median(timed(f"nobody-{n}") for n in range(5))
    assert unknown > known / 3, (known, unknown)


# -- 8. search fields take % and _ literally ------------------------------------------


def test_like_escaped() -> None:
    assert like_escaped("50%_a/b") == "50/%/_a//b"


def test_audit_filters_take_percent_and_underscore_literally(any_demo_app: Flask) -> None:
    with write_session(any_demo_app.extensions["taktline.engine"]) as db:
        for actor in ("Ann 50% (admin)", "a_b (admin)", "axb (admin)", "x/y (admin)"):
            audit.record(db, actor=actor, action="test.like", entity="test")
    client = any_demo_app.test_client()
    login(client, "supervisor")

    def actors(**args: str) -> list[str]:
        rows = client.get("/audit/export.json", query_string={"action": "test.", **args}).json
        return sorted(r["actor"] for r in rows)  # type: ignore[union-attr]

    assert actors() == ["Ann 50% (admin)", "a_b (admin)", "axb (admin)", "x/y (admin)"]
    assert actors(actor="%") == ["Ann 50% (admin)"]
    assert actors(actor="a_b") == ["a_b (admin)"]
    assert actors(actor="X/Y") == ["x/y (admin)"]
    assert actors(actor="_") == ["a_b (admin)"]
    assert actors(actor="ANN 50") == ["Ann 50% (admin)"]  # still any case
    assert actors(action="%like") == []
    page = client.get("/audit/", query_string={"actor": "%"}).get_data(as_text=True)
    assert "Ann 50%" in page and "axb (admin)" not in page
