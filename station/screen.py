"""What the tablet shows: a read-only view of one station for the templates.

The station workflow (``station.service``) decides and records, and its
``StationState`` says who is signed in, the unit and step in progress, its picks
(with bins and the lots/serials recorded) and the step clock. This module adds what
only the screen needs (the queue, the product and option names, the due date, the
routing progress, the open andon call) and shapes it all for
``templates/station/``, each part read when a template first asks for it
(``StationView``). No Flask here: the views pass a session and a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session

from server.dispatch.policy import in_queue_order
from server.models import (
    AndonCall,
    Check,
    CustomerOrder,
    Event,
    Operation,
    Operator,
    Option,
    Part,
    Product,
    Reason,
    Station,
    Unit,
    UnitOperation,
)
from server.models.joins import join_unit_to_order
from server.models.types import UnitOperationStatus
from station import reading
from station import workflow as wf
from station.cache import Cache, StationRef
from station.checks import CheckStatus
from station.messages import TEMPLATES

QUEUE_LIMIT = 50
# A re-rendered screen shows the last verdict for this long.
BANNER_SECONDS = 120.0
# The step timer turns amber at this share of the standard time, red beyond it.
AMBER_AT = 0.8

# Every read below is a Core select of the columns the screen shows, built once at
# import (SQLAlchemy's compiled cache then serves every call) and run on the session's
# connection, as in ``station.reading``: no ORM objects, no statement built per request.
_t = {
    name: model.__table__  # type: ignore[attr-defined]
    for name, model in {
        "station": Station,
        "operator": Operator,
        "uop": UnitOperation,
        "unit": Unit,
        "product": Product,
        "option": Option,
        "operation": Operation,
        "part": Part,
        "reason": Reason,
        "andon": AndonCall,
        "event": Event,
        "order": CustomerOrder,
        "check": Check,
    }.items()
}
station_t, operator_t, uop_t, unit_t = _t["station"], _t["operator"], _t["uop"], _t["unit"]
product_t, option_t, operation_t, part_t = _t["product"], _t["option"], _t["operation"], _t["part"]
reason_t, andon_t, event_t, order_t = _t["reason"], _t["andon"], _t["event"], _t["order"]
check_t = _t["check"]

_SIGNED_IN = (
    sa.select(
        operator_t.c.id,
        operator_t.c.name,
        operator_t.c.badge,
        operator_t.c.skills,
        operator_t.c.locale,
        operator_t.c.pin_hash,
    )
    .select_from(operator_t.join(station_t, station_t.c.operator_id == operator_t.c.id))
    .where(station_t.c.id == sa.bindparam("station"))
)
_READY = sa.select(
    uop_t.c.id, uop_t.c.priority, uop_t.c.due_date, uop_t.c.released_at, uop_t.c.unit_id
).where(
    uop_t.c.station_kind == sa.bindparam("kind"),
    uop_t.c.status == UnitOperationStatus.READY,
    uop_t.c.station_id.is_(None) | (uop_t.c.station_id == sa.bindparam("station")),
)
_QUEUED_UNITS = (
    sa.select(unit_t.c.id, unit_t.c.serial, product_t.c.name, product_t.c.translations)
    .select_from(unit_t.join(product_t, product_t.c.id == unit_t.c.product_id))
    .where(unit_t.c.id.in_(sa.bindparam("units", expanding=True)))
)
# The unit's product and its order's due date (none for a unit without an order).
_UNIT_HEAD = join_unit_to_order(
    sa.select(product_t.c.id, product_t.c.name, product_t.c.translations, order_t.c.due_date)
    .select_from(Unit)
    .outerjoin(product_t, product_t.c.id == unit_t.c.product_id),
    outer=True,
).where(unit_t.c.id == sa.bindparam("unit"))
_OPTIONS = sa.select(option_t.c.code, option_t.c.name, option_t.c.translations).where(
    option_t.c.product_id == sa.bindparam("product")
)
_ROUTING = (
    sa.select(uop_t.c.id, uop_t.c.status, operation_t.c.name, operation_t.c.translations)
    .select_from(uop_t.join(operation_t, operation_t.c.id == uop_t.c.operation_id))
    .where(uop_t.c.unit_id == sa.bindparam("unit"))
    .order_by(uop_t.c.sequence)
)
_OPERATION_TEXTS = sa.select(operation_t.c.translations).where(
    operation_t.c.id == sa.bindparam("operation")
)
_PARTS_BY_SKU = sa.select(part_t.c.sku, part_t.c.description, part_t.c.translations).where(
    part_t.c.sku.in_(sa.bindparam("skus", expanding=True))
)
_PART_TEXTS = sa.select(part_t.c.id, part_t.c.translations).where(
    part_t.c.id.in_(sa.bindparam("parts", expanding=True))
)
_CHECK_TEXTS = sa.select(check_t.c.id, check_t.c.translations).where(
    check_t.c.id.in_(sa.bindparam("checks", expanding=True))
)
_ANDON = (
    sa.select(andon_t.c.raised_at, andon_t.c.acknowledged_at, andon_t.c.reason, operator_t.c.name)
    .select_from(andon_t.outerjoin(operator_t, operator_t.c.id == andon_t.c.acknowledged_by_id))
    .where(andon_t.c.station_id == sa.bindparam("station"), andon_t.c.resolved_at.is_(None))
    .order_by(andon_t.c.raised_at.desc())
    .limit(1)
)
_REASONS = (
    sa.select(reason_t.c.code, reason_t.c.name, reason_t.c.translations)
    .where(reason_t.c.kind == sa.bindparam("kind"))
    .order_by(reason_t.c.position)
)
_LAST_EVENT = (
    sa.select(
        event_t.c.result, event_t.c.code, event_t.c.params, event_t.c.msg_id, event_t.c.received_at
    )
    .where(event_t.c.station_id == sa.bindparam("station"))
    .order_by(event_t.c.id.desc())
    .limit(1)
)
_QUEUE_PRINT = sa.select(
    sa.func.count(), sa.func.max(uop_t.c.id), sa.func.sum(uop_t.c.priority)
).where(uop_t.c.station_kind == sa.bindparam("kind"), uop_t.c.status == UnitOperationStatus.READY)
_ANDON_PRINT = (
    sa.select(andon_t.c.id, andon_t.c.acknowledged_at, andon_t.c.resolved_at)
    .where(andon_t.c.station_id == sa.bindparam("station"))
    .order_by(andon_t.c.id.desc())
    .limit(1)
)


@dataclass
class ScreenOperator:
    id: int
    name: str
    badge: str
    locale: str


@dataclass
class QueueItem:
    serial: str
    product: str
    due_date: date | None
    late: bool


@dataclass
class RoutingStep:
    name: str
    state: str  # done | current | todo | held


@dataclass
class UnitInfo:
    id: int
    serial: str
    product: str
    options: list[str]
    due_date: date | None
    late: bool
    routing: list[RoutingStep]


@dataclass
class PickLine:
    sku: str
    description: str
    bin: str
    qty: int
    picked: int
    records: list[str]

    @property
    def done(self) -> bool:
        return self.picked >= self.qty


@dataclass
class StepInfo:
    unit_operation_id: int
    name: str
    instructions: str
    image: str
    picks: list[PickLine]
    paused: bool

    @property
    def picks_done(self) -> bool:
        return all(p.done for p in self.picks)


@dataclass
class Timer:
    started_at: str
    paused_at: str | None
    paused_seconds: float
    standard_seconds: int
    now: str
    elapsed: float

    @property
    def level(self) -> str:
        if self.elapsed > self.standard_seconds:
            return "red"
        if self.elapsed >= AMBER_AT * self.standard_seconds:
            return "amber"
        return "green"

    @property
    def elapsed_text(self) -> str:
        return clock(self.elapsed)

    @property
    def standard_text(self) -> str:
        return clock(self.standard_seconds)


@dataclass
class AndonInfo:
    raised_at: datetime
    acknowledged: bool
    acknowledged_by: str | None
    reason: str = "help"
    minutes: int = 0  # how long ago it was raised, in whole minutes
    label: str | None = None  # the catalog's name of the reason (None: built-in or text)


@dataclass(frozen=True)
class ScreenStation:
    id: int
    code: str
    name: str  # in the reader's language where the catalog has it
    kind: str


class StationView:
    """What the tablet shows of one station, each part read on first use.

    A template reads what it shows and nothing else: the timer partial reads the open
    step's clock (one statement), the header the operator and the andon call, the
    queue the queue; the whole screen reads everything, once. Who is signed in and the
    open step come from one ``station.reading.now_row`` shared by every part, so the
    parts of one screen agree. ``signed_in`` is the operator the caller already read
    for the screen's language: not read again when still the one signed in.
    """

    def __init__(
        self,
        session: Session,
        station: Station,
        *,
        now: datetime,
        signed_in: wf.OperatorInfo | None = None,
    ) -> None:
        assert station.id is not None
        self._session = session
        self._station = station
        self._now = now
        self._cache = Cache()
        if signed_in is not None:
            self._cache.operators[signed_in.id] = signed_in

    @cached_property
    def _row(self) -> Any:
        return reading.now_row(self._session, self._station.id or 0)

    @cached_property
    def _operator(self) -> wf.OperatorInfo | None:
        operator_id = self._row[0] if self._row is not None else None
        return None if operator_id is None else self._cache.operator(self._session, operator_id)

    @cached_property
    def _open(self) -> reading.OpenStep | None:
        return reading.open_step(self._row)

    @property
    def code(self) -> str:
        return self._station.code

    @property
    def locale(self) -> str | None:
        """The signed-in operator's language: the catalog's texts are shown in it."""
        return self._operator.locale if self._operator is not None else None

    @cached_property
    def _state(self) -> wf.StationState:
        """The workflow's state of the station (``station.reading``), for what the screen
        shows of it: the step, its picks and checks. Not for deciding: the picks'
        substitutes and the station's line and site codes, which the screen does not
        show, are not read."""
        s = self._station
        info = StationRef(id=s.id or 0, code=s.code, name=s.name, kind=s.kind, line="", site="")
        if self._open is not None:
            for part_id in self._open.part_ids:
                self._cache.substitutes.setdefault(part_id, [])
        return reading.state_from(self._session, info, self._row, self._cache)

    @cached_property
    def station(self) -> ScreenStation:
        s = self._station
        name = translated(s.translations, self.locale, "name", s.name)
        return ScreenStation(id=s.id or 0, code=s.code, name=name, kind=s.kind)

    @cached_property
    def operator(self) -> ScreenOperator | None:
        op = self._operator
        if op is None:
            return None
        return ScreenOperator(id=op.id, name=op.name, badge=op.badge, locale=op.locale)

    @cached_property
    def queue(self) -> list[QueueItem]:
        return _queue(self._session, self._station, self._now.date(), self.locale)

    @cached_property
    def _routing(self) -> list[Any]:
        """The open unit's operations in order (id, status, operation name and texts)."""
        if self._open is None:
            return []
        return list(self._session.connection().execute(_ROUTING, {"unit": self._open.unit_id}))

    @cached_property
    def unit(self) -> UnitInfo | None:
        if self._open is None:
            return None
        return _unit(self._session, self._open, self._routing, self._now.date(), self.locale)

    @cached_property
    def step(self) -> StepInfo | None:
        if self._open is None or self._state.operation is None:
            return None
        step = _step(self._state)
        if self.locale:
            uop = self._open.unit_operation_id
            texts = next((row[3] for row in self._routing if row[0] == uop), None)
            _translate_step(self._session, step, self._state, self.locale, texts)
        return step

    @cached_property
    def timer(self) -> Timer | None:
        return None if self._open is None else _timer(self._open, self._now)

    @cached_property
    def checks(self) -> tuple[CheckStatus, ...]:
        """The quality checks of the open step (``station.checks``), their names and
        instructions in the operator's language where the catalog has them."""
        checks = self._state.checks if self._open is not None else ()
        if not checks or not self.locale:
            return checks
        return _translate_checks(self._session, checks, self.locale)

    @cached_property
    def andon(self) -> AndonInfo | None:
        andon = _andon(self._session, self._station.id or 0, self._now)
        if andon is not None:
            andon.label = dict(reasons(self._session, "andon", self.locale)).get(andon.reason)
        return andon


