"""Invitations (SPEC §14): the Members page invites any email alike, the link is used once, for 7 days, unless
revoked, by a new person choosing a password or by the invited account logged in; email goes through a real SMTP
server started here."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import CSRF_META, AuthActions, csrf_token
from tests.smtp_server import SmtpServer
from webapp import authz, create_app
from webapp.config import TestConfig, smtp
from webapp.extensions import db
from webapp.models import AuditEvent, Invitation, Membership, User, UserSession, utcnow

LINK = re.compile(r'<code id="invitation-link">(http://localhost/invitations/([A-Za-z0-9_-]+))</code>')
STRONG = "quartz-lantern-meadow"


def invite(auth, email: str, role: str = "editor", slug: str = "acme"):
    return auth.post(f"/w/{slug}/members", {"email": email, "role": role})


def link_of(response) -> tuple[str, str]:
    match = LINK.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:2000]
    return match.group(1), match.group(2)


def rows(app, model, *where) -> list:
    with app.app_context():
        found = list(db.session.scalars(sa.select(model).where(*where)))
        db.session.expunge_all()
        db.session.remove()
    return found


def everything(app) -> dict[str, list]:
    with app.app_context():
        out = {t.name: sorted(repr(tuple(r)) for r in db.session.execute(sa.select(t)).all())
               for t in db.metadata.sorted_tables}
        db.session.remove()
    return out


def audit_actions(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        found = [(e.actor_email, e.action, e.details) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.target_type == "invitation").order_by(AuditEvent.id))]
        db.session.remove()
    return found


def test_members_answers_the_same_for_an_email_with_an_account_and_one_without(app, client, auth, world):
    """Status and page alike, but for the email itself, the link's token, the CSRF token and the clock."""
    auth.login(world.emails["owner"])
    answers = []
    for email in ("owner@other.test", "nobody@nowhere.test"):  # has an account (another customer's) / has none
        response = invite(auth, email, "admin")
        body = response.get_data(as_text=True)
        body = body.replace(email, "EMAIL").replace(link_of(response)[1], "TOKEN")
        body = body.replace(CSRF_META.search(body).group(1), "CSRF")
        body = re.sub(r'<time datetime="[^"]+"[^>]*>[^<]+</time>', "TIME", body)
        body = re.sub(r"#\d+", "#ID", re.sub(r"/invitations/\d+/", "/invitations/ID/", body))
        answers.append((response.status_code, body))
        with app.app_context():  # the next one starts from the same page: no pending row, no audit row
            db.session.execute(sa.delete(Invitation))
            db.session.execute(sa.delete(AuditEvent).where(AuditEvent.target_type == "invitation"))
            db.session.commit()
            db.session.remove()
    assert answers[0][0] == answers[1][0] == 201
    assert answers[0][1] == answers[1][1]
    assert "EMAIL" in answers[0][1] and "No user" not in answers[0][1]


def test_a_new_person_chooses_a_password_and_lands_in_the_workspace(app, client, auth, world):
    auth.login(world.emails["owner"])
    url, token = link_of(invite(auth, "New.Person@Example.test", "admin"))
    assert rows(app, Invitation)[0].token_hash != token and token not in repr(everything(app))  # only a hash
    auth.logout()
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Join Acme" in html and "new.person@example.test" in html
    assert 'name="password"' in html and "Log in to accept" not in html
    answer = client.post(url, data={"csrf_token": csrf_token(client), "name": "New Person",
                                    "password": STRONG, "confirm": STRONG})
    assert answer.status_code == 302 and answer.headers["Location"] == "/w/acme/agents"
    landed = client.get("/w/acme/agents")
    assert landed.status_code == 200 and "Welcome to Acme: you are admin." in landed.get_data(as_text=True)
    user = rows(app, User, User.email == "new.person@example.test")[0]
    assert user.name == "New Person" and len(rows(app, UserSession, UserSession.user_id == user.id)) == 1
    with app.app_context():
        assert authz.role_in(user.id, world.workspace_id).name == "admin"
    assert [a[1:] for a in audit_actions(app)] == [
        ("member.invited", {"email": "new.person@example.test", "role": "admin"}),
        ("member.invitation_accepted", {"email": "new.person@example.test", "role": "admin"})]
    assert audit_actions(app)[1][0] == "new.person@example.test"
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    auth.login(world.emails["owner"])
    members = client.get("/w/acme/members").get_data(as_text=True)
    assert 'new.person@example.test<br><span class="muted member-name">New Person</span>' in members  # the name shows


