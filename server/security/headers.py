"""CSRF protection and the security headers every response carries.

CSRF: Flask-WTF's ``CSRFProtect`` (a per-session secret, signed tokens). Every POST,
PUT, PATCH and DELETE needs the token, as the ``csrf_token`` form field (forms) or the
``X-CSRFToken`` header (htmx sends it from ``hx-headers`` in templates/base.html).
Exempt: ``/api/`` requests that carry ``Authorization: Bearer``, because server.security.auth
then ignores the session cookie, so a forged cross-site request gains nothing (and a
browser cannot add that header cross-site without a CORS preflight we never grant).

Headers: a Content-Security-Policy that allows scripts only from this server (htmx and
its SSE extension are served from /static/vendor) or carrying the per-request nonce
``{{ csp_nonce() }}``; no framing; no MIME sniffing; same-origin referrers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from typing import Any

from flask import Flask, Response, abort, g, render_template, request
from flask.testing import FlaskClient
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import URLSafeTimedSerializer
from werkzeug.datastructures import Headers

from server.models.types import has_nul

log = logging.getLogger(__name__)
csrf = CSRFProtect()
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csp_nonce() -> str:
    """The nonce of this response; ``<script nonce="{{ csp_nonce() }}">`` may run."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def _is_bearer_api_request() -> bool:
    return (
        request.path.startswith("/api/")
        and request.headers.get("Authorization", "")[:7].lower() == "bearer "
    )


def _protect() -> None:
    if request.method in UNSAFE_METHODS and not _is_bearer_api_request():
        csrf.protect()


def _refuse_nul() -> None:
    """No text stored or looked up may hold a NUL (PostgreSQL refuses it with a database
    error, a 500): a path, query, form or JSON body with one is a 400 before any view.
    Not ``next``: the sign-in's way back, never stored, which it makes safe itself."""
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # the API's read_json answers that one (400)
        body = None
    query = [item for item in request.args.items(multi=True) if item[0] != "next"]
    if has_nul([request.path, *query, *request.form.items(multi=True)]) or has_nul(body):
        log.warning(
            "refused %s %s from %s: a NUL character",
            request.method,
            request.path[:80],
            request.remote_addr,
        )
        abort(400, description=_("The request holds a NUL character, which no text may hold."))


def _csrf_error(exc: CSRFError) -> tuple[Any, int]:
    log.warning(
        "CSRF refused %s %s from %s: %s",
        request.method,
        request.path,
        request.remote_addr,
        exc.description,
    )
    if request.path.startswith("/api/") or request.headers.get("HX-Request"):
        return {"error": f"CSRF check failed: {exc.description}"}, 400
    return render_template(
        "security/csrf_error.html",
        reason=exc.description,
        message=_(
            "This form has expired or did not come from this "
            "site. Go back, reload the page and try again."
        ),
    ), 400


def _headers(response: Response) -> Response:
    policy = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{csp_nonce()}'; "
        # htmx inserts its indicator <style> and pages use style="" attributes;
        # inline style cannot run code, so it is allowed.
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    headers = response.headers
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "geolocation=(), microphone=(), payment=()")
    from flask import current_app

    if current_app.config["SECURE_COOKIES"]:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


class CSRFTestClient(FlaskClient):
    """Flask's test client that sends a valid CSRF token with every unsafe request,
    as a browser page would, so tests exercise views rather than re-proving CSRF.

    ``client.post(..., csrf=False)`` sends none (tests/test_security.py proves refusals).
    """

    def open(self, *args: Any, csrf: bool = True, **kwargs: Any) -> Any:
        method = str(kwargs.get("method", "GET")).upper()
        # A builder/environ as first argument is a redirect being followed: leave it.
        if csrf and method in UNSAFE_METHODS and (not args or isinstance(args[0], str)):
            headers = Headers(kwargs.get("headers") or {})
            if "X-CSRFToken" not in headers and "Authorization" not in headers:
                headers["X-CSRFToken"] = self.csrf_token()
                kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        """A token valid for this client's session (creating its secret if needed)."""
        app = self.application
        field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        with self.session_transaction() as sess:
            if field not in sess:
                sess[field] = hashlib.sha1(os.urandom(64)).hexdigest()
            raw = sess[field]
        key = str(app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key)
        return URLSafeTimedSerializer(key, salt="wtf-csrf-token").dumps(raw)


def init_app(app: Flask) -> None:
    # We call csrf.protect() ourselves (see _protect) to exempt Bearer API requests.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # Tablets keep one page open for a whole shift; the token lives as long as the
    # session instead of Flask-WTF's default hour.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.before_request(_refuse_nul)
    app.before_request(_protect)
    app.register_error_handler(CSRFError, _csrf_error)
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    if app.testing:
        app.test_client_class = CSRFTestClient
