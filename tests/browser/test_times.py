"""Times in Chromium: shown in the viewer's time zone (here New York), the UTC time on hover, never labelled "UTC"."""
import re

import pytest
from playwright.sync_api import expect

from .conftest import login


@pytest.fixture
def new_york(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900},
                                  timezone_id="America/New_York", locale="en-US")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_the_connect_page_and_the_transcript_show_local_times_without_utc(app, client, new_york, world, shot):
    page = new_york
    answer = client.post(f"/api/v1/agents/{world.agent_id}/messages",
                         headers={"Authorization": f"Bearer {world.api_key}"},
                         json={"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "hi",
                               "sent_at": "2026-11-30T10:15:00Z"})
    assert answer.status_code == 201
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/connect")
    last = page.locator("#last-message")
    expect(last.locator("time[data-local]")).to_have_text(re.compile(r"Nov 30, 2026.*05:15"))  # 10:15 UTC is 05:15 EST
    expect(last.locator("time")).to_have_attribute("title", "2026-11-30 10:15 UTC")
    assert "UTC" not in last.inner_text()
    shot(page, "connect")
    page.goto(f"/agents/{world.agent_id}/conversations")
    page.click("#conversations a:has-text('c1')")
    facts = page.locator("#transcript-facts")
    expect(facts.locator("time[data-local]").first).to_have_text(re.compile(r"05:15"))
    assert "UTC" not in facts.inner_text()
    shot(page, "transcript")
