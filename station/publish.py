"""After the commit, tell the station's devices and screens what changed: one function
for every path (the tablet, the JSON API and the MQTT ingest).

For each event answered: its ``cmd/feedback`` payload (the bridge beeps, a stack
light shows it, an integrator hears it), then, once per station touched, the
station's new snapshot (the retained ``state`` topic and this process's live
screens). A rejection is published like an acceptance: every screen re-renders with
its banner, whichever path the event came in by. Where the messages go is the
caller's ``Sink``: the ingest publishes on its own MQTT client, a web process through
its publisher and live hub (``server.messaging.live.WebSink``). No Flask, no MQTT here.

Listeners (``add_listener``) hear every answer after it was published, on every path:
the unit label at unit start (``server.trace.labels``) is one. A listener must return at once
(hand slow work to a thread); one that raises is logged and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from station import service
from station import workflow as wf

log = logging.getLogger(__name__)


class Sink(Protocol):
    def feedback(self, site: str, line: str, station: str, payload: dict[str, Any]) -> None:
        """Publish ``payload`` on the station's ``cmd/feedback`` topic."""

    def state(self, site: str, line: str, station: str, snapshot: dict[str, Any]) -> None:
        """Publish the station's snapshot (retained ``state``) and update live screens."""


@dataclass(frozen=True)
class Answer:
    """What one decided event changed, as the publisher needs it."""

    site: str
    line: str
    station: str
    feedback: dict[str, Any] | None
    state: wf.StationState | None = None


def answer(outcome: service.Outcome, *, site: str = "", line: str = "") -> Answer:
    """The ``Answer`` for an outcome; the state names the station's site and line
    (an unknown station has none: then the topic's, if the caller has one)."""
    state = outcome.state
    return Answer(
        site=state.site if state else site,
        line=state.line if state else line,
        station=outcome.station,
        feedback=outcome.feedback(),
        state=state,
    )


def after_commit(
    sink: Sink, answers: Iterable[Answer], *, acknowledge: Callable[[int], None] | None = None
) -> None:
    """Publish each answer's feedback (then ``acknowledge(i)``, the i-th answer's ack:
    feedback first, so a crash in between leaves the message unacked, redelivered and
    answered ``duplicate``), then each touched station's last state, once."""
    answers = tuple(answers)
    states: dict[tuple[str, str, str], wf.StationState] = {}
    for i, a in enumerate(answers):
        if a.feedback is not None and a.station and a.site and a.line:
            sink.feedback(a.site, a.line, a.station, a.feedback)
        if acknowledge is not None:
            acknowledge(i)
        if a.state is not None:
            states[(a.site, a.line, a.station)] = a.state  # the last one counts
    for (site, line, station), state in states.items():
        sink.state(site, line, station, service.snapshot(state))
    if _listeners:
        for a in answers:
            for listener in tuple(_listeners):
                try:
                    listener(a)
                except Exception:
                    log.exception("after-commit listener %r failed", listener)


Listener = Callable[[Answer], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> Callable[[], None]:
    """Call ``listener(answer)`` for every answer after it is published, in this
    process; returns the function that removes it again."""
    _listeners.append(listener)

    def remove() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return remove
