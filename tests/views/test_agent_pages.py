import pytest

from tests import factories
from webapp import authz


def test_overview_names_the_active_experiment(client, auth, app, world):
    auth.login("editor@acme.test")
    idle = client.get(f"/agents/{world.agent_id}").get_data(as_text=True)
    # Not "every visitor": a conversation stamped by a stopped experiment keeps its variant (SPEC §5, step 1).
    assert "No experiment is running: every new conversation gets the default persona" in idle
    assert "every visitor gets" not in idle
    with app.app_context():
        factories.experiment(world.agent_id, status="running", name="Live persona test")
    html = client.get(f"/agents/{world.agent_id}").get_data(as_text=True)
    assert "Live persona test" in html and "No experiment is running" not in html
    assert "also-running" not in html


def test_overview_names_an_experiment_still_running_behind_the_active_one(client, auth, app, world):
    """'Start anyway' leaves two running: the overview names the active one (latest started) and the other."""
    from datetime import timedelta

    from webapp.models import utcnow

    with app.app_context():
        factories.experiment(world.agent_id, kind="cta", status="running", name="Older CTA test",
                             started_at=utcnow() - timedelta(days=2))
        factories.experiment(world.agent_id, status="running", name="Newer persona test")
    auth.login("editor@acme.test")
    html = client.get(f"/agents/{world.agent_id}").get_data(as_text=True)
    active, behind = html.split('class="muted also-running"')
    assert "Newer persona test" in active and "Persona" in active and "Older CTA test" not in active
    assert "Older CTA test" in behind.split("</p>")[0]


def test_members_page_shows_workspace_activity_to_owners(client, auth, world):
    auth.login("owner@acme.test")
    auth.post("/w/acme/api-keys", {"name": "widget <b>"})
    auth.post(f"/w/acme/members/{world.editor_membership_id}/role", {"role": "admin"})
    html = client.get("/w/acme/members").get_data(as_text=True)
    activity = html.split('id="workspace-activity"')[1]
    assert "api key created" in activity and "member role changed" in activity
    assert "widget &lt;b&gt;" in activity and "owner@acme.test" in activity
    assert html.count('id="workspace-activity"') == 1 and "<title>Members ·" in html


def test_members_page_says_who_deleted_an_experiment(client, auth, app, world):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="stopped", name="<b>Old test</b>")
    auth.login("admin@acme.test")
    assert auth.post(f"/agents/{world.agent_id}/experiments/{exp_id}/delete").status_code == 302
    assert client.get(f"/agents/{world.agent_id}/experiments/{exp_id}").status_code == 404
    assert client.get("/w/acme/members").status_code == 403  # the workspace activity stays an owner's page
    auth.logout()
    auth.login("owner@acme.test")
    activity = client.get("/w/acme/members").get_data(as_text=True).split('id="workspace-activity"')[1]
    row = next(r for r in activity.split("<tr>") if "experiment deleted" in r)
    assert "admin@acme.test" in row and "&lt;b&gt;Old test&lt;/b&gt;" in row and "<b>Old" not in row
    assert "persona" in row and f'href="/agents/{world.agent_id}/experiments">Helper</a>' in row
    assert "<time" in row
    auth.logout()
    auth.login("owner@other.test")
    assert "experiment deleted" not in client.get("/w/other/members").get_data(as_text=True)


def test_a_long_agent_name_asks_for_a_persona_name(client, auth, world):
    auth.login("admin@acme.test")
    response = auth.post("/w/acme/agents", {"name": "N" * 80, "persona_name": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Persona name is required when the agent&#39;s name is longer than 60 characters." in html
    assert "got 80" not in html


def member_row(html: str, email: str) -> str:
    return html.split(f'<tr data-email="{email}">')[1].split("</tr>")[0]


def test_the_only_owner_is_offered_no_demote_or_remove(client, auth, world):
    auth.login("owner@acme.test")
    html = client.get("/w/acme/members").get_data(as_text=True)
    owner_row = member_row(html, "owner@acme.test")
    assert owner_row.count("disabled") == 3 and owner_row.count('aria-describedby="owner-rule"') == 3
    assert "make another member an owner first" in owner_row and 'id="owner-rule"' in html
    assert "disabled" not in member_row(html, "editor@acme.test")
    # once there is a second owner, both can be demoted or removed again
    assert auth.post(f"/w/acme/members/{world.editor_membership_id}/role", {"role": "owner"}).status_code == 302
    html = client.get("/w/acme/members").get_data(as_text=True)
    assert "disabled" not in member_row(html, "owner@acme.test") + member_row(html, "editor@acme.test")


def test_a_quote_in_an_email_cannot_break_out_of_the_remove_confirmation(client, auth, app):
    email = "x');alert(1)//@evil.test"  # a valid address: the local part may hold quotes and parentheses
    with app.app_context():
        factories.user("owner@acme.test", "acme", "owner")  # a new workspace's first member is its owner
        factories.user(email, "acme", "editor")
    auth.login("owner@acme.test")
    html = client.get("/w/acme/members").get_data(as_text=True)
    row = html.split("x&#39;);alert(1)//@evil.test</td>")[1].split("</tr>")[0]
    # The question is plain attribute text (app.js asks it; no inline script): Jinja escapes the quote there.
    assert 'data-confirm="Remove x&#39;);alert(1)//@evil.test from this workspace?"' in row
    assert "onsubmit" not in row


@pytest.mark.parametrize("role", ["admin", "editor"])
def test_an_owner_who_steps_down_lands_on_a_page_they_may_see(client, auth, app, world, role):
    with app.app_context():
        own_membership = authz.membership(world.owner_id, world.workspace_id).id
    auth.login("owner@acme.test")
    assert auth.post(f"/w/acme/members/{world.editor_membership_id}/role", {"role": "owner"}).status_code == 302
    response = auth.post(f"/w/acme/members/{own_membership}/role", {"role": role}, follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/w/acme/agents"
    assert f"owner@acme.test is now {role}." in response.get_data(as_text=True)


def test_an_owner_who_steps_down_with_htmx_is_sent_on_with_hx_redirect(client, auth, app, world):
    with app.app_context():
        own_membership = authz.membership(world.owner_id, world.workspace_id).id
    auth.login("owner@acme.test")
    auth.post(f"/w/acme/members/{world.editor_membership_id}/role", {"role": "owner"})
    response = auth.post(f"/w/acme/members/{own_membership}/role", {"role": "admin"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/w/acme/agents"
    assert "owner@acme.test is now admin." in client.get("/w/acme/agents").get_data(as_text=True)


def test_an_owner_who_leaves_the_workspace_lands_on_a_page_they_may_see(client, auth, app, world):
    with app.app_context():
        own_membership = authz.membership(world.owner_id, world.workspace_id).id
    auth.login("owner@acme.test")
    auth.post(f"/w/acme/members/{world.editor_membership_id}/role", {"role": "owner"})
    response = auth.post(f"/w/acme/members/{own_membership}/remove", follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/"
    assert "You left Acme." in response.get_data(as_text=True)


@pytest.mark.parametrize("tab,title", [("", "Overview"), ("/conversations", "Conversations"), ("/leads", "Leads"),
                                       ("/settings", "Settings"), ("/experiments", "A/B experiments")])
def test_each_agent_tab_has_a_title_of_its_own(client, auth, world, tab, title):
    auth.login("editor@acme.test")
    html = client.get(f"/agents/{world.agent_id}{tab}").get_data(as_text=True)
    assert f"<title>{title} · Helper · Agent Studio</title>" in html
