"""A session that ended under an open page: the next HTMX control leads the whole page to the login page."""
import re

import pytest
from playwright.sync_api import expect

from tests import factories
from webapp.extensions import db

from .conftest import login


@pytest.fixture
def experiment_page(app, world):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
        db.session.remove()
    return f"/agents/{world.agent_id}/experiments/{exp_id}"


def end_session_by_clearing_cookies(page):
    page.context.clear_cookies()


def end_session_by_logging_out_in_another_tab(page):
    other = page.context.new_page()
    other.goto("/w/acme/agents")
    other.click("text=Log out")
    other.wait_for_url("**/login")
    other.close()


@pytest.mark.parametrize("end_session", [end_session_by_clearing_cookies, end_session_by_logging_out_in_another_tab],
                         ids=["cookies-cleared", "logged-out-elsewhere"])
@pytest.mark.parametrize("control", ["button.refresh", "#status-component a:text('Stop…')"],
                         ids=["refresh-results", "stop"])
def test_an_htmx_control_after_the_session_ended_opens_the_login_page(page, world, experiment_page, shot,
                                                                       end_session, control):
    login(page, "owner@acme.test")
    page.goto(experiment_page)
    expect(page.locator("button.refresh")).to_be_visible()  # the results section has loaded
    end_session(page)
    page.click(control)
    page.wait_for_url(re.compile(r"/login\?next="))
    shot(page, "login")
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("#results, #status-component")).to_have_count(0)
    expect(page.locator(".flash-info")).to_contain_text(re.compile("log in", re.I))
    page.fill("input[name=email]", "owner@acme.test")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{experiment_page}")
    expect(page.locator("#status-component [data-status]")).to_have_text("running")  # the Stop did not happen
