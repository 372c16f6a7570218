"""People: create, change role/skills/state, reset password or PIN. All audited."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from server import audit
from server.admin import bp
from server.db import begin_write, get_session
from server.models import Operator
from server.models.types import Role
from server.security import auth

log = logging.getLogger(__name__)
MIN_PASSWORD = 8
PIN_RE = re.compile(r"^\d{4,8}$")
LOCALES = ("en", "fr")


class FormError(ValueError):
    pass


@bp.get("/users")
@auth.require("admin")
def users() -> str:
    people = get_session().exec(select(Operator).order_by(Operator.name)).all()
    return render_template(
        "admin/users.html", people=people, roles=list(Role), locales=LOCALES, form={}
    )


@bp.post("/users")
@auth.require("admin")
def create_user() -> Any:
    db = get_session()
    form = request.form
    try:
        fields = _fields(form, creating=True)
        password, pin = form.get("password", ""), form.get("pin", "").strip()
        _check_password(password, optional=not fields["username"])
        _check_pin(pin)
    except FormError as exc:
        return _users_error(str(exc), form)
    begin_write(db)
    person = Operator(
        **fields,
        password_hash=auth.hash_secret(password) if password else None,
        pin_hash=auth.hash_secret(pin) if pin else None,
    )
    db.add(person)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        return _users_error(_("That badge or user name is already taken."), form)
    audit.record(
        db,
        actor=auth.actor(),
        action="user.create",
        entity="operator",
        entity_id=person.id,
        detail={**fields, "password": bool(password), "pin": bool(pin)},
        address=auth.address(),
    )
    db.commit()
    flash(_("%(name)s created.", name=person.name))
    return redirect(url_for("admin.users"), code=303)


@bp.get("/users/<int:user_id>")
@auth.require("admin")
def user(user_id: int) -> str:
    person = get_session().get(Operator, user_id) or abort(404)
    return render_template(
        "admin/user.html", person=person, roles=list(Role), locales=LOCALES, error=None
    )


@bp.post("/users/<int:user_id>")
@auth.require("admin")
def update_user(user_id: int) -> Any:
    db = get_session()
    begin_write(db)
    person = db.get(Operator, user_id) or abort(404)
    try:
        fields = _fields(request.form, creating=False)
        if person.id == g.user.id and (fields["role"] != Role.ADMIN or not fields["active"]):
            raise FormError(_("You cannot remove your own admin role or deactivate yourself."))
    except FormError as exc:
        db.rollback()
        log.info("admin user form refused: %s", exc)
        return render_template(
            "admin/user.html", person=person, roles=list(Role), locales=LOCALES, error=str(exc)
        ), 400
    changes = {k: [getattr(person, k), v] for k, v in fields.items() if getattr(person, k) != v}
    for key, value in fields.items():
        setattr(person, key, value)
    db.add(person)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        flash(_("That badge or user name is already taken."))
        return redirect(url_for("admin.user", user_id=user_id), code=303)
    if changes:
        audit.record(
            db,
            actor=auth.actor(),
            action="user.update",
            entity="operator",
            entity_id=person.id,
            detail=changes,
            address=auth.address(),
        )
    db.commit()
    flash(_("%(name)s saved.", name=person.name))
    return redirect(url_for("admin.user", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/password")
@auth.require("admin")
def reset_password(user_id: int) -> Any:
    return _reset(user_id, "password")


@bp.post("/users/<int:user_id>/pin")
@auth.require("admin")
def reset_pin(user_id: int) -> Any:
    return _reset(user_id, "pin")


def _reset(user_id: int, what: str) -> Any:
    db = get_session()
    begin_write(db)
    person = db.get(Operator, user_id) or abort(404)
    value = request.form.get(what, "").strip() if what == "pin" else request.form.get(what, "")
    try:
        if what == "password":
            _check_password(value, optional=False)
        else:
            _check_pin(value)
    except FormError as exc:
        db.rollback()
        return render_template(
            "admin/user.html", person=person, roles=list(Role), locales=LOCALES, error=str(exc)
        ), 400
    new_hash = auth.hash_secret(value) if value else None
    if what == "password":
        person.password_hash = new_hash
    else:
        person.pin_hash = new_hash
    db.add(person)
    audit.record(
        db,
        actor=auth.actor(),
        action=f"user.{what}_reset",
        entity="operator",
        entity_id=person.id,
        detail={"cleared": not value},
        address=auth.address(),
    )
    db.commit()
    flash(_("Saved. Sessions of %(name)s signed out.", name=person.name))
    return redirect(url_for("admin.user", user_id=user_id), code=303)


def _fields(form: Any, *, creating: bool) -> dict[str, Any]:
    name = form.get("name", "").strip()
    badge = form.get("badge", "").strip()
    username = form.get("username", "").strip() or None
    role = form.get("role", Role.OPERATOR)
    locale = form.get("locale", "en")
    if not name or len(name) > 200:
        raise FormError(_("Give a name (at most 200 characters)."))
    if not badge or len(badge) > 64:
        raise FormError(_("Give a badge number (at most 64 characters)."))
    if username is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", username):
        raise FormError(_("A user name uses letters, digits, dot, dash or underscore."))
    if role not in {r.value for r in Role}:
        raise FormError(_("Unknown role."))
    if locale not in LOCALES:
        raise FormError(_("Unknown language."))
    skills = sorted({s for s in re.split(r"[\s,]+", form.get("skills", "")) if s})
    fields: dict[str, Any] = {
        "name": name,
        "badge": badge,
        "username": username,
        "role": role,
        "skills": skills,
        "locale": locale,
    }
    if not creating:
        fields["active"] = form.get("active") == "on"
    return fields


def _check_password(password: str, *, optional: bool) -> None:
    if optional and not password:
        return
    if len(password) < MIN_PASSWORD:
        raise FormError(_("A password needs at least %(n)s characters.", n=MIN_PASSWORD))


def _check_pin(pin: str) -> None:
    if pin and not PIN_RE.match(pin):
        raise FormError(_("A PIN is 4 to 8 digits."))


def _users_error(message: str, form: Any) -> tuple[str, int]:
    log.info("admin user form refused: %s", message)
    people = get_session().exec(select(Operator).order_by(Operator.name)).all()
    return render_template(
        "admin/users.html",
        people=people,
        roles=list(Role),
        locales=LOCALES,
        error=message,
        form=form,
    ), 400
