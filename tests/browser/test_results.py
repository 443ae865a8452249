import csv
import io

from playwright.sync_api import expect

from tests import factories
from webapp.cli import DEMO_PASSWORD, ensure_demo
from webapp.extensions import db
from webapp.services.runtime import service as runtime

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


def test_charts_of_a_single_day_show_their_points(app, page, world, shot):
    """One day of data is one point per line: drawn as a visible marker in the middle, not a dot on the axis."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
        for i in range(6):
            ids = {"conversation_id": f"c{i}", "visitor_id": f"v{i}"}
            runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor", "text": "hi"})
        db.session.remove()
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{exp_id}/results")
    expect(page.locator("canvas[data-drawn=true]")).to_have_count(4)
    shot(page, "one-day")
    points = page.eval_on_selector_all("canvas[data-chart]", """canvases => canvases.map(c => {
        const chart = c._chart, point = chart.getDatasetMeta(0).data[0], area = chart.chartArea;
        return {radius: point.options.radius, where: (point.x - area.left) / (area.right - area.left)};
    })""")
    assert len(points) == 4
    for point in points:
        assert point["radius"] >= 4 and 0.4 < point["where"] < 0.6, points


def test_a_day_without_conversations_breaks_the_metric_lines(app, page, world, shot):
    """Traffic on the 1st and 3rd, none on the 2nd: the daily metric lines stop at the empty day (docs/rules.md: metrics
    empty) instead of drawing a made-up value across it; cumulative visitors stay flat through it."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
        for i, day in enumerate([1] * 8 + [3] * 8):
            ids = {"conversation_id": f"c{i}", "visitor_id": f"v{i}"}
            runtime.record_message(world.workspace_id, world.agent_id, {
                **ids, "role": "visitor", "text": "hi", "sent_at": f"2026-11-0{day}T12:00:00Z"})
        db.session.remove()
    login(page, "owner@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{exp_id}/results")
    expect(page.locator("canvas[data-drawn=true]")).to_have_count(4)
    shot(page, "gap-day")
    lines = page.eval_on_selector_all("canvas[data-chart]", """canvases => canvases.map(c => [
        c.getAttribute("data-chart"),
        c._chart.data.datasets.map((d, i) => [d.data, c._chart.getDatasetMeta(i).dataset.segments.length])])""")
    gaps = 0
    for name, datasets in lines:
        for data, segments in datasets:
            assert len(data) == 3, lines  # the 2nd keeps its place on the calendar axis
            runs = sum(1 for k, value in enumerate(data) if value is not None and (k == 0 or data[k - 1] is None))
            assert segments == runs, (name, data, segments)  # one line piece per stretch of days with a value
            gaps += runs > 1
        if name == "cumulative_visitors":
            assert all(data[1] is not None for data, _ in datasets)
    assert gaps >= 2, lines  # both variants' metric lines have the gap