def translated(
    translations: Mapping[str, Any] | None, locale: str | None, key: str, text: str
) -> str:
    """``text`` in ``locale`` when the catalog has it (the import's ``translations``),
    else as it is."""
    if not locale or not isinstance(translations, Mapping):
        return text
    found = (translations.get(locale) or {}).get(key)
    return found if isinstance(found, str) and found else text


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def signed_in(session: Session, station_id: int) -> wf.OperatorInfo | None:
    """Who is signed in at the station (one statement): the screen's language, and the
    operator ``StationView`` then need not read again."""
    row = session.connection().execute(_SIGNED_IN, {"station": station_id}).first()
    if row is None:
        return None
    op_id, name, badge, skills, locale, pin_hash = row
    return wf.OperatorInfo(op_id, name, badge, tuple(skills or ()), locale, has_pin=bool(pin_hash))


def operation_texts(session: Session, operation_id: int) -> Any:
    """An operation's ``translations`` (None for an unknown one)."""
    return session.connection().execute(_OPERATION_TEXTS, {"operation": operation_id}).scalar()


def check_texts(session: Session, check_id: int) -> Any:
    """A quality check's ``translations`` (None for an unknown one)."""
    row = session.connection().execute(_CHECK_TEXTS, {"checks": [check_id]}).first()
    return row[1] if row is not None else None


