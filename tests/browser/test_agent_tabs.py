"""The Conversations and Leads tabs in Chromium: the filter's variant choices follow the chosen experiment."""
import pytest
from playwright.sync_api import expect

from tests import factories
from webapp.extensions import db

from .conftest import login


def offered(page) -> list[str]:
    """The variant keys the select lets one choose (a hidden, disabled group offers nothing)."""
    return page.eval_on_selector("select[name=variant]", "s => Array.from(s.options)"
                                 ".filter(o => !o.disabled && !(o.parentElement.disabled)).map(o => o.value)")


@pytest.mark.parametrize("tab", ["conversations", "leads"])
def test_variant_choices_follow_the_chosen_experiment(app, page, world, shot, tab):
    with app.app_context():
        alpha = factories.experiment(world.agent_id, name="Alpha", keys=["control", "treatment"])
        beta = factories.experiment(world.agent_id, name="Beta", keys=["base", "bold"])
        db.session.remove()
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/{tab}")
    assert sorted(offered(page)) == ["", "base", "bold", "control", "treatment"]
    page.select_option("select[name=experiment]", str(beta))
    assert offered(page) == ["", "base", "bold"]
    page.select_option("select[name=variant]", "bold")
    shot(page, "beta-bold")
    page.select_option("select[name=experiment]", str(alpha))
    assert offered(page) == ["", "control", "treatment"]
    expect(page.locator("select[name=variant]")).to_have_value("")  # Beta's key is not Alpha's: back to All
    page.select_option("select[name=variant]", "treatment")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"**/{tab}?experiment={alpha}&variant=treatment**")  # the tab adds its empty id filters
    assert offered(page) == ["", "control", "treatment"]  # after the reload, too
    page.select_option("select[name=experiment]", "")
    assert sorted(offered(page)) == ["", "base", "bold", "control", "treatment"]
    expect(page.locator("select[name=variant]")).to_have_value("treatment")  # All keeps the key
    shot(page, "alpha-treatment")
