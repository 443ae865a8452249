"""Counts and days read with thousands separators (1,234) on every page, as the rest of the app writes them."""
from __future__ import annotations

from flask import render_template

from tests import factories
from tests.services.experiments.test_results import build
from webapp.services.experiments import plan as plans, results
from webapp.services.workspace import agents


def test_the_overview_counts_have_thousands_separators(client, auth, world, monkeypatch):
    monkeypatch.setattr(agents, "overview", lambda actor_id, agent_id: {"visitors": 6001, "conversations": 8656,
                                                                        "leads": 1234})
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}").get_data(as_text=True)
    for shown in ("6,001</span><span>visitors", "8,656</span><span>conversations", "1,234</span><span>leads"):
        assert f'<span class="num">{shown}' in html


def a_plan(days: int) -> plans.Plan:
    return plans.Plan(metric="lead_capture_rate", engine="fixed", mde=0.01, power=0.8, alpha=0.05,
                      baseline=plans.Baseline(0.1, 0.09, "typed"), visitors_per_arm=1_000_000,
                      visitors_needed=2_000_000, visitors_now=10, progress=0.0, visitors_per_day=2.0,
                      traffic_source="agent", days_remaining=days, mde_reachable={14: None, 28: None}, reason=None)


def test_the_plans_days_have_thousands_separators(app):
    with app.test_request_context():
        html = render_template("experiments/_plan.html", plan=a_plan(1006), plan_errors={}, plan_metrics={},
                               experiment=None)
    assert "About <strong>1,006 days</strong> more" in html


def test_the_results_progress_line_has_thousands_separators(app, client, auth, world, monkeypatch):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        build(world.agent_id, experiment_id, 40)
    monkeypatch.setattr(results, "experiment_plan", lambda *args: a_plan(1006))
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results").get_data(as_text=True)
    progress = html.split('id="plan-progress"')[1].split("</div>")[0]
    assert "of 1,000,000 visitors per arm</strong>, about 1,006 more days." in progress
