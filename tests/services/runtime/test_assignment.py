"""SPEC §5, rule by rule, through the runtime service (the API's one call)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Lead, Message, Variant, utcnow
from webapp.services.errors import Conflict
from webapp.services.runtime import service as runtime, store
from webapp.services.runtime.bucketing import assign_position


@pytest.fixture
def rt(ctx, world):
    """Send messages and leads as the world's runtime key would."""
    class Runtime:
        def message(self, conversation: str, visitor: str = "v1", role: str = "visitor", **extra):
            data = {"conversation_id": conversation, "visitor_id": visitor, "role": role, **extra}
            return runtime.record_message(world.workspace_id, world.agent_id, data).body

        def lead(self, conversation: str, visitor: str = "v1"):
            data = {"conversation_id": conversation, "visitor_id": visitor, "fields": {"email": "a@b.c"}}
            return runtime.record_lead(world.workspace_id, world.agent_id, data).body
    return Runtime()


def visitor_at(experiment_id: int, position: int, weights=(1, 1), prefix: str = "v") -> str:
    """A visitor id that bucketing sends to `position`."""
    return next(f"{prefix}{i}" for i in range(10_000)
                if assign_position(experiment_id, f"{prefix}{i}", weights) == position)


def conversation(external_id: str) -> Conversation:
    db.session.expire_all()
    return db.session.scalar(sa.select(Conversation).where(Conversation.external_id == external_id))


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def set_status(experiment_id: int, status: str, started_at: datetime | None = None) -> None:
    experiment = db.session.get(Experiment, experiment_id)
    experiment.status = status
    if started_at:
        experiment.started_at = started_at
    db.session.commit()


def test_no_experiment_runs_on_defaults_and_stays_unstamped(rt, world):
    body = rt.message("c1")
    assert body["experiment"] is None and body["variant"] is None
    assert body["persona"] == {"name": "Sam", "tone": "friendly"}
    assert "You are Sam" in body["system_prompt"] and "Tone: friendly." in body["system_prompt"]
    assert conversation("c1").variant_id is None and count(ExperimentAssignment) == 0

    exp = factories.experiment(world.agent_id, status="running")
    later = rt.message("c1")
    assert later["experiment"]["id"] == exp
    assert conversation("c1").experiment_id == exp


def test_first_visitor_message_buckets_inserts_the_row_and_stamps(rt, world):
    exp = factories.experiment(world.agent_id, weights=(1, 3), status="running")
    visitor = visitor_at(exp, 1, (1, 3))
    body = rt.message("c1", visitor)
    assert body["variant"]["key"] == "treatment"
    assert body["experiment"] == {"id": exp, "name": "Exp", "kind": "persona"}
    assert body["persona"] == {"name": "Persona treatment", "tone": "tone treatment"}
    row = db.session.scalar(sa.select(ExperimentAssignment))
    c = conversation("c1")
    assert (row.experiment_id, row.visitor_id, row.variant_key) == (exp, visitor, "treatment")
    assert (c.experiment_id, c.variant_id, c.variant_key) == (exp, row.variant_id, "treatment")
    assert db.session.scalar(sa.select(Message.variant_id)) == row.variant_id


def test_sticky_within_a_conversation_after_stop(rt, world):
    exp = factories.experiment(world.agent_id, status="running")
    visitor = visitor_at(exp, 1)
    first = rt.message("c1", visitor)
    set_status(exp, "stopped")
    later = rt.message("c1", visitor)
    assert later["variant"] == first["variant"] and later["persona"] == first["persona"]
    assert set(db.session.scalars(sa.select(Message.variant_id))) == {first["variant"]["id"]}


def test_sticky_within_a_conversation_after_delete(rt, world):
    exp = factories.experiment(world.agent_id, status="running")
    visitor = visitor_at(exp, 1)
    first = rt.message("c1", visitor)
    db.session.delete(db.session.get(Experiment, exp))
    db.session.commit()
    newer = factories.experiment(world.agent_id, status="running", name="Newer")

    later = rt.message("c1", visitor)
    assert later["experiment"] == {"id": exp, "name": None, "kind": None}
    assert later["variant"] == {"id": first["variant"]["id"], "key": "treatment", "name": None, "config": None}
    assert later["persona"] == {"name": "Sam", "tone": "friendly"}  # the variant no longer exists
    assert conversation("c1").experiment_id == exp
    assert set(db.session.scalars(sa.select(Message.variant_id))) == {first["variant"]["id"]}
    assert rt.message("c2", visitor)["experiment"]["id"] == newer


