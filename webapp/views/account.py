"""The account page (SPEC §14): every user's own password and logins."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField

from webapp.services.workspace import login_throttle, password_change, sessions as user_sessions
from webapp.services.errors import ValidationError
from webapp.views import render
from webapp.views.auth import start_session
from webapp.views.workspace import apply_errors

bp = Blueprint("account", __name__)


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password")
    new_password = PasswordField("New password")
    confirm = PasswordField("New password, again")


def _page(form: PasswordForm, status: int = 200):
    return render("account/index.html", status=status, form=form,
                  logins=user_sessions.of_user(current_user.id), this_login=current_user.session_id)


@bp.route("/account")
@login_required
def index():
    return _page(PasswordForm(formdata=None))


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password():
    form = PasswordForm()
    try:
        changed = password_change.change_password(current_user.id, form.current_password.data,
                                                  form.new_password.data, form.confirm.data,
                                                  current_user.session_token, request.remote_addr)
    except login_throttle.Throttled as throttled:
        form.current_password.errors = [throttled.message]
        response = _page(form, 429)
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    except ValidationError as error:
        apply_errors(form, error)
        return _page(form, 422)
    # Every login ended, this one too: this browser goes on under a new login (kept logged in if it was), so a copy
    # of its cookies taken before the change is refused like the others'.
    start_session(current_user._get_current_object(), remember=changed.remember)
    ended = changed.others_ended
    flash("Password changed." + (f" {_logged_out(ended)}" if ended else ""), "success")
    return redirect(url_for("account.index"))


@bp.route("/account/sessions/others/end", methods=["POST"])
@login_required
def end_other_sessions():
    ended = user_sessions.end_others(current_user.id, current_user.session_token)
    flash(_logged_out(ended) if ended else "No other session was logged in.", "success")
    return redirect(url_for("account.index"))


def _logged_out(count: int) -> str:
    return f"{count} other session{'s' if count != 1 else ''} logged out."
