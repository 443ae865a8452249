"""The daily series (SPEC §11): each metric by the day visitors were assigned, as the table measures it; the partial
current day named."""
from __future__ import annotations

from datetime import date, timedelta

import random

import pytest
import sqlalchemy as sa

from tests import factories
from tests.services.experiments.test_goals import add_events
from tests.services.experiments.test_results import T0, build
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Feedback
from webapp.services.experiments import daily, results, stats


def test_each_day_measures_the_tables_per_visitor_metric_over_that_days_visitors(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    truth = build(world.agent_id, experiment_id, 60)  # visitor i of an arm is assigned on day i % 3
    experiment = db.session.get(Experiment, experiment_id)
    series = daily.daily_series(experiment, today=date(2030, 1, 1))
    assert series["days"] == [(T0 + timedelta(days=k)).date().isoformat() for k in range(3)]
    assert series["partial_day"] is None
    for variant, entry in zip(experiment.variants, series["variants"]):
        for k in range(3):
            cohort = [row for i, row in enumerate(truth[variant.id]) if i % 3 == k]
            assert entry["visitors"][k] == len(cohort) == 20
            assert entry["lead_capture_rate"][k] == pytest.approx(sum(r[3] for r in cohort) / len(cohort), abs=1e-4)
            assert entry["messages_per_conversation"][k] == pytest.approx(
                sum(r[1] for r in cohort) / sum(r[0] for r in cohort), abs=1e-4)
            assert entry["session_length"][k] == pytest.approx(
                sum(r[2] for r in cohort) / sum(r[0] for r in cohort), abs=1e-2)
        assert entry["cumulative_visitors"] == [20, 40, 60]


def test_the_days_add_up_to_the_tables_totals(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 45)
    by_day = daily.cohort_totals(experiment_id)
    overall = results.per_variant_totals(experiment_id)
    for variant_id, totals in overall.items():
        days = sorted(d for v, d in by_day if v == variant_id)
        summed = daily.cumulate([by_day[(variant_id, d)] for d in days])[-1]
        for name in totals.__dataclass_fields__:
            assert getattr(summed, name) == pytest.approx(getattr(totals, name)), name


def rate_and_reach(world, experiment_id: int, seed: int = 11) -> None:
    """Feedback on some of the experiment's stamped conversations (up more often in the treatment), and "signup" and
    "demo" goal events."""
    rng = random.Random(seed)
    for c in db.session.scalars(sa.select(Conversation).where(Conversation.experiment_id == experiment_id)):
        if rng.random() < 0.5:
            up = rng.random() < (0.5 if c.variant_key == "control" else 0.8)
            db.session.add(Feedback(agent_id=world.agent_id, conversation_id=c.id, visitor_id=c.visitor_id,
                                    rating="up" if up else "down", experiment_id=experiment_id,
                                    variant_id=c.variant_id, variant_key=c.variant_key))
    db.session.commit()
    add_events(world.agent_id, experiment_id, {"signup": (0.25, 0.5), "demo": (0.2, 0.2)}, seed=seed)


def test_feedback_and_goals_count_on_their_visitors_day_and_add_up_to_the_tables_totals(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 45)
    rate_and_reach(world, experiment_id)
    by_day = daily.cohort_totals(experiment_id)
    overall = results.per_variant_totals(experiment_id)
    assert all(t.goals and t.feedback_rated for t in overall.values())
    assert sum(len(t.goals) for t in by_day.values()) > len(overall)  # the goals spread over the days
    for variant_id, totals in overall.items():
        summed = daily.cumulate([by_day[(variant_id, d)] for d in sorted(d for v, d in by_day if v == variant_id)])
        for name in ("goals", "feedback_up", "feedback_up_sq", "feedback_rated", "feedback_rated_sq",
                     "feedback_up_x_rated"):
            assert getattr(summed[-1], name) == pytest.approx(getattr(totals, name)), name


@pytest.mark.parametrize("metric", ["goal:signup", "positive_feedback_rate"])
def test_a_goal_or_feedback_primary_metric_has_its_cumulative_lift(ctx, world, metric):
    """The lift chart of a goal or feedback primary metric: its last point is the results table's figure."""
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 60)
    rate_and_reach(world, experiment_id)
    experiment = db.session.get(Experiment, experiment_id)
    analysis = stats.Analysis(engine="fixed")
    lift = daily.daily_series(experiment, today=date(2030, 1, 1), metric=metric, analysis=analysis)["cumulative_lift"]
    (arm,) = lift["variants"]
    assert lift["has_data"] and all(x is not None for x in arm["lift"][1:])
    final = results.compute(experiment).metric(experiment.variants[1], metric)
    assert arm["lift"][-1] == pytest.approx(final["lift"], abs=1e-6)
    assert [arm["ci_low"][-1], arm["ci_high"][-1]] == pytest.approx(final["ci"], abs=1e-6)


