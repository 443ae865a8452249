"""The login page under the throttle (SPEC §14): 429 with Retry-After, the wait in plain words, the client address;
and the account page's current password, counted with the logins of the account's email."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import AuthActions, csrf_token
from webapp import create_app
from webapp.config import ConfigError, TestConfig
from webapp.extensions import db
from webapp.models import AuditEvent, LoginFailure, User


def post_login(client, email: str, password: str = "wrong-password", headers: dict | None = None):
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/login", data=data, headers=headers or {})


def test_the_sixth_failed_login_answers_429_with_retry_after(client, world):
    for _ in range(5):
        assert post_login(client, "owner@acme.test").status_code == 401
    response = post_login(client, "owner@acme.test", factories.PASSWORD)  # the right password: not checked
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    html = response.get_data(as_text=True)
    assert "<html" in html and "Too many failed logins for this email. Try again in 1 minute." in html
    assert 'name="password"' in html  # the form is still there, to try again later
    assert client.get("/w/acme/agents").status_code == 302  # not logged in


def test_the_htmx_form_gets_its_fragment_with_the_wait(client, world):
    for _ in range(5):
        post_login(client, "nobody@acme.test")
    response = post_login(client, "nobody@acme.test", headers={"HX-Request": "true"})
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    html = response.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith("<form")
    assert "data-error-message" in html and "Try again in 1 minute." in html
    assert "HX-Request" in response.headers["Vary"]


def test_an_unknown_email_gets_the_same_answers(client, world):
    def answers(email: str) -> list:
        return [(r.status_code, r.headers.get("Retry-After")) for r in (post_login(client, email) for _ in range(7))]

    assert answers("owner@acme.test") == answers("nobody@acme.test") == [(401, None)] * 5 + [(429, "60")] * 2


def test_failed_logins_are_audited_from_the_client_address(app, client, world):
    post_login(client, "owner@acme.test", headers={"X-Forwarded-For": "203.0.113.50"})
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "login.failed"))
        # No proxy is trusted by default: the header is ignored.
        assert (event.workspace_id, event.target_id, event.details["address"]) == (None, world.owner_id, "127.0.0.1")
        db.session.remove()


def test_x_forwarded_for_counts_only_with_trusted_proxies(app, world):
    proxied = create_app(type("ProxiedConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TRUSTED_PROXIES": "1"}))
    client = proxied.test_client()
    for n in range(20):
        headers = {"X-Forwarded-For": f"192.0.2.66, 203.0.113.{n}"}  # the proxy appended the real client's
        assert post_login(client, f"guess{n}@acme.test", headers=headers).status_code == 401
    with proxied.app_context():
        addresses = {details["address"] for details in db.session.scalars(
            sa.select(AuditEvent.details).where(AuditEvent.action == "login.failed"))}
        db.session.remove()
        db.engine.dispose()
    assert addresses == {f"203.0.113.{n}" for n in range(20)}
    # Twenty addresses with one failure each: none is locked; a twenty-first failure from one of them is not either.
    assert post_login(client, "guess@acme.test", headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 401


def test_twenty_failures_from_one_address_lock_it(client, world):
    for n in range(20):
        assert post_login(client, f"guess{n}@acme.test",
                          headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 401  # ignored: untrusted
    response = post_login(client, "owner@acme.test", factories.PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert "Too many failed logins from your network address. Try again in 1 minute." in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["-1", "two", "11", "1.5"])
def test_a_bad_trusted_proxies_setting_is_refused(value):
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": "sqlite://", "TRUSTED_PROXIES": value}))


# The account page's current password (SPEC §14): behind the same throttle, on the account's email.
NEW_PASSWORD = "orchid-tundra-violin"


def change_password(auth, current: str):
    return auth.post("/account/password", {"current_password": current, "new_password": NEW_PASSWORD,
                                           "confirm": NEW_PASSWORD})


def throttle_rows(app) -> dict[str, list]:
    """The owner's password hash, the throttle's rows and the audit rows: what a refused change must not touch."""
    with app.app_context():
        found = {"hash": list(db.session.scalars(sa.select(User.password_hash).where(User.email == "owner@acme.test"))),
                 "failures": [tuple(r) for r in db.session.execute(sa.select(LoginFailure.__table__)).all()],
                 "audit": [tuple(r) for r in db.session.execute(sa.select(AuditEvent.__table__)).all()]}
        db.session.remove()
    return found


def test_the_sixth_wrong_current_password_answers_429_and_even_the_right_one_then_writes_nothing(
        app, client, auth, world):
    auth.login("owner@acme.test")
    for _ in range(5):
        response = change_password(auth, "wrong-password-here")
        assert response.status_code == 422 and "That is not your current password." in response.get_data(as_text=True)
    before = throttle_rows(app)
    for current in ("wrong-password-here", factories.PASSWORD):  # the right one is not even checked
        response = change_password(auth, current)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "60"
        html = response.get_data(as_text=True)
        assert "<html" in html and "Change your password" in html  # the account page, with the wait
        assert "Too many wrong passwords for this account (at login or here). Try again in 1 minute." in html
    assert throttle_rows(app) == before
    assert client.get("/account").status_code == 200  # this session stays logged in


def test_wrong_current_passwords_are_audited_as_failed_logins_of_the_account(app, client, auth, world):
    auth.login("owner@acme.test")
    change_password(auth, "wrong-password-here")
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "login.failed"))
        assert (event.workspace_id, event.actor_id, event.target_type, event.target_id) == (
            None, world.owner_id, "user", world.owner_id)
        assert event.details == {"email": "owner@acme.test", "address": "127.0.0.1",
                                 "locked_seconds": {"email": 0, "address": 0}, "via": "account_page"}
        db.session.remove()


def test_the_account_page_and_the_login_page_share_the_email_count(app, client, auth, world):
    auth.login("owner@acme.test")
    for _ in range(3):
        assert change_password(auth, "wrong-password-here").status_code == 422
    elsewhere = app.test_client()
    for _ in range(2):
        assert post_login(elsewhere, "owner@acme.test").status_code == 401
    response = post_login(elsewhere, "owner@acme.test", factories.PASSWORD)  # the 6th: locked for that email
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert "Too many failed logins for this email." in response.get_data(as_text=True)
    assert change_password(auth, factories.PASSWORD).status_code == 429


def test_the_right_current_password_still_changes_it_and_clears_the_count(app, client, auth, world):
    auth.login("owner@acme.test")
    for _ in range(4):
        assert change_password(auth, "wrong-password-here").status_code == 422
    assert change_password(auth, factories.PASSWORD).status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure).where(
            LoginFailure.scope == "email")) == 0
        db.session.remove()
    for _ in range(5):  # a fresh count: five more failures before a lock
        assert post_login(app.test_client(), "owner@acme.test").status_code == 401
    assert AuthActions(app.test_client()).login("owner@acme.test", NEW_PASSWORD).status_code == 429


def test_an_empty_current_password_is_no_guess_and_is_not_counted(app, client, auth, world):
    auth.login("owner@acme.test")
    response = change_password(auth, "")
    assert response.status_code == 422 and "Type your current password." in response.get_data(as_text=True)
    assert throttle_rows(app)["failures"] == []
