"""The exports' analysis, plan, decisions and the one-off engine (SPEC §10.7) over HTTP."""
from __future__ import annotations

import pytest

from tests import factories
from tests.views.test_results_views import converted_visitors, csv_export
from webapp.services.experiments import results as results_service


@pytest.fixture
def sequential_win(app, world):
    """A running sequential experiment: Sam 80/800, Aria 150/800 leads, 3 arms with Holm."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", weights=(1, 1, 1),
                                             engine="sequential", correction="holm", mde=0.5)
        converted_visitors(world.agent_id, experiment_id,
                           {"control": (800, 80), "treatment": (800, 150), "variant-2": (800, 82)})
    return experiment_id


def url(world, experiment_id, suffix=""):
    return f"/agents/{world.agent_id}/experiments/{experiment_id}/results{suffix}"


def test_the_json_names_the_analysis_the_plan_and_the_calls(client, auth, world, sequential_win):
    auth.login(world.emails["editor"])
    body = client.get(url(world, sequential_win, ".json")).get_json()
    assert body["analysis"] == {"engine": "sequential", "alpha": 0.05, "sequential_tuning": 5000, "prior": "flat",
                                "correction": "holm", "primary_metric": "lead_capture_rate", "mde": 0.5,
                                "power": 0.8, "baseline_rate": None, "alternative": False}
    plan = body["plan"]
    assert plan["baseline"] == {"mean": 0.1, "variance": pytest.approx(0.09), "source": "control"}
    assert plan["visitors_now"] == 2400 and plan["visitors_needed"] >= 3 * plan["visitors_per_arm"]
    assert set(plan) >= {"metric", "mde", "power", "visitors_per_arm", "visitors_needed", "visitors_now", "progress",
                         "visitors_per_day", "days_remaining", "reason"}
    control, aria, other = body["variants"]
    assert control["decision"] is None
    assert aria["decision"]["call"] == "ship" and "valid at every look" in aria["decision"]["reason"]
    assert other["decision"]["call"] in ("keep_running", "inconclusive")
    lead = aria["metrics"]["lead_capture_rate"]
    assert lead["p_value_adjusted"] is not None and lead["p_value_adjusted"] >= lead["p_value"]
    assert lead["chance_to_win"] is None and lead["risk"] is None
    assert aria["metrics"]["session_length"]["p_value_adjusted"] is None  # secondary: unadjusted


def test_a_one_off_bayesian_analysis_is_marked_alternative(client, auth, world, sequential_win):
    auth.login(world.emails["editor"])
    body = client.get(url(world, sequential_win, ".json?engine=bayesian")).get_json()
    assert body["analysis"]["engine"] == "bayesian" and body["analysis"]["alternative"] is True
    lead = body["variants"][1]["metrics"]["lead_capture_rate"]
    assert lead["p_value"] is None and lead["p_value_adjusted"] is None
    assert lead["chance_to_win"] > 0.99 and len(lead["risk"]) == 2 and lead["ci"][0] < lead["lift"] < lead["ci"][1]
    assert body["variants"][1]["decision"]["call"] == "ship"
    assert body["plan"]["engine"] == "bayesian"
    # nothing saved: the experiment's own analysis is unchanged
    assert client.get(url(world, sequential_win, ".json")).get_json()["analysis"]["engine"] == "sequential"
    same = client.get(url(world, sequential_win, ".json?engine=sequential")).get_json()
    assert same["analysis"]["alternative"] is False


@pytest.mark.parametrize("suffix", ["", ".json", ".csv"])
def test_a_bad_engine_is_a_400_naming_it(client, auth, world, sequential_win, suffix):
    auth.login(world.emails["editor"])
    response = client.get(url(world, sequential_win, f"{suffix}?engine=frequentist"))
    assert response.status_code == 400
    assert "frequentist" in response.get_data(as_text=True) and "engine" in response.get_data(as_text=True)


@pytest.mark.parametrize("suffix, content_type", [("", "text/html"), (".json", "application/json"),
                                                  (".csv", "text/plain")])
def test_a_bad_engine_answers_in_the_exports_own_format(client, auth, world, sequential_win, suffix, content_type):
    """The JSON export answers the API's error shape naming `engine`, the CSV export a plain-text line, the page
    its HTML error page."""
    auth.login(world.emails["editor"])
    response = client.get(url(world, sequential_win, f"{suffix}?engine=bogus"))
    assert response.status_code == 400 and response.mimetype == content_type
    if suffix == ".json":
        error = response.get_json()["error"]
        assert error["code"] == "bad_request" and "bogus" in error["message"]
        assert error["fields"] == {"engine": "Engine must be one of: sequential, fixed, bayesian."}
    elif suffix == ".csv":
        assert response.get_data(as_text=True) == (
            "engine must be one of sequential, fixed, bayesian (got “bogus”).\n")


def test_an_unknown_experiments_json_export_is_a_json_404(client, auth, world):
    auth.login(world.emails["editor"])
    response = client.get(url(world, 999_999, ".json"))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.get(url(world, 999_999, ".csv")).mimetype == "text/plain"


def test_the_csv_has_the_matching_columns(client, auth, world, sequential_win):
    auth.login(world.emails["editor"])
    rows = csv_export(client, world, sequential_win)
    assert list(rows[0]) == results_service.Results.CSV_HEADER + [f"outcome_{k}" for k in results_service.OUTCOME_FIELDS]
    aria = {r["metric"]: r for r in rows if r["variant_key"] == "treatment"}
    assert aria["lead_capture_rate"]["decision"] == "ship" and aria["lead_capture_rate"]["is_primary"] == "True"
    assert float(aria["lead_capture_rate"]["p_value_adjusted"]) >= float(aria["lead_capture_rate"]["p_value"])
    assert aria["session_length"]["decision"] == "" and aria["session_length"]["p_value_adjusted"] == ""
    assert {r["engine"] for r in rows} == {"sequential"}
    bayes = client.get(url(world, sequential_win, ".csv?engine=bayesian")).get_data(as_text=True)
    header, *lines = bayes.splitlines()
    treatment_lead = next(line for line in lines if ",treatment," in line and ",lead_capture_rate," in line)
    cells = dict(zip(header.split(","), treatment_lead.split(",")))
    assert cells["engine"] == "bayesian" and cells["alternative"] == "True" and float(cells["chance_to_win"]) > 0.99


def test_the_page_opens_with_the_calls_and_the_plan_and_offers_another_engine(client, auth, world, sequential_win):
    auth.login(world.emails["editor"])
    html = client.get(url(world, sequential_win), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.index('class="decisions"') < html.index('id="plan"') < html.index('data-metric="lead_capture_rate"')
    assert 'data-call="ship" data-variant="treatment"' in html
    assert 'data-metric="lead_capture_rate"' in html and html.index('data-metric="lead_capture_rate"') < \
        html.index('data-metric="messages_per_conversation"')
    assert "Secondary metrics" in html and "unadjusted" in html and "p-value <span class=\"muted\">(adjusted)</span>" in html
    assert '<select id="results-engine" name="engine">' in html and "not this experiment’s plan" not in html
    other = client.get(url(world, sequential_win) + "?engine=fixed", headers={"HX-Request": "true"})
    assert "not this experiment’s plan" in other.get_data(as_text=True)
    assert "engine=fixed" in other.get_data(as_text=True)  # the exports of the one-off analysis


def test_a_fixed_experiment_before_its_plan_keeps_running_with_muted_figures(app, client, auth, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", engine="fixed", mde=0.05)
        converted_visitors(world.agent_id, experiment_id, {"control": (300, 30), "treatment": (300, 60)})
    auth.login(world.emails["editor"])
    html = client.get(url(world, experiment_id), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-call="keep_running"' in html and "overstates wins" in html
    assert 'data-metric="lead_capture_rate" data-muted' in html
    body = client.get(url(world, experiment_id, ".json")).get_json()
    assert body["variants"][1]["decision"] == {"call": "keep_running", "muted": True,
                                               "reason": body["variants"][1]["decision"]["reason"]}
