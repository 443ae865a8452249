"""The login page under the throttle (SPEC §14): 429 with Retry-After, the wait in plain words, the client address."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import csrf_token
from webapp import create_app
from webapp.config import ConfigError, TestConfig
from webapp.extensions import db
from webapp.models import AuditEvent


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
