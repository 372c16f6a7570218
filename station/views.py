"""The station tablet: the screen a line worker uses all shift (blueprint "station").

A tablet is bound to one station by a device token in a long-lived cookie
(``/station/bind?token=...``; tokens come from ``server.security.auth.issue_device_token``).
Every station view checks that binding (``station_device``): an unbound tablet is sent
to a page saying so, a tablet bound to another station gets 403.

Reads hand the templates a ``station.screen.StationView``, which reads each part of the
station (operator, step, queue, andon...) when a template first shows it, so a partial
costs what it shows. Every action goes through ``station.service.handle`` (one place
decides what a badge, a scan or a button means, for the tablet, MQTT and the API alike)
and, after the commit, ``station.publish.after_commit`` tells the devices and every
screen. ``_render`` answers the partial to htmx and the full page otherwise; the page
includes the same partials.
Live updates come over one SSE stream per page (``events``).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    copy_current_request_context,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import refresh as refresh_locale
from flask_htmx import HTMX
from sqlmodel import Session, col, select
from werkzeug.exceptions import RequestEntityTooLarge

from server.db import begin_write, get_session, retry_deadlocked
from server.messaging import live
from server.models import Operator, Station
from server.models.types import EventResult, utcnow
from server.operations import metrics
from server.security import auth
from station import publish, screen, service, texts
from station import workflow as wf
from station.messages import ANDON_REASONS, DEFECT_REASONS, DISPOSITIONS

log = logging.getLogger(__name__)
bp = Blueprint("station", __name__, url_prefix="/station")
htmx = HTMX()
F = TypeVar("F", bound=Callable[..., Any])

MAX_SCAN = 512
# A wedge scan the tablet sent more than this long ago (by the server's clock, which
# the page follows) is refused, not judged: the tablet gives up on an answer after
# 4 s (station.js) and tells the worker "not recorded", so a request that sat in a
# frozen server's backlog must not be recorded behind the worker's back.
STALE_SCAN_SECONDS = 4.0
# How often an open stream looks for changes no snapshot announces (queue, andon).
POLL_SECONDS = 3.0

# Partial name -> template; each is also served alone at /station/<code>/<name>.
PARTIALS = {
    "screen": "station/_screen.html",
    "header": "station/_header.html",
    "banner": "station/_banner.html",
    "queue": "station/_queue.html",
    "unit": "station/_unit.html",
    "step": "station/_step.html",
    "timer": "station/_timer.html",
    "actions": "station/_actions.html",
    "signin": "station/_signin.html",
}
BANNER_KIND: dict[str, str] = {
    EventResult.ACCEPTED: "ok",
    EventResult.REJECTED: "reject",
    EventResult.DUPLICATE: "info",
}


# Accepted, but nothing to cheer in green: the step stopped, help is still to come.
NEUTRAL_CODES = frozenset({"paused", "andon_raised"})


def _banner_kind(result: str, code: str) -> str:
    if result == EventResult.ACCEPTED and code in NEUTRAL_CODES:
        return "info"
    return BANNER_KIND.get(result, "info")


def heartbeat_seconds() -> float:
    return float(current_app.config["STATION_HEARTBEAT_SECONDS"])


# -- binding -------------------------------------------------------------------------


def station_device(view: F) -> F:
    """Admit only a tablet bound to the station named by the URL's ``code``."""

    @functools.wraps(view)
    def wrapped(code: str, *args: Any, **kwargs: Any) -> Any:
        bound = auth.bound_station()
        if bound is None:
            if htmx:
                return Response(status=401, headers={"HX-Redirect": url_for("station.unbound")})
            return redirect(url_for("station.unbound"), code=303)
        if bound.code != code:
            log.warning(
                "tablet bound to %s refused station %s (%s %s)",
                bound.code,
                code,
                request.method,
                request.path,
            )
            return _notice(
                403,
                _("Wrong station"),
                _(
                    "This tablet is bound to station %(bound)s, not %(code)s.",
                    bound=bound.code,
                    code=code,
                ),
                device_station=bound.code,
            )
        g.station = bound
        db = get_session()
        _follow_operator_language(db, bound.id)
        db.commit()  # end the read transaction: an action starts its own write
        return view(code, *args, **kwargs)

    wrapped.access = "station-device"  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def _notice(status: int, title: str, text: str, **extra: Any) -> tuple[str, int]:
    return render_template(
        "station/notice.html",
        station=None,
        title=title,
        text=text,
        kind="refused" if status >= 400 else "info",
        **extra,
    ), status


