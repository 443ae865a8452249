import csv
import io
import re

import pytest
import sqlalchemy as sa

from tests import factories
from tests.services.experiments.test_feedback_review_metrics import traffic
from tests.services.experiments.test_results import build
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Review
from webapp.services.experiments import results as results_service


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
    assert set(body) == {"experiment", "analysis", "plan", "srm", "goals", "review", "variants", "outcome"}
    assert body["goals"] == []
    assert body["outcome"] is None  # running: nothing decided yet
    assert body["experiment"]["name"] == "Persona test" and body["experiment"]["status"] == "running"
    assert set(body["srm"]) == {"p_value", "warning"}
    control, treatment = body["variants"]
    assert control["is_control"] and not treatment["is_control"]
    for key in ("id", "key", "name", "weight", "visitors", "conversations", "visitor_messages", "leads", "metrics"):
        assert key in control
    # the feedback rate once any feedback exists (none here), the blinded review's always
    assert set(control["metrics"]) == {"messages_per_conversation", "session_length", "lead_capture_rate",
                                       "review_good_rate"}
    assert control["metrics"]["lead_capture_rate"]["lift"] is None
    lift = treatment["metrics"]["messages_per_conversation"]
    assert lift["lift"] is not None and len(lift["ci"]) == 2 and 0 <= lift["p_value"] <= 1


def test_csv_export_has_a_row_per_variant_and_metric(client, auth, world, experiment_id):
    auth.login("owner@acme.test")
    response = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2 * 4  # no feedback here: the three built-in metrics and the blinded review's
    assert {r["metric"] for r in rows} == {"messages_per_conversation", "session_length", "lead_capture_rate",
                                           "review_good_rate"}
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
    assert "95% CI -100% to +8.8%" in row  # the verdict
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
    tables = [t.split("</table>")[0] for t in html.split('<table class="table metric-table stack-on-phone"')[1:]]
    assert len(tables) == 3
    for table in tables:
        assert ("95% CI" in table) is with_ci and ('class="ci-col"' in table) is with_ci
        counts = cells_per_row(table)
        assert counts == [6 if with_ci else 5] * 3, counts


