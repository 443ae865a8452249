"""Long strings without spaces (ids, names, keys, lead values) wrap: no page grows wider than the window."""
import pytest
from playwright.sync_api import expect

from tests import factories
from tests.services.test_results import build
from webapp.extensions import db
from webapp.models import Agent, Experiment
from webapp.services import runtime

from .conftest import login

LONG_NAME = "N" * 120  # the longest experiment and variant name allowed
LONG_ID = "i" * 200  # the longest runtime id allowed
TOLERANCE = 2  # px: sub-pixel rounding


@pytest.fixture
def long_strings(app, world):
    """Agent, experiment, variant names and a key at their longest (with results enough for verdicts naming the
    variants), a conversation and a lead with long ids and a 50 KB lead field value."""
    with app.app_context():
        db.session.get(Agent, world.agent_id).name = "A" * 120
        experiment_id = factories.experiment(world.agent_id, status="running", name=LONG_NAME,
                                             keys=["control", "k" * 64])
        for variant in db.session.get(Experiment, experiment_id).variants:
            variant.name = variant.key[0].upper() * 120
        db.session.commit()
        build(world.agent_id, experiment_id, 40, lead_rates=(0.1, 0.9))  # significant: the verdict names it
        ids = {"conversation_id": "c" + LONG_ID[1:], "visitor_id": "v" + LONG_ID[1:]}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor"})
        runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {"notes": "x" * 50_000,
                                                                                    "f" * 200: "short"}})
        db.session.remove()
    return experiment_id


def assert_no_horizontal_scroll(page):
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner + TOLERANCE, f"{page.url} is {width} px wide in a {inner} px window"


PAGES = {"agents": "/w/acme/agents", "leads": "leads", "conversations": "conversations", "experiments": "experiments",
         "experiment": "experiments/{e}", "results": "experiments/{e}/results",
         "preview": "experiments/{e}/preview?visitor_id=" + LONG_ID}


@pytest.mark.parametrize("name", PAGES)
def test_long_strings_wrap_within_the_window(page, world, long_strings, shot, name):
    login(page, "owner@acme.test")
    path = PAGES[name].format(e=long_strings)
    page.goto(path if path.startswith("/") else f"/agents/{world.agent_id}/{path}")
    page.wait_for_load_state("networkidle")  # the experiment page loads its results section with HTMX
    shot(page, "page")
    assert_no_horizontal_scroll(page)


def test_conversation_filter_selects_stay_narrow(page, world, long_strings, shot):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/conversations")
    for name in ("experiment", "variant"):
        box = page.locator(f"select[name={name}]").bounding_box()
        assert box["width"] <= 400, f"the {name} select is {box['width']} px wide"
    page.select_option("select[name=experiment]", str(long_strings))
    page.click("#conversation-filter button")
    expect(page.locator("#conversations")).to_contain_text("c" + LONG_ID[1:])
    shot(page, "filtered")
    assert_no_horizontal_scroll(page)
