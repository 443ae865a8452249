"""The plan (SPEC §10.4): each baseline source, traffic, unequal weights, no traffic, reference numbers."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, GoalEvent, Lead, Message, utcnow
from webapp.services.experiments import analysis, experiments, plan as plans, results

NOW = datetime(2026, 12, 2, 15, 30, tzinfo=timezone.utc)


def assign(world, experiment: Experiment, per_arm: int, converted: tuple[int, ...], at: datetime) -> None:
    """`per_arm` visitors in each arm, assigned at `at`, with one conversation each; the first converted[i] of arm i
    leave a lead."""
    for position, variant in enumerate(experiment.variants):
        for i in range(per_arm):
            visitor = f"{variant.key}-{i}"
            db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment.id,
                                                variant_id=variant.id, variant_key=variant.key, visitor_id=visitor,
                                                assigned_at=at))
            db.session.add(Conversation(agent_id=world.agent_id, external_id=f"{visitor}-c", visitor_id=visitor,
                                        experiment_id=experiment.id, variant_id=variant.id, variant_key=variant.key,
                                        started_at=at, last_message_at=at, visitor_messages=1,
                                        lead_count=int(i < converted[position])))
    db.session.commit()


def history(world, visitors: int, with_lead: int, at: datetime, messages: int = 2) -> None:
    """Unstamped conversations of the agent (no experiment ran): their counters stay 0, messages and leads count."""
    for i in range(visitors):
        conversation = Conversation(agent_id=world.agent_id, external_id=f"h-{at:%j}-{i}", visitor_id=f"h-{i}",
                                    started_at=at, last_message_at=at + timedelta(seconds=60 + i))
        db.session.add(conversation)
        db.session.flush()
        for k in range(messages + i % 2):
            db.session.add(Message(conversation_id=conversation.id, role="visitor", text="hi", sent_at=at))
        db.session.add(Message(conversation_id=conversation.id, role="agent", text="hello", sent_at=at))
        if i < with_lead:
            db.session.add(Lead(agent_id=world.agent_id, conversation_id=conversation.id, visitor_id=f"h-{i}",
                                fields={}, captured_at=at))
    db.session.commit()


def plan_of(experiment_id: int, now: datetime = NOW) -> plans.Plan:
    return results.compute(db.session.get(Experiment, experiment_id), now=now).plan


def test_the_control_is_the_baseline_once_it_has_30_visitors_and_variation(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running", started_at=NOW - timedelta(days=3))
    assign(world, db.session.get(Experiment, experiment_id), 40, (4, 8), NOW - timedelta(days=2))
    plan = plan_of(experiment_id)
    assert plan.baseline == plans.Baseline(0.1, 0.1 * 0.9, "control")
    assert plan.visitors_now == 80 and plan.metric == "lead_capture_rate"


def test_a_thin_control_falls_back_to_the_agents_history_before_the_start(ctx, world):
    start = NOW - timedelta(days=1)
    history(world, 50, 5, start - timedelta(days=3))
    history(world, 40, 40, start + timedelta(hours=2))  # after the start: not history
    history(world, 40, 40, start - timedelta(days=29))  # before the 28 days: not history
    experiment_id = factories.experiment(world.agent_id, status="running", started_at=start)
    assign(world, db.session.get(Experiment, experiment_id), 10, (1, 2), start)
    plan = plan_of(experiment_id)
    assert plan.baseline.source == "agent_history"
    assert plan.baseline.mean == pytest.approx(5 / 50)


def test_the_history_of_a_ratio_metric_counts_messages_of_unstamped_conversations(ctx, world):
    history(world, 50, 0, NOW - timedelta(days=2), messages=2)
    experiment_id = factories.experiment(world.agent_id, primary_metric="messages_per_conversation")
    plan = plan_of(experiment_id)
    assert plan.baseline.source == "agent_history"
    assert plan.baseline.mean == pytest.approx((25 * 2 + 25 * 3) / 50)  # every other conversation has 3
    assert plan.baseline.variance > 0


def test_the_history_of_a_goal_counts_the_visitors_who_reached_it(ctx, world):
    """A goal as the primary metric had no baseline until the control had events of its own."""
    history(world, 50, 0, NOW - timedelta(days=2))
    conversations = db.session.scalars(sa.select(Conversation).where(Conversation.agent_id == world.agent_id)
                                       .order_by(Conversation.id)).all()
    for i, conversation in enumerate(conversations[:10]):  # 10 of 50 visitors; the first one twice
        for k in range(2 if i == 0 else 1):
            db.session.add(GoalEvent(agent_id=world.agent_id, conversation_id=conversation.id,
                                     visitor_id=conversation.visitor_id, name="booked_demo",
                                     occurred_at=conversation.started_at, event_id=f"e-{i}-{k}"))
    db.session.add(GoalEvent(agent_id=world.agent_id, conversation_id=conversations[20].id,
                             visitor_id=conversations[20].visitor_id, name="signed_up",
                             occurred_at=conversations[20].started_at, event_id="other"))
    db.session.commit()
    plan = plan_of(factories.experiment(world.agent_id, primary_metric="goal:booked_demo"))
    assert plan.baseline.source == "agent_history"
    assert plan.baseline.mean == pytest.approx(10 / 50) and plan.visitors_per_arm is not None
    assert plan_of(factories.experiment(world.agent_id, primary_metric="goal:never_seen")).baseline is None


def test_a_typed_rate_is_the_baseline_of_a_lead_capture_rate_without_data(ctx, world):
    experiment_id = factories.experiment(world.agent_id, baseline_rate=0.05)
    plan = plan_of(experiment_id)
    assert plan.baseline == plans.Baseline(0.05, 0.05 * 0.95, "typed")


def test_without_any_baseline_there_is_no_plan_and_it_says_why(ctx, world):
    experiment_id = factories.experiment(world.agent_id)
    plan = plan_of(experiment_id)
    assert plan.baseline is None and plan.visitors_needed is None and plan.days_remaining is None
    assert "No baseline for the lead capture rate" in plan.reason and "baseline rate" in plan.reason
    exported = plan.as_dict()
    assert exported["visitors_per_arm"] is None and exported["reason"] == plan.reason


def test_a_typed_rate_serves_the_lead_capture_rate_only(ctx, world):
    experiment_id = factories.experiment(world.agent_id, baseline_rate=0.05, primary_metric="session_length")
    plan = plan_of(experiment_id)
    assert plan.baseline is None and "lead capture rate only" in plan.reason


@pytest.mark.parametrize("engine, per_arm", [("fixed", 15612), ("bayesian", 15612), ("sequential", 44840)])
def test_reference_numbers(ctx, world, engine, per_arm):
    """Baseline 10 %, MDE 10 %, power 0.80, α 0.05 (N* 5000): GrowthBook's power formula (SPEC §10.4)."""
    experiment_id = factories.experiment(world.agent_id, baseline_rate=0.10, engine=engine, mde=0.10, power=0.80)
    plan = plan_of(experiment_id)
    assert (plan.visitors_per_arm, plan.visitors_needed) == (per_arm, 2 * per_arm)