@pytest.mark.parametrize("password,confirm,field,reason", [
    ("password12", "password12", "password", "This is a very common password."),
    ("short", "short", "password", "at least 10 characters"),
    ("acme-acme-acme", "acme-acme-acme", "password", "too easy to guess"),
    (STRONG, STRONG + "x", "confirm", "The two passwords differ"),
])
def test_a_weak_or_mistyped_password_is_refused_with_the_reason_and_nothing_written(
        app, client, auth, world, password, confirm, field, reason):
    auth.login(world.emails["owner"])
    url, _ = link_of(invite(auth, "new@example.test"))
    auth.logout()
    before = everything(app)
    answer = client.post(url, data={"csrf_token": csrf_token(client), "password": password, "confirm": confirm})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error" data-field="{field}">([^<]+)</p>', html)
    assert error and reason in error.group(1).replace("&#34;", '"'), html[-3000:]
    assert everything(app) == before


def test_an_existing_account_logs_in_as_the_invited_email_to_accept(app, client, auth, world):
    auth.login(world.emails["owner"])
    url, _ = link_of(invite(auth, "owner@other.test", "editor"))
    auth.logout()
    html = client.get(url).get_data(as_text=True)
    assert "Log in to accept" in html and 'name="password"' not in html  # a link never sets an account's password
    before = everything(app)
    forced = client.post(url, data={"csrf_token": csrf_token(client), "password": STRONG, "confirm": STRONG})
    assert forced.status_code == 409 and "log in as owner@other.test to accept" in forced.get_data(as_text=True)
    assert everything(app) == before

    auth.login(world.emails["admin"])  # someone else: a clear message, and nothing changes
    html = " ".join(client.get(url).get_data(as_text=True).split())
    assert "You are logged in as admin@acme.test. This invitation is for owner@other.test" in html
    before = everything(app)
    refused = auth.post(url)
    assert refused.status_code == 403 and "This invitation is for owner@other.test" in refused.get_data(as_text=True)
    assert everything(app) == before
    auth.logout()

    login = client.get(re.search(r'href="(/login\?next=[^"]+)"', client.get(url).get_data(as_text=True))
                       .group(1).replace("&amp;", "&"))
    assert login.status_code == 200
    assert auth.login("owner@other.test").status_code == 302
    assert "Accept and open Acme" in client.get(url).get_data(as_text=True)
    accepted = auth.post(url)
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/w/acme/agents"
    assert client.get("/w/acme/agents").status_code == 200
    with app.app_context():
        assert authz.role_in(world.outsider_id, world.workspace_id).name == "editor"


def test_the_link_is_shown_once_and_the_members_page_never_shows_it_again(app, client, auth, world):
    auth.login(world.emails["owner"])
    link, token = link_of(invite(auth, "new@acme.test"))
    page = client.get("/w/acme/members").get_data(as_text=True)
    assert "new@acme.test" in page  # in the pending list
    assert token not in page and 'id="invitation-link"' not in page and 'id="new-invitation"' not in page
    assert token not in repr(everything(app))  # only its hash is kept: it cannot be shown again


def test_the_link_works_once(app, client, auth, world):
    auth.login(world.emails["owner"])
    url, _ = link_of(invite(auth, "once@example.test"))
    auth.logout()
    assert client.post(url, data={"csrf_token": csrf_token(client), "password": STRONG,
                                  "confirm": STRONG}).status_code == 302
    auth.logout()
    before = everything(app)
    for answer in (client.get(url), client.post(url, data={"csrf_token": csrf_token(client), "password": STRONG,
                                                           "confirm": STRONG})):
        assert answer.status_code == 410
        assert "has been used already" in answer.get_data(as_text=True)
        assert 'name="password"' not in answer.get_data(as_text=True)
    assert everything(app) == before


