"""Times read in the viewer's zone with no stray "UTC" label; runtime ids and lead fields isolated in <bdi> (SPEC §12)."""
from __future__ import annotations

import re

import pytest

from tests import factories

EVIL = "abc\u202eevil"
T = "2026-11-30T10:15:00Z"
STRAY_UTC = re.compile(r"</time>\s*\(?UTC")


def runtime(client, world, path, body):
    answer = client.post(f"/api/v1/agents/{world.agent_id}{path}", json=body,
                         headers={"Authorization": f"Bearer {world.api_key}"})
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    return answer.get_json()


@pytest.fixture
def chatted(app, client, world):
    """One conversation with an id holding a bidi override: a message, a lead, a goal event and feedback."""
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    ids = {"visitor_id": "v\u202e1", "conversation_id": EVIL}
    runtime(client, world, "/messages", {**ids, "role": "visitor", "text": "hi", "sent_at": T})
    runtime(client, world, "/leads", {**ids, "fields": {"na\u202eme": "Ada\u202eLovelace"}, "captured_at": T})
    runtime(client, world, "/events", {**ids, "name": "booked_demo", "event_id": "e1", "occurred_at": T})
    runtime(client, world, f"/conversations/{EVIL}/feedback", {"visitor_id": ids["visitor_id"], "rating": "up",
                                                                "given_at": T})
    return ids


def conversation_url(client, world) -> str:
    listing = client.get(f"/agents/{world.agent_id}/conversations").get_data(as_text=True)
    return re.search(rf'href="(/agents/{world.agent_id}/conversations/\d+)"', listing).group(1)


def test_no_page_labels_a_local_time_utc(app, client, auth, world, chatted):
    auth.login(world.emails["owner"])
    assert auth.post("/w/acme/members", {"email": "new@example.test", "role": "editor"}).status_code == 201
    pages = {"connect": f"/agents/{world.agent_id}/connect", "transcript": conversation_url(client, world),
             "members": "/w/acme/members", "account": "/account", "api keys": "/w/acme/api-keys"}
    for name, url in pages.items():
        html = client.get(url).get_data(as_text=True)
        assert "<time datetime=" in html, name
        assert not STRAY_UTC.search(html), (name, STRAY_UTC.search(html) and html[STRAY_UTC.search(html).start() - 200:][:300])
        assert "(UTC)</th>" not in html, name
    members = client.get("/w/acme/members").get_data(as_text=True)
    assert "<th>Expires</th>" in members.split('id="pending-invitations"')[1]
    connect = client.get(pages["connect"]).get_data(as_text=True)
    # Without script the time still says which zone it is in, once: inside the <time>, from the one macro.
    assert re.search(r'id="last-message"><time datetime="2026-11-30T10:15:00\+00:00" title="2026-11-30 10:15 UTC">'
                     r'2026-11-30 10:15 UTC</time>, in conversation', connect)


def test_the_invitation_page_shows_its_expiry_as_a_time(app, client, auth, world):
    auth.login(world.emails["owner"])
    answer = auth.post("/w/acme/members", {"email": "new@example.test", "role": "editor"})
    url = re.search(r'<code id="invitation-link">http://localhost(/invitations/[A-Za-z0-9_-]+)</code>',
                    answer.get_data(as_text=True)).group(1)
    auth.logout()
    html = client.get(url).get_data(as_text=True)
    assert re.search(r"The link works once, until <time datetime=[^>]+>[^<]+ UTC</time>\.", html)


def test_the_connect_page_isolates_the_last_conversation_id(client, auth, world, chatted):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/connect").get_data(as_text=True)
    assert f"in conversation <bdi><code>{EVIL}</code></bdi>" in html


def test_lead_field_names_and_values_are_isolated_on_the_leads_tab_and_the_transcript(client, auth, world, chatted):
    auth.login(world.emails["editor"])
    field = '<span class="kv"><b><bdi>na\u202eme</bdi></b> <bdi>Ada\u202eLovelace</bdi></span>'
    assert field in client.get(f"/agents/{world.agent_id}/leads").get_data(as_text=True)
    assert field in client.get(conversation_url(client, world)).get_data(as_text=True)


def test_the_visitor_preview_isolates_the_visitor_id(app, client, auth, world):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{exp_id}/preview",
                      query_string={"visitor_id": EVIL}).get_data(as_text=True)
    assert f"Visitor <bdi><code>{EVIL}</code></bdi> would get" in html