def test_unequal_weights_size_the_plan_by_the_smallest_arm(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(3, 1), baseline_rate=0.10, mde=0.10)
    plan = plan_of(experiment_id)
    assert plan.visitors_needed == math.ceil(15612 / 0.25)
    three = factories.experiment(world.agent_id, weights=(2, 1, 1), baseline_rate=0.10, mde=0.10)
    assert plan_of(three).visitors_needed == 4 * 15612


def test_no_traffic_gives_no_days_remaining(ctx, world):
    experiment_id = factories.experiment(world.agent_id, baseline_rate=0.10)
    plan = plan_of(experiment_id)
    assert plan.visitors_per_day == 0 and plan.days_remaining is None
    assert plan.mde_reachable == {14: None, 28: None}


def test_a_draft_takes_the_agents_new_visitors_of_the_last_28_days(ctx, world):
    history(world, 56, 6, NOW - timedelta(days=10))
    history(world, 30, 0, NOW - timedelta(days=40))  # h-0…h-29 seen before: not new in the window
    experiment_id = factories.experiment(world.agent_id, baseline_rate=0.10, mde=0.10)
    plan = plan_of(experiment_id)
    assert plan.traffic_source == "agent"
    assert plan.visitors_per_day == pytest.approx(26 / 28)
    assert plan.baseline.source == "agent_history"
    assert plan.days_remaining == math.ceil(plan.visitors_needed / (26 / 28))


def test_an_agent_younger_than_28_days_divides_its_new_visitors_by_its_own_days(ctx, world):
    history(world, 140, 7, NOW - timedelta(days=14))  # the agent's first conversations, 14 days ago
    plan = plan_of(factories.experiment(world.agent_id, baseline_rate=0.10, mde=0.10))
    assert plan.traffic_source == "agent" and plan.traffic_days == pytest.approx(14)
    assert plan.visitors_per_day == pytest.approx(140 / 14)