def part_texts(session: Session, skus: list[str]) -> list[tuple[str, str, Any]]:
    """(sku, description, translations) of the parts with these ``skus``."""
    rows = session.connection().execute(_PARTS_BY_SKU, {"skus": skus})
    return [(sku, description, tr) for sku, description, tr in rows]


def reasons(session: Session, kind: str, locale: str | None) -> list[tuple[str, str]]:
    """The catalog's reasons of ``kind`` (andon, defect) as (code, name in ``locale``),
    in order; empty when the catalog has none (the built-in ones apply)."""
    return [
        (code, translated(tr, locale, "name", name))
        for code, name, tr in session.connection().execute(_REASONS, {"kind": kind})
    ]


def fingerprint(session: Session, *, station_id: int, kind: str) -> tuple[object, ...]:
    """Changes to the screen that no station snapshot announces: the queue (a release,
    a supervisor's move) and the andon call (acknowledged, resolved)."""
    conn = session.connection()
    queue = conn.execute(_QUEUE_PRINT, {"kind": kind}).one()
    call = conn.execute(_ANDON_PRINT, {"station": station_id}).first()
    return tuple(queue), tuple(call or ())


class _Ready(NamedTuple):
    """A ready operation, as ``server.dispatch.policy`` orders it."""

    id: int
    priority: int
    due_date: date | None
    released_at: datetime
    unit_id: int


