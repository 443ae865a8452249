import csv
import io

from playwright.sync_api import expect

from webapp.cli import DEMO_PASSWORD, ensure_demo

from .conftest import login


def test_demo_experiment_results_table_charts_and_csv(app, page, shot):
    with app.app_context():
        agent, experiment = ensure_demo()
        agent_id, experiment_id = agent.id, experiment.id
    login(page, "editor@demo.local", DEMO_PASSWORD)
    page.goto(f"/agents/{agent_id}/experiments")
    page.click("#experiments a >> nth=0")
    results = page.locator("#results")
    table = results.locator("table[data-metric=lead_capture_rate]")
    expect(table.locator("tr[data-variant=treatment] .verdict")).to_contain_text("raises lead capture rate")
    expect(results.locator("canvas[data-chart=cumulative_visitors][data-drawn=true]")).to_have_count(1)
    expect(results.locator(".srm-banner")).to_have_count(0)
    shot(page, "demo-experiment")
    results.locator("button.refresh").click()  # the section reloads in place with HTMX
    expect(results.locator("canvas[data-chart=lead_capture_rate][data-drawn=true]")).to_have_count(1)
    lead_chart = "canvas[data-chart=lead_capture_rate]"
    ticks = page.eval_on_selector(lead_chart, "c => c._chart.scales.y.ticks.map(t => t.label)")
    assert len(ticks) > 1 and all(t.endswith("%") and "0." not in t for t in ticks), ticks  # percent, like the tables
    tooltip = page.eval_on_selector(lead_chart, """c => c._chart.options.plugins.tooltip.callbacks.label.call(
        c._chart.tooltip, {dataset: {label: "Aria"}, parsed: {y: 0.1634}})""")
    assert tooltip == "Aria: 16.3%"
    other = page.eval_on_selector("canvas[data-chart=messages_per_conversation]",
                                  "c => c._chart.scales.y.ticks.map(t => t.label)")
    assert not any(t.endswith("%") for t in other)
    with page.expect_download() as download_info:
        results.locator("text=Export CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"experiment-{experiment_id}-results.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert {r["variant_key"] for r in rows} == {"control", "treatment"}
    assert len(rows) == 6
    assert all(int(r["visitors"]) > 1000 for r in rows)
