"""What the quality pages tell a person when they refuse something: one code per
reason, English templates marked for translation (rendered in the reader's language by
``server.quality.views``), parameters kept apart. Pure: no Flask here.

A refusal of the station's own poka-yoke during a rework (a wrong part, a serial in
quarantine...) keeps its ``station.messages`` code.
"""

from __future__ import annotations

from typing import Any

from station.messages import N_, safe
from station.messages import english as station_english

TEMPLATES: dict[str, str] = {
    "unknown_unit": N_("Unit %(unit)s is not known."),
    "cause_needed": N_("Give a cause of at most 64 characters."),
    "unknown_station": N_("Station %(station)s is not known."),
    "decided_already": N_("%(ncr)s is %(status)s: it was decided already."),
    "bad_disposition": N_("The disposition must be rework, use as is or scrap."),
    "reason_needed": N_("Give a reason to use the unit as is or to scrap it."),
    "not_rework_station": N_("%(station)s is not a rework station."),
    "not_in_rework": N_("%(ncr)s is %(status)s, not in rework."),
    "unknown_barcode": N_("Unknown barcode %(data)s."),
    "not_in_unit": N_("%(sku)s %(what)s is not built into unit %(unit)s."),
    "remove_first": N_("Remove the faulty component first, then scan its replacement."),
    "no_check": N_("%(ncr)s has no check to re-run."),
    "value_needed": N_("%(name)s needs a number (%(limits)s)."),
    "replacement_missing": N_("A removed component has no replacement yet: scan it first."),
    "rerun_first": N_("Re-run %(name)s first (%(passed)s of %(needed)s passed)."),
    "no_removal": N_("No such removed component."),
    "released_already": N_("Already released."),
    "no_lot": N_("This component has no stock lot to go back to."),
    "not_resumed": N_("The step could not go back to its station: %(detail)s"),
}


def english(code: str, params: dict[str, Any] | None = None) -> str:
    """The refusal in English (logs, the exception's text); a station code as well."""
    template = TEMPLATES.get(code)
    if template is None:
        return station_english(code, params)
    return template % safe(params)
