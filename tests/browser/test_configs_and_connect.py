"""SPEC §13 in Chromium: a CTA or trigger variant's fields fill its config JSON as they are typed (and the JSON fills
them); the Connect page renders its API reference (vendored Swagger UI) with no Content-Security-Policy violation."""
import json
import re

from playwright.sync_api import expect

from tests import factories
from webapp.extensions import db
from webapp.models import Variant

from .conftest import SCREENSHOTS, login


def csp_violations(page) -> list:
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    return violations


def test_cta_fields_and_the_config_json_follow_each_other(app, page, world, shot):
    violations = csp_violations(page)
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new?kind=cta")
    page.fill("input[name=name]", "Demo button")
    config = page.locator("textarea[name='variants-1-config']")
    page.fill("input[name='variants-1-cta_label']", "Book a demo")
    page.fill("input[name='variants-1-cta_url']", "https://acme.test/demo")
    page.fill("input[name='variants-1-cta_prompt']", "book a 15-minute demo")
    assert json.loads(config.input_value()) == {"cta": {"label": "Book a demo", "url": "https://acme.test/demo",
                                                        "prompt": "book a 15-minute demo"}}
    page.fill("input[name='variants-1-cta_prompt']", "")  # a cleared field takes its key out
    assert json.loads(config.input_value()) == {"cta": {"label": "Book a demo", "url": "https://acme.test/demo"}}
    config.fill('{"cta": {"label": "Talk to sales", "url": "https://acme.test/sales"}, "colour": "teal"}')
    expect(page.locator("input[name='variants-1-cta_label']")).to_have_value("Talk to sales")
    expect(page.locator("input[name='variants-1-cta_url']")).to_have_value("https://acme.test/sales")
    shot(page, "cta-fields")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "cta-fields-narrow")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.fill("input[name='variants-1-cta_url']", "ftp://acme.test")  # refused on its own field
    page.click("text=Create draft")
    expect(page.locator("[data-field='variants-1-cta_url']")).to_contain_text("http:// or https://")
    expect(page.locator("input[name='variants-1-cta_url']")).to_be_focused()
    page.fill("input[name='variants-1-cta_url']", "https://acme.test/sales")
    page.click("text=Create draft")
    page.wait_for_url(re.compile(r"/experiments/\d+$"))  # the new draft's page, not the form's own URL
    with app.app_context():
        stored = db.session.query(Variant).filter_by(key="treatment").one().config
        db.session.remove()
    assert stored == {"cta": {"label": "Talk to sales", "url": "https://acme.test/sales"}, "colour": "teal"}
    assert violations == []


def test_trigger_fields_store_numbers(app, page, world):
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new?kind=trigger")
    page.select_option("select[name='variants-1-trigger_on']", "delay")
    page.fill("input[name='variants-1-trigger_seconds']", "20")
    assert json.loads(page.locator("textarea[name='variants-1-config']").input_value()) == {
        "trigger": {"on": "delay", "seconds": 20}}


def test_trigger_fields_show_only_what_goes_with_the_chosen_on(app, page, world, shot):
    """Seconds go with a delay, percent with scrolling (SPEC §13): choosing page load after scrolling at 40 %
    hides the percent and takes it out of the JSON, so the draft saves; a switch back to scrolling restores it."""
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new?kind=trigger")
    page.fill("input[name=name]", "Load opener")
    config = page.locator("textarea[name='variants-1-config']")
    on = page.locator("select[name='variants-1-trigger_on']")
    seconds = page.locator("input[name='variants-1-trigger_seconds']")
    percent = page.locator("input[name='variants-1-trigger_percent']")
    expect(seconds).to_be_hidden()  # nothing chosen yet: neither number applies
    expect(percent).to_be_hidden()
    on.select_option("scroll")
    expect(percent).to_be_visible()
    expect(seconds).to_be_hidden()
    percent.fill("40")
    assert json.loads(config.input_value()) == {"trigger": {"on": "scroll", "percent": 40}}
    on.select_option("load")
    expect(percent).to_be_hidden()
    assert json.loads(config.input_value()) == {"trigger": {"on": "load"}}
    shot(page, "trigger-load-hides-percent")
    on.select_option("scroll")
    expect(percent).to_have_value("40")
    assert json.loads(config.input_value()) == {"trigger": {"on": "scroll", "percent": 40}}
    on.select_option("delay")
    expect(seconds).to_be_visible()
    expect(percent).to_be_hidden()
    config.fill('{"trigger": {"on": "scroll", "percent": 25}}')  # the JSON's `on` shows its field too
    expect(percent).to_be_visible()
    expect(percent).to_have_value("25")
    expect(seconds).to_be_hidden()
    on.select_option("load")
    page.click("text=Create draft")
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    with app.app_context():
        stored = db.session.query(Variant).filter_by(key="treatment").one().config
        db.session.remove()
    assert stored == {"trigger": {"on": "load"}}


