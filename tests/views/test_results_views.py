import csv
import io
import re

import pytest

from tests import factories
from tests.services.test_results import build
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment


@pytest.fixture
def experiment_id(app, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running", name="Persona test")
        build(world.agent_id, experiment_id, 40)
    return experiment_id


@pytest.mark.parametrize("suffix", ["results", "results.json", "results.csv"])
@pytest.mark.parametrize("role,status", [("owner", 200), ("admin", 200), ("editor", 200), ("outsider", 404),
                                         ("anonymous", 302)])
def test_results_routes_by_role(client, auth, world, experiment_id, suffix, role, status):
    if role != "anonymous":
        auth.login(world.emails[role])
    response = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/{suffix}")
    assert response.status_code == status


def test_experiment_of_another_agent_is_404(client, auth, app, world, experiment_id):
    auth.login("owner@other.test")
    assert client.get(f"/agents/{world.other_agent_id}/experiments/{experiment_id}/results.json").status_code == 404


def test_json_export_shape(client, auth, world, experiment_id):
    auth.login("editor@acme.test")
    body = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results.json").get_json()
    assert set(body) == {"experiment", "srm", "variants"}
    assert body["experiment"]["name"] == "Persona test" and body["experiment"]["status"] == "running"
    assert set(body["srm"]) == {"p_value", "warning"}
    control, treatment = body["variants"]
    assert control["is_control"] and not treatment["is_control"]
    for key in ("id", "key", "name", "weight", "visitors", "conversations", "visitor_messages", "leads", "metrics"):
        assert key in control
    assert set(control["metrics"]) == {"messages_per_conversation", "session_length", "lead_capture_rate"}
    assert control["metrics"]["lead_capture_rate"]["lift"] is None
    lift = treatment["metrics"]["messages_per_conversation"]
    assert lift["lift"] is not None and len(lift["ci"]) == 2 and 0 <= lift["p_value"] <= 1


def test_csv_export_has_a_row_per_variant_and_metric(client, auth, world, experiment_id):
    auth.login("owner@acme.test")
    response = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2 * 3
    assert {r["metric"] for r in rows} == {"messages_per_conversation", "session_length", "lead_capture_rate"}
    assert all(r["lift"] == "" for r in rows if r["is_control"] == "True")


def test_results_section_fragment_and_full_page(client, auth, world, experiment_id):
    auth.login("owner@acme.test")
    url = f"/agents/{world.agent_id}/experiments/{experiment_id}/results"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    html = fragment.get_data(as_text=True)
    assert "Lead capture rate" in html and 'data-chart="cumulative_visitors"' in html
    page = client.get(url).get_data(as_text=True)
    assert "<html" in page and "Lead capture rate" in page


def test_results_of_an_experiment_without_visitors_say_so(client, auth, app, world):
    with app.app_context():
        draft_id = factories.experiment(world.agent_id, status="draft")
    auth.login("owner@acme.test")
    html = client.get(f"/agents/{world.agent_id}/experiments/{draft_id}/results",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No visitors yet" in html and "Start the experiment" in html
    assert "data-chart" not in html



def csv_export(client, world, experiment_id) -> list[dict[str, str]]:
    response = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results.csv")
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_export_neutralises_text_a_spreadsheet_would_run_as_a_formula(app, client, auth, world, start):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", keys=["control", start + "key"])
        treatment = db.session.get(Experiment, experiment_id).variants[1]
        treatment.name = start + "SUM(A1)"
        db.session.commit()
    auth.login("editor@acme.test")
    rows = csv_export(client, world, experiment_id)
    treatment = {(r["variant_key"], r["variant_name"]) for r in rows if r["is_control"] == "False"}
    assert treatment == {("'" + start + "key", "'" + start + "SUM(A1)")}
    assert {r["variant_name"] for r in rows if r["is_control"] == "True"} == {"Control"}  # plain text as it was


def test_csv_export_keeps_negative_numbers_numbers(app, client, auth, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        build(world.agent_id, experiment_id, 40, lead_rates=(0.3, 0.05))
    auth.login("editor@acme.test")
    row = next(r for r in csv_export(client, world, experiment_id)
               if r["is_control"] == "False" and r["metric"] == "lead_capture_rate")
    assert float(row["lift"]) < 0 and float(row["ci_low"]) < 0
    assert row["lift"].startswith("-") and row["ci_low"].startswith("-")


def converted_visitors(agent_id: int, experiment_id: int, converted: dict[str, tuple[int, int]]) -> None:
    """Per variant key (visitors, converted): one conversation of one visitor message each."""
    for variant in db.session.get(Experiment, experiment_id).variants:
        visitors, leads = converted[variant.key]
        for i in range(visitors):
            stamp = {"agent_id": agent_id, "experiment_id": experiment_id, "variant_id": variant.id,
                     "variant_key": variant.key, "visitor_id": f"{variant.key}-{i}"}
            db.session.add(ExperimentAssignment(**stamp))
            db.session.add(Conversation(**stamp, external_id=f"c-{variant.key}-{i}", visitor_messages=1,
                                        lead_count=int(i < leads)))
    db.session.commit()


def test_a_relative_change_is_never_shown_below_minus_100_percent(app, client, auth, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        converted_visitors(world.agent_id, experiment_id, {"control": (30, 3), "treatment": (30, 1)})
    auth.login("editor@acme.test")
    url = f"/agents/{world.agent_id}/experiments/{experiment_id}/results"
    exported = client.get(url + ".json").get_json()["variants"][1]["metrics"]["lead_capture_rate"]
    assert exported["ci"][0] < -1.4  # the computed bound, untouched in the exports: −142.1%
    row = next(r for r in csv_export(client, world, experiment_id)
               if r["variant_key"] == "treatment" and r["metric"] == "lead_capture_rate")
    assert float(row["ci_low"]) == exported["ci"][0]
    html = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    table = html[html.index('data-metric="lead_capture_rate"'):]
    row = table[table.index('<tr data-variant="treatment">'):]
    row = row[:row.index("</tr>")]
    assert "-100.0% … +8.8%" in row and 'title="-100.0% to +8.8%"' in row
    assert "95% CI -100% to +9%" in row  # the verdict
    assert "-142" not in html and "(bar axis ±100%)" in html


def cells_per_row(table: str) -> list[int]:
    rows = table.split("<tr")[1:]
    return [row.count("<th") + row.count("<td") + sum(int(n) - 1 for n in re.findall(r'colspan="(\d+)"', row))
            for row in rows]


@pytest.mark.parametrize("visitors,with_ci", [(3, False), (40, True)])
def test_the_ci_column_shows_only_with_an_interval_to_draw(app, client, auth, world, visitors, with_ci):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
        build(world.agent_id, exp_id, visitors)
    auth.login("editor@acme.test")
    html = client.get(f"/agents/{world.agent_id}/experiments/{exp_id}/results").get_data(as_text=True)
    tables = [t.split("</table>")[0] for t in html.split('<table class="table metric-table"')[1:]]
    assert len(tables) == 3
    for table in tables:
        assert ("95% CI" in table) is with_ci and ('class="ci-col"' in table) is with_ci
        counts = cells_per_row(table)
        assert counts == [6 if with_ci else 5] * 3, counts


@pytest.mark.parametrize("per_arm,weights,line", [
    (2, (1, 3), "too few visitors to tell a mismatch from chance yet"),  # expected 1 and 3 of 4
    (40, (1, 1), "no mismatch detected"),
])
def test_the_srm_line_claims_no_more_than_the_test_can_tell(app, client, auth, world, per_arm, weights, line):
    with app.app_context():
        exp = factories.experiment(world.agent_id, weights=weights, status="running")
        build(world.agent_id, exp, per_arm)
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{exp}/results").get_data(as_text=True)
    srm = re.search(r'<p class="muted srm-line">(.*?)</p>', html, re.S).group(1)
    assert line in srm and "split as configured" not in srm and "Sample ratio mismatch" not in html


@pytest.mark.parametrize("status,says", [
    ("draft", "Start the experiment to assign visitors"),
    ("running", "Results appear as the runtime reports visitor messages"),
    ("stopped", "stopped before any visitor was assigned: resume it"),
])
def test_the_empty_results_say_what_brings_visitors(app, client, auth, world, status, says):
    """A stopped experiment assigns nobody: results do not 'appear as the runtime reports messages' there."""
    with app.app_context():
        exp = factories.experiment(world.agent_id, status=status)
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{exp}/results").get_data(as_text=True)
    empty = re.search(r'<p class="empty">(.*?)</p>', html, re.S).group(1)
    assert empty.startswith("No visitors yet.") and says in empty


def test_the_lead_capture_rate_shows_its_own_counts(app, client, auth, world):
    """Two leads of one visitor: the Leads column says 2, the rate 100% — of 1 visitor with a lead, said so."""
    from webapp.services import runtime

    with app.app_context():
        exp = factories.experiment(world.agent_id, weights=(1, 1), status="running")
        ids = {"conversation_id": "c-twice", "visitor_id": "v-twice"}
        runtime.record_message(world.workspace_id, world.agent_id, {**ids, "role": "visitor"})
        for n in range(2):
            runtime.record_lead(world.workspace_id, world.agent_id, {**ids, "fields": {"n": n}})
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{exp}/results").get_data(as_text=True)
    table = html.split('data-metric="lead_capture_rate"')[1].split("</table>")[0]
    counts = re.findall(r'<small class="muted rate-counts[^"]*" title="visitors with a lead / visitors">(.*?)</small>',
                        table)
    assert counts == ["1 / 1"]  # the control, without visitors, has no rate ("—") and no counts
    assert "100.0%" in table