def _queue(session: Session, station: Station, today: date, locale: str | None) -> list[QueueItem]:
    """The station's queue as ``server.dispatch.queue_for`` orders it (its policy, its
    filter), read as columns: the ready operations, then the shown units' serials and
    products."""
    conn = session.connection()
    ops = in_queue_order(
        _Ready(*row) for row in conn.execute(_READY, {"kind": station.kind, "station": station.id})
    )[:QUEUE_LIMIT]
    if not ops:
        return []
    units = {
        unit_id: (serial, translated(tr, locale, "name", name))
        for unit_id, serial, name, tr in conn.execute(
            _QUEUED_UNITS, {"units": sorted({op.unit_id for op in ops})}
        )
    }
    items = []
    for op in ops:
        unit = units.get(op.unit_id)
        if unit is None:
            continue
        items.append(
            QueueItem(
                serial=unit[0],
                product=unit[1],
                due_date=op.due_date,
                late=bool(op.due_date and op.due_date < today),
            )
        )
    return items


def _unit(
    session: Session,
    step: reading.OpenStep,
    routing_rows: list[Any],
    today: date,
    locale: str | None,
) -> UnitInfo:
    conn = session.connection()
    head = conn.execute(_UNIT_HEAD, {"unit": step.unit_id}).first()
    product = head[:3] if head is not None and head[0] is not None else None
    due: date | None = head[3] if head is not None else None
    names: dict[str, str] = {}
    if step.options and product is not None:
        names = {
            code: translated(tr, locale, "name", name)
            for code, name, tr in conn.execute(_OPTIONS, {"product": product[0]})
        }
    routing = []
    for uop_id, status, name, tr in routing_rows:
        state = (
            "current"
            if uop_id == step.unit_operation_id
            else "done"
            if status == UnitOperationStatus.DONE
            else "held"
            if status == UnitOperationStatus.HELD
            else "todo"
        )
        routing.append(RoutingStep(name=translated(tr, locale, "name", name), state=state))
    return UnitInfo(
        id=step.unit_id,
        serial=step.serial,
        product=translated(product[2], locale, "name", product[1]) if product else "",
        options=[names.get(code, code) for code in step.options],
        due_date=due,
        late=bool(due and due < today),
        routing=routing,
    )


