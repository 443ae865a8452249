"""The account page's password change (SPEC §14): the current password, checked behind the login throttle, and a
new one that passes the policy."""
from __future__ import annotations

from typing import NamedTuple

from webapp.extensions import db
from webapp.models import User
from webapp.services.errors import NotFound, ValidationError
from webapp.services.workspace import login_throttle, passwords, sessions


class Changed(NamedTuple):
    others_ended: int  # the account's other logins, ended
    remember: bool  # whether the login that made the change was kept logged in (its successor is too)


def change_password(user_id: int, current_password: str, new_password: str, confirm: str,
                    this_token: str | None, address: str | None) -> Changed:
    """Set the user's new password and end every login of the account, that of `this_token` (the login making the
    change) included: the caller starts a new login for this browser (views.auth.start_session), so a copy of
    this login's cookies taken before the change stops working too, as those of the others do.

    The current password is required. It is checked as a login would be (login_throttle.check_password, from the
    client's `address`): a wrong one counts as a failed login of the account's email, and while that email or the
    address is locked the change is refused with Throttled (429), whatever was typed, and writes nothing."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    errors: dict[str, str] = {}
    if not isinstance(current_password, str) or not current_password:
        errors["current_password"] = "Type your current password."  # no guess: not counted
    elif not login_throttle.check_password(user, current_password, address):
        errors["current_password"] = "That is not your current password."
    if problem := passwords.problem(new_password, (user.email, user.name)):
        errors["new_password"] = problem
    elif "current_password" not in errors and new_password == current_password:
        errors["new_password"] = "The new password is your current one: choose another."
    elif confirm != new_password:
        errors["confirm"] = "The two passwords differ: type the same new password twice."
    if errors:
        raise ValidationError(errors)
    user.set_password(new_password)
    remember = sessions.remembered(this_token)
    others_ended = sessions.end_others(user.id, this_token, commit=False)
    sessions.end(this_token, commit=False)
    db.session.commit()
    return Changed(others_ended, remember)
