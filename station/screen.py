"""What the tablet shows: a read-only view of one station for the templates.

The station workflow (``station.service``) decides and records, and its
``StationState`` says who is signed in, the unit and step in progress, its picks
(with bins and the lots/serials recorded) and the step clock. This module adds what
only the screen needs (the queue, the product and option names, the due date, the
routing progress, the open andon call) and shapes it all for
``templates/station/``. No Flask here: the views pass a session and a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server import dispatch
from server.models import (
    AndonCall,
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
from station import workflow as wf
from station.cache import StationRef
from station.messages import TEMPLATES

QUEUE_LIMIT = 50
# A re-rendered screen shows the last verdict for this long.
BANNER_SECONDS = 120.0
# The step timer turns amber at this share of the standard time, red beyond it.
AMBER_AT = 0.8


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


@dataclass
class StationView:
    station: StationRef
    operator: ScreenOperator | None = None
    queue: list[QueueItem] = field(default_factory=list)
    unit: UnitInfo | None = None
    step: StepInfo | None = None
    timer: Timer | None = None
    andon: AndonInfo | None = None


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


def build(session: Session, state: wf.StationState, *, now: datetime) -> StationView:
    """The whole screen of the station in ``state`` (``station.service.load_state``)."""
    view = StationView(
        station=StationRef(
            id=state.station_id,
            code=state.station,
            name=state.name,
            kind=state.kind,
            line=state.line,
            site=state.site,
        )
    )
    locale = None
    if state.operator is not None:
        op = state.operator
        view.operator = ScreenOperator(id=op.id, name=op.name, badge=op.badge, locale=op.locale)
        locale = op.locale
    station = session.get(Station, state.station_id)
    assert station is not None
    view.station = replace(
        view.station, name=translated(station.translations, locale, "name", view.station.name)
    )
    view.queue = _queue(session, station, now.date(), locale)
    if state.unit is not None and state.operation is not None:
        view.unit = _unit(
            session, state.unit.id, state.operation.unit_operation_id, now.date(), locale
        )
        view.step = _step(state)
        if locale:
            _translate_step(session, view.step, state, locale)
        view.timer = _timer(state, now)
    view.andon = _andon(session, state.station_id, now)
    if view.andon is not None:
        view.andon.label = dict(reasons(session, "andon", locale)).get(view.andon.reason)
    return view


def reasons(session: Session, kind: str, locale: str | None) -> list[tuple[str, str]]:
    """The catalog's reasons of ``kind`` (andon, defect) as (code, name in ``locale``),
    in order; empty when the catalog has none (the built-in ones apply)."""
    rows = session.exec(
        select(Reason).where(Reason.kind == kind).order_by(col(Reason.position))
    ).all()
    return [(r.code, translated(r.translations, locale, "name", r.name)) for r in rows]


def fingerprint(session: Session, *, station_id: int, kind: str) -> tuple[object, ...]:
    """Changes to the screen that no station snapshot announces: the queue (a release,
    a supervisor's move) and the andon call (acknowledged, resolved)."""
    queue = session.exec(
        select(
            sa.func.count(), sa.func.max(UnitOperation.id), sa.func.sum(UnitOperation.priority)
        ).where(
            UnitOperation.station_kind == kind, UnitOperation.status == UnitOperationStatus.READY
        )
    ).one()
    call = session.exec(
        select(AndonCall.id, AndonCall.acknowledged_at, AndonCall.resolved_at)
        .where(AndonCall.station_id == station_id)
        .order_by(col(AndonCall.id).desc())
        .limit(1)
    ).first()
    return tuple(queue), tuple(call or ())


def _queue(session: Session, station: Station, today: date, locale: str | None) -> list[QueueItem]:
    uops = list(dispatch.queue_for(session, station=station))[:QUEUE_LIMIT]
    units = {
        u.id: u
        for u in session.exec(select(Unit).where(col(Unit.id).in_([uop.unit_id for uop in uops])))
    }
    products = {
        p.id: translated(p.translations, locale, "name", p.name)
        for p in session.exec(
            select(Product).where(col(Product.id).in_({u.product_id for u in units.values()}))
        )
    }
    items = []
    for uop in uops:
        unit = units.get(uop.unit_id)
        if unit is None:
            continue
        items.append(
            QueueItem(
                serial=unit.serial,
                product=products.get(unit.product_id, ""),
                due_date=uop.due_date,
                late=bool(uop.due_date and uop.due_date < today),
            )
        )
    return items


def _unit(
    session: Session, unit_id: int, unit_operation_id: int, today: date, locale: str | None
) -> UnitInfo:
    unit = session.get(Unit, unit_id)
    assert unit is not None and unit.id is not None
    product = session.get(Product, unit.product_id)
    names = {
        code: translated(tr, locale, "name", name)
        for code, name, tr in session.exec(
            select(Option.code, Option.name, Option.translations).where(
                Option.product_id == unit.product_id
            )
        ).all()
    }
    routing = []
    for uop, op in session.exec(
        select(UnitOperation, Operation)
        .join(Operation, col(Operation.id) == UnitOperation.operation_id)
        .where(UnitOperation.unit_id == unit.id)
        .order_by(col(UnitOperation.sequence))
    ).all():
        state = (
            "current"
            if uop.id == unit_operation_id
            else "done"
            if uop.status == UnitOperationStatus.DONE
            else "held"
            if uop.status == UnitOperationStatus.HELD
            else "todo"
        )
        routing.append(
            RoutingStep(name=translated(op.translations, locale, "name", op.name), state=state)
        )
    due: date | None = session.exec(
        join_unit_to_order(select(col(CustomerOrder.due_date)).select_from(Unit)).where(
            Unit.id == unit.id
        )
    ).first()
    return UnitInfo(
        id=unit.id,
        serial=unit.serial,
        product=translated(product.translations, locale, "name", product.name) if product else "",
        options=[names.get(code, code) for code in unit.options],
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


def _translate_step(session: Session, step: StepInfo, state: wf.StationState, locale: str) -> None:
    """The step's name, instructions and part descriptions in ``locale``, where the
    catalog has them (two primary-key lookups)."""
    assert state.operation is not None
    texts = session.exec(
        select(Operation.translations).where(Operation.id == state.operation.operation_id)
    ).first()
    step.name = translated(texts, locale, "name", step.name)
    step.instructions = translated(texts, locale, "instructions", step.instructions)
    parts = dict(
        session.exec(
            select(Part.id, Part.translations).where(
                col(Part.id).in_([p.part_id for p in state.picks])
            )
        ).all()
    )
    for line, pick in zip(step.picks, state.picks, strict=True):
        line.description = translated(
            parts.get(pick.part_id), locale, "description", line.description
        )


def _timer(state: wf.StationState, now: datetime) -> Timer | None:
    if state.started_at is None or state.operation is None:
        return None
    return Timer(
        started_at=state.started_at.isoformat(),
        paused_at=state.paused_at.isoformat() if state.paused_at else None,
        paused_seconds=round(state.paused_seconds, 3),
        standard_seconds=state.operation.standard_seconds,
        now=now.isoformat(),
        elapsed=state.worked_seconds(now),
    )


def _andon(session: Session, station_id: int, now: datetime) -> AndonInfo | None:
    call = session.exec(
        select(AndonCall)
        .where(AndonCall.station_id == station_id, col(AndonCall.resolved_at).is_(None))
        .order_by(col(AndonCall.raised_at).desc())
    ).first()
    if call is None:
        return None
    by = None
    if call.acknowledged_by_id is not None:
        who = session.get(Operator, call.acknowledged_by_id)
        by = who.name if who else None
    return AndonInfo(
        raised_at=call.raised_at,
        acknowledged=call.acknowledged_at is not None,
        acknowledged_by=by,
        reason=call.reason,
        minutes=max(int((now - call.raised_at).total_seconds() // 60), 0),
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
    row = session.exec(
        select(Event).where(Event.station_id == station_id).order_by(col(Event.id).desc()).limit(1)
    ).first()
    if row is None or (now - row.received_at).total_seconds() > max_age_seconds:
        return None
    if row.code not in TEMPLATES:
        return None
    return Verdict(
        result=row.result,
        code=row.code,
        params=dict(row.params or {}),
        msg_id=row.msg_id,
        at=row.received_at,
    )
