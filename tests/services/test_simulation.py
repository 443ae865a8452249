import random

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Feedback, GoalEvent, Lead, Message
from webapp.services.runtime import bucketing
from webapp.services.experiments import results
from webapp.services import simulation
from webapp.services.errors import ValidationError
from tests import factories


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_bulk_traffic_is_assigned_and_stamped_like_the_runtime(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 3), status="running")
    summary = simulation.simulate_bulk(world.agent_id, 400, days=7, seed=42)
    assert summary.visitors == count(ExperimentAssignment) == 400
    assert summary.conversations == count(Conversation) >= 400
    assert summary.messages == count(Message) >= 2 * summary.conversations
    assert summary.leads == count(Lead)
    experiment = db.session.get(Experiment, experiment_id)
    weights = [v.weight for v in experiment.variants]
    for a in db.session.scalars(sa.select(ExperimentAssignment)):
        assert experiment.variants[bucketing.assign_position(experiment_id, a.visitor_id, weights)].id == a.variant_id
    unstamped = count(Conversation, Conversation.variant_id.is_(None))
    assert unstamped == 0
    mismatched = db.session.scalar(
        sa.select(sa.func.count()).select_from(Message).join(Conversation)
        .where(Message.variant_id != Conversation.variant_id))
    assert mismatched == 0
    # every conversation's first/last message times are its bounds
    bounds = db.session.execute(
        sa.select(Conversation.started_at, Conversation.last_message_at, sa.func.min(Message.sent_at),
                  sa.func.max(Message.sent_at)).join(Message).group_by(Conversation.id).limit(50)).all()
    assert all(row[0] == row[2] and row[1] == row[3] for row in bounds)
    assert summary.per_variant["treatment"] > summary.per_variant["control"]


def test_effect_multiplies_the_lead_rate(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    simulation.simulate_bulk(world.agent_id, 3000, days=14, effects=["treatment=2.5"], seed=7)
    out = results.compute(db.session.get(Experiment, experiment_id)).as_dict()
    control, treatment = out["variants"]
    assert control["metrics"]["lead_capture_rate"]["value"] == pytest.approx(0.08, abs=0.025)
    assert treatment["metrics"]["lead_capture_rate"]["value"] == pytest.approx(0.20, abs=0.04)
    assert treatment["metrics"]["lead_capture_rate"]["p_value"] < 0.001
    assert not out["srm"]["warning"]


def test_the_goal_event_and_its_effect(ctx, world):
    """SPEC §13: simulated visitors reach the goal "booked_demo" (one event at most, stamped like its conversation)
    at the base rate times the variant's --goal-effect; leads keep their draws."""
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    summary = simulation.simulate_bulk(world.agent_id, 3000, days=14, seed=7, goal_effects=["treatment=3"])
    assert summary.goals == count(GoalEvent) > 0
    assert count(GoalEvent, GoalEvent.name != "booked_demo") == 0
    per_visitor = db.session.execute(sa.select(GoalEvent.visitor_id, sa.func.count()).group_by(GoalEvent.visitor_id)
                                     .having(sa.func.count() > 1)).all()
    assert per_visitor == []
    mismatched = db.session.scalar(sa.select(sa.func.count()).select_from(GoalEvent).join(Conversation).where(
        (GoalEvent.variant_id != Conversation.variant_id) | (GoalEvent.visitor_id != Conversation.visitor_id)))
    assert mismatched == 0
    out = results.compute(db.session.get(Experiment, experiment_id)).as_dict()
    control, treatment = out["variants"]
    assert out["goals"] == ["booked_demo"]
    assert control["metrics"]["goal:booked_demo"]["value"] == pytest.approx(0.05, abs=0.02)
    assert treatment["metrics"]["goal:booked_demo"]["value"] == pytest.approx(0.15, abs=0.03)
    assert treatment["metrics"]["goal:booked_demo"]["p_value"] < 0.001
    with pytest.raises(ValidationError) as error:
        simulation.simulate_bulk(world.agent_id, 5, seed=8, goal="Booked Demo")
    assert "goal" in error.value.fields
    with pytest.raises(ValidationError) as error:
        simulation.simulate_bulk(world.agent_id, 5, seed=8, goal_effects=["nope=2"])
    assert "goal_effect" in error.value.fields
    assert simulation.simulate_bulk(world.agent_id, 5, seed=9, goal="").goals == 0


def test_same_seed_twice_is_refused_and_writes_nothing(ctx, world):
    factories.experiment(world.agent_id, status="running")
    simulation.simulate_bulk(world.agent_id, 10, seed=1)
    before = count(Message)
    with pytest.raises(ValidationError) as error:
        simulation.simulate_bulk(world.agent_id, 10, seed=1)
    assert "seed" in error.value.fields
    assert count(Message) == before


@pytest.mark.parametrize("kwargs,field", [
    ({"visitors": 0}, "visitors"),
    ({"visitors": 10, "days": 0}, "days"),
    ({"visitors": 10, "effects": ["nope=2"]}, "effect"),
    ({"visitors": 10, "effects": ["treatment=-1"]}, "effect"),
    ({"visitors": 10, "effects": ["treatment"]}, "effect"),
])
def test_bad_arguments(ctx, world, kwargs, field):
    factories.experiment(world.agent_id, status="running")
    with pytest.raises(ValidationError) as error:
        simulation.simulate_bulk(world.agent_id, **kwargs)
    assert field in error.value.fields
    assert count(Message) == 0


def test_no_running_experiment(ctx, world):
    factories.experiment(world.agent_id, status="draft")
    with pytest.raises(ValidationError) as error:
        simulation.simulate_bulk(world.agent_id, 10)
    assert "no running experiment" in error.value.fields["agent"]


def test_cli_simulate(runner, app, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    result = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "50", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "50 visitors" in result.output
    bad = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "-5"])
    assert bad.exit_code != 0 and "visitors" in bad.output.lower()
    bad = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "5", "--effect", "zzz=2"])
    assert bad.exit_code != 0 and "zzz" in bad.output
    bad = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "5", "--via-http",
                              "http://127.0.0.1:1"])
    assert bad.exit_code != 0 and "--api-key" in bad.output


