"""An invitation's link (SPEC §14): accept it as a new account or, logged in as the invited email, as yourself."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField

from webapp.services.workspace import invitations
from webapp.services.errors import Conflict, Forbidden, Gone, NotFound, ValidationError
from webapp.views.auth import start_session
from webapp.views.workspace import apply_errors

bp = Blueprint("invitations", __name__)


class JoinForm(FlaskForm):
    name = StringField("Your name")
    password = PasswordField("Choose a password")
    confirm = PasswordField("The password, again")


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def show(token: str):
    """GET: what the invitation is and how to accept it. POST: accept (logged in) or create the account."""
    form = JoinForm()
    viewer_id = current_user.id if current_user.is_authenticated else None
    status, message = 200, None
    try:
        if form.is_submitted():
            try:
                return _accept(token, form, viewer_id)
            except ValidationError as error:
                apply_errors(form, error)
                status = 422
            except (Forbidden, Conflict) as error:
                status, message = error.status, error.message
        invitation = invitations.page(token, viewer_id)
    except (NotFound, Gone) as error:  # nothing to accept: a page that says why, and no form
        return render_template("invitations/unavailable.html", message=error.message), error.status
    return render_template("invitations/show.html", page=invitation, form=form, token=token, message=message), status


def _accept(token: str, form: JoinForm, viewer_id: int | None):
    if viewer_id is not None:
        membership = invitations.accept(token, viewer_id)
    else:
        user = invitations.accept_as_new_user(token, form.password.data, form.confirm.data, form.name.data or "")
        start_session(user)
        membership = user.memberships[0]
    flash(f"Welcome to {membership.workspace.name}: you are {membership.role}.", "success")
    return redirect(url_for("workspace.agents_page", slug=membership.workspace.slug))