def _follow_operator_language(db: Session, station_id: int | None) -> None:
    """The screen speaks the language of whoever is signed in at the station (kept in
    ``g.station_operator``: the station's view need not read them again)."""
    operator = screen.signed_in(db, station_id or 0)
    g.station_operator = operator
    g.station_locale = operator.locale if operator is not None else None
    refresh_locale()


@bp.get("/bind")
@auth.public
def bind() -> Any:
    token = request.args.get("token", "").strip()
    station = auth.station_for_device(get_session(), token)
    if station is None:
        log.warning("tablet binding refused from %s: unknown or revoked token", auth.address())
        return _notice(
            403,
            _("Binding refused"),
            _("This binding link is unknown or was revoked. Ask an admin for a new one."),
        )
    log.info("tablet at %s bound to station %s", auth.address(), station.code)
    response = redirect(url_for("station.page", code=station.code), code=303)
    return auth.set_device_cookie(response, token)


@bp.get("/")
@auth.public
def unbound() -> Any:
    bound = auth.bound_station()
    if bound is not None:
        return redirect(url_for("station.page", code=bound.code), code=303)
    return _notice(
        200,
        _("This tablet is not bound to a station"),
        _("Ask an admin to bind it: they open the station's binding link on this tablet once."),
    )


# -- rendering -----------------------------------------------------------------------


def _view(db: Session, station: Station | None = None) -> screen.StationView:
    """The bound station's view (``station.screen.StationView``): each part is read
    from ``db`` when a template first shows it, so a partial reads only what it shows."""
    return screen.StationView(
        db, station or g.station, now=utcnow(), signed_in=g.get("station_operator")
    )


def _last_banner(db: Session, station_id: int) -> dict[str, Any] | None:
    """The banner of a re-rendered screen: the station's last verdict, if recent."""
    verdict = screen.last_verdict(db, station_id, now=utcnow())
    if verdict is None:
        return None
    params = _catalog_texts(db, verdict.code, verdict.params)
    return {
        "kind": _banner_kind(verdict.result, verdict.code),
        "ref": verdict.msg_id,
        "code": verdict.code,
        "params": verdict.params,
        "text": texts.translated(verdict.code, params),
    }


def _reasons(db: Session, kind: str) -> list[tuple[str, str]]:
    """The reasons the tablet offers: the catalog's (import ``reasons``), else the
    built-in ones, in the reader's language either way."""
    found = screen.reasons(db, kind, str(get_locale() or ""))
    if found:
        return found
    defaults = ANDON_REASONS if kind == "andon" else DEFECT_REASONS
    return [(code, _(label)) for code, label in defaults]


# Messages whose ``reason`` parameter is an andon or defect reason code.
REASON_KIND = {"andon_raised": "andon", "defect_recorded": "defect", "unit_held": "defect"}


