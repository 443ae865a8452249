"""SPEC §13: every event name seen in an experiment's stamped conversations is a metric goal:<name> — visitors with
at least one such event over visitors, a proportion — in the results, the JSON and the CSV; counted in SQL."""
from __future__ import annotations

import random

import pytest

import sqlalchemy as sa

from tests import factories
from tests.services.experiments.test_results import T0, build
from webapp.extensions import db
from webapp.models import Conversation, Experiment, GoalEvent
from webapp.services.experiments import results, stats


def add_events(agent_id: int, experiment_id: int, rates: dict[str, tuple[float, float]], seed: int = 3):
    """Goal events in the experiment's conversations at known per-visitor rates; returns the hand count
    {name: {variant_id: visitors with ≥ 1 event}}."""
    rng = random.Random(seed)
    experiment = db.session.get(Experiment, experiment_id)
    truth = {name: {v.id: 0 for v in experiment.variants} for name in rates}
    conversations = db.session.scalars(sa.select(Conversation).where(Conversation.experiment_id == experiment_id)
                                       .order_by(Conversation.id)).all()
    by_visitor: dict[str, list[Conversation]] = {}
    for c in conversations:
        by_visitor.setdefault(c.visitor_id, []).append(c)
    for visitor, convs in by_visitor.items():
        position = next(v.position for v in experiment.variants if v.id == convs[0].variant_id)
        for name, per_arm in rates.items():
            if rng.random() < per_arm[position]:
                truth[name][convs[0].variant_id] += 1
                for i, conv in enumerate(convs[: rng.randint(1, len(convs))]):  # several events: one visitor still
                    for k in range(rng.randint(1, 2)):
                        db.session.add(GoalEvent(agent_id=agent_id, conversation_id=conv.id, visitor_id=visitor,
                                                 name=name, occurred_at=T0, experiment_id=experiment_id,
                                                 variant_id=conv.variant_id, variant_key=conv.variant_key,
                                                 event_id=f"{conv.id}-{name}-{i}-{k}"))
    db.session.commit()
    return truth


def test_goal_metrics_match_a_hand_count(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 60)
    truth = add_events(world.agent_id, experiment_id, {"booked_demo": (0.2, 0.45), "asked.price": (0.5, 0.5)})
    # Noise that must not count: an unstamped conversation's event, another experiment's.
    noise = db.session.scalar(sa.select(Conversation).where(Conversation.external_id == "noise"))
    db.session.add(GoalEvent(agent_id=world.agent_id, conversation_id=noise.id, visitor_id="control-0",
                             name="booked_demo", occurred_at=T0, event_id="n1"))
    db.session.add(GoalEvent(agent_id=world.agent_id, conversation_id=noise.id, visitor_id="control-0",
                             name="other_experiment_goal", occurred_at=T0, experiment_id=experiment_id + 99,
                             variant_id=12345, variant_key="x", event_id="n2"))
    db.session.commit()
    experiment = db.session.get(Experiment, experiment_id)
    out = results.compute(experiment)
    assert out.goal_metrics == ["goal:asked.price", "goal:booked_demo"]
    control, treatment = experiment.variants
    for name in ("booked_demo", "asked.price"):
        key = f"goal:{name}"
        assert out.totals[control.id].reached(key) == truth[name][control.id]
        assert out.totals[treatment.id].reached(key) == truth[name][treatment.id]
        assert out.metric(control, key)["value"] == truth[name][control.id] / 60
        expected = stats.compare(stats.ProportionStat(60, truth[name][control.id]),
                                 stats.ProportionStat(60, truth[name][treatment.id]))
        got = out.metric(treatment, key)
        assert got["lift"] == expected.lift and got["p_value"] == expected.p_value
    exported = out.as_dict()
    assert exported["goals"] == ["asked.price", "booked_demo"]
    assert exported["variants"][1]["goal_visitors"] == {n: truth[n][treatment.id] for n in ("asked.price", "booked_demo")}
    assert exported["variants"][1]["metrics"]["goal:booked_demo"]["lift"] == out.metric(treatment, "goal:booked_demo")["lift"]
    rows = [r for r in out.csv_rows() if r[5] == "goal:booked_demo"]
    assert [(r[1], r[6]) for r in rows] == [("control", truth["booked_demo"][control.id] / 60),
                                            ("treatment", truth["booked_demo"][treatment.id] / 60)]


