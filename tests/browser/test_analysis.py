"""The Analysis section and its live plan in Chromium (SPEC §10.1, §10.4), and the plan and calls on the results."""
from playwright.sync_api import expect

from tests import factories
from tests.views.test_results_views import converted_visitors
from webapp.extensions import db

from .conftest import login


def needed(page) -> int:
    return int(page.locator("#plan [data-plan=visitors_needed]").inner_text().replace(",", ""))


def test_changing_the_engine_and_the_mde_changes_the_plan(app, page, world, shot):
    page.set_viewport_size({"width": 1366, "height": 900})
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    plan = page.locator("#plan")
    expect(plan).to_contain_text("No baseline for the lead capture rate")  # loaded by itself: no data, none typed
    page.fill("input[name=baseline_rate_percent]", "10")
    expect(plan.locator("[data-plan=visitors_needed]")).to_have_text("89,680")  # sequential, MDE 10%, power 0.80
    expect(plan).to_contain_text("the baseline rate typed in the settings")
    shot(page, "1-sequential")

    page.select_option("select[name=engine]", "fixed")
    expect(plan.locator("[data-plan=visitors_needed]")).to_have_text("31,224")
    page.fill("input[name=mde_percent]", "20")
    expect(plan).to_contain_text("±20%")
    assert needed(page) < 31_224
    page.fill("input[name=mde_percent]", "900")
    expect(plan.locator(".error")).to_contain_text("from 0.5% to 500%")
    page.fill("input[name=mde_percent]", "20")
    expect(plan.locator("[data-plan=visitors_needed]")).to_be_visible()
    page.fill("input[name='variants-0-weight']", "75")
    page.fill("input[name='variants-1-weight']", "25")
    page.locator("input[name='variants-1-weight']").dispatch_event("change")
    expect(plan.locator("[data-plan=visitors_needed]")).not_to_have_text(str(needed(page)))
    shot(page, "2-fixed-mde-20")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "3-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_results_open_with_the_call_and_the_plan(app, page, world, shot):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", engine="sequential", mde=0.6)
        converted_visitors(world.agent_id, experiment_id, {"control": (800, 80), "treatment": (800, 150)})
        db.session.remove()
    page.set_viewport_size({"width": 1366, "height": 900})
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{experiment_id}")
    expect(page.locator("#results .decisions [data-call=ship]")).to_contain_text("valid at every look")
    expect(page.locator("#results #plan-progress progress")).to_be_visible()  # the detail (#plan) is in a details element
    shot(page, "1-sequential")
    page.select_option("#results-engine", "bayesian")
    expect(page.locator("#results .alternative-note")).to_contain_text("not this experiment’s plan")
    expect(page.locator("#results .metric-table").first).to_contain_text("Chance to win")
    shot(page, "2-bayesian-one-off")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "3-phone")


def test_typing_quickly_into_the_calculator_logs_no_console_error(app, page, world):
    """Each pause in typing asks for a new plan while the last is still on its way (the network slowed to make sure):
    the superseded one gives way without an error in the console, and the plan ends on what was typed last."""
    console = []
    page.on("console", lambda message: console.append((message.type, message.text)))
    page.on("pageerror", lambda error: console.append(("pageerror", str(error))))
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new")
    plan = page.locator("#plan")
    expect(plan).to_contain_text("No baseline for the lead capture rate")
    page.fill("input[name=baseline_rate_percent]", "10")
    expect(plan.locator("[data-plan=visitors_needed]")).to_be_visible()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 1200, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    for field, value in [("mde_percent", "12"), ("power", "0.85"), ("mde_percent", "15"), ("power", "0.9"),
                         ("mde_percent", "20")]:
        page.fill(f"input[name={field}]", value)
        page.wait_for_timeout(500)  # past the 400 ms pause: a request starts while the one before is in flight
    expect(plan).to_contain_text("±20%", timeout=15_000)
    expect(plan).to_contain_text("90% power")
    page.wait_for_load_state("networkidle")
    errors = [(kind, text) for kind, text in console if kind in ("error", "pageerror")]
    assert errors == []
