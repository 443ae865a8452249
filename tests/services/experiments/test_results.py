"""Results aggregation (SPEC §7) against an independent computation on known data."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Lead, Message
from webapp.services.experiments import daily, results, stats
from webapp.services.errors import NotFound
from tests import factories

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def build(agent_id: int, experiment_id: int, visitors_per_arm: int, seed: int = 7, lead_rates=(0.1, 0.3)):
    """Known traffic: returns the per-visitor truth {variant_id: [(convs, msgs, secs, converted, leads)]}."""
    rng = random.Random(seed)
    experiment = db.session.get(Experiment, experiment_id)
    truth: dict[int, list] = {v.id: [] for v in experiment.variants}
    for position, variant in enumerate(experiment.variants):
        for i in range(visitors_per_arm):
            visitor = f"{variant.key}-{i}"
            day = T0 + timedelta(days=i % 3)
            db.session.add(ExperimentAssignment(agent_id=agent_id, experiment_id=experiment_id, variant_id=variant.id,
                                                variant_key=variant.key, visitor_id=visitor, assigned_at=day))
            convs = rng.randint(1, 3)
            msgs_total = secs_total = leads = 0
            for c in range(convs):
                n_msgs = rng.randint(1, 6)
                secs = rng.randint(0, 600)
                start = day + timedelta(hours=c)
                conv = Conversation(agent_id=agent_id, external_id=f"{visitor}-c{c}", visitor_id=visitor,
                                    experiment_id=experiment_id, variant_id=variant.id, variant_key=variant.key,
                                    started_at=start, last_message_at=start + timedelta(seconds=secs))
                db.session.add(conv)
                db.session.flush()
                for k in range(n_msgs):
                    db.session.add(Message(conversation_id=conv.id, role="visitor", text="hi", variant_id=variant.id,
                                           sent_at=start + timedelta(seconds=min(secs, k))))
                    db.session.add(Message(conversation_id=conv.id, role="agent", text="hello", variant_id=variant.id,
                                           sent_at=start + timedelta(seconds=secs)))
                conv.visitor_messages = n_msgs
                conv.session_seconds = float(secs)
                if rng.random() < lead_rates[position]:
                    leads += 1
                    conv.lead_count = 1
                    db.session.add(Lead(agent_id=agent_id, conversation_id=conv.id, visitor_id=visitor,
                                        fields={"email": "x@y.z"}, captured_at=start, experiment_id=experiment_id,
                                        variant_id=variant.id, variant_key=variant.key))
                msgs_total += n_msgs
                secs_total += secs
            truth[variant.id].append((convs, msgs_total, secs_total, 1 if leads else 0, leads))
    # Noise that must not count: another experiment's and unstamped conversations.
    other = Conversation(agent_id=agent_id, external_id="noise", visitor_id="control-0", started_at=T0,
                         last_message_at=T0 + timedelta(seconds=99))
    db.session.add(other)
    db.session.flush()
    db.session.add(Message(conversation_id=other.id, role="visitor", text="unstamped", sent_at=T0))
    db.session.commit()
    return truth


def ratio_stat(rows, m_index):
    n = len(rows)
    m = [r[m_index] for r in rows]
    d = [r[0] for r in rows]
    return stats.RatioStat(n, sum(m), sum(x * x for x in m), sum(d), sum(x * x for x in d),
                           sum(a * b for a, b in zip(m, d)))


def test_totals_and_statistics_match_an_independent_computation(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    truth = build(world.agent_id, experiment_id, 60)
    experiment = db.session.get(Experiment, experiment_id)
    out = results.compute(experiment, with_daily=True)
    control, treatment = experiment.variants
    for variant in experiment.variants:
        rows, totals = truth[variant.id], out.totals[variant.id]
        assert totals.n == len(rows)
        assert totals.conversations == sum(r[0] for r in rows)
        assert totals.messages == sum(r[1] for r in rows)
        assert totals.seconds == pytest.approx(sum(r[2] for r in rows), abs=1e-3)
        assert totals.seconds_sq == pytest.approx(sum(r[2] ** 2 for r in rows), rel=1e-9)
        assert totals.messages_x_conversations == sum(r[0] * r[1] for r in rows)
        assert totals.converted == sum(r[3] for r in rows)
        assert totals.leads == sum(r[4] for r in rows)
    expected = stats.compare(ratio_stat(truth[control.id], 1), ratio_stat(truth[treatment.id], 1))
    got = out.metric(treatment, "messages_per_conversation")
    assert got["lift"] == pytest.approx(expected.lift, abs=1e-9)
    assert got["ci"] == pytest.approx([expected.ci_low, expected.ci_high], abs=1e-9)
    expected = stats.compare(ratio_stat(truth[control.id], 2), ratio_stat(truth[treatment.id], 2))
    assert out.metric(treatment, "session_length")["p_value"] == pytest.approx(expected.p_value, abs=1e-9)
    rate = out.metric(treatment, "lead_capture_rate")
    assert rate["value"] == pytest.approx(sum(r[3] for r in truth[treatment.id]) / 60)
    assert out.metric(control, "lead_capture_rate")["lift"] is None  # the control has no lift
    assert out.srm_p_value == pytest.approx(1.0)
    assert len(out.daily["days"]) == 3
    assert out.daily["variants"][0]["cumulative_visitors"][-1] == 60


@pytest.mark.parametrize("days_with_data,expected", [
    ([], []),
    (["2026-11-20"], ["2026-11-20"]),
    (["2026-02-27", "2026-03-02"], ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]),
    (["2000-01-01", "2026-11-20"], ["2000-01-01", "2026-11-20"]),  # over MAX_CALENDAR_DAYS: only days with data
])
def test_daily_charts_run_on_calendar_days(days_with_data, expected):
    assert daily.calendar_days(days_with_data) == expected


def test_a_day_without_traffic_is_on_the_axis_flat_or_null(ctx, world, client):
    """Two days of traffic three days apart: the days between are there, visitors flat, metrics null."""
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    headers = {"Authorization": f"Bearer {world.api_key}"}
    for visitor, day in (("a", "2026-11-01"), ("b", "2026-11-04")):
        assert client.post(f"/api/v1/agents/{world.agent_id}/messages", headers=headers, json={
            "visitor_id": visitor, "conversation_id": visitor, "role": "visitor",
            "sent_at": f"{day}T12:00:00Z"}).status_code == 201
    daily = results.compute(db.session.get(Experiment, experiment_id), with_daily=True).daily
    assert daily["days"] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    total = [sum(day) for day in zip(*(v["cumulative_visitors"] for v in daily["variants"]))]
    assert total == [1, 1, 1, 2]
    for v in daily["variants"]:
        assert v["messages_per_conversation"][1:3] == [None, None]


def test_not_enough_data_gives_nulls_not_numbers(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    build(world.agent_id, experiment_id, 10)
    experiment = db.session.get(Experiment, experiment_id)
    exported = results.compute(experiment).as_dict()
    treatment = exported["variants"][1]
    for key, metric in treatment["metrics"].items():
        # No feedback and no review yet: those two have no value either.
        assert (metric["value"] is None) == (key in ("positive_feedback_rate", "review_good_rate"))
        assert metric["lift"] is None and metric["ci"] is None and metric["p_value"] is None
        assert metric["enough_data"] is False


def test_srm_warning_when_split_is_off(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    experiment = db.session.get(Experiment, experiment_id)
    control, treatment = experiment.variants
    for i in range(300):
        variant = control if i < 200 else treatment
        db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id,
                                            variant_id=variant.id, variant_key=variant.key, visitor_id=f"v{i}"))
    db.session.commit()
    out = results.compute(experiment)
    assert out.srm_warning and out.srm_p_value < 0.001


def test_no_srm_warning_while_an_arm_expects_too_few_visitors(ctx, world):
    """19:1 weights, 7 and 3 visitors: χ² p = 0.0003, but the small arm expects 0.5 visitors — far below the χ²
    approximation's floor of 5, where such a p comes up by chance about 1 % of the time, not 0.1 %. 140 and 60 at
    the same weights (10 expected in the small arm) warn."""
    experiment_id = factories.experiment(world.agent_id, weights=(19, 1), status="running")
    experiment = db.session.get(Experiment, experiment_id)
    few = totals_results(experiment_id, results.VariantTotals(7), results.VariantTotals(3))
    assert few.srm_p_value < 0.001 and few.srm_too_few
    assert not few.srm_warning
    assert few.as_dict()["srm"]["warning"] is False
    enough = totals_results(experiment_id, results.VariantTotals(140), results.VariantTotals(60))
    assert not enough.srm_too_few and enough.srm_warning
    assert experiment.variants[1].weight == 1


def test_empty_experiment(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="draft")
    exported = results.compute(db.session.get(Experiment, experiment_id)).as_dict()
    assert exported["srm"] == {"p_value": None, "warning": False}
    assert [v["visitors"] for v in exported["variants"]] == [0, 0]
    assert exported["variants"][0]["metrics"]["lead_capture_rate"]["value"] is None


def test_results_are_role_checked(ctx, world):
    experiment_id = factories.experiment(world.agent_id)
    assert results.results_for(world.editor_id, world.agent_id, experiment_id).experiment.id == experiment_id
    with pytest.raises(NotFound):
        results.results_for(world.outsider_id, world.agent_id, experiment_id)
    with pytest.raises(NotFound):
        results.results_for(world.owner_id, world.other_agent_id, experiment_id)


def test_arms_without_variation_are_not_enough_data(ctx, world):
    """Every conversation of the control has 1 visitor message, of the treatment 2 (visitors with 1–3
    conversations): no variation in either arm, so no lift, CI or p-value — not "+100%, p = 0"."""
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    experiment = db.session.get(Experiment, experiment_id)
    for per_conversation, variant in enumerate(experiment.variants, start=1):
        for i in range(32):
            stamp = {"agent_id": world.agent_id, "experiment_id": experiment_id, "variant_id": variant.id,
                     "variant_key": variant.key, "visitor_id": f"{variant.key}-{i}"}
            db.session.add(ExperimentAssignment(**stamp))
            for c in range(i % 3 + 1):
                db.session.add(Conversation(**stamp, external_id=f"{variant.key}-{i}-{c}",
                                            visitor_messages=per_conversation))
    db.session.commit()
    treatment = results.compute(experiment).as_dict()["variants"][1]["metrics"]["messages_per_conversation"]
    assert treatment["value"] == 2.0
    assert (treatment["lift"], treatment["ci"], treatment["p_value"], treatment["enough_data"]) == (
        None, None, None, False)


def totals_results(experiment_id: int, *totals: results.VariantTotals) -> results.Results:
    """Results of an experiment from given per-variant totals (no rows: counts of any size)."""
    experiment = db.session.get(Experiment, experiment_id)
    variants = list(experiment.variants)
    by_id = {v.id: t for v, t in zip(variants, totals)}
    return results.Results(experiment, variants, by_id,
                           stats.srm_p_value([t.n for t in totals], [v.weight for v in variants]))


def test_a_small_significant_lift_is_not_worded_as_0_percent(ctx, world):
    """10 million visitors an arm, 10.00% vs 10.04%: +0.4% (95% CI +0.14% to +0.66%), p = 0.003."""
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    out = totals_results(experiment_id, results.VariantTotals(10_000_000, converted=1_000_000),
                         results.VariantTotals(10_000_000, converted=1_004_000))
    treatment = out.variants[1]
    assert out.metric(treatment, "lead_capture_rate")["p_value"] == pytest.approx(0.0029506087, abs=1e-9)
    assert out.verdict(treatment, "lead_capture_rate") == (
        "Treatment raises lead capture rate by 0.40% (95% CI +0.14% to +0.66%).")


@pytest.mark.parametrize("value,text", [
    (0.3, "+30%"), (-1.0, "-100%"), (0.6193753723, "+62%"), (-0.0193753723, "-1.9%"), (0.088, "+8.8%"),
    (0.004, "+0.40%"), (0.00136284, "+0.14%"), (0.0, "+0%"), (2.661, "+266%"), (1e-9, "+0.0000%"),
])
def test_verdict_percentages_keep_two_significant_digits(value, text):
    assert results.signed_percent(value) == text


@pytest.mark.parametrize("control,treatment,metric,reason", [
    (results.VariantTotals(0), results.VariantTotals(100, conversations=100, converted=10), "lead_capture_rate",
     "Control has 0 visitors; a comparison needs at least 30 in every arm."),
    (results.VariantTotals(100, conversations=100, converted=10), results.VariantTotals(1, conversations=1),
     "lead_capture_rate", "Treatment has 1 visitor; a comparison needs at least 30 in every arm."),
    (results.VariantTotals(100, conversations=100, messages=150, messages_sq=250),
     results.VariantTotals(100), "messages_per_conversation", "Treatment has no conversations yet."),
    (results.VariantTotals(100, converted=0), results.VariantTotals(100, converted=10), "lead_capture_rate",
     "In Control no visitor has left a lead: a relative change from 0 is undefined."),
    (results.VariantTotals(100, converted=10), results.VariantTotals(100, converted=100), "lead_capture_rate",
     "Every visitor of Treatment has left a lead (100 of 100): without variation there is nothing to test against."),
    (results.VariantTotals(100, converted=10), results.VariantTotals(100, converted=0), "lead_capture_rate",
     "No visitor of Treatment has left a lead (0 of 100): without variation there is nothing to test against."),
    (results.VariantTotals(100, conversations=100, conversations_sq=100, messages=200, messages_sq=400,
                           messages_x_conversations=200),
     results.VariantTotals(100, conversations=100, conversations_sq=100, messages=300, messages_sq=1000,
                           messages_x_conversations=300), "messages_per_conversation",
     "Every visitor of Control has the same visitor messages per conversation: "
     "without variation there is nothing to test against."),
])
def test_a_missing_comparison_says_why(ctx, world, control, treatment, metric, reason):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    out = totals_results(experiment_id, control, treatment)
    result = out.metric(out.variants[1], metric)
    assert (result["lift"], result["enough_data"], result["reason"]) == (None, False, reason)
    thin = reason.endswith("in every arm.") or reason.endswith("no conversations yet.")
    assert out.verdict(out.variants[1], metric) == (f"Not enough data yet: {reason}" if thin else reason)


def test_a_missing_value_says_why(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    out = totals_results(experiment_id, results.VariantTotals(0), results.VariantTotals(40))
    control, treatment = out.variants
    assert out.metric(control, "lead_capture_rate") == {
        "value": None, "lift": None, "ci": None, "p_value": None, "p_value_adjusted": None, "chance_to_win": None,
        "risk": None, "enough_data": None, "reason": "Control has no visitors yet."}
    assert out.metric(treatment, "session_length")["value"] is None
    assert out.metric(control, "session_length")["reason"] == "Control has no visitors yet."
    assert out.metric(treatment, "messages_per_conversation")["reason"].startswith("Control has 0 visitors")
    assert totals_results(experiment_id, results.VariantTotals(40), results.VariantTotals(40)).metric(
        control, "session_length")["reason"] == "Control has no conversations yet."


def test_srm_of_an_experiment_uses_its_configured_weights(ctx, world):
    """900 / 100 visitors is the expected split at 9:1 weights (p = 1, no banner) and a glaring one at 1:1."""
    for weights, warning in (((9, 1), False), ((1, 1), True)):
        experiment_id = factories.experiment(world.agent_id, weights=weights, status="running")
        experiment = db.session.get(Experiment, experiment_id)
        for variant, visitors in zip(experiment.variants, (900, 100)):
            db.session.add_all(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id,
                                                    variant_id=variant.id, variant_key=variant.key,
                                                    visitor_id=f"{variant.key}-{i}") for i in range(visitors))
        db.session.commit()
        out = results.compute(experiment)
        assert out.srm_warning is warning
        if not warning:
            assert out.srm_p_value == pytest.approx(1.0)


def test_no_comparison_says_why(ctx, world):
    """A thin arm is "not enough data"; hundreds of visitors with no lead in one arm are not said to be too few."""
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    build(world.agent_id, experiment_id, 10)
    experiment = db.session.get(Experiment, experiment_id)
    out = results.compute(experiment)
    treatment = out.variants[1]
    assert out.no_comparison(treatment, "lead_capture_rate") == (
        "Not enough data yet: Control has 10 visitors; a comparison needs at least 30 in every arm.")

    other = factories.experiment(world.other_agent_id, weights=(1, 1), status="running")
    build(world.other_agent_id, other, 200, lead_rates=(0.2, 0.0))
    experiment = db.session.get(Experiment, other)
    out = results.compute(experiment)
    treatment = out.variants[1]
    assert out.metric(treatment, "lead_capture_rate")["lift"] is None
    reason = out.no_comparison(treatment, "lead_capture_rate")
    assert reason == ("No visitor of Treatment has left a lead (0 of 200): without variation there is nothing to "
                      "test against.")
    assert out.verdict(treatment, "lead_capture_rate") == reason
    assert "Not enough data" not in reason
    assert out.metric(treatment, "messages_per_conversation")["lift"] is not None  # the other metrics compare