def _catalog_texts(db: Session, code: str, params: dict[str, Any]) -> dict[str, Any]:
    """A verdict's catalog data in the reader's language where the catalog has it:
    the operation (``operation_id``), the quality check (``check_id``), the parts
    (``scanned_sku``, ``needed_skus``) and the catalog's reason a message names; the
    rest as recorded."""
    locale = str(get_locale() or "")
    reason = params.get("reason")
    if code in REASON_KIND and isinstance(reason, str):
        name = dict(screen.reasons(db, REASON_KIND[code], locale)).get(reason)
        if name is not None:
            params = {**params, "reason": name}
    op_id, scanned = params.get("operation_id"), params.get("scanned_sku")
    check_id = params.get("check_id")
    needed = params.get("needed_skus")
    needed = [s for s in needed if isinstance(s, str)] if isinstance(needed, list) else []
    if not locale or not (
        isinstance(op_id, int) or isinstance(scanned, str) or isinstance(check_id, int)
    ):
        return params
    params = dict(params)
    if isinstance(check_id, int):
        params["name"] = screen.translated(
            screen.check_texts(db, check_id), locale, "name", str(params.get("name", ""))
        )
    if isinstance(op_id, int):
        params["operation"] = screen.translated(
            screen.operation_texts(db, op_id), locale, "name", str(params.get("operation", ""))
        )
    skus = ([scanned] if isinstance(scanned, str) else []) + needed
    if skus:
        names = {
            sku: screen.translated(tr, locale, "description", description or sku)
            for sku, description, tr in screen.part_texts(db, skus)
        }
        if isinstance(scanned, str) and scanned in names:
            params["scanned"] = names[scanned]
        if needed and all(sku in names for sku in needed):
            params["needed_list"] = [names[sku] for sku in needed]
    return params


def _andon_label(andon: screen.AndonInfo) -> str:
    """The andon call's reason: the catalog's name, else the built-in one, translated."""
    return andon.label or texts.label(ANDON_REASONS, andon.reason)


def _dispositions() -> list[tuple[str, str, str]]:
    """What may happen to a unit with a defect (the defect dialog's choices)."""
    return [(code, _(label), _(text)) for code, label, text in DISPOSITIONS]