def test_a_lead_counts_on_the_day_its_visitor_was_assigned(ctx, world):
    """Assigned on the 1st, their lead comes on the 2nd: the 1st's rate is 1 of 1, the 2nd has no visitors."""
    experiment_id = factories.experiment(world.agent_id, status="running")
    control = db.session.get(Experiment, experiment_id).variants[0]
    db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id, variant_id=control.id,
                                        variant_key="control", visitor_id="v", assigned_at=T0))
    db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id, variant_id=control.id,
                                        variant_key="control", visitor_id="w", assigned_at=T0 + timedelta(days=2)))
    later = T0 + timedelta(days=1)
    db.session.add(Conversation(agent_id=world.agent_id, external_id="c", visitor_id="v", experiment_id=experiment_id,
                                variant_id=control.id, variant_key="control", started_at=later, last_message_at=later,
                                visitor_messages=2, lead_count=1))
    db.session.commit()
    series = daily.daily_series(db.session.get(Experiment, experiment_id), today=date(2030, 1, 1))
    entry = series["variants"][0]
    assert entry["visitors"] == [1, 0, 1]
    assert entry["lead_capture_rate"] == [1.0, None, 0.0]
    assert entry["messages_per_conversation"] == [2.0, None, None]  # w has no conversation: no denominator


def test_todays_partial_day_is_named(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 9)
    experiment = db.session.get(Experiment, experiment_id)
    last = (T0 + timedelta(days=2)).date()
    assert daily.daily_series(experiment, today=last)["partial_day"] == last.isoformat()
    assert daily.daily_series(experiment, today=last + timedelta(days=1))["partial_day"] is None


@pytest.mark.parametrize("engine", ["fixed", "sequential", "bayesian"])
def test_the_cumulative_lift_is_the_engines_comparison_of_everyone_assigned_so_far(ctx, world, engine):
    """Each day's point is what the results would say had they been read that evening, by the experiment's engine."""
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 90, lead_rates=(0.2, 0.4))
    experiment = db.session.get(Experiment, experiment_id)
    analysis = stats.Analysis(engine=engine)
    series = daily.daily_series(experiment, today=date(2030, 1, 1), metric="lead_capture_rate", analysis=analysis)
    lift = series["cumulative_lift"]
    assert (lift["metric"], lift["engine"]) == ("lead_capture_rate", engine)
    (arm,) = lift["variants"]
    control, treatment = experiment.variants
    for k, day in enumerate(series["days"]):
        upto = [d for d in series["days"][:k + 1]]
        totals = daily.cohort_totals(experiment_id)
        c = daily.cumulate([totals[(control.id, d)] for d in upto])[-1]
        t = daily.cumulate([totals[(treatment.id, d)] for d in upto])[-1]
        expected = stats.compare(c.stat("lead_capture_rate"), t.stat("lead_capture_rate"), analysis=analysis)
        assert arm["lift"][k] == pytest.approx(expected.lift, abs=1e-6)
        assert [arm["ci_low"][k], arm["ci_high"][k]] == pytest.approx(  # drawn from −100% (docs/rules.md)
            [stats.shown_lift(expected.ci_low), expected.ci_high], abs=1e-6)
    # The last day's point is the results table's own figure.
    final = results.compute(experiment).metric(treatment, "lead_capture_rate")
    if engine == "fixed":
        assert arm["lift"][-1] == pytest.approx(final["lift"], abs=1e-6)
        assert [arm["ci_low"][-1], arm["ci_high"][-1]] == pytest.approx(final["ci"], abs=1e-6)


def test_the_cumulative_lift_is_null_on_days_with_too_little_data(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 30)  # 10 visitors an arm a day: the first day is under 30
    series = daily.daily_series(db.session.get(Experiment, experiment_id), today=date(2030, 1, 1))
    (arm,) = series["cumulative_lift"]["variants"]
    assert arm["lift"][0] is None and arm["ci_low"][0] is None
    assert arm["lift"][-1] is not None and series["cumulative_lift"]["has_data"]


def test_the_cumulative_lift_is_drawn_from_minus_100_percent_as_the_table_shows_it(ctx, world):
    """Thin data (30 an arm, 6 leads vs 2) under the sequential engine: the computed lower bound is about −283%;
    the chart's series starts at −100% (docs/rules.md), the upper bound and the lift stay as computed."""
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiment = db.session.get(Experiment, experiment_id)
    for variant, leads in zip(experiment.variants, (6, 2)):
        for i in range(30):
            visitor = f"{variant.key}-{i}"
            db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id,
                                                variant_id=variant.id, variant_key=variant.key, visitor_id=visitor,
                                                assigned_at=T0))
            db.session.add(Conversation(agent_id=world.agent_id, external_id=f"{visitor}-c", visitor_id=visitor,
                                        experiment_id=experiment_id, variant_id=variant.id, variant_key=variant.key,
                                        started_at=T0, last_message_at=T0, visitor_messages=1,
                                        lead_count=int(i < leads)))
    db.session.commit()
    analysis = stats.Analysis(engine="sequential")
    computed = stats.compare(stats.ProportionStat(30, 6), stats.ProportionStat(30, 2), analysis=analysis)
    assert computed.ci_low < -2
    series = daily.daily_series(experiment, today=date(2030, 1, 1), metric="lead_capture_rate", analysis=analysis)
    (arm,) = series["cumulative_lift"]["variants"]
    assert arm["ci_low"] == [-1.0]
    assert arm["lift"] == [pytest.approx(computed.lift, abs=1e-6)]
    assert arm["ci_high"] == [pytest.approx(computed.ci_high, abs=1e-6)]
    shown = results.compute(experiment, engine="sequential").shown_ci(experiment.variants[1], "lead_capture_rate")
    assert shown == (-1.0, pytest.approx(computed.ci_high))
