"""SPEC §13: the Connect page of an agent — its id, each endpoint with curl and Python for this agent and host, the
OpenAPI document and its reference, the last message received; linked from API keys and the empty Conversations."""
from __future__ import annotations

import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import requests
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Feedback, GoalEvent, Lead


def page(client, auth, world, role="owner") -> str:
    auth.login(world.emails[role])
    response = client.get(f"/agents/{world.agent_id}/connect")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["owner", "admin", "editor"])
def test_every_member_sees_the_connect_page(client, auth, world, role):
    text = page(client, auth, world, role)
    assert f'<code id="agent-id">{world.agent_id}</code>' in text
    assert ('Manage API keys' in text or 'Create an API key' in text) == (role != "editor")


def test_another_workspace_gets_a_404(client, auth, world):
    auth.login(world.emails["outsider"])
    assert client.get(f"/agents/{world.agent_id}/connect").status_code == 404


def test_every_endpoint_has_curl_and_python_for_this_agent_and_host(client, auth, world):
    text = html.unescape(page(client, auth, world))
    base = f"http://localhost/api/v1/agents/{world.agent_id}"
    for tail in ("/messages", "/leads", "/events", "/conversations/conv-1/persona", "/visitors/visitor-42/assignment",
                 "/conversations/conv-1/feedback"):
        assert re.search(rf"curl -sS (-X POST )?{re.escape(base + tail)}", text), tail
    assert text.count('-H "Authorization: Bearer $AGENT_STUDIO_KEY"') == 6  # a placeholder, never a key
    assert f'API = "{base}"' in text and 'call("POST", "/events"' in text
    assert 'call("POST", "/conversations/conv-1/feedback", {"visitor_id": "visitor-42", "rating": "up"' in text
    assert 'data-openapi-url="/api/v1/openapi.json"' in text and "swagger-ui-bundle.js" in text


def test_the_last_message_received_shows_once_the_runtime_reports_one(client, auth, world):
    assert "none yet — send the first message" in page(client, auth, world)
    reply = client.post(f"/api/v1/agents/{world.agent_id}/messages", headers={"Authorization": f"Bearer {world.api_key}"},
                        json={"visitor_id": "v1", "conversation_id": "first-conv", "role": "visitor",
                              "sent_at": "2026-11-30T10:15:00Z"})
    assert reply.status_code == 201
    text = client.get(f"/agents/{world.agent_id}/connect").get_data(as_text=True)
    assert re.search(r'id="last-message"><time datetime="2026-11-30T10:15:00\+00:00"[^>]*>2026-11-30 10:15[^<]*</time>, '
                     r'in conversation <bdi><code>first-conv</code></bdi> \(1 conversation in all\)', text)


def test_the_api_keys_page_and_the_empty_conversations_tab_link_to_it(client, auth, world):
    auth.login(world.emails["owner"])
    url = f'href="/agents/{world.agent_id}/connect"'
    assert url in client.get("/w/acme/api-keys").get_data(as_text=True)
    # The tab bar links to Connect on every agent page: the link must be in the empty state's own paragraph.
    empty = re.search(r'<p class="empty">No conversations yet\..*?</p>',
                      client.get(f"/agents/{world.agent_id}/conversations").get_data(as_text=True), re.S)
    assert empty and url in empty.group(0)
    assert url in client.get(f"/agents/{world.agent_id}").get_data(as_text=True)  # the agent's Connect tab


def test_the_vendored_renderer_ships_with_its_licence(app):
    vendor = pathlib.Path(app.static_folder) / "vendor" / "swagger-ui"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert (vendor / "swagger-ui-bundle.js").stat().st_size > 1_000_000 and (vendor / "swagger-ui.css").exists()


def printed_examples(live_server, world, language: str) -> dict[str, str]:
    """The page's `language` examples as a signed-in owner reads them on a real server, by section id, in page order."""
    session = requests.Session()
    login = session.get(f"{live_server}/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', login).group(1)
    session.post(f"{live_server}/login", data={"email": world.emails["owner"], "password": factories.PASSWORD,
                                               "csrf_token": token})
    text = session.get(f"{live_server}/agents/{world.agent_id}/connect").text
    return {section: html.unescape(code)
            for section, code in re.findall(rf'<code id="([a-z-]+)-{language}">(.*?)</code>', text, re.S)}


ENDPOINTS = ["post-message", "get-persona", "get-assignment", "post-lead", "post-event", "post-feedback"]


def assert_the_examples_reached_the_data(app):
    """What the printed examples report reached the tables: conv-1 of visitor-42 with its lead, its goal, its rating."""
    with app.app_context():
        conversation = db.session.scalar(sa.select(Conversation).filter_by(external_id="conv-1"))
        assert conversation is not None and conversation.visitor_id == "visitor-42"
        for model in (Lead, GoalEvent, Feedback):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)
                                     .filter_by(conversation_id=conversation.id)) == 1, model.__name__
        assert db.session.scalar(sa.select(Feedback.rating)) == "up"
        db.session.remove()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_printed_curl_examples_run_as_printed(app, world, live_server):
    """Each curl command of the page, copied as it reads, against a real server with a real key: 2xx, JSON."""
    commands = printed_examples(live_server, world, "curl")
    assert list(commands) == ENDPOINTS  # in page order: the message first creates the conversation the others name
    environment = {**os.environ, "AGENT_STUDIO_KEY": world.api_key}
    for command in commands.values():
        done = subprocess.run(["bash", "-c", command + " -w '\\n%{http_code}'"], capture_output=True, text=True,
                              env=environment, timeout=30)
        body, status = done.stdout.rsplit("\n", 1)
        assert status in ("200", "201"), (command, done.stdout, done.stderr)
        assert json.loads(body)
    assert_the_examples_reached_the_data(app)


def test_the_printed_python_examples_run_as_printed(app, world, live_server):
    """The helper, then each Python example as it reads, in a fresh interpreter against a real server: no exception
    (the helper raises on any 4xx or 5xx), something printed; in page order, so the conversation exists when named."""
    snippets = printed_examples(live_server, world, "python")
    setup = snippets.pop("python-setup")
    assert list(snippets) == ENDPOINTS
    environment = {**os.environ, "AGENT_STUDIO_KEY": world.api_key}
    for example in snippets.values():
        done = subprocess.run([sys.executable, "-c", setup + "\n\n" + example], capture_output=True, text=True,
                              env=environment, timeout=30)
        assert done.returncode == 0 and done.stdout.strip(), (example, done.stdout, done.stderr)
    assert_the_examples_reached_the_data(app)