def results_section(app, client, auth, world, visitors: dict[str, tuple[int, int]], weights=(1, 1)) -> str:
    """The results section (as HTMX loads it), read by an editor, of a running experiment whose arms have the given
    (visitors, converted visitors)."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", weights=weights)
        converted_visitors(world.agent_id, experiment_id, visitors)
    auth.login("editor@acme.test")
    return client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results",
                      headers={"HX-Request": "true"}).get_data(as_text=True)


def test_a_significant_p_value_is_never_shown_as_0_0500(app, client, auth, world):
    """25/92 vs 42/92 converted: p = 0.049985, significant; rounded to 4 decimals it would read 0.0500 beside
    "Treatment raises …"."""
    html = results_section(app, client, auth, world, {"control": (92, 25), "treatment": (92, 42)})
    table = html[html.index('data-metric="lead_capture_rate"'):]
    row = table[table.index('<tr data-variant="treatment">'):]
    row = row[:row.index("</tr>")]
    assert "Treatment raises lead capture rate" in row
    assert "0.0500" not in row and "0.04998" in row


@pytest.mark.parametrize("p,text", [(0.0655973326, "0.0656"), (0.04998491, "0.04998"), (0.0499999, "0.0499999"),
                                    (0.05, "0.0500"), (0.050004, "0.0500"), (0.00005, "< 0.0001"), (1.0, "1.0000")])
def test_p_value_text_stays_on_its_side_of_0_05(p, text):
    assert results_service.p_value_text(p) == text


@pytest.mark.parametrize("p,digits,text", [(0.0476703807, 3, "0.0477"), (0.000996, 2, "0.000996"),
                                           (0.000996, 3, "0.000996"), (0.0009996, 3, "0.0009996"),
                                           (0.001, 2, "0.001"), (1.5e-23, 2, "1.5e-23")])
def test_srm_p_value_text_stays_on_its_side_of_0_001(p, digits, text):
    assert results_service.srm_p_value_text(p, digits) == text


def test_the_srm_banner_never_reads_p_0_001(app, client, auth, world):
    """71 vs 116 visitors at 1:1: χ² p = 0.000999, under 0.001, so the banner shows; rounded to 2 significant
    digits it would say "p = 0.001"."""
    html = results_section(app, client, auth, world, {"control": (71, 0), "treatment": (116, 0)})
    assert "Sample ratio mismatch" in html
    banner = html[html.index("srm-banner"):]
    banner = banner[:banner.index("</div>")]
    assert "p = 0.000999)" in banner


def test_the_page_and_exports_say_why_a_figure_is_missing(app, client, auth, world):
    """A 3-arm experiment: the control has 5 visitors, variant-2 none at all."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", weights=(1, 1, 1))
        converted_visitors(world.agent_id, experiment_id, {"control": (5, 1), "treatment": (40, 4),
                                                           "variant-2": (0, 0)})
    auth.login("editor@acme.test")
    url = f"/agents/{world.agent_id}/experiments/{experiment_id}/results"
    html = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    table = html[html.index('data-metric="lead_capture_rate"'):]
    table = table[:table.index("</table>")]
    treatment = table[table.index('<tr data-variant="treatment">'):]
    assert "Not enough data yet: Control has 5 visitors; a comparison needs at least 30 in every arm." in treatment
    empty = table[table.index('<tr data-variant="variant-2">'):]
    assert "— <small class=\"muted\">no visitors</small>" in empty
    exported = client.get(url + ".json").get_json()["variants"]
    assert exported[1]["metrics"]["lead_capture_rate"]["reason"] == (
        "Control has 5 visitors; a comparison needs at least 30 in every arm.")
    assert exported[2]["metrics"]["lead_capture_rate"]["reason"] == (
        "Control has 5 visitors; a comparison needs at least 30 in every arm.")
    assert exported[0]["metrics"]["lead_capture_rate"]["reason"] is None
    rows = csv_export(client, world, experiment_id)
    assert {r["reason"] for r in rows if r["variant_key"] == "treatment"} == {
        "Control has 5 visitors; a comparison needs at least 30 in every arm.", "Control has no reviews yet."}


def test_the_srm_line_of_a_single_variant_does_not_claim_no_visitors(app, client, auth, world):
    html = results_section(app, client, auth, world, {"control": (40, 4)}, weights=(1,))
    assert "Sample ratio check: needs two variants or more." in html and "no visitors yet" not in html


@pytest.mark.parametrize("status,peeking", [("running", True), ("stopped", False)])
def test_the_page_warns_about_chance_wins_and_peeking(app, client, auth, world, status, peeking):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status=status)
        build(world.agent_id, experiment_id, 40)
    auth.login("editor@acme.test")
    html = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    note = re.sub(r"\s+", " ", html[html.index('class="muted peeking-note"'):].split("</p>")[0])
    assert "about 1 in 20 comes out significant by chance" in note
    assert ("stop at the first significant one" in note) is peeking


