"""Server-side session records (SPEC §14): a login lasts as long as its record, whoever holds a copy of its cookies."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import AuthActions, csrf_token
from webapp.extensions import db
from webapp.models import UserSession, utcnow
from webapp.services.workspace import sessions

PAGE = "/w/acme/agents"
NEW_PASSWORD = "orchid-tundra-violin"


def login(app, email: str, remember: bool = False):
    client = app.test_client()
    token = csrf_token(client)
    data = {"email": email, "password": factories.PASSWORD, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    assert client.post("/login", data=data).status_code == 302
    return client


def copy_of(app, client, *names: str):
    """Another browser holding copies of the client's cookies `names` (all of them by default)."""
    thief = app.test_client()
    for name in names or ("session", "remember_token"):
        cookie = client.get_cookie(name)
        if cookie is not None:
            thief.set_cookie(name, cookie.value)
    return thief


def logged_in(client) -> bool:
    return client.get(PAGE).status_code == 200


def records(app) -> list[UserSession]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(UserSession).order_by(UserSession.id)))
        db.session.expunge_all()
        db.session.remove()
    return found


def test_each_login_is_a_record_and_the_cookie_carries_no_user_id(app, world):
    client = login(app, "owner@acme.test")
    client.get(PAGE, headers={"User-Agent": "Later browser"})
    (record,) = records(app)
    assert record.user_id == world.owner_id and record.remember is False
    assert record.user_agent.startswith("Werkzeug/")  # the login's own user agent
    assert record.created_at == record.last_seen_at
    with app.test_request_context():
        session = app.session_interface.get_signing_serializer(app).loads(client.get_cookie("session").value)
    assert session["_user_id"] != str(world.owner_id)
    assert sessions.hash_token(session["_user_id"]) == record.token_hash


def test_a_copied_cookie_stops_working_at_logout(app, world):
    client = login(app, "owner@acme.test")
    thief = copy_of(app, client)
    assert logged_in(thief)
    assert AuthActions(client).logout().status_code == 302
    assert records(app) == []
    assert not logged_in(thief) and not logged_in(client)
    assert thief.get(PAGE).headers["Location"].startswith("/login")


def test_a_copied_remember_me_cookie_stops_working_at_logout(app, world):
    client = login(app, "owner@acme.test", remember=True)
    thief = copy_of(app, client, "remember_token")  # the remember-me cookie alone logs a browser in
    assert logged_in(thief)
    AuthActions(client).logout()
    assert not logged_in(copy_of(app, client, "remember_token")) and not logged_in(thief)