def test_an_expired_link_is_a_clear_page_and_writes_nothing(app, client, auth, world):
    auth.login(world.emails["owner"])
    url, _ = link_of(invite(auth, "late@example.test"))
    invitation = rows(app, Invitation)[0]
    assert timedelta(days=7) - (invitation.expires_at - invitation.created_at) == timedelta(0)
    with app.app_context():
        db.session.execute(sa.update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    auth.logout()
    before = everything(app)
    answer = client.post(url, data={"csrf_token": csrf_token(client), "password": STRONG, "confirm": STRONG})
    assert answer.status_code == 410 and "expired" in answer.get_data(as_text=True)
    assert client.get(url).status_code == 410
    assert everything(app) == before
    auth.login(world.emails["owner"])  # no longer pending
    assert "late@example.test" not in client.get("/w/acme/members").get_data(as_text=True).split("Invite a member")[0]


def test_a_revoked_link_stops_working_and_the_revocation_is_audited(app, client, auth, world):
    auth.login(world.emails["owner"])
    url, _ = link_of(invite(auth, "gone@example.test", "admin"))
    page = client.get("/w/acme/members").get_data(as_text=True)
    pending = page.split('id="pending-invitations"')[1].split("</section>")[0]
    assert "gone@example.test" in pending and "admin" in pending and "owner@acme.test" in pending
    revoke = re.search(r'action="(/w/acme/invitations/\d+/revoke)"', pending).group(1)
    assert auth.post(revoke).status_code == 302
    assert "gone@example.test" not in client.get("/w/acme/members").get_data(as_text=True).split(
        'id="pending-invitations"')[1].split("</section>")[0]
    auth.logout()
    answer = client.get(url)
    assert answer.status_code == 410 and "withdrawn" in answer.get_data(as_text=True)
    assert [a[1] for a in audit_actions(app)] == ["member.invited", "member.invitation_revoked"]


def test_inviting_again_replaces_the_pending_link(app, client, auth, world):
    auth.login(world.emails["owner"])
    answer = invite(auth, "twice@example.test")
    assert 'id="invitation-replaced"' not in answer.get_data(as_text=True)
    first, _ = link_of(answer)
    answer = invite(auth, "twice@example.test", "admin")
    second, _ = link_of(answer)
    assert ("It replaces the earlier invitation of twice@example.test: that link no longer works."
            in answer.get_data(as_text=True))  # the owner is told the link they may have sent is dead
    old_page = client.get(first)
    assert old_page.status_code == 410 and "was replaced by a newer one" in old_page.get_data(as_text=True)
    assert "withdrawn" not in old_page.get_data(as_text=True)
    assert client.get(second).status_code == 200
    activity = client.get("/w/acme/members").get_data(as_text=True).split('id="workspace-activity"')[1]
    assert "replaced by a new invitation of the same email" in activity and "replaced:" not in activity
    assert len(rows(app, Invitation, Invitation.revoked_at.is_(None))) == 1


def test_inviting_a_member_says_so_and_writes_nothing(app, client, auth, world):
    auth.login(world.emails["owner"])
    before = everything(app)
    answer = invite(auth, "Editor@acme.test")
    assert answer.status_code == 422
    assert "editor@acme.test is already a member of this workspace." in answer.get_data(as_text=True)
    assert everything(app) == before


@pytest.mark.parametrize("data,field", [({"email": "not-an-email", "role": "editor"}, "email"),
                                        ({"email": "a@b.test", "role": "king"}, "role")])
def test_bad_invitation_input_names_the_field(app, client, auth, world, data, field):
    auth.login(world.emails["owner"])
    before = everything(app)
    answer = invite(auth, data["email"], data["role"])
    assert answer.status_code == 422 and f'data-field="{field}"' in answer.get_data(as_text=True)
    assert everything(app) == before


@pytest.mark.parametrize("token", ["short", "x" * 43, "A" * 300, "%2e%2e"])
def test_an_unknown_link_is_a_404_page(client, world, token):
    answer = client.get(f"/invitations/{token}")
    assert answer.status_code == 404 and "This invitation link is not valid" in answer.get_data(as_text=True)


@pytest.fixture
def smtp_server(tmp_path, monkeypatch, app):
    server = SmtpServer(tmp_path).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # trust its self-signed certificate, as a CA bundle would
    monkeypatch.setitem(app.config, "SMTP", smtp(
        f"smtp://{server.user}:{server.password.replace('/', '%2F')}@127.0.0.1:{server.port}",
        "Agent Studio <studio@example.test>"))
    yield server
    server.stop()


def test_the_invitation_is_emailed_with_its_link_through_a_real_smtp_server(app, client, auth, world, smtp_server):
    auth.login(world.emails["owner"])
    answer = invite(auth, "mailed@example.test", "admin")
    url, _ = link_of(answer)
    assert "Emailed to mailed@example.test too." in answer.get_data(as_text=True)
    assert smtp_server.inbox.envelopes == [("studio@example.test", ["mailed@example.test"])]
    message = smtp_server.inbox.messages[0]
    assert message["To"] == "mailed@example.test" and message["From"] == "Agent Studio <studio@example.test>"
    assert message["Subject"] == "You are invited to Acme on Agent Studio"
    body = message.get_content()
    assert url in body and "owner@acme.test invited you" in body and "as admin" in body
    auth.logout()
    assert client.get(url).status_code == 200  # the emailed link is the link


# What nginx terminating TLS for https://ab.example.com sends the app, and the Referer of a browser on that site
# (over HTTPS Flask-WTF refuses a form whose Referer is not the request's own host).
BEHIND_TLS_PROXY = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "ab.example.com",
                    "HTTP_X_FORWARDED_FOR": "203.0.113.7", "HTTP_REFERER": "https://ab.example.com/w/acme/members"}