def test_trigger_fields_follow_the_config_json(app, page, world, shot):
    """The JSON → fields direction: typed JSON sets the trigger's fields (a two-line opening message kept whole, as
    the config allows it), a key taken out of the JSON blanks its field, and the draft stores the JSON as typed."""
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/new?kind=trigger")
    page.fill("input[name=name]", "Scroll opener")
    config = page.locator("textarea[name='variants-1-config']")
    fields = {key: page.locator(f"[name='variants-1-trigger_{key}']")
              for key in ("on", "seconds", "percent", "opening_message")}
    config.fill('{"trigger": {"on": "delay", "seconds": 45}}')
    expect(fields["on"]).to_have_value("delay")
    expect(fields["seconds"]).to_have_value("45")
    typed = {"trigger": {"on": "scroll", "percent": 40, "opening_message": "Hi!\nNeed help?"}}
    config.fill(json.dumps(typed))
    expect(fields["on"]).to_have_value("scroll")
    expect(fields["percent"]).to_have_value("40")
    expect(fields["seconds"]).to_have_value("")  # no longer in the JSON
    expect(fields["opening_message"]).to_have_value("Hi!\nNeed help?")
    config.fill('{"trigger": {"on": "hover"}}')  # not one of the choices: the select keeps its value
    expect(fields["on"]).to_have_value("scroll")
    expect(fields["percent"]).to_have_value("")
    config.fill(json.dumps(typed))
    fields["opening_message"].fill("Hello\nthere")  # and back: the field's two lines reach the JSON
    assert json.loads(config.input_value())["trigger"]["opening_message"] == "Hello\nthere"
    config.fill(json.dumps(typed))
    shot(page, "trigger-fields")
    page.click("text=Create draft")
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    with app.app_context():
        stored = db.session.query(Variant).filter_by(key="treatment").one().config
        db.session.remove()
    assert stored == typed


def test_the_connect_page_renders_its_api_reference_under_the_csp(app, page, world, shot):
    violations = csp_violations(page)
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.remove()
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}")
    page.click("nav.tabs a:has-text('Connect')")
    expect(page.locator("#agent-id")).to_have_text(str(world.agent_id))
    page.screenshot(path=str(SCREENSHOTS / "connect-top.png"))
    expect(page.locator("#api-reference[data-rendered=true]")).to_be_attached(timeout=30_000)  # 1.7 MB to parse
    expect(page.locator("#api-reference .opblock-summary-path", has_text="/agents/{agent_id}/events")).to_be_visible()
    page.locator("#api-reference .opblock-summary", has_text="/agents/{agent_id}/events").click()
    expect(page.locator("#api-reference .opblock-body").first).to_be_visible()
    shot(page, "connect")
    page.locator("#post-feedback").screenshot(path=str(SCREENSHOTS / "connect-feedback.png"))
    page.locator("#openapi").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "connect-reference.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#post-message").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "connect-narrow.png"))
    assert violations == [] and failed == []


def test_the_results_show_each_goal_under_goals(app, page, world, shot):
    from tests.services.experiments.test_goals import add_events
    from tests.services.experiments.test_results import build

    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        build(world.agent_id, experiment_id, 60)
        add_events(world.agent_id, experiment_id, {"booked_demo": (0.15, 0.45)})
        db.session.remove()
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{experiment_id}")
    table = page.locator("table[data-metric='goal:booked_demo']")
    expect(table).to_be_visible()
    expect(table.locator("tr[data-variant=treatment] .verdict")).to_contain_text("“booked_demo” goal rate")
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "results-goals.png"))