def _context(
    view: screen.StationView, banner: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """What the templates get. Nothing here reads the station: the templates read
    ``view`` (lazily), so a partial costs what it shows."""
    return {
        "view": view,
        "station": view,  # the page's title and links: its ``code``
        "banner": banner,
        "heartbeat_seconds": heartbeat_seconds(),
        "andon_label": _andon_label,
        "server_now": utcnow().isoformat(),
        "number_sign_in": bool(current_app.config["STATION_NUMBER_SIGN_IN"]),
        **extra,
    }


def _render(
    partial: str, view: screen.StationView, banner: dict[str, Any] | None = None, **extra: Any
) -> str:
    """The partial for htmx, the whole page otherwise (same templates either way)."""
    context = _context(view, banner, **extra)
    if htmx:
        return render_template(PARTIALS[partial], **context)
    return render_template("station/page.html", **context)


@bp.get("/<code>")
@station_device
def page(code: str) -> str:
    db = get_session()
    return render_template(
        "station/page.html", **_context(_view(db), _last_banner(db, g.station.id))
    )


# The partials that show the last verdict (the banner; the rows a wrong part names).
BANNER_PARTIALS = frozenset({"screen", "banner", "step"})


@bp.get("/<code>/<any(" + ",".join(PARTIALS) + "):partial>")
@station_device
def partial(code: str, partial: str) -> str:
    db = get_session()
    shown = not htmx or partial in BANNER_PARTIALS
    return _render(partial, _view(db), _last_banner(db, g.station.id) if shown else None)


@bp.get("/<code>/defect")
@station_device
def defect_dialog(code: str) -> Any:
    """The defect reasons dialog (a fragment swapped into #dialog)."""
    view = _view(get_session())
    reasons = _reasons(get_session(), "defect")
    dialog: dict[str, Any] = {"defect_reasons": reasons, "dispositions": _dispositions()}
    if not htmx:
        return render_template("station/page.html", **_context(view, None, defect=True, **dialog))
    return render_template("station/_defect.html", **_context(view, **dialog))


# -- actions: each one event through station.service ---------------------------------


def _act(code: str, event: wf.StationEvent, *, source: str = "tablet") -> Any:
    """Record ``event`` in one write transaction, tell the screens, answer the screen."""
    outcome = _decide(code, event, source=source)
    return _answer(code, banner_for(outcome))


def _decide(code: str, event: wf.StationEvent, *, source: str) -> service.Outcome:
    db = get_session()
    msg_id = str(uuid.uuid4())

    def decide() -> service.Outcome:
        begin_write(db)
        outcome = service.handle(
            db,
            station_code=code,
            event=event,
            msg_id=msg_id,
            channel="ui",
            source=source,
            address=auth.address(),
        )
        db.commit()
        return outcome

    outcome = retry_deadlocked(decide, session=db)
    publish.after_commit(live.sink(), [publish.answer(outcome)])
    return outcome


def banner_for(outcome: service.Outcome) -> dict[str, Any]:
    return {
        "kind": _banner_kind(outcome.result, outcome.code),
        "text": texts.lazy(
            outcome.code, _catalog_texts(get_session(), outcome.code, outcome.params)
        ),
        "ref": outcome.msg_id,
        "code": outcome.code,
        "params": outcome.params,
    }


def _answer(code: str, banner: dict[str, Any] | None) -> Any:
    db = get_session()
    _follow_operator_language(db, g.station.id)  # a sign-in changes the language
    view = _view(db)
    if not htmx:  # a plain form post (no JavaScript) gets the whole page
        return render_template("station/page.html", **_context(view, banner))
    # The new #screen, and the dialog that led here (PIN pad, defect) closed.
    return (
        render_template(PARTIALS["screen"], **_context(view, banner))
        + '<div id="overlay" hx-swap-oob="innerHTML"></div>'
    )


@bp.post("/<code>/scan")
@station_device
def scan(code: str) -> Any:
    """The wedge scanner's text (station.js posts a fast burst ending in Enter).

    What it means (a part, a badge, a hand-over) is decided by the workflow, as for a
    serial scanner; a badge that needs a PIN opens the PIN pad."""
    data = request.form.get("data", "").strip("\r\n")
    if _stale(request.form.get("sent_at", "")):
        log.warning("station %s: wedge scan refused, sent too long ago", code)
        return _answer(
            code,
            {
                "kind": "reject",
                "ref": str(uuid.uuid4()),
                "code": "not_recorded_offline",
                "text": texts.lazy("not_recorded_offline"),
            },
        )
    if not data or len(data) > MAX_SCAN:
        log.warning("station %s: empty or oversized wedge scan (%d chars)", code, len(data))
        return _answer(
            code,
            {
                "kind": "reject",
                "ref": str(uuid.uuid4()),
                "code": "unreadable",
                "text": _("Scan not readable: scan again."),
            },
        )
    return _badge(code, data, scan=True)


def _stale(sent_at: str) -> bool:
    """The scan was sent (by the server's clock, as the page estimates it) longer ago
    than the tablet waits for an answer. No or a malformed time: not stale."""
    try:
        sent = datetime.fromisoformat(sent_at.replace("Z", "+00:00")[:40])
    except ValueError:
        return False
    if sent.tzinfo is None:
        return False
    return (utcnow() - sent).total_seconds() > STALE_SCAN_SECONDS


def _badge(
    code: str,
    badge: str,
    pin: str | None = None,
    *,
    scan: bool = False,
    generic_refusal: dict[str, Any] | None = None,
) -> Any:
    """A sign-in (typed badge, PIN pad) or a wedge scan, with the sign-in limits
    (server.security.ratelimit): wrong PINs per badge (the PIN is what is guessed), and
    unknown badges and wrong PINs per tablet, which slow that tablet down for seconds.
    The tablet is known by its device token, not its address: tablets behind one proxy
    share an address, and the desktop sign-in's failures are not theirs. A scan while
    someone works is a part (or a hand-over) and is never held back."""
    limiter = auth.limiter()
    account = f"badge:{badge.strip()[:64]}" if pin is not None else None
    signing_in = not scan or g.station.operator_id is None
    try:
        attempt = limiter.begin(account, f"tablet:{code}" if signing_in else None)
    except auth.RateLimited as exc:
        return _answer(
            code,
            {
                "kind": "reject",
                "ref": str(uuid.uuid4()),
                "code": "rate_limited",
                "text": _(
                    "Too many failed sign-ins. Try again in %(s)s seconds.", s=exc.retry_after
                ),
            },
        )
    event: wf.StationEvent = (
        wf.Scan(data=badge) if scan else wf.SignIn(badge=badge.strip(), pin=pin)
    )
    try:
        outcome = _decide(code, event, source="wedge" if scan else "badge")
    except BaseException:
        limiter.release(attempt)
        raise
    if outcome.code in ("unknown_badge", "wrong_pin"):
        limiter.failed(attempt)
    elif outcome.code == "signed_in":
        limiter.succeeded(attempt)
    else:
        limiter.release(attempt)
    if generic_refusal is not None and not outcome.accepted:
        return _answer(code, generic_refusal)
    if outcome.code == "pin_needed":
        return _pin_pad(
            code, str(outcome.params.get("badge", "")), str(outcome.params.get("name", ""))
        )
    return _answer(code, banner_for(outcome))


def _pin_pad(code: str, badge: str, name: str) -> Any:
    # The pad speaks the language of the badge's owner, not the screen's.
    g.station_locale = (
        get_session().exec(select(Operator.locale).where(Operator.badge == badge.strip())).first()
    )
    refresh_locale()
    context = {"station": g.station, "badge": badge, "operator_name": name}
    if not htmx:
        view = _view(get_session())
        return render_template("station/page.html", **_context(view, None, pin=context))
    return Response(
        render_template("station/_pin.html", **context),
        headers={"HX-Retarget": "#overlay", "HX-Reswap": "innerHTML"},
    )


@bp.post("/<code>/sign-in")
@station_device
def sign_in(code: str) -> Any:
    return _badge(code, request.form.get("badge", ""))


@bp.post("/<code>/pin")
@station_device
def pin(code: str) -> Any:
    return _badge(code, request.form.get("badge", ""), request.form.get("pin", ""))


@bp.get("/<code>/number")
@station_device
def number_dialog(code: str) -> Any:
    """The keypad for signing in without a badge: operator number, then PIN
    (STATION_NUMBER_SIGN_IN)."""
    if not current_app.config["STATION_NUMBER_SIGN_IN"]:
        return _notice(404, _("Not available"), _("Sign in with your badge."))
    context = {"station": g.station}
    if not htmx:
        view = _view(get_session())
        return render_template("station/page.html", **_context(view, None, number=context))
    return render_template("station/_number.html", **context)


@bp.post("/<code>/number")
@station_device
def number_sign_in(code: str) -> Any:
    """Operator number and PIN: the badge's sign-in (its PIN checks and limits) for the
    operator with that number. An unknown number, an operator without a PIN and a wrong
    PIN get the same answer, which names no badge."""
    if not current_app.config["STATION_NUMBER_SIGN_IN"]:
        return _notice(404, _("Not available"), _("Sign in with your badge."))
    number = request.form.get("number", "").strip()[:16]
    pin = request.form.get("pin", "")[:32]
    badge = None
    if number.isdigit() and pin:
        badge = (
            get_session()
            .exec(
                select(Operator.badge).where(
                    Operator.number == number,
                    Operator.active == True,  # noqa: E712
                    col(Operator.pin_hash).is_not(None),
                )
            )
            .first()
        )
        get_session().commit()
    refusal = {
        "kind": "reject",
        "ref": str(uuid.uuid4()),
        "code": "wrong_number",
        "text": _("Operator number or PIN not right: try again or scan your badge."),
    }
    if badge is None:
        limiter = auth.limiter()
        try:
            attempt = limiter.begin(None, f"tablet:{code}")
        except auth.RateLimited as exc:
            return _refused(
                code,
                "rate_limited",
                _("Too many failed sign-ins. Try again in %(s)s seconds.", s=exc.retry_after),
            )
        limiter.failed(attempt)  # a guessed number counts against the tablet
        log.warning("station %s: sign-in with an unknown operator number", code)
        return _answer(code, refusal)
    return _badge(code, badge, pin, generic_refusal=refusal)


@bp.post("/<code>/sign-out")
@station_device
def sign_out(code: str) -> Any:
    return _act(code, wf.SignOut())


@bp.post("/<code>/start")
@station_device
def start(code: str) -> Any:
    return _act(code, wf.StartNext())


@bp.post("/<code>/complete")
@station_device
def complete(code: str) -> Any:
    return _act(code, wf.CompleteStep())


@bp.post("/<code>/pause")
@station_device
def pause(code: str) -> Any:
    return _act(code, wf.Pause())


@bp.post("/<code>/resume")
@station_device
def resume(code: str) -> Any:
    return _act(code, wf.Resume())


# What a defect photo may be, by its first bytes (the browser's content type is the
# sender's word): JPEG, PNG, WebP.
PHOTO_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"RIFF", "image/webp"),
)