def _step(state: wf.StationState) -> StepInfo:
    op = state.operation
    assert op is not None
    picks = [
        PickLine(
            sku=p.sku,
            description=p.description,
            bin=p.bin,
            qty=p.qty,
            picked=p.done,
            records=list(p.recorded),
        )
        for p in state.picks
    ]
    return StepInfo(
        unit_operation_id=op.unit_operation_id,
        name=op.name,
        instructions=op.instructions,
        image=op.image,
        picks=picks,
        paused=state.paused,
    )


def _translate_step(
    session: Session, step: StepInfo, state: wf.StationState, locale: str, texts: Any
) -> None:
    """The step's name, instructions and part descriptions in ``locale``, where the
    catalog has them: ``texts`` is the operation's translations, the parts' are read
    (one statement)."""
    conn = session.connection()
    step.name = translated(texts, locale, "name", step.name)
    step.instructions = translated(texts, locale, "instructions", step.instructions)
    parts: dict[int, Any] = {}
    if state.picks:
        parts = dict(conn.execute(_PART_TEXTS, {"parts": [p.part_id for p in state.picks]}).all())
    for line, pick in zip(step.picks, state.picks, strict=True):
        line.description = translated(
            parts.get(pick.part_id), locale, "description", line.description
        )


def _translate_checks(
    session: Session, checks: tuple[CheckStatus, ...], locale: str
) -> tuple[CheckStatus, ...]:
    """``checks`` with their name and instructions in ``locale`` where the catalog has
    them (one statement); the workflow's own specs keep the catalog's text."""
    rows = session.connection().execute(_CHECK_TEXTS, {"checks": [c.spec.id for c in checks]})
    texts: dict[int, Any] = dict(rows.all())
    out = []
    for c in checks:
        tr = texts.get(c.spec.id)
        spec = replace(
            c.spec,
            name=translated(tr, locale, "name", c.spec.name),
            instructions=translated(tr, locale, "instructions", c.spec.instructions),
        )
        out.append(replace(c, spec=spec))
    return tuple(out)


def _timer(step: reading.OpenStep, now: datetime) -> Timer:
    clock = wf.StationState(
        station="",
        station_id=0,
        started_at=step.started_at,
        paused_at=step.paused_at,
        paused_seconds=step.paused_seconds,
    )
    return Timer(
        started_at=step.started_at.isoformat(),
        paused_at=step.paused_at.isoformat() if step.paused_at else None,
        paused_seconds=round(step.paused_seconds, 3),
        standard_seconds=step.standard_seconds,
        now=now.isoformat(),
        elapsed=clock.worked_seconds(now),
    )


def _andon(session: Session, station_id: int, now: datetime) -> AndonInfo | None:
    """The station's open andon call, and who acknowledged it (one statement)."""
    row = session.connection().execute(_ANDON, {"station": station_id}).first()
    if row is None:
        return None
    raised_at, acknowledged_at, reason, by = row
    return AndonInfo(
        raised_at=raised_at,
        acknowledged=acknowledged_at is not None,
        acknowledged_by=by,
        reason=reason,
        minutes=max(int((now - raised_at).total_seconds() // 60), 0),
    )


# -- the last verdict ----------------------------------------------------------------


@dataclass
class Verdict:
    result: str  # accepted | rejected | duplicate
    code: str
    params: dict[str, Any]
    msg_id: str
    at: datetime


def last_verdict(
    session: Session, station_id: int, *, now: datetime, max_age_seconds: float = BANNER_SECONDS
) -> Verdict | None:
    """The station's most recent event verdict, if recent: the banner of a screen that is
    re-rendered (page load, SSE snapshot after an MQTT or API event). Read from the
    stored code and parameters, so it renders in the operator's language."""
    row = session.connection().execute(_LAST_EVENT, {"station": station_id}).first()
    if row is None:
        return None
    result, code, params, msg_id, received_at = row
    if (now - received_at).total_seconds() > max_age_seconds or code not in TEMPLATES:
        return None
    return Verdict(
        result=result, code=code, params=dict(params or {}), msg_id=msg_id, at=received_at
    )