ANY_LINK = re.compile(r'<code id="invitation-link">([^<]+)</code>')


@pytest.fixture
def proxied_app(app):
    """The suite's database, one trusted proxy in front (TRUSTED_PROXIES=1)."""
    proxied = create_app(type("ProxiedConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TRUSTED_PROXIES": "1"}))
    yield proxied
    with proxied.app_context():
        db.session.remove()
        db.engine.dispose()


def test_behind_a_trusted_tls_proxy_the_link_and_its_email_are_https_on_the_public_host(
        app, proxied_app, world, smtp_server, monkeypatch):
    monkeypatch.setitem(proxied_app.config, "SMTP", app.config["SMTP"])
    client = proxied_app.test_client()
    client.environ_base.update(BEHIND_TLS_PROXY)
    auth = AuthActions(client)
    assert auth.login(world.emails["owner"]).status_code == 302
    answer = invite(auth, "proxied@example.test")
    assert answer.status_code == 201
    url = ANY_LINK.search(answer.get_data(as_text=True)).group(1)
    assert url.startswith("https://ab.example.com/invitations/")
    assert url in smtp_server.inbox.messages[0].get_content()


def test_without_trusted_proxies_the_forwarded_scheme_and_host_are_ignored(client, auth, world):
    client.environ_base.update(BEHIND_TLS_PROXY)
    auth.login(world.emails["owner"])
    answer = invite(auth, "direct@example.test")
    assert answer.status_code == 201
    assert ANY_LINK.search(answer.get_data(as_text=True)).group(1).startswith("http://localhost/invitations/")


def test_an_email_that_cannot_be_sent_still_shows_the_link(app, client, auth, world, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP", smtp(f"smtp://127.0.0.1:{_closed_port()}", "studio@example.test"))
    auth.login(world.emails["owner"])
    answer = invite(auth, "unmailed@example.test")
    assert answer.status_code == 201
    assert "The email could not be sent" in answer.get_data(as_text=True)
    url, _ = link_of(answer)
    assert rows(app, Invitation)[0].email == "unmailed@example.test"


def _closed_port() -> int:
    from tests.smtp_server import free_port
    return free_port()  # nothing listens there once the probe socket is closed


def test_a_member_the_owner_removes_loses_the_workspace_at_once(app, world):
    editor, owner = app.test_client(), app.test_client()
    AuthActions(editor).login(world.emails["editor"])
    owner_auth = AuthActions(owner)
    owner_auth.login(world.emails["owner"])
    assert editor.get("/w/acme/agents").status_code == 200
    assert owner_auth.post(f"/w/acme/members/{world.editor_membership_id}/remove").status_code == 302
    assert editor.get("/w/acme/agents").status_code == 404
    assert editor.get(f"/agents/{world.agent_id}").status_code == 404
    assert rows(app, Membership, Membership.id == world.editor_membership_id) == []
