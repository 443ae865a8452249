"""Log in and out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from webapp.extensions import login_manager
from webapp.models import User
from webapp.services.workspace import login_throttle, sessions as user_sessions
from webapp.views import hx_redirect, is_htmx_request, render

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(token: str) -> User | None:
    """The session cookie's (or the remember-me cookie's) token: its login's user while the record lasts."""
    return user_sessions.user_for(token)


def identify_user() -> None:
    """Before every page's view: load the login (which may write its last-seen time and commit) while the request
    has done nothing else, so that commit never carries a view's half-done work. The JSON API has no cookie session."""
    if request.blueprint != "api" and request.endpoint != "static":
        current_user._get_current_object()


def start_session(user: User, remember: bool = False) -> None:
    """Log `user` in: a new session record, its token in a new session cookie (and the remember-me cookie, for
    30 days). Nothing of the session before (its CSRF token included) carries over, so whoever planted or read that
    cookie cannot act as the user."""
    session.clear()
    user.session_token = user_sessions.start(user.id, request.user_agent.string, remember)
    login_user(user, remember=remember, duration=user_sessions.REMEMBER_FOR)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(message="Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1000)])
    remember = BooleanField("Keep me logged in")


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths: no open redirects."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _page_shown() -> str | None:
    """The page the user is on, as a same-site path: an HTMX request's HX-Current-URL (its own URL is a fragment's
    or an action's), a page load's own URL, a form POST's Referer (the page the form was on)."""
    if is_htmx_request():
        url = request.headers.get("HX-Current-URL")
    elif request.method == "GET":
        url = request.full_path.removesuffix("?")
    else:
        url = request.referrer
    parts = urlsplit(url or "")
    if parts.netloc and parts.netloc != request.host:
        return None
    return _safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def to_login(message: str, status: int = 401):
    """To the login page with `message`, and back to the page the user is on once logged in. An HTMX request gets
    `status` with HX-Redirect (htmx 2 follows it before looking at the status) for a full page load: a 302 would be
    followed by its XHR, and the login page swapped into the component."""
    flash(message, "info")
    return hx_redirect(url_for("auth.login", next=_page_shown()), status)


@login_manager.unauthorized_handler
def unauthorized():
    """login_required without a logged-in user (never logged in, logged out in another tab, session cookie gone)."""
    return to_login(login_manager.login_message)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("workspace.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = login_throttle.authenticate(form.email.data, form.password.data, request.remote_addr)
        except login_throttle.Throttled as throttled:
            return _throttled(form, throttled)
        if user:
            start_session(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")) or url_for("workspace.home"))
        form.password.errors.append("Wrong email or password.")
        status = 401
    elif form.is_submitted():
        status = 422
    return render_template("auth/login.html", form=form), status


def _throttled(form: LoginForm, throttled: login_throttle.Throttled):
    """429 with Retry-After, saying how long to wait: the login page, or its form for an HTMX request."""
    form.form_errors.append(throttled.message)
    response = render("auth/login.html", "auth/_login_form.html", 429, form=form)
    response.headers["Retry-After"] = str(throttled.retry_after)
    return response


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST logs out (CSRF-protected); a GET (typed in the address bar) offers the button."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("auth/logout.html")
    user_sessions.end(current_user.session_token)  # a copy of this session's cookies stops working too
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