def test_cli_simulate_over_http_is_a_real_runtime_client(runner, app, world, live_server):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
    result = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "12", "--days", "3",
                                 "--seed", "9", "--via-http", live_server, "--api-key", world.api_key,
                                 "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    assert "Sent 12 visitors" in result.output
    with app.app_context():
        assert count(ExperimentAssignment, ExperimentAssignment.experiment_id == experiment_id) == 12
        sent = int(result.output.split("visitors, ")[1].split(" messages")[0])
        assert count(Message) == sent
        visitor_messages = db.session.scalar(sa.select(sa.func.sum(Conversation.visitor_messages)))
        assert visitor_messages == count(Message, Message.role == "visitor")
        # Feedback went through the API too, and each agent greeting names the persona the runtime answered.
        rated = int(result.output.split("goal events, ")[1].split(" feedback")[0])
        assert rated == count(Feedback) > 0
        assert count(Message, Message.text.like("Hi, I'm Persona %! How can I help you today?")) == count(Conversation)
    bad = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "2", "--via-http",
                              live_server, "--api-key", "abx_wrong"])
    assert bad.exit_code != 0 and "401" in bad.output


def test_simulated_history_never_lies_in_the_future(ctx, world):
    from webapp.models import utcnow
    factories.experiment(world.agent_id, status="running")
    simulation.simulate_bulk(world.agent_id, 300, days=0.5, seed=8)
    assert db.session.scalar(sa.select(sa.func.max(Message.sent_at))) <= utcnow()
    assert db.session.scalar(sa.select(sa.func.max(Lead.captured_at))) <= utcnow()


def test_conversations_spread_over_the_window_without_piling_up_at_now():
    import random
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    plans = list(simulation.plan_visitors(20_000, 14, random.Random(2028), now=now))
    starts = [c.messages[0].sent_at for p in plans for c in p.conversations]

    def started_within(hours_ago_from: float, hours_ago_to: float) -> int:
        return sum(now - timedelta(hours=hours_ago_from) < s <= now - timedelta(hours=hours_ago_to) for s in starts)

    hourly = started_within(73, 1) / 72  # the steady rate of the last three days, the last hour left out
    assert 0.6 * hourly < started_within(1, 0) < 1.4 * hourly
    assert started_within(5 / 60, 0) < 0.3 * hourly  # no spike in the last minutes either
    last_day, day_before = started_within(24, 0), started_within(48, 24)
    assert 0.85 * day_before < last_day < 1.15 * day_before
    assert min(starts) >= now - timedelta(days=14)
    assert max(m.sent_at for p in plans for c in p.conversations for m in c.messages) <= now
    for p in plans:
        assert 1 <= len(p.conversations) <= 5 and 0 <= p.lead_conversation < len(p.conversations)
        for earlier, later in zip(p.conversations, p.conversations[1:]):
            assert later.messages[0].sent_at >= earlier.messages[-1].sent_at + timedelta(minutes=30)


def test_bulk_feedback_is_stamped_and_follows_its_effect_and_agents_name_their_persona(ctx, world):
    experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
    summary = simulation.simulate_bulk(world.agent_id, 2000, days=14, seed=8, feedback_effects=["treatment=1.5"])
    assert summary.feedback == count(Feedback) > 0
    assert count(Feedback) == pytest.approx(simulation.FEEDBACK_RATE * summary.conversations, rel=0.1)
    mismatched = db.session.scalar(sa.select(sa.func.count()).select_from(Feedback).join(
        Conversation, Conversation.id == Feedback.conversation_id).where(sa.or_(
            Feedback.variant_id != Conversation.variant_id, Feedback.visitor_id != Conversation.visitor_id)))
    assert mismatched == 0
    out = results.compute(db.session.get(Experiment, experiment_id)).as_dict()
    control, treatment = (v["metrics"]["positive_feedback_rate"] for v in out["variants"])
    assert control["value"] == pytest.approx(simulation.BASE_UP_RATE, abs=0.04)
    assert treatment["value"] == pytest.approx(0.9, abs=0.04) and treatment["p_value"] < 0.001
    # The agent's first message names the variant's persona ("Persona control", "Persona treatment").
    experiment = db.session.get(Experiment, experiment_id)
    for variant in experiment.variants:
        name = variant.config["persona"]["name"]
        greetings = count(Message, Message.variant_id == variant.id, Message.role == "agent",
                          Message.text == f"Hi, I'm {name}! How can I help you today?")
        assert greetings == count(Conversation, Conversation.variant_id == variant.id)
    assert count(Message, Message.text.contains("{persona}")) == 0


