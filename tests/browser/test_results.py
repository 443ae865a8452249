import csv
import io

from playwright.sync_api import expect

from tests import factories
from webapp.services import simulation

from .conftest import login


def test_results_table_charts_and_csv(app, page, world, shot):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running", name="Aria vs Sam")
        simulation.simulate_bulk(world.agent_id, 1500, days=10, effects=["treatment=2"], seed=11)
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{experiment_id}/results")
    table = page.locator("table[data-metric=lead_capture_rate]")
    expect(table.locator("tr[data-variant=treatment] .verdict")).to_contain_text("raises lead capture rate")
    expect(page.locator("canvas[data-chart=cumulative_visitors][data-drawn=true]")).to_have_count(1)
    expect(page.locator(".srm-banner")).to_have_count(0)
    shot(page, "results")
    page.click("button.refresh")  # the section reloads in place with HTMX
    expect(page.locator("canvas[data-chart=lead_capture_rate][data-drawn=true]")).to_have_count(1)
    with page.expect_download() as download_info:
        page.click("text=Export CSV")
    download = download_info.value
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert {r["variant_key"] for r in rows} == {"control", "treatment"}
    assert len(rows) == 6
