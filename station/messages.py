"""What the station tells a line worker, one stable ``code`` per reason.

Every verdict of the workflow names a message by its code (``"wrong_part"``) plus
parameters, and the event is stored that way (``Event.code`` and ``Event.params``),
never as a sentence: it is rendered when read, in the reader's language. The MQTT
feedback carries the code and the English text (``english``); the tablet renders
it in the operator's language (``station.texts``, Flask-Babel). The templates are
marked with ``N_`` so ``pybabel extract`` finds them (``N_`` is one of Babel's
default keywords). Codes are public (devices and integrators may match on them):
add new ones, never rename one. Pure: no Flask here.
"""

from __future__ import annotations

from typing import Any


def N_(text: str) -> str:  # noqa: N802 - Babel's conventional "mark for translation" name
    return text


TEMPLATES: dict[str, str] = {
    # accepted
    "signed_in": N_("Welcome, %(name)s."),
    "signed_out": N_("Signed out. Goodbye, %(name)s."),
    "step_started": N_("Unit %(unit)s: %(operation)s started."),
    "picked": N_("%(sku)s picked (%(done)s of %(qty)s)."),
    "picked_substitute": N_(
        "%(sku)s picked as approved substitute for %(for_sku)s (%(done)s of %(qty)s)."
    ),
    "step_complete": N_("Unit %(unit)s: %(operation)s complete."),
    "paused": N_("Step paused."),
    "resumed": N_("Step resumed."),
    "defect_recorded": N_("Defect %(reason)s recorded on unit %(unit)s."),
    "unit_held": N_("Defect %(reason)s recorded; unit %(unit)s is on hold."),
    "andon_raised": N_("Andon raised (%(reason)s): a supervisor is called."),
    "andon_cancelled": N_("Andon call cancelled."),
    "device_recorded": N_("%(kind)s recorded."),
    # rejected
    "measured": N_("%(name)s %(value)s %(unit)s OK (%(done)s of %(count)s)."),
    "check_passed": N_("%(name)s: OK."),
    "sign_in_first": N_("Sign in with your badge first."),
    "unknown_badge": N_("Badge %(badge)s is not known or not active."),
    "wrong_pin": N_("Wrong PIN for badge %(badge)s."),
    "pin_needed": N_("%(name)s, enter your PIN on the tablet to sign in."),
    "pin_locked": N_(
        "Too many wrong PINs for badge %(badge)s: wait a few minutes or ask a supervisor."
    ),
    "no_unit": N_("No unit in progress: start the next unit first."),
    "step_in_progress": N_("Unit %(unit)s is still in progress here: finish it first."),
    "no_work": N_("No unit is waiting for this station."),
    "unit_not_here": N_("Unit %(unit)s has no step waiting at this station."),
    "missing_skill": N_('%(operation)s needs the skill "%(skill)s"; ask a supervisor.'),
    "paused_now": N_("The step is paused: resume it first."),
    "already_paused": N_("The step is already paused."),
    "not_paused": N_("The step is not paused."),
    "picks_missing": N_("Not finished: still to pick %(missing)s."),
    "unreadable": N_("Scan not readable (%(detail)s): scan again."),
    "bad_check_digit": N_(
        "Barcode damaged or misprinted (%(detail)s): scan again or type the code."
    ),
    "unknown_barcode": N_("Unknown barcode %(data)s: not a part of this plant."),
    "wrong_part": N_("Wrong part: this is %(scanned)s, step needs %(needed)s."),
    "wrong_part_step_done": N_(
        "Wrong part: this is %(scanned)s; this step needs nothing more: complete it."
    ),
    "already_picked": N_("%(sku)s already picked (%(qty)s of %(qty)s): put it back."),
    "serial_needed": N_("%(sku)s is serial-tracked: scan the label with its serial number."),
    "lot_needed": N_("%(sku)s is lot-tracked: scan the label with its lot number."),
    "serial_unknown": N_("Serial %(serial)s of %(sku)s is not in stock."),
    "serial_used": N_("Serial %(serial)s is already in unit %(unit)s."),
    "serial_twice": N_("Serial %(serial)s was already scanned for this unit."),
    "lot_unknown": N_("Lot %(lot)s of %(sku)s is not in stock."),
    "lot_expired": N_("%(sku)s lot %(lot)s expired on %(date)s: do not use it; take another one."),
    "out_of_stock": N_("No %(sku)s left in stock (%(where)s): call the supervisor."),
    "reserved_elsewhere": N_("%(sku)s %(where)s is reserved for other units: take another one."),
    "torque_nok": N_("Torque %(value)s %(unit)s not OK: tighten again."),
    "device_fault": N_("Device %(source)s reports a fault: %(detail)s."),
    "bad_disposition": N_("Unknown disposition %(disposition)s: use rework, hold or scrap."),
    "defect_part_unknown": N_("Part %(sku)s is not in this step: choose one of its parts."),
    "no_andon": N_("No andon call is open at this station."),
    "not_recorded_offline": N_("Not recorded: the tablet was offline. Scan again when connected."),
    "bad_reason": N_("Unknown defect reason %(reason)s: choose one of the listed reasons."),
    "checks_missing": N_("Not finished: still to check %(missing)s."),
    "out_of_limits": N_(
        "%(name)s %(value)s %(unit)s is out of limits (%(limits)s): do it again "
        "(tries left: %(left)s)."
    ),
    "check_failed": N_("%(name)s failed: do it again (tries left: %(left)s)."),
    "out_of_limits_ncr": N_(
        "%(name)s %(value)s %(unit)s is out of limits (%(limits)s), no tries left: unit "
        "%(unit_serial)s is blocked and a non-conformance is open. Call quality."
    ),
    "check_failed_ncr": N_(
        "%(name)s failed, no tries left: unit %(unit_serial)s is blocked and a "
        "non-conformance is open. Call quality."
    ),
    "out_of_limits_done": N_(
        "%(name)s %(value)s %(unit)s is out of limits (%(limits)s); the check was "
        "already complete, nothing counted."
    ),
    "check_done": N_("%(name)s is already complete."),
    "unknown_check": N_("No check %(check)s in this step."),
    "check_by_device": N_("%(name)s is measured by the %(source)s tool, not typed."),
    "value_needed": N_("%(name)s needs a number (%(limits)s)."),
    "photo_needed": N_("%(name)s needs a photo: take it with the tablet's camera."),
    "confirm_needed": N_("%(name)s: confirm it once done."),
    "answer_needed": N_("%(name)s: answer OK or not OK."),
    "serial_quarantined": N_(
        "Serial %(serial)s of %(sku)s is in quarantine (removed in a rework): a "
        "supervisor must release it first."
    ),
    "bad_payload": N_("Message refused: %(detail)s."),
    "unknown_station": N_("Unknown station %(station)s."),
    "conflict": N_("Not recorded, the data changed meanwhile (%(detail)s): scan again."),
    "duplicate": N_("Already received; nothing changed."),
    "internal_error": N_(
        "Not recorded: server error (incident %(incident)s). Scan again; if it happens "
        "again, call the supervisor."
    ),
    "rate_limited": N_(
        "Not processed: this station sends unreadable messages too fast. Wait a moment "
        "and scan again."
    ),
}