def test_feedback_does_not_change_a_seeds_visitors_or_leads(ctx, world):
    plans = list(simulation.plan_visitors(50, 7, random.Random(4)))
    again = list(simulation.plan_visitors(50, 7, random.Random(4)))
    assert [(p.visitor_id, p.lead_draw, len(p.conversations)) for p in plans] == [
        (p.visitor_id, p.lead_draw, len(p.conversations)) for p in again]
    assert [p.feedback(1.0) for p in plans] == [p.feedback(1.0) for p in again]


def test_a_bad_feedback_effect_names_its_flag(ctx, world):
    factories.experiment(world.agent_id, status="running")
    with pytest.raises(ValidationError) as error:
        simulation.prepare_bulk(world.agent_id, 5, feedback_effects=["nobody=2"])
    assert "feedback_effect" in error.value.fields


def assert_feedback_follows_the_planned_factors(factors: dict[str, float]) -> None:
    """Every conversation's feedback is the one its visitor's plan draws with the factor of the visitor's arm (the
    draws depend on the visitor id and the conversation's place only), and the up rates are ordered as the factors."""
    conversations = db.session.execute(sa.select(Conversation.visitor_id, Conversation.external_id,
                                                 Conversation.variant_key, Feedback.rating)
                                       .outerjoin(Feedback, Feedback.conversation_id == Conversation.id)).all()
    by_visitor: dict[str, list] = {}
    for row in conversations:
        by_visitor.setdefault(row.visitor_id, []).append(row)
    up, rated = {key: 0 for key in factors}, {key: 0 for key in factors}
    for visitor_id, rows in by_visitor.items():
        rows.sort(key=lambda row: int(row.external_id.rsplit("-c", 1)[1]))
        key = rows[0].variant_key
        plan = simulation.PlannedVisitor(visitor_id, [None] * len(rows), lead_draw=1.0, lead_conversation=0)
        assert [row.rating for row in rows] == plan.feedback(factors[key]), visitor_id
        up[key] += sum(row.rating == "up" for row in rows)
        rated[key] += sum(row.rating is not None for row in rows)
    assert all(rated.values())
    assert up["treatment"] == rated["treatment"]  # BASE_UP_RATE × 1.7 is above 1: every rating is up
    assert up["control"] / rated["control"] < 0.2  # × 0.1: 6 % up


FEEDBACK_EFFECTS = {"treatment": 1.7, "control": 0.1}
FEEDBACK_FLAGS = [arg for key, factor in FEEDBACK_EFFECTS.items() for arg in ("--feedback-effect", f"{key}={factor}")]


def test_cli_simulate_passes_the_feedback_effect_to_the_bulk_run(runner, app, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    result = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "300", "--seed", "5",
                                 *FEEDBACK_FLAGS])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert f"{count(Feedback)} feedback." in result.output
        assert_feedback_follows_the_planned_factors(FEEDBACK_EFFECTS)


def test_cli_simulate_over_http_sends_goal_events_and_feedback_with_their_effects(runner, app, world, live_server):
    """--via-http: the goal events the command reports are the rows, one per visitor at most, each with the event_id
    the command sent and the stamp of its conversation; --goal-effect 20 makes every treatment visitor reach the
    goal (5 % × 20 is above 1); --feedback-effect reaches the ratings."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
    result = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "40", "--days", "3",
                                 "--seed", "11", "--via-http", live_server, "--api-key", world.api_key,
                                 "--concurrency", "4", "--goal-effect", "treatment=20", *FEEDBACK_FLAGS])
    assert result.exit_code == 0, result.output
    reported = int(result.output.split("leads, ")[1].split(" goal events")[0])
    with app.app_context():
        events = db.session.execute(sa.select(GoalEvent, Conversation).join(
            Conversation, Conversation.id == GoalEvent.conversation_id)).all()
        assert len(events) == reported > 0
        for event, conversation in events:
            assert event.name == "booked_demo" and event.event_id == f"{conversation.external_id}-booked_demo"
            assert (event.experiment_id, event.variant_id, event.visitor_id) == (
                experiment_id, conversation.variant_id, conversation.visitor_id)
        reached = [conversation.visitor_id for _, conversation in events]
        assert len(set(reached)) == len(reached)
        treated = set(db.session.scalars(sa.select(ExperimentAssignment.visitor_id)
                                         .where(ExperimentAssignment.variant_key == "treatment")))
        assert treated and treated <= set(reached)
        assert f"{count(Feedback)} feedback over HTTP" in result.output
        assert_feedback_follows_the_planned_factors(FEEDBACK_EFFECTS)
