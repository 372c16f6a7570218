"""Quality checks of a step, judged in one pure place (no Flask, database or MQTT).

A check belongs to an operation (``server.models.Check``); its kind says what the
worker or a device must give:

- ``confirm``: an instruction acknowledged;
- ``pass_fail``: a visual or functional check, passed or failed;
- ``measure``: one value within ``lower`` .. ``upper`` (``source`` ``typed``, or a device
  kind such as ``torque`` or ``weight``, optionally one ``tool``);
- ``count``: ``count`` values within limits (four screws, four torque results);
- ``photo``: a picture taken with the tablet's camera.

A check is done when ``count`` results passed. A failed result (out of limits, or a
``pass_fail`` failed) uses one of the check's ``retries``; the failure after the last
retry blocks the step and opens a non-conformance (``station.workflow`` turns that
into effects). A value that is not a finite number, or beyond ``MAX_VALUE``, is never
judged: it is refused as unreadable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KINDS = ("confirm", "pass_fail", "measure", "count", "photo")
MEASURED = ("measure", "count")
SOURCES = ("typed", "torque", "weight")
MAX_VALUE = 1e9  # no torque, weight or length on an assembly line comes near this
MAX_COUNT = 100
MAX_RETRIES = 20


@dataclass(frozen=True)
class CheckSpec:
    id: int
    code: str
    kind: str
    name: str
    instructions: str = ""
    nominal: float | None = None
    lower: float | None = None
    upper: float | None = None
    unit: str = ""
    source: str = "typed"
    tool: str = ""
    count: int = 1
    retries: int = 2

    @property
    def needed(self) -> int:
        return max(self.count, 1) if self.kind in MEASURED else 1

    @property
    def limits(self) -> str:
        """The limits as a worker reads them, in any language: ``4.5–5.5 Nm``,
        ``≥ 4.5 Nm``, ``≤ 5.5 Nm``."""
        return limits_text(self.lower, self.upper, self.unit)


@dataclass(frozen=True)
class CheckStatus:
    """A check of the current step and its results for this unit so far.

    ``failed`` counts the failures not yet dealt with by a non-conformance."""

    spec: CheckSpec
    passed: int = 0
    failed: int = 0

    @property
    def done(self) -> bool:
        return self.passed >= self.spec.needed

    @property
    def tries_left(self) -> int:
        return max(self.spec.retries - self.failed, 0)


@dataclass(frozen=True)
class Judgement:
    """What one input means for a check: passed, and if not whether it blocks."""

    passed: bool
    blocks: bool = False  # the failure after the last retry


def number(value: float) -> str:
    """A value as shown and stored in a message: ``5``, ``4.75``, ``0.1235``."""
    return f"{value:.6g}"


def limits_text(lower: float | None, upper: float | None, unit: str) -> str:
    """Limits without words (a message parameter, shown in the reader's language)."""
    if lower is None and upper is None:
        return ""
    if upper is None:
        text = f"≥ {number(lower)}"  # type: ignore[arg-type]
    elif lower is None:
        text = f"≤ {number(upper)}"
    else:
        text = f"{number(lower)}–{number(upper)}"
    return f"{text} {unit}".strip()


def usable(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is no finite number within MAX_VALUE."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(out) or abs(out) > MAX_VALUE:
        return None
    return out


def within(spec: CheckSpec, value: float) -> bool:
    return (spec.lower is None or value >= spec.lower) and (
        spec.upper is None or value <= spec.upper
    )


def judge(status: CheckStatus, passed: bool) -> Judgement:
    """A result for ``status``: a failure with no retry left blocks the step."""
    if passed:
        return Judgement(True)
    return Judgement(False, blocks=status.failed >= status.spec.retries)


def for_device(checks: tuple[CheckStatus, ...], kind: str, source: str) -> CheckStatus | None:
    """The measure check a ``kind`` reading from device ``source`` fills: the first open
    one of that source (and tool, when the check names one), else the last done one
    (so a reading after the check is full is still judged and answered)."""
    mine = [
        c
        for c in checks
        if c.spec.kind in MEASURED
        and c.spec.source == kind
        and (not c.spec.tool or c.spec.tool == source)
    ]
    open_ = [c for c in mine if not c.done]
    if open_:
        return open_[0]
    return mine[-1] if mine else None


def find(checks: tuple[CheckStatus, ...], key: int | str) -> CheckStatus | None:
    """The check of this step with id or code ``key``."""
    for c in checks:
        if c.spec.id == key or c.spec.code == key:
            return c
    return None


def missing(checks: tuple[CheckStatus, ...]) -> list[str]:
    """What is still to check, as ``Torque M3 (2 of 4)``."""
    out = []
    for c in checks:
        if not c.done:
            need = c.spec.needed
            out.append(f"{c.spec.name} ({c.passed} of {need})" if need > 1 else c.spec.name)
    return out


def first_pass(results: list[bool], ncrs: int) -> bool:
    """First-pass yield for one unit: every check passed the first time, no NCR."""
    return ncrs == 0 and all(results)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class ControlChart:
    """Individuals and moving range (I-MR) of one characteristic, and its capability."""

    values: tuple[float, ...]
    moving_ranges: tuple[float, ...]
    centre: float
    ucl: float
    lcl: float
    mr_bar: float
    mr_ucl: float
    sigma: float
    cpk: float | None
    lower: float | None
    upper: float | None


# Shewhart constants for a moving range of two: d2, and D4 for the range chart.
D2 = 1.128
D4 = 3.267


def control_chart(
    values: list[float], lower: float | None, upper: float | None
) -> ControlChart | None:
    """I-MR control limits from the data (sigma = mean moving range / d2) and Cpk
    against the spec limits; ``None`` with fewer than two values."""
    if len(values) < 2:
        return None
    mrs = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    centre = mean(values)
    mr_bar = mean(mrs)
    sigma = mr_bar / D2
    cpk: float | None = None
    if sigma > 0 and (lower is not None or upper is not None):
        sides = []
        if upper is not None:
            sides.append((upper - centre) / (3 * sigma))
        if lower is not None:
            sides.append((centre - lower) / (3 * sigma))
        cpk = min(sides)
    return ControlChart(
        values=tuple(values),
        moving_ranges=tuple(mrs),
        centre=centre,
        ucl=centre + 3 * sigma,
        lcl=centre - 3 * sigma,
        mr_bar=mr_bar,
        mr_ucl=D4 * mr_bar,
        sigma=sigma,
        cpk=cpk,
        lower=lower,
        upper=upper,
    )