def _refused(code: str, message_code: str, text: str) -> Any:
    return _answer(
        code, {"kind": "reject", "ref": str(uuid.uuid4()), "code": message_code, "text": text}
    )


@bp.post("/<code>/defect")
@station_device
def defect(code: str) -> Any:
    """A defect from the dialog: reason and disposition chosen (nothing is preselected),
    optionally the affected part, a note and a photo (bounded, JPEG/PNG/WebP)."""
    reason = request.form.get("reason", "")
    known = dict(_reasons(get_session(), "defect"))
    get_session().commit()  # end the read: the event starts its own write
    if reason not in known:
        log.warning("station %s: defect with unknown reason %r", code, reason[:40])
        return _refused(code, "bad_reason", _("Choose a defect reason."))
    disposition = request.form.get("disposition", "")
    if not disposition:  # an unknown one is the workflow's to refuse (bad_disposition)
        return _refused(code, "bad_disposition", _("Choose what happens to the unit."))
    photo = None
    upload = request.files.get("photo")
    if upload is not None and upload.filename:
        limit = int(current_app.config["DEFECT_PHOTO_MAX_BYTES"])
        try:
            data = upload.stream.read(limit + 1)
        finally:
            upload.close()  # a big one was spooled to a temporary file
        kind = next((t for magic, t in PHOTO_MAGIC if data.startswith(magic)), None)
        if kind == "image/webp" and data[8:12] != b"WEBP":
            kind = None
        if len(data) > limit or kind is None:
            log.warning("station %s: defect photo refused (%d bytes, %s)", code, len(data), kind)
            return _refused(
                code,
                "bad_photo",
                _(
                    "Photo refused: a JPEG, PNG or WebP picture of at most %(kb)s KB. "
                    "Nothing was recorded.",
                    kb=limit // 1000,
                ),
            )
        photo = (kind, data)
    return _act(
        code,
        wf.ReportDefect(
            reason_code=reason,
            note=request.form.get("note", "")[:1000],
            disposition=disposition,
            part_sku=request.form.get("part", "")[:64],
            photo=photo,
        ),
    )