def test_an_agent_a_few_hours_old_counts_at_least_one_day(ctx, world):
    history(world, 12, 0, NOW - timedelta(hours=3))
    plan = plan_of(factories.experiment(world.agent_id, baseline_rate=0.10))
    assert plan.traffic_days == 1 and plan.visitors_per_day == pytest.approx(12)


def test_a_running_experiment_takes_its_last_full_days(ctx, world):
    start = NOW - timedelta(days=10)
    experiment_id = factories.experiment(world.agent_id, status="running", started_at=start, baseline_rate=0.10,
                                         mde=0.10)
    experiment = db.session.get(Experiment, experiment_id)
    midnight = NOW.replace(hour=0, minute=30)
    assign(world, experiment, 35, (3, 4), midnight - timedelta(days=3))  # 70 in the last 7 full days
    for variant in experiment.variants:  # today's partial day and 8 days ago: not counted
        for i, at in enumerate((NOW - timedelta(minutes=5), midnight - timedelta(days=8))):
            db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id,
                                                variant_id=variant.id, variant_key=variant.key,
                                                visitor_id=f"x-{variant.key}-{i}", assigned_at=at))
    db.session.commit()
    plan = plan_of(experiment_id)
    assert plan.traffic_source == "experiment" and plan.visitors_per_day == pytest.approx(70 / 7)
    assert plan.visitors_now == 74 and plan.baseline.source == "control"
    assert plan.days_remaining == math.ceil((plan.visitors_needed - 74) / 10)
    assert plan.progress == pytest.approx(74 / plan.visitors_needed)
    # 70 per arm in 14 days is below q²σ²/μ² ≈ 89 (baseline 3 of 37): no lift is detectable; 140 in 28 days is
    assert plan.mde_reachable[14] is None and plan.mde_reachable[28] > 0


def test_an_experiment_younger_than_a_full_day_takes_the_agents_traffic(ctx, world):
    history(world, 28, 3, NOW - timedelta(days=5))
    experiment_id = factories.experiment(world.agent_id, status="running", started_at=NOW - timedelta(hours=20),
                                         baseline_rate=0.10)
    assert plan_of(experiment_id).traffic_source == "agent"


def test_the_planned_sample_reached_gives_0_days(ctx, world):
    plan = plans.make_plan(analysis.Settings(engine="fixed", mde=0.5), [1, 1], plans.Baseline(0.1, 0.09, "typed"),
                           10_000, plans.Traffic(100, "experiment", 7))
    assert plan.reached and plan.days_remaining == 0 and plan.progress > 1


@pytest.mark.parametrize("start, end, days", [
    (datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc), datetime(2026, 12, 2, 0, 0, tzinfo=timezone.utc), 1),
    (datetime(2026, 12, 1, 0, 1, tzinfo=timezone.utc), datetime(2026, 12, 2, 23, 0, tzinfo=timezone.utc), 0),
    (datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc), datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc), 7),
])
def test_full_days(start, end, days):
    assert plans.full_days(start, end)[1] == days


def test_a_stopped_and_resumed_experiment_keeps_its_own_traffic(ctx, world):
    """The full days count from its first assignment, not from its latest start (which a resume moves to now)."""
    now = utcnow()
    experiment_id = factories.experiment(world.agent_id, status="running", started_at=now - timedelta(days=14),
                                         baseline_rate=0.10, mde=0.10)
    experiment = db.session.get(Experiment, experiment_id)
    for day in range(1, 15):
        assign_day = now.replace(hour=12, minute=0) - timedelta(days=day)
        for variant in experiment.variants:
            for i in range(5):
                db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=experiment_id,
                                                    variant_id=variant.id, variant_key=variant.key,
                                                    visitor_id=f"{variant.key}-{day}-{i}", assigned_at=assign_day))
    db.session.commit()
    before = plan_of(experiment_id, now)
    assert (before.traffic_source, before.visitors_per_day) == ("experiment", pytest.approx(10))
    experiments.stop_experiment(world.owner_id, world.agent_id, experiment_id)
    experiments.start_experiment(world.owner_id, world.agent_id, experiment_id)
    after = plan_of(experiment_id, utcnow())
    assert db.session.get(Experiment, experiment_id).started_at >= now
    assert (after.traffic_source, after.visitors_per_day) == ("experiment", pytest.approx(10))