def test_returning_visitor_same_variant_while_running_defaults_once_stopped(rt, world):
    exp = factories.experiment(world.agent_id, status="running")
    visitor = visitor_at(exp, 1)
    first = rt.message("c1", visitor)
    assert rt.message("c2", visitor)["variant"] == first["variant"]
    assert count(ExperimentAssignment) == 1
    set_status(exp, "stopped")
    third = rt.message("c3", visitor)
    assert third["variant"] is None and third["persona"] == {"name": "Sam", "tone": "friendly"}
    assert conversation("c3").variant_id is None


def test_latest_started_running_experiment_wins_and_reuses_its_row(rt, world):
    now = utcnow()
    older = factories.experiment(world.agent_id, status="running", name="Older", started_at=now - timedelta(hours=1))
    latest = factories.experiment(world.agent_id, status="running", name="Latest", started_at=now)
    visitor = visitor_at(latest, 0)
    control, treatment = db.session.get(Experiment, latest).variants
    db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=latest, variant_id=treatment.id,
                                        variant_key="treatment", visitor_id=visitor))
    db.session.commit()
    body = rt.message("c1", visitor)
    assert body["experiment"]["id"] == latest and body["experiment"]["id"] != older
    assert body["variant"]["key"] == "treatment"  # the row, not the bucketing (which says control)
    assert count(ExperimentAssignment) == 1


def test_equal_started_at_ties_go_to_the_higher_id(rt, world):
    now = utcnow()
    factories.experiment(world.agent_id, status="running", started_at=now)
    higher = factories.experiment(world.agent_id, status="running", started_at=now)
    assert rt.message("c1")["experiment"]["id"] == higher


def test_resume_after_stop_keeps_the_returning_visitors_assignment(rt, world):
    exp = factories.experiment(world.agent_id, status="running")
    visitor = visitor_at(exp, 1)
    first = rt.message("c1", visitor)
    set_status(exp, "stopped")
    set_status(exp, "running", started_at=utcnow() + timedelta(seconds=1))
    assert rt.message("c2", visitor)["variant"] == first["variant"]
    assert count(ExperimentAssignment) == 1


def test_agent_messages_and_leads_never_assign(rt, world):
    exp = factories.experiment(world.agent_id, status="running")
    body = rt.message("c1", role="agent")
    assert body["variant"] is None and count(ExperimentAssignment) == 0
    lead = rt.lead("c1")
    assert lead["variant"] is None and count(ExperimentAssignment) == 0
    assert conversation("c1").variant_id is None

    stamped = rt.message("c1")
    assert stamped["experiment"]["id"] == exp
    reply = rt.message("c1", role="agent")
    assert reply["variant"] == stamped["variant"]
    assert set(db.session.scalars(sa.select(Message.variant_id).where(Message.role == "agent"))) == \
        {None, stamped["variant"]["id"]}
    assert rt.lead("c1")["variant"] == stamped["variant"]
    lead_row = db.session.scalars(sa.select(Lead).order_by(Lead.id.desc())).first()
    assert (lead_row.experiment_id, lead_row.variant_id, lead_row.variant_key) == \
        (exp, stamped["variant"]["id"], stamped["variant"]["key"])
    assert count(ExperimentAssignment) == 1


def test_cta_variant_is_reported_but_changes_no_persona(rt, world):
    factories.experiment(world.agent_id, kind="cta", status="running")
    body = rt.message("c1")
    assert body["variant"] is not None and body["experiment"]["kind"] == "cta"
    assert body["persona"] == {"name": "Sam", "tone": "friendly"}


def test_persona_variant_without_tone_keeps_the_agents_tone(rt, world):
    factories.experiment(world.agent_id, status="running", weights=(1,), keys=["solo"],
                         configs=[{"persona": {"name": "Ava"}}])
    assert rt.message("c1")["persona"] == {"name": "Ava", "tone": "friendly"}