def test_a_small_significant_lift_is_not_shown_as_0_0_percent(app, client, auth, world, monkeypatch):
    """10 million visitors an arm, 10.00% vs 10.04% converted (p = 0.003): +0.40% (95% CI +0.14% to +0.66%)."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
    real = results_service.results_for

    def huge(actor_id, agent_id, exp_id, with_daily=False, engine=None):
        out = real(actor_id, agent_id, exp_id, with_daily, engine)
        control, treatment = out.variants
        out.totals = {control.id: results_service.VariantTotals(10_000_000, converted=1_000_000),
                      treatment.id: results_service.VariantTotals(10_000_000, converted=1_004_000)}
        return out

    monkeypatch.setattr(results_service, "results_for", huge)
    auth.login("editor@acme.test")
    html = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    table = html[html.index('data-metric="lead_capture_rate"'):]
    row = table[table.index('<tr data-variant="treatment">'):]
    row = row[:row.index("</tr>")]
    assert ">+0.40%</td>" in row and "+0.14% … +0.66%" in row and 'title="+0.14% to +0.66%"' in row
    assert "+0.0%" not in row


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
    from webapp.services.runtime import service as runtime

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


def test_the_results_page_shows_feedback_the_blinded_review_and_links_each_arm(app, client, auth, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        experiment, _ = traffic(world, experiment_id, visitors=80, seed=11)
        first = db.session.scalar(sa.select(Conversation).where(Conversation.experiment_id == experiment_id))
        db.session.add(Review(conversation_id=first.id, reviewer_id=world.editor_id, experiment_id=experiment_id,
                              variant_id=first.variant_id, variant_key=first.variant_key, rating="good", note=""))
        db.session.commit()
        conversations = {v.key: db.session.scalar(sa.select(sa.func.count()).where(
            Conversation.variant_id == v.id)) for v in experiment.variants}
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-metric="positive_feedback_rate"' in html and "Positive feedback rate" in html
    section = html[html.index('id="blinded-review-results"'):]
    assert "1 review by 1 reviewer" in section and 'data-metric="review_good_rate"' in section
    assert f'href="/agents/{world.agent_id}/experiments/{experiment_id}/review"' in section
    link = (f'href="/agents/{world.agent_id}/conversations?experiment={experiment_id}&amp;variant=treatment"'
            f'>Read Treatment’s {conversations["treatment"]:,} conversations</a>')
    assert link in html
    visitors = html[html.index('data-variant="control"', html.index('<h3 class="metric-title">Visitors</h3>')):]
    visitors = visitors[:visitors.index("</td>")]
    assert "Control" in visitors and 'class="badge">control' not in visitors  # not "Control [control]"


def test_a_control_keyed_otherwise_carries_the_control_badge(app, client, auth, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running", keys=["sam", "aria"])
        db.session.remove()
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}/results",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    row = html[html.rindex('data-variant="sam"'):]
    assert '<span class="badge">control</span>' in row[:row.index("</td>")]


def test_reviews_and_reviewers_per_arm_on_the_page_and_in_both_exports(app, client, auth, world):
    """Two reviewers on the control (three reviews), one on the treatment: the Blinded review table's Reviews and
    Reviewers columns, JSON `variants[].reviews` / `reviewers` and `review`, and the CSV's review rows say so."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        experiment, _ = traffic(world, experiment_id, visitors=40, seed=2)
        for variant, reviewers in zip(experiment.variants, ([world.editor_id, world.owner_id], [world.admin_id])):
            first, second = db.session.scalars(sa.select(Conversation).where(Conversation.variant_id == variant.id)
                                               .order_by(Conversation.id).limit(2))
            for reviewer, conversation, rating in [(reviewers[0], first, "good"), (reviewers[-1], second, "bad"),
                                                   *([(reviewers[1], first, "good")] if len(reviewers) > 1 else [])]:
                db.session.add(Review(conversation_id=conversation.id, reviewer_id=reviewer, rating=rating, note="",
                                      experiment_id=experiment_id, variant_id=variant.id, variant_key=variant.key))
        db.session.commit()
        db.session.remove()
    auth.login(world.emails["editor"])
    base = f"/agents/{world.agent_id}/experiments/{experiment_id}/results"
    html = client.get(base, headers={"HX-Request": "true"}).get_data(as_text=True)
    section = html[html.index('id="blinded-review-results"'):].split("</section>")[0]
    assert "5 reviews by 3 reviewers" in section
    row = (r'<tr data-variant="(\w+)">\s*<td class="wrap">[^<]*</td>\s*'
           r'<td class="num">(\d+)</td><td class="num">(\d+)</td>')  # Reviews, Reviewers
    shown = {key: (reviews, reviewers) for key, reviews, reviewers in re.findall(row, section)}
    assert shown == {"control": ("3", "2"), "treatment": ("2", "1")}
    body = client.get(base + ".json").get_json()
    assert body["review"] == {"reviews": 5, "reviewers": 3}
    assert [(v["key"], v["reviews"], v["reviews_good"], v["reviewers"]) for v in body["variants"]] == [
        ("control", 3, 2, 2), ("treatment", 2, 1, 1)]
    rows = list(csv.DictReader(io.StringIO(client.get(base + ".csv").get_data(as_text=True))))
    review = {r["variant_key"]: (r["unit"], r["units"], r["numerator"], r["denominator"], r["reviewers"], r["visitors"])
              for r in rows if r["metric"] == "review_good_rate"}
    assert review == {"control": ("review", "3", "2", "3", "2", "20"),
                      "treatment": ("review", "2", "1", "2", "1", "20")}
    assert {r["reviewers"] for r in rows if r["metric"] != "review_good_rate"} == {""}
    assert {r["unit"] for r in rows if r["metric"] != "review_good_rate"} == {"visitor"}