def english(code: str, params: dict[str, Any] | None = None) -> str:
    """The message in English (MQTT feedback, logs, API answers)."""
    template = TEMPLATES.get(code)
    if template is None:
        raise KeyError(f"unknown station message code {code!r}")
    return template % safe(params) if params or "%(" in template else template


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def safe(params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` for ``template % params``: a parameter the caller forgot shows "?"."""
    return _Missing(params or {})


# Defect reason codes a station may report (Defect.reason_code), with their labels.
DEFECT_REASONS: tuple[tuple[str, str], ...] = (
    ("damaged", N_("Part damaged")),
    ("missing", N_("Part missing")),
    ("no_fit", N_("Does not fit")),
    ("cosmetic", N_("Scratch or dent")),
    ("function", N_("Does not work")),
    ("other", N_("Other")),
)


# Why an andon is called (AndonCall.reason): the tablet offers these; the API and MQTT
# may send other text, which is shown as sent.
ANDON_REASONS: tuple[tuple[str, str], ...] = (
    ("material", N_("Material")),
    ("quality", N_("Quality")),
    ("maintenance", N_("Maintenance")),
    ("help", N_("Help")),
)

# What each defect disposition does, as the defect dialog explains it.
DISPOSITIONS: tuple[tuple[str, str, str], ...] = (
    ("rework", N_("Rework"), N_("Fix it here or further down the line; the unit keeps going.")),
    (
        "hold",
        N_("Hold"),
        N_("Stop the unit: it leaves the line until quality decides what to do with it."),
    ),
)