def test_a_password_change_ends_the_other_logins_and_keeps_this_one(app, world):
    here = login(app, "owner@acme.test")
    elsewhere = login(app, "owner@acme.test", remember=True)
    copied = copy_of(app, here)
    remembered = copy_of(app, elsewhere, "remember_token")
    answer = AuthActions(here).post("/account/password", {
        "current_password": factories.PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert answer.status_code == 302 and answer.headers["Location"] == "/account"
    page = here.get("/account").get_data(as_text=True)
    assert "Password changed. 1 other session logged out." in page
    assert logged_in(here)  # under a new login: the change ended this one too
    assert not logged_in(copied)  # so a copy of this browser's cookie, taken before the change, is refused
    assert not logged_in(elsewhere) and not logged_in(remembered)
    [record] = records(app)
    assert record.remember is False
    assert AuthActions(app.test_client()).login("owner@acme.test", NEW_PASSWORD).status_code == 302


def test_a_kept_logged_in_browser_that_changes_the_password_stays_kept_and_its_old_cookies_are_refused(app, world):
    client = login(app, "owner@acme.test", remember=True)
    copied, remembered = copy_of(app, client), copy_of(app, client, "remember_token")
    old_cookie = client.get_cookie("remember_token").value
    answer = AuthActions(client).post("/account/password", {
        "current_password": factories.PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert answer.status_code == 302
    assert not logged_in(copied) and not logged_in(remembered)
    assert logged_in(client) and client.get_cookie("remember_token").value != old_cookie
    assert logged_in(copy_of(app, client, "remember_token"))  # the new remember-me cookie logs this browser in
    [record] = records(app)
    assert record.remember is True


def test_a_password_reset_by_the_cli_ends_every_login(app, runner, world):
    client = login(app, "owner@acme.test", remember=True)
    thief = copy_of(app, client)
    other_user = login(app, "admin@acme.test")
    result = runner.invoke(args=["users", "create", "owner@acme.test", "--password", NEW_PASSWORD,
                                 "--workspace", "acme", "--role", "owner"])
    assert result.exit_code == 0 and "password reset, every session of the account logged out" in result.output
    assert not logged_in(client) and not logged_in(thief) and not logged_in(copy_of(app, client, "remember_token"))
    assert logged_in(other_user)


def test_log_out_other_sessions_refuses_their_remember_me_cookies(app, world):
    here = login(app, "owner@acme.test")
    phone = login(app, "owner@acme.test", remember=True)
    remembered = copy_of(app, phone, "remember_token")
    assert logged_in(remembered)
    page = here.get("/account").get_data(as_text=True)
    assert page.count("<tr") == 3 and "this session" in page  # the header row and two logins
    answer = AuthActions(here).post("/account/sessions/others/end")
    assert answer.status_code == 302
    assert "1 other session logged out." in here.get("/account").get_data(as_text=True)
    assert not logged_in(phone) and not logged_in(remembered) and not logged_in(copy_of(app, phone, "remember_token"))
    assert logged_in(here) and len(records(app)) == 1


def test_remember_me_lasts_30_days_by_its_cookie_and_by_its_record(app, world):
    answer = login(app, "owner@acme.test", remember=True)
    remembered = copy_of(app, answer, "remember_token")
    assert logged_in(remembered)
    with app.app_context():
        db.session.execute(sa.update(UserSession).values(created_at=utcnow() - timedelta(days=30, minutes=1)))
        db.session.commit()
    assert not logged_in(copy_of(app, answer, "remember_token")) and not logged_in(answer)


def test_the_remember_me_cookie_expires_in_30_days(app, world):
    client = app.test_client()
    answer = client.post("/login", data={"email": "owner@acme.test", "password": factories.PASSWORD,
                                         "remember": "y", "csrf_token": csrf_token(client)})
    cookie = [h for h in answer.headers.getlist("Set-Cookie") if h.startswith("remember_token=")][0]
    expires = client.get_cookie("remember_token").expires
    assert "HttpOnly" in cookie
    assert abs((expires - utcnow()) - timedelta(days=30)) < timedelta(minutes=1)


def test_a_session_without_remember_me_ends_after_7_days_unused(app, world):
    client = login(app, "owner@acme.test")
    with app.app_context():
        db.session.execute(sa.update(UserSession).values(last_seen_at=utcnow() - timedelta(days=7, minutes=1)))
        db.session.commit()
    assert not logged_in(client)


def test_last_seen_is_written_at_most_once_a_minute(app, world):
    client = login(app, "owner@acme.test")
    seen = records(app)[0].last_seen_at
    for _ in range(3):
        assert logged_in(client)
    assert records(app)[0].last_seen_at == seen
    with app.app_context():
        db.session.execute(sa.update(UserSession).values(last_seen_at=seen - timedelta(seconds=61)))
        db.session.commit()
    assert logged_in(client)
    assert records(app)[0].last_seen_at > seen


def test_a_cookie_signed_before_session_records_logs_nobody_in(app, world):
    """A session cookie that names a user id (as before records) is anonymous: its user logs in again."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(world.owner_id)
        session["_fresh"] = True
    assert client.get(PAGE).status_code == 302


def test_the_runtime_api_sets_no_cookie_and_writes_no_session(app, client, world):
    answer = client.get(f"/api/v1/agents/{world.agent_id}/visitors/v-1/assignment",
                        headers={"Authorization": f"Bearer {world.api_key}"})
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert records(app) == []


def test_expired_records_are_deleted_at_the_next_login(app, world):
    login(app, "owner@acme.test")
    with app.app_context():
        db.session.execute(sa.update(UserSession).values(created_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    login(app, "owner@acme.test")
    assert len(records(app)) == 1


@pytest.mark.parametrize("data,field,reason", [
    ({"current_password": "wrong-password-here", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
     "current_password", "That is not your current password."),
    ({"current_password": factories.PASSWORD, "new_password": "qwertyuiop", "confirm": "qwertyuiop"},
     "new_password", "Password is too easy to guess. This is a top-100 common password."),
    ({"current_password": factories.PASSWORD, "new_password": "owner-acme-test", "confirm": "owner-acme-test"},
     "new_password", "Password is too easy to guess."),
    ({"current_password": factories.PASSWORD, "new_password": "tiny", "confirm": "tiny"},
     "new_password", "Password needs at least 10 characters."),
    ({"current_password": factories.PASSWORD, "new_password": factories.PASSWORD, "confirm": factories.PASSWORD},
     "new_password", "your current one"),
    ({"current_password": factories.PASSWORD, "new_password": NEW_PASSWORD, "confirm": "orchid-tundra-viola"},
     "confirm", "The two passwords differ"),
])
def test_the_account_page_refuses_a_bad_change_with_the_reason_and_changes_nothing(app, world, data, field, reason):
    here = login(app, "owner@acme.test")
    other = login(app, "owner@acme.test")
    answer = AuthActions(here).post("/account/password", data)
    html = answer.get_data(as_text=True).replace("&#34;", '"').replace("&#39;", "'")
    assert answer.status_code == 422
    assert f'data-field="{field}"' in html and reason in html, html[-2500:]
    assert logged_in(other) and len(records(app)) == 2
    assert AuthActions(app.test_client()).login("owner@acme.test").status_code == 302  # the old password still works
