"""The French catalog ships complete: every message translated, placeholders intact,
the compiled .mo in step with the .po, the .po in step with the extracted .pot.

To refresh after adding strings (docs/i18n.md):
pybabel extract -F babel.cfg -k lazy_gettext -k _l -o server/translations/messages.pot .
pybabel update -i server/translations/messages.pot -d server/translations
(translate the new entries) then pybabel compile -d server/translations
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).parent.parent / "server" / "translations"
PO = ROOT / "fr" / "LC_MESSAGES" / "messages.po"
MO = ROOT / "fr" / "LC_MESSAGES" / "messages.mo"
POT = ROOT / "messages.pot"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    with PO.open("rb") as fh:
        return read_po(fh, locale="fr")


def _messages(catalog: Catalog) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs, plural forms flattened."""
    pairs = []
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            pairs += [(message.id[min(i, 1)], s) for i, s in enumerate(strings)]
        else:
            pairs.append((message.id, message.string))
    return pairs


def test_every_message_has_a_french_translation(catalog: Catalog) -> None:
    untranslated = [msgid for msgid, msgstr in _messages(catalog) if not msgstr]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []


def test_placeholders_survive_translation(catalog: Catalog) -> None:
    broken = [
        (msgid, msgstr)
        for msgid, msgstr in _messages(catalog)
        if set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(msgstr))
    ]
    assert broken == []


def test_the_compiled_catalog_matches_the_po(catalog: Catalog) -> None:
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            got = tuple(compiled.ngettext(message.id[0], message.id[1], n) for n in (1, 2))
            if got != tuple(message.string):
                stale.append(message.id[0])
        elif compiled.gettext(message.id) != message.string:
            stale.append(message.id)
    assert stale == [], "run: pybabel compile -d server/translations"


def test_the_po_holds_every_extracted_message(catalog: Catalog) -> None:
    with POT.open("rb") as fh:
        template = read_po(fh)
    missing = sorted(str(m.id) for m in template if m.id and m.id not in catalog)
    assert missing == [], (
        "run: pybabel update -i server/translations/messages.pot "
        "-d server/translations, then translate"
    )
