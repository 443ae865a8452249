"""At a phone's width (390 px) no page is wider than the screen: the header wraps, the agent tabs and wide tables
scroll inside their own box, forms stack, and Log out stays on screen."""
import pytest
from playwright.sync_api import expect

from tests import factories
from tests.services.test_results import build
from webapp.extensions import db
from webapp.services import runtime

from .conftest import login

PHONE = {"width": 390, "height": 844}
TOLERANCE = 1  # px: sub-pixel rounding


@pytest.fixture
def data(app, world):
    """A running experiment with results and charts, a conversation and a lead."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running", name="Warmer greeting")
        build(world.agent_id, exp_id, 40, lead_rates=(0.1, 0.9))
        ids = {"conversation_id": "conv-1", "visitor_id": "visitor-1"}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor", "text": "hi"})
        runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {"email": "a@b.test", "vip": True}})
        db.session.remove()
    return exp_id


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=PHONE, device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


PAGES = {"agents": "/w/acme/agents", "members": "/w/acme/members", "api-keys": "/w/acme/api-keys",
         "overview": "", "conversations": "/conversations", "leads": "/leads", "settings": "/settings",
         "experiments": "/experiments", "experiment": "/experiments/{e}", "results": "/experiments/{e}/results",
         "new-experiment": "/experiments/new"}


@pytest.mark.parametrize("name", PAGES)
def test_pages_fit_a_phone_screen(phone, world, data, shot, name):
    login(phone, "owner@acme.test")
    path = PAGES[name].format(e=data)
    phone.goto(path if path.startswith("/w/") else f"/agents/{world.agent_id}{path}")
    phone.wait_for_load_state("networkidle")  # the experiment page loads its results section with HTMX
    shot(phone, "phone")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + TOLERANCE, f"{name} is {width} px wide on a {PHONE['width']} px screen"
    log_out = phone.locator("header button:text('Log out')")
    expect(log_out).to_be_in_viewport(ratio=1)
    box = log_out.bounding_box()
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]


def test_agent_tabs_scroll_within_their_bar(phone, world, data, shot):
    login(phone, "owner@acme.test")
    phone.goto(f"/agents/{world.agent_id}/settings")
    tabs = phone.locator("nav.tabs")
    assert tabs.evaluate("t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'")
    expect(tabs.locator("a.active")).to_be_in_viewport(ratio=0.95)  # the current tab is scrolled into view
    tabs.locator("a:text('Overview')").click()
    phone.wait_for_url(f"**/agents/{world.agent_id}")
    shot(phone, "overview")
