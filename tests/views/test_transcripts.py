"""Transcripts and the Conversations tab (SPEC §12): contents, 404 across workspaces, filters, totals, <bdi>."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Message
from webapp.services.experiments import experiments
from webapp.services.runtime import service as runtime

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def send(world, conversation, visitor, role="visitor", text="hi", at=None, agent_id=None):
    workspace_id = world.other_workspace_id if agent_id == world.other_agent_id else world.workspace_id
    return runtime.record_message(workspace_id, agent_id or world.agent_id, {
        "conversation_id": conversation, "visitor_id": visitor, "role": role, "text": text,
        "sent_at": (at or T0).isoformat()}).body


@pytest.fixture
def chat(app, world):
    """A persona experiment (Aria vs Sam) with one full conversation: messages, a lead, feedback."""
    with app.app_context():
        exp = factories.experiment(world.agent_id, status="running", name="Warmth", keys=["sam", "aria"],
                                   configs=[{"persona": {"name": "Sam"}},
                                            {"persona": {"name": "Aria", "tone": "warm"}}])
        first = send(world, "c-1", "v-1", text="Do you ship to Canada?")
        send(world, "c-1", "v-1", role="agent", text="Yes, we do!", at=T0 + timedelta(seconds=5))
        send(world, "c-1", "v-1", text="Great, thanks", at=T0 + timedelta(seconds=30))
        runtime.record_lead(world.workspace_id, world.agent_id, {
            "conversation_id": "c-1", "visitor_id": "v-1", "fields": {"email": "v1@example.com"}})
        runtime.record_feedback(world.workspace_id, world.agent_id, "c-1",
                                 {"visitor_id": "v-1", "rating": "up", "comment": "Very <b>helpful</b>"})
        internal = db.session.scalar(sa.select(Conversation.id).where(Conversation.external_id == "c-1"))
        db.session.remove()
    return {"experiment": exp, "id": internal, "variant": first["variant"], "persona": first["persona"]}


def url(world, conversation_id, agent_id=None):
    return f"/agents/{agent_id or world.agent_id}/conversations/{conversation_id}"


@pytest.mark.parametrize("role", ["owner", "admin", "editor"])
def test_every_role_reads_the_transcript(client, auth, world, chat, role):
    auth.login(world.emails[role])
    response = client.get(url(world, chat["id"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    texts = re.findall(r'<div class="message-text"><bdi>(.*?)</bdi></div>', html)
    assert texts == ["Do you ship to Canada?", "Yes, we do!", "Great, thanks"]
    roles = re.findall(r'<span class="message-role">(\w+)</span>', html)
    assert roles == ["Visitor", "Agent", "Visitor"]
    assert "<bdi><code>c-1</code></bdi>" in html and "<bdi><code>v-1</code></bdi>" in html
    assert "<title>Conversation \u2068c-1\u2069 · " in html  # isolated where <bdi> cannot go
    assert '<time datetime="2026-11-20T09:00:00+00:00"' in html and '<time datetime="2026-11-20T09:00:30+00:00"' in html
    stamp = html[html.index('id="transcript-stamp"'):html.index('id="transcript-persona"')]
    variant_name = chat["variant"]["name"]
    assert "Warmth" in stamp and f"<strong>{variant_name}</strong>" in stamp
    persona = html[html.index('id="transcript-persona"'):html.index('id="transcript-messages"')]
    assert f"<strong>{chat['persona']['name']}</strong>" in persona
    assert f"You are {chat['persona']['name']}, the assistant of" in persona
    assert "v1@example.com" in html
    feedback_html = html[html.index('id="transcript-feedback"'):]
    assert "Rated up" in feedback_html and "Very &lt;b&gt;helpful&lt;/b&gt;" in feedback_html


def test_another_workspaces_conversation_is_the_same_404_as_no_conversation(app, client, auth, world, chat):
    with app.app_context():
        send(world, "theirs", "v-x", agent_id=world.other_agent_id)
        theirs = db.session.scalar(sa.select(Conversation.id).where(Conversation.external_id == "theirs"))
        db.session.remove()
    auth.login(world.emails["owner"])
    missing = client.get(url(world, 999_999))
    other = client.get(url(world, theirs))
    assert missing.status_code == other.status_code == 404
    assert other.get_data(as_text=True) == missing.get_data(as_text=True)
    # …and under the other workspace's agent's URL: the agent is not found, as an unknown agent.
    assert client.get(url(world, theirs, agent_id=world.other_agent_id)).status_code == 404
    auth.logout()
    auth.login(world.emails["outsider"])
    assert client.get(url(world, chat["id"])).status_code == 404


def test_a_deleted_experiments_conversation_shows_the_variant_key_and_the_default_persona(app, client, auth, world,
                                                                                         chat):
    with app.app_context():
        experiments.stop_experiment(world.owner_id, world.agent_id, chat["experiment"])
        experiments.delete_experiment(world.owner_id, world.agent_id, chat["experiment"])
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(url(world, chat["id"])).get_data(as_text=True)
    stamp = html[html.index('id="transcript-stamp"'):html.index('id="transcript-persona"')]
    assert "Warmth (deleted)" in stamp and f"<code>{chat['variant']['key']}</code>" in stamp
    assert "You are Sam, the assistant of" in html  # the agent's default persona once the variant is gone


def test_long_conversations_are_paged_500_messages_a_page(app, client, auth, world):
    with app.app_context():
        send(world, "long", "v-long")
        conversation_id = db.session.scalar(sa.select(Conversation.id).where(Conversation.external_id == "long"))
        db.session.execute(sa.insert(Message), [
            {"conversation_id": conversation_id, "role": "agent" if i % 2 else "visitor", "text": f"m{i}",
             "sent_at": T0 + timedelta(seconds=i + 1)} for i in range(1, 1200)])
        db.session.commit()
        db.session.remove()
    auth.login(world.emails["editor"])
    first = client.get(url(world, conversation_id)).get_data(as_text=True)
    assert first.count('class="message message-') == 500 and "Messages 1–500 of 1,200" in first
    last = client.get(url(world, conversation_id) + "?page=3").get_data(as_text=True)
    assert last.count('class="message message-') == 200 and "Messages 1,001–1,200 of 1,200" in last
    assert "<bdi>m1199</bdi>" in last and "<bdi>m1199</bdi>" not in first


def test_the_facts_say_when_it_started_and_its_last_message(app, client, auth, world):
    """Started is the earliest message and Last message the latest, by sent_at, whatever order they arrived in
    (a late message sent before the others moves Started back)."""
    with app.app_context():
        send(world, "c-facts", "v-facts", text="second", at=T0 + timedelta(minutes=10))
        send(world, "c-facts", "v-facts", role="agent", text="first, delivered late", at=T0)
        send(world, "c-facts", "v-facts", text="last", at=T0 + timedelta(hours=2, minutes=5))
        conversation_id = db.session.scalar(sa.select(Conversation.id).where(Conversation.external_id == "c-facts"))
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(url(world, conversation_id)).get_data(as_text=True)
    facts = html[html.index('id="transcript-facts"'):html.index("</dl>")]
    fact = r'<dt>(Started|Last message)</dt><dd><time datetime="([^"]+)"[^>]*>([^<]+)</time></dd>'
    shown = {term: (iso, text) for term, iso, text in re.findall(fact, facts)}
    assert shown == {"Started": ("2026-11-20T09:00:00+00:00", "2026-11-20 09:00 UTC"),
                     "Last message": ("2026-11-20T11:05:00+00:00", "2026-11-20 11:05 UTC")}


def tab(client, world, query=""):
    response = client.get(f"/agents/{world.agent_id}/conversations{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def rows(html):
    return re.findall(r'<tr data-conversation="(\d+)">(.*?)</tr>', html, re.S)


def test_the_tab_links_every_row_and_counts_messages_lead_and_feedback(app, client, auth, world, chat):
    with app.app_context():
        send(world, "c-2", "v-2")
        db.session.remove()
    auth.login(world.emails["editor"])
    html = tab(client, world)
    found = dict(rows(html))
    assert set(found) == {str(chat["id"]), str(chat["id"] + 1)}
    full = found[str(chat["id"])]
    assert f'href="/agents/{world.agent_id}/conversations/{chat["id"]}"' in full
    cells = re.findall(r"<td[^>]*>(.*?)</td>", full, re.S)
    assert cells[5:8] == ["2", "1", "yes"] and "up" in cells[8]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", found[str(chat["id"] + 1)], re.S)
    assert cells[5:8] == ["1", "0", "no"] and "—" in cells[8]
    assert "2 conversations" in html
    # The variant filter offers the variants by name, with their keys as values.
    assert '<option value="aria" >Aria</option>' in html


def test_the_filters_exact_visitor_and_conversation_and_variant_by_name(app, client, auth, world, chat):
    with app.app_context():
        for i in range(6):
            send(world, f"x-{i}", f"v-{i % 2}")
        db.session.remove()
    auth.login(world.emails["editor"])
    assert len(rows(tab(client, world, "?visitor=v-1"))) == 4  # c-1 and x-1, x-3, x-5
    html = tab(client, world, "?conversation=x-3")
    assert len(rows(html)) == 1 and "<bdi><code>x-3</code></bdi>" in html and "1 conversation match" in html
    assert len(rows(tab(client, world, "?visitor=v-1&conversation=x-2"))) == 0
    assert len(rows(tab(client, world, "?visitor=V-1"))) == 0  # exact, case-sensitive
    key = chat["variant"]["key"]
    html = tab(client, world, f"?experiment={chat['experiment']}&variant={key}")
    assert str(chat["id"]) in dict(rows(html))
    assert all(f"<span class=\"variant-name\">{chat['variant']['name']}</span>" in r for _, r in rows(html))


@pytest.mark.parametrize("query,parameter", [("visitor=" + "v" * 201, "visitor"), ("conversation=a%01b", "conversation")])
def test_malformed_id_filters_are_400_naming_the_parameter(client, auth, world, query, parameter):
    auth.login(world.emails["editor"])
    response = client.get(f"/agents/{world.agent_id}/conversations?{query}")
    assert response.status_code == 400 and f"{parameter} must be a runtime id" in response.get_data(as_text=True)


def test_the_tab_pages_50_with_the_total(app, client, auth, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.execute(sa.insert(Conversation), [
            {"agent_id": world.agent_id, "external_id": f"bulk-{i}", "visitor_id": f"v{i}",
             "started_at": T0 + timedelta(minutes=i), "last_message_at": T0 + timedelta(minutes=i)}
            for i in range(120)])
        db.session.commit()
        db.session.remove()
    auth.login(world.emails["editor"])
    first = tab(client, world)
    assert len(rows(first)) == 50 and "120 conversations" in first and "Page 1 of 3 · 120 in all" in first
    assert "<bdi><code>bulk-119</code></bdi>" in first  # newest first
    third = tab(client, world, "?page=3")
    assert len(rows(third)) == 20 and "<bdi><code>bulk-0</code></bdi>" in third
    filtered = tab(client, world, "?visitor=v7&page=1")
    assert len(rows(filtered)) == 1 and "1 conversation matches this filter" in filtered


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "", "%2B2", "%D9%A3"])
def test_a_page_that_is_not_a_positive_whole_number_is_the_same_400(client, auth, world, page):
    """docs/conversations.md: 0 and negatives are refused as `abc` is, not read as page 1."""
    auth.login(world.emails["editor"])
    response = client.get(f"/agents/{world.agent_id}/conversations?page={page}")
    assert response.status_code == 400
    assert "page must be a positive whole number." in response.get_data(as_text=True)


def test_a_page_past_the_last_shows_the_last(client, auth, world):
    auth.login(world.emails["editor"])
    first = tab(client, world, "?page=1")
    assert tab(client, world, "?page=7") == tab(client, world, "?page=" + "9" * 40) == tab(client, world, "?page=01")
    assert tab(client, world, "?page=7") == first


def test_leads_link_to_their_transcript(client, auth, world, chat):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/leads").get_data(as_text=True)
    assert f'href="/agents/{world.agent_id}/conversations/{chat["id"]}"' in html
    assert "<bdi><code>v-1</code></bdi>" in html


def test_a_bidi_control_in_an_id_stays_inside_its_bdi(app, client, auth, world):
    with app.app_context():
        send(world, "abc\u202edef", "v\u202e1")
        db.session.remove()
    auth.login(world.emails["editor"])
    html = tab(client, world)
    assert "<bdi><code>abc\u202edef</code></bdi>" in html and "<bdi><code>v\u202e1</code></bdi>" in html


def test_an_id_filter_with_a_stray_space_says_so(app, client, auth, world, chat):
    """Ids match exactly (a runtime id may hold spaces), so a pasted " c-1" finds nothing: the page says why."""
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/conversations?conversation=%20c-1").get_data(as_text=True)
    assert "No conversations match this filter." in html
    assert "The conversation id <bdi><code> c-1</code></bdi> starts with a space" in html
    html = client.get(f"/agents/{world.agent_id}/conversations?visitor=v-9").get_data(as_text=True)
    assert "No conversations match this filter." in html and "with a space" not in html