def test_a_goal_only_one_arm_reached_reads_as_such(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 40)
    add_events(world.agent_id, experiment_id, {"booked_demo": (0.0, 0.5)})
    experiment = db.session.get(Experiment, experiment_id)
    out = results.compute(experiment)
    control, treatment = experiment.variants
    assert out.totals[control.id].reached("goal:booked_demo") == 0
    assert out.metric(treatment, "goal:booked_demo")["lift"] is None
    assert out.no_comparison(treatment, "goal:booked_demo") == (
        "In Control no visitor has reached the goal “booked_demo”: a relative change from 0 is undefined.")


def test_no_goal_events_no_goal_metrics(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, experiment_id, 5)
    out = results.compute(db.session.get(Experiment, experiment_id))
    assert out.goal_metrics == [] and out.as_dict()["goals"] == []
    assert {r[5] for r in out.csv_rows()[1:]} == set(results.METRICS) | {"review_good_rate"}


def test_a_goal_is_selectable_as_the_primary_metric_and_drives_the_decision(ctx, world):
    """SPEC §10.1/§13: goal:<name> is a primary metric once the agent's runtime has reported that goal; the results
    then put it first, decide on it, and say so in the exports."""
    from webapp.services.errors import ValidationError
    from webapp.services.experiments import experiments, metrics

    experiment_id = factories.experiment(world.agent_id, status="running")
    with pytest.raises(ValidationError) as refused:  # nobody has reported the goal yet
        experiments.update_experiment(world.owner_id, world.agent_id, experiment_id, {"primary_metric": "goal:booked_demo"})
    assert set(refused.value.fields) == {"primary_metric"}
    build(world.agent_id, experiment_id, 150)
    truth = add_events(world.agent_id, experiment_id, {"booked_demo": (0.1, 0.6)})
    experiment = db.session.get(Experiment, experiment_id)
    assert metrics.primary_metric_choices(experiment)["goal:booked_demo"] == "“booked_demo” goal rate"
    experiments.update_experiment(world.owner_id, world.agent_id, experiment_id,
                                  {"primary_metric": "goal:booked_demo", "engine": "sequential", "correction": "none"})
    experiment = db.session.get(Experiment, experiment_id)
    assert experiment.primary_metric == "goal:booked_demo"
    out = results.compute(experiment)
    assert list(out.ordered_metrics)[0] == "goal:booked_demo"
    control, treatment = experiment.variants
    expected = stats.compare(stats.ProportionStat(150, truth["booked_demo"][control.id]),
                             stats.ProportionStat(150, truth["booked_demo"][treatment.id]))
    assert out.metric(treatment, "goal:booked_demo")["lift"] == pytest.approx(expected.lift)
    decision = out.decision(treatment)  # on the goal: its figures, not the lead rate's
    assert "on “booked_demo” goal rate" in decision.reason
    exported = out.as_dict()
    assert exported["analysis"]["primary_metric"] == "goal:booked_demo"
    assert exported["variants"][1]["decision"] == decision.as_dict()
    primary_rows = [r for r in out.csv_rows()[1:] if r[out.CSV_HEADER.index("is_primary")]]
    assert {r[5] for r in primary_rows} == {"goal:booked_demo"}


def test_a_goal_of_the_agent_is_selectable_before_the_experiment_has_one(ctx, world):
    from webapp.services.experiments import experiments, metrics

    earlier = factories.experiment(world.agent_id, status="running", name="Earlier")
    build(world.agent_id, earlier, 3)
    add_events(world.agent_id, earlier, {"booked_demo": (1.0, 1.0)})
    draft = factories.experiment(world.agent_id, name="Next")
    experiments.update_experiment(world.owner_id, world.agent_id, draft, {"primary_metric": "goal:booked_demo"})
    experiment = db.session.get(Experiment, draft)
    assert "goal:booked_demo" in metrics.primary_metric_choices(experiment)
    out = results.compute(experiment)  # its primary goal shows even before its first event
    assert out.goal_metrics == ["goal:booked_demo"] and out.metric(experiment.variants[0], "goal:booked_demo")
