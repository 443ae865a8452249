"""axe-core finds no violation on any page, at a laptop's width (1366 px) and a phone's (390 px)."""
from __future__ import annotations

import pytest

from tests import factories
from tests.services.experiments.test_results import build
from webapp.extensions import db
from webapp.services.runtime import service as runtime

from .axe import describe, violations
from .conftest import login

WIDTHS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def site(app, world):
    """A running experiment with results, a stopped one with an outcome, a conversation and a lead."""
    with app.app_context():
        running = factories.experiment(world.agent_id, status="running", name="Warmer greeting")
        build(world.agent_id, running, 60, lead_rates=(0.1, 0.5))
        draft = factories.experiment(world.agent_id, name="Next idea")
        ids = {"conversation_id": "conv-1", "visitor_id": "visitor-1"}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor", "text": "hi"})
        runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {"email": "a@b.test"}})
        db.session.remove()
    return {"running": running, "draft": draft}


PAGES = {
    "agents": "/w/acme/agents", "members": "/w/acme/members", "api-keys": "/w/acme/api-keys",
    "overview": "{a}", "conversations": "{a}/conversations", "leads": "{a}/leads", "settings": "{a}/settings",
    "experiments": "{a}/experiments", "new-experiment": "{a}/experiments/new", "edit": "{a}/experiments/{draft}/edit",
    "experiment": "{a}/experiments/{running}", "stop-confirmation": "{a}/experiments/{running}?confirm=stop",
    "promote-confirmation": "{a}/experiments/{running}?confirm=promote&variant=treatment",
    "preview": "{a}/experiments/{running}/preview?visitor_id=visitor-42", "results": "{a}/experiments/{running}/results",
}


@pytest.fixture(params=WIDTHS)
def sized_page(request, browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=WIDTHS[request.param], device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def test_the_login_page_has_no_violation(sized_page, world):
    sized_page.goto("/login")
    found = violations(sized_page)
    assert found == [], describe(found)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_has_no_violation(sized_page, world, site, shot, name):
    login(sized_page, "owner@acme.test")
    path = PAGES[name].format(a=f"/agents/{world.agent_id}", **site)
    sized_page.goto(path)
    sized_page.wait_for_load_state("networkidle")  # HTMX sections (results) loaded, charts drawn
    found = violations(sized_page)
    if found:
        shot(sized_page, "axe")
    assert found == [], describe(found)