@bp.post("/<code>/andon")
@station_device
def andon(code: str) -> Any:
    return _act(code, wf.CallAndon(reason=request.form.get("reason", "help")[:200] or "help"))


@bp.get("/<code>/andon")
@station_device
def andon_dialog(code: str) -> Any:
    """The andon reasons dialog (a fragment swapped into #overlay)."""
    view = _view(get_session())
    reasons = _reasons(get_session(), "andon")
    if not htmx:
        return render_template(
            "station/page.html", **_context(view, None, andon_dialog=True, andon_reasons=reasons)
        )
    return render_template("station/_andon.html", **_context(view, andon_reasons=reasons))


@bp.post("/<code>/andon/cancel")
@station_device
def andon_cancel(code: str) -> Any:
    return _act(code, wf.CancelAndon())


# -- live: one SSE stream per page ---------------------------------------------------


def _sse(event: str, data: str) -> str:
    lines = data.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


@bp.get("/<code>/events")
@station_device
def events(code: str) -> Response:
    """Named events: ``snapshot`` (the whole #screen, on every (re)connect and on every
    change of the station) and ``heartbeat``. Holds one server thread while open (size
    WEB_THREADS above the number of screens)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    station_id, kind = g.station.id, g.station.kind
    beat = heartbeat_seconds()

    @copy_current_request_context
    def render_screen() -> str:
        # A short session per snapshot: an open stream must not hold a DB connection.
        with Session(app.extensions["taktline.engine"], expire_on_commit=False) as db:
            _follow_operator_language(db, station_id)
            view = _view(db, db.get(Station, station_id))
            return render_template(
                PARTIALS["screen"], **_context(view, _last_banner(db, station_id))
            )

    def snapshot() -> str:
        # Rendered by the app's few snapshot threads, not the stream's own: rendering
        # goes deep, and the stack pages a thread touches stay with it (about 0.4 MB for
        # each of hundreds of open streams; 0.05 MB this way).
        renderer: ThreadPoolExecutor = app.extensions["taktline.snapshots"]
        return renderer.submit(render_screen).result()

    def fingerprint() -> tuple[Any, ...]:
        with Session(app.extensions["taktline.engine"]) as db:
            return screen.fingerprint(db, station_id=station_id, kind=kind)

    def stream() -> Iterator[str]:
        # Subscribe before the first snapshot, so no change falls between the two.
        subscription = live.subscribe(code)
        metrics.sse_opened("station")
        try:
            # Reconnect fast after a drop; the snapshot makes up for anything missed.
            yield f"retry: {int(min(beat, 3.0) * 1000)}\n\n"
            yield _sse("snapshot", snapshot())
            seen = fingerprint()
            last_sent = time.monotonic()
            while True:
                changed = subscription.get(timeout=min(beat, POLL_SECONDS)) is not None
                # Several changes queued meanwhile make one render.
                while changed and subscription.get(timeout=0) is not None:
                    pass
                # What no station snapshot announces (a release fills the queue, a
                # supervisor acknowledges the andon) is polled, cheaply.
                now_seen = fingerprint()
                if changed or now_seen != seen:
                    seen = now_seen
                    yield _sse("snapshot", snapshot())
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent >= beat:
                    yield _sse("heartbeat", utcnow().isoformat())
                    last_sent = time.monotonic()
        finally:
            subscription.close()
            metrics.sse_closed("station")

    return Response(
        stream_with_context(stream()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# On the blueprint (the API keeps its JSON 413): the body is refused before any view,
# even the CSRF check, reads it. The quality checks' tablet blueprint registers it too.
@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> Any:
    """A tablet's request over MAX_CONTENT_LENGTH (a photo the tablet could not
    shrink, e.g. HEIC): refused in the banner like any refusal, which htmx shows,
    instead of a bare 413 it would not. Any other request gets the plain 413."""
    code = (request.view_args or {}).get("code")
    bound = auth.bound_station() if htmx and request.path.startswith("/station/") else None
    if bound is None or bound.code != code:
        return exc
    g.station = bound
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    log.warning("station %s: %s refused, body over %d bytes", code, request.path, limit)
    return _refused(
        code,
        "too_large",
        _("Too large to send: at most %(kb)s KB. Nothing was recorded.", kb=limit // 1000),
    )


# Threads that render the snapshots of every open tablet stream of a process.
SNAPSHOT_THREADS = 4


def init_app(app: Flask) -> None:
    htmx.init_app(app)
    # Its threads start at the first snapshot, so in the process that serves it (a
    # gunicorn worker forks from a master that never renders one).
    app.extensions["taktline.snapshots"] = ThreadPoolExecutor(
        max_workers=SNAPSHOT_THREADS, thread_name_prefix="snapshot"
    )
    app.register_blueprint(bp)
