"""The results page in Chromium at a laptop's and a phone's width: the cumulative lift chart, today's partial day,
the outcome flow, the arms' figures on a phone without sideways scrolling."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.services.experiments.test_results import build
from webapp.extensions import db
from webapp.models import Experiment
from webapp.services.runtime import service as runtime

from .conftest import SCREENSHOTS, login
from .test_layout import assert_no_horizontal_scroll

WIDTHS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=WIDTHS)
def sized_page(request, browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=WIDTHS[request.param], device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.width_name = request.param
    yield page
    context.close()


@pytest.fixture
def significant(app, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", name="Warmer greeting")
        build(world.agent_id, experiment_id, 90, lead_rates=(0.1, 0.5))
        db.session.remove()
    return experiment_id


def test_the_cumulative_lift_chart_draws_each_arms_lift_and_interval(sized_page, world, significant, shot):
    page = sized_page
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{significant}/results")
    chart = page.locator("canvas[data-chart=cumulative_lift][data-drawn=true]")
    expect(chart).to_have_count(1)
    expect(page.locator("#cumulative-lift figcaption")).to_contain_text("Lead capture rate: cumulative lift")
    drawn = chart.evaluate("""c => c._chart.data.datasets.map(d => [d.label, d.data.length, d.fill])""")
    assert [label for label, _, _ in drawn] == ["Treatment interval (high)", "Treatment interval (low)", "Treatment"]
    assert all(length == 3 for _, length, _ in drawn) and drawn[1][2] == "-1"  # the band between low and high
    legend = chart.evaluate("c => c._chart.legend.legendItems.map(i => i.text)")
    assert legend == ["Treatment"]
    lifts = chart.evaluate("c => c._chart.data.datasets[2].data")
    assert lifts[-1] > 0
    shot(page, page.width_name)
    assert_no_horizontal_scroll(page)


def test_todays_partial_day_is_marked_on_the_charts(app, sized_page, world, shot):
    page = sized_page
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        for i in range(8):
            runtime.record_message(world.workspace_id, world.agent_id,
                                   {"conversation_id": f"c{i}", "visitor_id": f"v{i}", "role": "visitor"})
        db.session.remove()
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{experiment_id}/results")
    expect(page.locator("canvas[data-chart][data-drawn=true]")).to_have_count(4)  # no lift yet: too few visitors
    expect(page.locator(".charts-note")).to_contain_text("Today is still filling")
    labels = page.eval_on_selector("canvas[data-chart=lead_capture_rate]", "c => c._chart.data.labels")
    assert labels[-1].endswith("(today, so far)")
    hollow = page.eval_on_selector("canvas[data-chart=lead_capture_rate]",
                                   "c => c._chart.data.datasets.map(d => d.backgroundColor[d.backgroundColor.length - 1])")
    assert set(hollow) == {"#fff"}
    shot(page, page.width_name)


def test_on_a_phone_every_arms_figures_show_without_sideways_scrolling(app, browser, live_server, world, significant,
                                                                        shot):
    context = browser.new_context(base_url=live_server, viewport=WIDTHS["phone"], device_scale_factor=1)
    page = context.new_page()
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{significant}/results")
    row = page.locator("table[data-metric=lead_capture_rate] tr[data-variant=treatment]")
    for label in ("Value", "Lift vs control", "95% CI", "p-value", "Verdict"):
        cell = row.locator(f"td[data-label='{label}']")
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTHS["phone"]["width"], (label, box)
    scroll = row.locator("xpath=ancestor::div[contains(@class,'table-scroll')]")
    assert scroll.evaluate("s => s.scrollWidth <= s.clientWidth + 1")
    shot(page, "cards")
    context.close()


def test_stop_with_an_outcome_then_resume_clears_it(sized_page, world, significant, shot):
    page = sized_page
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{significant}")
    status = page.locator("#status-component")
    status.locator("a:has-text('Stop…')").click()
    dialog = status.locator("[role=alertdialog]")
    expect(dialog).to_contain_text("Record what you decided")
    dialog.locator("input[value='shipped:treatment']").check()
    dialog.locator("textarea[name=note]").fill("x" * 2001)
    dialog.locator("button:has-text('Stop experiment')").click()
    expect(dialog.locator("#note-error")).to_contain_text("at most 2000 characters")
    expect(status.locator("[data-status]")).to_have_text("running")  # nothing written
    expect(dialog.locator("input[value='shipped:treatment']")).to_be_checked()  # as typed
    shot(page, f"{page.width_name}-refused")
    dialog.locator("textarea[name=note]").fill("Aria wins on leads")
    dialog.locator("button:has-text('Stop experiment')").click()
    expect(status.locator("[data-status]")).to_have_text("stopped")
    outcome = status.locator("#outcome")
    expect(outcome).to_contain_text("Shipped Treatment")
    expect(outcome).to_contain_text("lead capture rate")
    expect(outcome).to_contain_text("Aria wins on leads")
    expect(page.locator("#flashes")).to_contain_text("Outcome recorded: Shipped Treatment.")
    expect(page.locator("#audit-trail")).to_contain_text("stopped the experiment. Outcome: Shipped Treatment")
    shot(page, f"{page.width_name}-stopped")
    page.click("nav.tabs >> text=A/B experiments")
    expect(page.locator(f"#experiment-{significant} .outcome-cell")).to_contain_text("Shipped Treatment")
    shot(page, f"{page.width_name}-list")
    page.go_back()
    page.locator("#status-component button:has-text('Resume')").click()
    expect(page.locator("#status-component [data-status]")).to_have_text("running")
    expect(page.locator("#status-component #outcome")).to_have_count(0)
    expect(page.locator("#audit-trail")).to_contain_text("was cleared")


def test_promote_asks_in_the_page_and_records_shipped(sized_page, world, significant, shot):
    page = sized_page
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{significant}")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.select_option("#promote-variant", "treatment")
    page.click("#status-component button:has-text('Promote…')")
    dialog = page.locator("#status-component [role=alertdialog]")
    expect(dialog).to_contain_text("Promote Treatment?")
    expect(dialog.locator("button:has-text('Promote Treatment')")).to_be_focused()
    shot(page, f"{page.width_name}-confirm")
    dialog.locator("button:has-text('Promote Treatment')").click()
    expect(page.locator("#status-component #outcome")).to_contain_text("Shipped Treatment")
    expect(page.locator("#flashes")).to_contain_text("Treatment promoted")
    assert dialogs == []  # no browser confirm()


CALLS = {  # call: (weights, visitors per arm, lead rates, mde)
    "ship": ((1, 1), 90, (0.1, 0.5), 0.1),
    "worse": ((1, 1), 90, (0.5, 0.1), 0.1),
    "keep_running": ((1, 1), 60, (0.3, 0.32), 0.1),
    "inconclusive": ((1, 1), 90, (0.3, 0.3), 5.0),
    "srm": ((1, 9), 90, (0.1, 0.5), 0.1),
    "not_enough_data": ((1, 1), 10, (0.1, 0.5), 0.1),
}


@pytest.mark.parametrize("call", CALLS)
def test_the_results_open_on_each_calls_decision_sentence(app, sized_page, world, shot, call):
    weights, visitors, rates, mde = CALLS[call]
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", weights=weights, name=f"Call {call}")
        experiment = db.session.get(Experiment, experiment_id)
        experiment.engine, experiment.mde, experiment.sequential_tuning = "sequential", mde, 100
        db.session.commit()
        build(world.agent_id, experiment_id, visitors, lead_rates=rates)
        db.session.remove()
    page = sized_page
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{experiment_id}/results")
    decision = page.locator(".decisions li[data-variant=treatment]")
    expect(decision).to_have_attribute("data-call", call)
    expect(decision).to_be_in_viewport()  # the first thing the results say
    sentence = decision.locator(".decision-sentence").inner_text()
    expected = {"ship": "Treatment beats Control on lead capture rate: +", "worse": "Treatment does worse than Control",
                "keep_running": "more visitors to the planned sample", "inconclusive": "no lift of ±500% or more",
                "srm": "Don't trust these results", "not_enough_data": "Control has 10 visitors"}[call]
    assert expected in sentence, sentence
    if call == "ship":
        assert sentence.endswith("valid at every look: you can stop now and promote Treatment."), sentence
    if call == "srm":  # the banner overrides: every figure muted, with the reason
        expect(page.locator(".srm-banner")).to_be_visible()
        expect(page.locator("table.metric-table:not([data-muted])")).to_have_count(0)
        expect(page.locator("#muted-reason")).to_contain_text("sample ratio mismatch")
    # Order: the calls, the plan's progress, the primary metric, then the secondary metrics.
    order = page.evaluate("""() => ['.decisions', '#plan-progress', 'table[data-metric=lead_capture_rate]',
        '#secondary-title'].map(s => { const e = document.querySelector(s); return e ? e.getBoundingClientRect().top : null; })""")
    present = [top for top in order if top is not None]
    assert present == sorted(present) and order[0] is not None and order[2] is not None and order[3] is not None, order
    shot(page, f"{call}-{page.width_name}")
    assert_no_horizontal_scroll(page)


def test_the_demo_opens_on_a_decision_sentence_above_the_fold(app, sized_page, shot):
    from webapp.cli import DEMO_PASSWORD, ensure_demo

    with app.app_context():
        agent, experiment = ensure_demo()
        agent_id, experiment_id = agent.id, experiment.id
    page = sized_page
    login(page, "editor@demo.local", DEMO_PASSWORD)
    page.goto(f"/agents/{agent_id}/experiments/{experiment_id}")
    decision = page.locator(".decisions li[data-variant=treatment]")
    expect(decision).to_have_attribute("data-call", "ship")
    expect(decision).to_contain_text("Aria beats Sam on lead capture rate")
    expect(decision).to_contain_text("promote Aria")
    shot(page, f"demo-{page.width_name}")
    page.screenshot(path=str(shot(page, f"demo-{page.width_name}").with_name(f"demo-fold-{page.width_name}.png")))
    box = decision.bounding_box()
    assert box["y"] < page.viewport_size["height"], box  # above the fold, without scrolling


def test_no_day_label_of_the_lift_chart_is_cut_off(app, sized_page, world, significant):
    """Every shown x-axis label, today's "(today, so far)" too, lies inside its canvas at a phone's width and a
    laptop's (a rotated long last label once ran off the bottom at 390 px)."""
    page = sized_page
    with app.app_context():  # a conversation today: the last day is the partial one, with the longest label
        runtime.record_message(world.workspace_id, world.agent_id,
                               {"conversation_id": "today", "visitor_id": "new-today", "role": "visitor"})
        db.session.remove()
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{significant}/results")
    chart = page.locator("canvas[data-chart=cumulative_lift][data-drawn=true]")
    expect(chart).to_have_count(1)
    outside = chart.evaluate("""canvas => {
        const chart = canvas._chart, scale = chart.scales.x, ctx = chart.ctx, out = [];
        if (!String(chart.data.labels[chart.data.labels.length - 1]).endsWith("(today, so far)")) { return ["no partial day"]; }
        scale.getLabelItems().forEach(item => {
          ctx.save(); ctx.font = item.font.string;
          const lines = [].concat(item.label), width = Math.max(...lines.map(l => ctx.measureText(l).width));
          ctx.restore();
          const [x, y] = item.options.translation, rotated = item.options.rotation !== 0;
          const left = item.options.textAlign === "left" ? x : item.options.textAlign === "right" ? x - width : x - width / 2;
          const bottom = y + lines.length * item.font.lineHeight;
          if (rotated || left < 0 || left + width > chart.width + 1 || bottom > chart.height + 1) {
            out.push([lines.join(" "), left, left + width, bottom, chart.width, chart.height, rotated]); }
        });
        return out; }""")
    chart.screenshot(path=str(SCREENSHOTS / f"lift-chart-{page.width_name}.png"))
    assert outside == []
