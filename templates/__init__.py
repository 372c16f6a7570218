"""Jinja templates: ``base.html``, one folder per blueprint, partials prefixed ``_``."""
