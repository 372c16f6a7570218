"""Set the plant up for a shift: stations, operators, tablet bindings, orders released.

Everything goes through the plant's public paths: stations and operators through the
importer (``server.catalog.importer``), tablet bindings through
``server.security.auth.issue_device_token``, orders through ``server.orders`` (intake, then
release); a release short of stock is covered by a goods receipt on the ledger first,
as a planner would have material delivered, so the ledger stays the whole truth.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.catalog import importer
from server.catalog.products import load_product
from server.db import write_session
from server.inventory import ledger
from server.models import (
    CustomerOrder,
    Line,
    Location,
    Operation,
    Part,
    Product,
    Site,
    Station,
)
from server.models.types import Tracking, utcnow
from server.orders import service as orders
from server.security import auth
from server.tools.simulation.plan import random_options

log = logging.getLogger(__name__)
BY = "simulator"


@dataclass(frozen=True)
class SimStation:
    """A station the simulator runs, with its simulated operator and tablet token."""

    code: str
    kind: str
    site: str
    line: str
    badge: str  # the simulated operator who works here
    token: str  # the tablet's device token


def _stations(session: Session) -> list[tuple[Station, Line, Site]]:
    return [
        tuple(r)  # type: ignore[misc]
        for r in session.exec(
            select(Station, Line, Site)
            .join(Line, col(Station.line_id) == Line.id)
            .join(Site, col(Line.site_id) == Site.id)
            .where(Station.active == True)  # noqa: E712
            .order_by(col(Line.id), col(Station.position), col(Station.id))
        ).all()
    ]


def _kind_load(session: Session) -> dict[str, tuple[int, str | None]]:
    """Per station kind: the longest standard time of its operations and their skill."""
    load: dict[str, tuple[int, str | None]] = {}
    for op in session.exec(select(Operation)).all():
        prev = load.get(op.station_kind, (0, None))
        load[op.station_kind] = (max(prev[0], op.standard_seconds), prev[1] or op.required_skill)
    return load


def choose_stations(
    existing: list[tuple[str, str]], load: dict[str, int], n: int
) -> tuple[list[str], list[tuple[str, str]]]:
    """Which existing stations to run (one of each kind first) and which new parallel
    stations ``(code, kind)`` to add, always at the kind with the most work per station.
    Pure: ``existing`` is ``[(code, kind)]`` in line order."""
    chosen: list[tuple[str, str]] = []
    for code, kind in existing:  # one per kind, in line order
        if kind not in {k for _, k in chosen} and len(chosen) < n:
            chosen.append((code, kind))
    for code, kind in existing:  # then the parallel ones
        if (code, kind) not in chosen and len(chosen) < n:
            chosen.append((code, kind))
    added: list[tuple[str, str]] = []
    codes = {c for c, _ in existing}
    while len(chosen) + len(added) < n and load:
        count = {k: sum(1 for _, kk in chosen + added if kk == k) for k in load}
        kind = max(load, key=lambda k: (load[k] / max(count[k], 1) if count[k] else 1e9, k))
        stem = next((c.rsplit("-", 1)[0] for c, k in existing if k == kind), kind.upper()[:3])
        i = 1
        while f"{stem}-{i}" in codes:
            i += 1
        codes.add(f"{stem}-{i}")
        added.append((f"{stem}-{i}", kind))
    return [c for c, _ in chosen], added


def prepare_stations(engine: Engine, *, n: int) -> list[SimStation]:
    """``n`` stations with one simulated operator each (holding the skill the station's
    work needs) and a tablet binding; parallel stations are added when ``n`` is larger
    than the plant."""
    with write_session(engine) as session:
        rows = _stations(session)
        if not rows:
            raise ValueError(
                "the database has no stations: load a plant first (taktline seed-demo)"
            )
        kinds = _kind_load(session)
        chosen, added = choose_stations(
            [(s.code, s.kind) for s, _, _ in rows], {k: v[0] for k, v in kinds.items()}, n
        )
        missing = (
            set(kinds) - {s.kind for s, _, _ in rows if s.code in chosen} - {k for _, k in added}
        )
        if missing:
            log.warning(
                "no station of kind %s among the %d simulated: units will wait there",
                ", ".join(sorted(missing)),
                n,
            )
        line = rows[0][1]
        site = rows[0][2]
        if added:
            importer.import_document(
                session,
                {
                    "plant": {
                        "site": site.code,
                        "name": site.name,
                        "lines": [
                            {
                                "code": line.code,
                                "name": line.name,
                                "takt_seconds": line.takt_seconds,
                                "stations": [
                                    {"code": s.code, "name": s.name, "kind": s.kind}
                                    for s, station_line, _ in rows
                                    if station_line.id == line.id
                                ]
                                + [
                                    {"code": c, "name": f"Simulated {k} {c}", "kind": k}
                                    for c, k in added
                                ],
                            }
                        ],
                    }
                },
                source="simulation",
                by=BY,
            )
        wanted = chosen + [c for c, _ in added]
        by_code = {
            station.code: (station, station_line, station_site)
            for station, station_line, station_site in _stations(session)
        }
        operators = []
        for i, code in enumerate(wanted, start=1):
            skill = kinds.get(by_code[code][0].kind, (0, None))[1]
            operators.append(
                {
                    "name": f"Sim operator {code}",
                    "badge": f"SIM{i:03d}",
                    "skills": [skill] if skill else [],
                    "locale": "en",
                }
            )
        importer.import_document(session, {"operators": operators}, source="simulation", by=BY)
        infos = []
        for code, op in zip(wanted, operators, strict=True):
            station, station_line, station_site = by_code[code]
            token = auth.issue_device_token(
                session, station=station, by=None, label="shift simulator"
            )
            infos.append(
                SimStation(
                    code,
                    station.kind,
                    station_site.code,
                    station_line.code,
                    str(op["badge"]),
                    token,
                )
            )
    return infos


def release_orders(
    engine: Engine, *, count: int, rng: random.Random, prefix: str = "SIM"
) -> list[str]:
    """``count`` orders of random valid configurations, received and released."""
    numbers = []
    with Session(engine) as session:
        products = session.exec(select(Product)).all()
        specs = [load_product(session, p) for p in products]
        stamp = utcnow().strftime("%H%M%S")
    if not specs:
        raise ValueError("the catalog has no product to order")
    for i in range(1, count + 1):
        spec = rng.choice(specs)
        lines = [
            orders.LineInput(spec.code, rng.choice((1, 1, 2)), random_options(spec, rng))
            for _ in range(rng.choice((1, 1, 2)))
        ]
        number = f"{prefix}-{stamp}-{i:03d}"
        order_input = orders.OrderInput(
            number=number,
            customer=f"Simulated customer {i}",
            due_date=(utcnow() + timedelta(days=rng.randint(1, 5))).date(),
            priority=rng.choice((0, 0, 0, 1)),
            lines=lines,
        )
        with write_session(engine) as session:
            order = orders.create_order(session, order=order_input, by=BY, channel="simulator")
        _release(engine, order.id or 0)
        numbers.append(number)
    return numbers


def _release(engine: Engine, order_id: int) -> None:
    for _attempt in range(3):
        try:
            with write_session(engine) as session:
                order = session.get(CustomerOrder, order_id)
                assert order is not None
                orders.release(session, order=order, by=BY)
            return
        except orders.Shortage as short:
            with write_session(engine) as session:
                receive_shortfall(session, short)
    raise RuntimeError(f"order {order_id} still short after goods receipts")


def receive_shortfall(session: Session, short: orders.Shortage) -> None:
    """A goods receipt of what the release lacks, line-side, with fresh lots/serials."""
    location = (
        session.exec(select(Location).where(Location.kind == "lineside")).first()
        or session.exec(select(Location)).first()
    )
    if location is None:
        raise ValueError("no stock location to receive into")
    # GS1 allows 20 characters in AI 10 (lot) and AI 21 (serial): keep labels scannable.
    stamp = utcnow().strftime("%d%H%M%S%f")[:-4]
    for line in short.lines:
        if line.short <= 0:
            continue
        part = session.get(Part, line.part_id)
        assert part is not None
        if part.tracking == Tracking.SERIAL:
            for k in range(line.short):
                ledger.receive(
                    session,
                    part=part,
                    location_id=location.id or 0,
                    quantity=1,
                    by=BY,
                    serial=f"S{stamp}{part.id:03d}{k:03d}",
                    reason="goods receipt (simulation)",
                )
        else:
            lot = f"L{stamp}{part.id:03d}" if part.tracking == Tracking.LOT else ""
            ledger.receive(
                session,
                part=part,
                location_id=location.id or 0,
                quantity=line.short + 5,
                by=BY,
                lot_code=lot,
                reason="goods receipt (simulation)",
            )
        log.info("received %d x %s for order %s", line.short, part.sku, short.order)
