"""The station: one place decides what an event at a station means.

Pure core (no framework, database or broker; an import contract holds it):
``workflow`` (``decide``: events, facts, effects) and ``messages`` (codes and English
templates). Database adapters (no Flask, no MQTT): ``service`` (``handle``, the one
entry every path calls), ``reading`` and ``cache`` (state and facts), ``identify``
(what a barcode is), ``dispatching`` (calls into ``server.dispatch``), ``screen``
(what the tablet shows) and ``publish`` (after the commit, for every path). Web:
``views`` (the tablet blueprint) and ``texts`` (messages in the reader's language).
See docs/architecture.md.
"""