def test_conversation_span_is_min_and_max_of_sent_at_even_out_of_order(rt):
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    rt.message("c1", sent_at=(t0 + timedelta(minutes=5)).isoformat())
    rt.message("c1", sent_at=t0.isoformat(), role="agent")
    rt.message("c1", sent_at=(t0 + timedelta(minutes=9)).isoformat())
    rt.message("c1", sent_at=(t0 + timedelta(minutes=2)).isoformat())
    c = conversation("c1")
    assert (c.started_at, c.last_message_at) == (t0, t0 + timedelta(minutes=9))


def test_replayed_message_id_answers_the_first_body_and_writes_nothing(rt, world):
    exp = factories.experiment(world.agent_id, status="running")
    first = rt.message("c1", message_id="m-1", text="hello")
    set_status(exp, "stopped")
    db.session.get(Experiment, exp).name = "Renamed"
    db.session.commit()
    result = runtime.record_message(world.workspace_id, world.agent_id,
                                    {"conversation_id": "c1", "visitor_id": "v1", "role": "visitor",
                                     "message_id": "m-1", "text": "hello"})
    assert result.replayed and result.body == first
    assert count(Message) == 1
    assert first["message_id"] == "m-1"
    assert len(rt.message("c1")["message_id"]) == 32  # generated when the runtime sends none


def test_an_assignment_inserted_between_lookup_and_write_wins(rt, world, monkeypatch):
    """The race the unique (experiment, visitor) settles: the lookup saw no row, a concurrent request then
    inserted one; the new conversation's write (one statement on PostgreSQL, a transaction on SQLite) meets the
    unique key and writes nothing, and the second read and decision take the winner's variant."""
    exp = factories.experiment(world.agent_id, status="running")
    visitor = visitor_at(exp, 0)
    rt.message("race-a", visitor=visitor)
    treatment = db.session.scalar(sa.select(Variant).where(Variant.experiment_id == exp, Variant.key == "treatment"))
    db.session.execute(sa.update(ExperimentAssignment).values(variant_id=treatment.id, variant_key="treatment"))
    db.session.commit()
    real_read = store.Store.read
    reads = []

    def first_read_misses_the_row(self, kind, caller, agent_id, **lookup):
        access, state = real_read(self, kind, caller, agent_id, **lookup)
        reads.append(kind)
        if len(reads) == 1:  # as if read just before the concurrent request committed its row
            state = dataclasses.replace(state, assigned=None)
        return access, state

    monkeypatch.setattr(store.Store, "read", first_read_misses_the_row)
    body = rt.message("race-b", visitor=visitor, text="hi")
    assert reads == ["message", "message"]  # the lost race, then the read that found the winner's row
    assert body["variant"]["key"] == "treatment"
    assert count(ExperimentAssignment) == 1
    stamped = conversation("race-b")
    assert (stamped.variant_id, stamped.visitor_messages, stamped.session_seconds) == (treatment.id, 1, 0.0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)
                             .where(Message.conversation_id == stamped.id, Message.variant_id == treatment.id)) == 1


@pytest.mark.parametrize("endpoint,write", [("message", "write_message"), ("lead", "write_lead"),
                                            ("event", "write_event"), ("feedback", "write_feedback")])
def test_a_write_that_keeps_losing_its_race_ends_in_409_after_a_bounded_number_of_rounds(
        ctx, world, rt, monkeypatch, endpoint, write):
    """Each lost race reads again and decides again; after service.ROUNDS of them the caller is told to retry."""
    rt.message("c-race")
    rounds = []
    monkeypatch.setattr(store.Store, write, lambda self, decision: rounds.append(decision) and None)
    call = {"message": lambda: rt.message("c-race"), "lead": lambda: rt.lead("c-race"),
            "event": lambda: runtime.record_event(world.workspace_id, world.agent_id,
                                                  {"conversation_id": "c-race", "visitor_id": "v1", "name": "signup"}),
            "feedback": lambda: runtime.record_feedback(world.workspace_id, world.agent_id, "c-race",
                                                        {"visitor_id": "v1", "rating": "up"})}[endpoint]
    with pytest.raises(Conflict, match="send the request again"):
        call()
    assert len(rounds) == runtime.ROUNDS