def test_goals_section_lists_each_goal_with_its_counts(app, client, auth, world, experiment_id):
    from tests.services.experiments.test_goals import add_events

    auth.login("editor@acme.test")
    url = f"/agents/{world.agent_id}/experiments/{experiment_id}/results"
    empty = client.get(url).get_data(as_text=True)
    assert '<h3 class="goals-title">Goals</h3>' in empty and "No goal events yet." in empty
    with app.app_context():
        truth = add_events(world.agent_id, experiment_id, {"booked_demo": (0.2, 0.6)})
        variant_ids = [v.id for v in db.session.get(Experiment, experiment_id).variants]
        db.session.remove()
    text = client.get(url).get_data(as_text=True)
    goals = text[text.index('class="goals-title"'):]
    assert '<h4 class="metric-title secondary">“booked_demo” goal rate</h4>' in goals and 'data-metric="goal:booked_demo"' in goals
    counts = re.findall(r'title="visitors with the event / visitors">(\d+) / (\d+)<', goals)
    assert counts == [(str(truth["booked_demo"][v]), "40") for v in variant_ids]
    exported = client.get(url + ".csv").get_data(as_text=True)
    assert exported.count(",goal:booked_demo,") == 2


@pytest.mark.parametrize("metric,label", [("goal:booked_demo", "“booked_demo” goal rate"),
                                          ("positive_feedback_rate", "Positive feedback rate")])
def test_a_goal_or_feedback_primary_metric_leads_the_page_its_lift_chart_and_the_shipped_outcome(
        app, client, auth, world, metric, label):
    """The page, its cumulative lift chart and a shipped outcome's lift all read the chosen metric."""
    from tests.services.experiments.test_goals import add_events

    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
        experiment, _ = traffic(world, experiment_id, visitors=120, seed=5)
        add_events(world.agent_id, experiment_id, {"booked_demo": (0.2, 0.6)})
        experiment.primary_metric = metric
        experiment.status, experiment.stopped_at = "stopped", experiment.started_at
        experiment.outcome_result, experiment.outcome_variant_key = "shipped", "treatment"
        experiment.outcome_recorded_at = experiment.started_at
        db.session.commit()
        db.session.remove()
    auth.login(world.emails["editor"])
    base = f"/agents/{world.agent_id}/experiments/{experiment_id}"
    page = client.get(base + "/results")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'<h3 class="metric-title primary-title">{label} <span class="badge">primary metric</span>' in html
    assert f"<figcaption>{label}: cumulative lift vs Control, with its" in html
    for url, closing in ((base, "</span>"), (f"/agents/{world.agent_id}/experiments", "</small>")):
        shown = client.get(url)
        assert shown.status_code == 200
        assert re.search(r"[+−-]\d[\d.,]*% " + re.escape(label.lower()) + closing, shown.get_data(as_text=True))


def test_the_results_card_shows_the_decision_before_the_review_link(client, auth, world, experiment_id):
    """SPEC §11: the decision sentences and the plan (the #results slot) open the card; the review link follows."""
    auth.login("owner@acme.test")
    html = client.get(f"/agents/{world.agent_id}/experiments/{experiment_id}").get_data(as_text=True)
    card = html.split("<h2>Results</h2>")[1].split('<section class="card" id="variants">')[0]
    slot_end = card.index("</section>", card.index('id="results"'))
    assert slot_end < card.index('class="review-link"')
