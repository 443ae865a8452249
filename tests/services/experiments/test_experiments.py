"""SPEC §3 in the service layer: validation, lifecycle, the one-active rule, promote, duplicate, delete, audit."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import (Agent, AuditEvent, Conversation, Experiment, ExperimentAssignment, Lead, Message, Variant,
                           utcnow)
from webapp.services.experiments import experiments
from webapp.services.errors import Conflict, Forbidden, NotFound, ValidationError
from webapp.services.runtime.persona import effective_persona, system_prompt


def persona(name, tone=None):
    p = {"name": name}
    if tone is not None:
        p["tone"] = tone
    return {"persona": p}


def arm(key, weight=50, config=None, name=None, **extra):
    return {"key": key, "name": key.title() if name is None else name, "weight": weight,
            "config": persona(key.title()) if config is None else config, **extra}


def deep(levels: int) -> list:
    """`levels` lists inside one another, built without recursion."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def data(kind="persona", variants=None, **extra):
    return {"name": "Warmer greeting", "kind": kind, "hypothesis": "Warmth converts",
            "variants": variants if variants is not None else [arm("control"), arm("treatment")], **extra}


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def experiment_events() -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.target_type.in_(["experiment", "agent"]),
                                                              AuditEvent.action != "agent.created"))


def actions(experiment_id: int) -> list[str]:
    return [e.action for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.target_type == "experiment", AuditEvent.target_id == experiment_id)
        .order_by(AuditEvent.id))]


# --- create and validation ----------------------------------------------------------------------


def test_create_writes_a_draft_with_its_arms_and_an_audit_row(ctx, world):
    exp = experiments.create_experiment(world.owner_id, world.agent_id, data(variants=[
        arm("control", 1), arm("treatment", "3", config=json.dumps(persona("Aria", "warm")))]))
    assert (exp.status, exp.kind, exp.name) == ("draft", "persona", "Warmer greeting")
    assert exp.created_by_id == world.owner_id
    assert [(v.key, v.weight, v.position) for v in exp.variants] == [("control", 1, 0), ("treatment", 3, 1)]
    assert exp.variants[1].config == persona("Aria", "warm")
    assert actions(exp.id) == ["experiment.created"]


def test_default_variants_start_with_control_and_treatment_at_50_50(ctx, world):
    rows = experiments.default_variants(world.agent_id, "persona")
    assert [(r["key"], r["weight"]) for r in rows] == [("control", 50), ("treatment", 50)]
    assert rows[0]["config"] == persona("Sam", "friendly")  # control = the agent's current persona
    assert experiments.default_variants(world.agent_id, "cta")[0]["config"] == {}


def test_persona_fields_win_over_the_raw_json_and_empty_tone_keeps_the_agents(ctx, world):
    exp = experiments.create_experiment(world.admin_id, world.agent_id, data(variants=[
        arm("control", config='{"persona": {"name": "Old", "tone": "old"}, "extra": 1}', persona_name=" Zed ",
            persona_tone="dry"),
        arm("treatment", config="", persona_name="Aria", persona_tone=""),
    ]))
    assert exp.variants[0].config == {"persona": {"name": "Zed", "tone": "dry"}, "extra": 1}
    assert exp.variants[1].config == {"persona": {"name": "Aria"}}


@pytest.mark.parametrize("json_tone,form_tone,stored", [
    (None, None, None),          # absent: the agent's tone
    (None, "", None),            # a blank form field keeps the JSON's (absent)
    ("", None, ""),              # "" on purpose: no tone at all (SPEC §3: 0–200 characters)
    ("", "  ", ""),              # …and a blank form field leaves it so (re-saving a draft keeps its meaning)
    ("   ", None, ""),           # blanks trim to the same ""
    (" dry ", None, "dry"),
    ("", "warm", "warm"),        # a non-blank field wins
])
def test_a_variant_tone_is_absent_or_a_string_that_replaces_the_agents(ctx, world, json_tone, form_tone, stored):
    config = {"persona": {"name": "Aria", **({} if json_tone is None else {"tone": json_tone})}}
    extra = {} if form_tone is None else {"persona_tone": form_tone}
    exp = experiments.create_experiment(world.admin_id, world.agent_id, data(variants=[
        arm("control"), arm("treatment", config=json.dumps(config), **extra)]))
    persona_config = exp.variants[1].config["persona"]
    assert persona_config.get("tone", None) == stored and ("tone" in persona_config) == (stored is not None)
    effective = effective_persona("Sam", "friendly", "persona", exp.variants[1].config)
    assert effective.tone == ("friendly" if stored is None else stored)
    prompt = system_prompt(effective, "Acme", "Be helpful.")
    assert ("Tone:" in prompt) == bool(effective.tone) and f"Tone: {effective.tone}." in prompt or not effective.tone


@pytest.mark.parametrize("variants,field", [
    ([arm("control")], "variants"),
    ([arm(f"v{i}") for i in range(11)], "variants"),
    ([], "variants"),
    ([arm("control"), arm("control")], "variants-1-key"),
    ([arm("control"), arm("Not a slug!")], "variants-1-key"),
    ([arm("control"), arm("")], "variants-1-key"),
    ([arm("control"), arm("treatment", 0)], "variants-1-weight"),
    ([arm("control"), arm("treatment", -5)], "variants-1-weight"),
    ([arm("control"), arm("treatment", "-5")], "variants-1-weight"),
    ([arm("control"), arm("treatment", "1.5")], "variants-1-weight"),
    ([arm("control"), arm("treatment", 1.5)], "variants-1-weight"),
    ([arm("control"), arm("treatment", "abc")], "variants-1-weight"),
    ([arm("control"), arm("treatment", "")], "variants-1-weight"),
    ([arm("control"), arm("treatment", True)], "variants-1-weight"),
    ([arm("control"), arm("treatment", 10_001)], "variants-1-weight"),
    ([arm("control"), arm("treatment", "9" * 5000)], "variants-1-weight"),
    ([arm("control"), arm("treatment", config="{not json")], "variants-1-config"),
    ([arm("control"), arm("treatment", config="[1, 2]")], "variants-1-config"),
    ([arm("control"), arm("treatment", config="null")], "variants-1-config"),
    ([arm("control"), arm("treatment", config={})], "variants-1-config"),  # persona without a name
    ([arm("control"), arm("treatment", config={"persona": "Aria"})], "variants-1-config"),
    ([arm("control"), arm("treatment", config=persona("A" * 61))], "variants-1-config"),
    ([arm("control"), arm("treatment", config=persona("Aria", "t" * 201))], "variants-1-config"),
    ([arm("control"), arm("treatment", config={}, persona_name="", persona_tone="")], "variants-1-persona_name"),
    ([arm("control"), arm("treatment", config={}, persona_name="A" * 61)], "variants-1-persona_name"),
    ([arm("control"), arm("treatment", persona_tone="t" * 201)], "variants-1-persona_tone"),
    ([arm("control"), arm("treatment", config={**persona("Aria"), "blob": "x" * 8200})], "variants-1-config"),
    ([arm("control"), arm("treatment", config='{"persona": {"name": "Aria"}, "a": ' + "[" * 20 + "]" * 20 + "}")], "variants-1-config"),
    ([arm("control"), arm("treatment", config={**persona("Aria"), "a": deep(20)})], "variants-1-config"),
    ([arm("control"), arm("treatment", config={**persona("Aria"), "a": deep(5000)})], "variants-1-config"),
    ([arm("control"), arm("treatment", config=persona("Q\x00R"))], "variants-1-config"),
    ([arm("control"), arm("treatment", config={**persona("Aria"), "x": [{"y\x00": 1}]})], "variants-1-config"),
    ([arm("control"), arm("treatment", config='{"persona": {"name": "Aria", "tone": "a\\u0000"}}')],
     "variants-1-config"),
    ([arm("control"), arm("treatment", name="")], "variants-1-name"),
    ([arm("control"), arm("treatment", name="n" * 121)], "variants-1-name"),
])
def test_bad_variants_are_refused_on_their_field_and_write_nothing(ctx, world, variants, field):
    with pytest.raises(ValidationError) as error:
        experiments.create_experiment(world.owner_id, world.agent_id, data(variants=variants))
    assert field in error.value.fields, error.value.fields
    assert count(Experiment) == 0 and count(Variant) == 0 and experiment_events() == 0


@pytest.mark.parametrize("changes,field", [
    ({"name": ""}, "name"),
    ({"name": "n" * 121}, "name"),
    ({"hypothesis": "h" * 2001}, "hypothesis"),
    ({"kind": "banner"}, "kind"),
])
def test_bad_experiment_fields_are_refused(ctx, world, changes, field):
    with pytest.raises(ValidationError) as error:
        experiments.create_experiment(world.owner_id, world.agent_id, {**data(), **changes})
    assert field in error.value.fields
    assert count(Experiment) == 0


def test_cta_and_trigger_configs_are_free_form_objects(ctx, world):
    exp = experiments.create_experiment(world.owner_id, world.agent_id, data(kind="cta", variants=[
        arm("control", config=""), arm("button", config='{"label": "Book a demo", "colour": "green"}')]))
    assert [v.config for v in exp.variants] == [{}, {"label": "Book a demo", "colour": "green"}]
    assert experiments.shares([1, 1]) == experiments.shares([50, 50]) == [50.0, 50.0]


def test_configs_nest_up_to_20_levels(ctx, world):
    exp = experiments.create_experiment(world.owner_id, world.agent_id, data(kind="trigger", variants=[
        arm("control", config={"a": deep(19)}), arm("late", config='{"a": ' + "[" * 19 + "]" * 19 + "}")]))
    assert [v.config for v in exp.variants] == [{"a": deep(19)}] * 2


def test_config_just_under_8_kb_is_accepted(ctx, world):
    big = {**persona("Aria"), "notes": "x" * (8192 - 40)}
    assert len(json.dumps(big, separators=(",", ":"))) <= 8192
    exp = experiments.create_experiment(world.owner_id, world.agent_id, data(variants=[arm("control"),
                                                                                     arm("treatment", config=big)]))
    assert exp.variants[1].config == big


# --- roles --------------------------------------------------------------------------------------


def test_editors_may_not_mutate_and_outsiders_get_404(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    mutations = [
        lambda actor: experiments.create_experiment(actor, world.agent_id, data()),
        lambda actor: experiments.update_experiment(actor, world.agent_id, exp_id, {"name": "X"}),
        lambda actor: experiments.start_experiment(actor, world.agent_id, exp_id),
        lambda actor: experiments.stop_experiment(actor, world.agent_id, exp_id),
        lambda actor: experiments.delete_experiment(actor, world.agent_id, exp_id),
        lambda actor: experiments.duplicate_experiment(actor, world.agent_id, exp_id),
        lambda actor: experiments.promote_variant(actor, world.agent_id, exp_id, "treatment"),
    ]
    for mutate in mutations:
        with pytest.raises(Forbidden):
            mutate(world.editor_id)
        with pytest.raises(NotFound):
            mutate(world.outsider_id)
    assert db.session.get(Experiment, exp_id).status == "running"
    assert count(Experiment) == 1 and experiment_events() == 0
    assert experiments.detail(world.editor_id, world.agent_id, exp_id).experiment.id == exp_id


def test_an_experiment_of_another_agent_is_not_found(ctx, world):
    other = factories.experiment(world.other_agent_id)
    second_agent = factories.agent(world.workspace_id, name="Second")
    mine = factories.experiment(second_agent)
    with pytest.raises(NotFound):
        experiments.detail(world.owner_id, world.agent_id, mine)  # right workspace, wrong agent
    with pytest.raises(NotFound):
        experiments.stop_experiment(world.owner_id, world.agent_id, other)
    with pytest.raises(NotFound):
        experiments.detail(world.owner_id, world.agent_id, 999_999)


@pytest.mark.parametrize("role", ["owner", "admin", "editor"])
def test_a_foreign_or_unknown_experiment_is_not_found_before_the_role_is_checked(ctx, world, role):
    """SPEC §2: ids do not leak. Another workspace's experiment, another agent's, or none at all: 404 for every role,
    the editor included (it would be a 403 on an experiment of its own agent)."""
    actor = {"owner": world.owner_id, "admin": world.admin_id, "editor": world.editor_id}[role]
    foreign = [factories.experiment(world.other_agent_id, status="running"),
               factories.experiment(factories.agent(world.workspace_id, name="Second"), status="running"),
               999_999]
    before = count(Experiment)
    for exp_id in foreign:
        for act in (lambda: experiments.experiment_for(actor, world.agent_id, exp_id, "manage_experiments"),
                    lambda: experiments.update_experiment(actor, world.agent_id, exp_id, {"name": "X"}),
                    lambda: experiments.start_experiment(actor, world.agent_id, exp_id, "anyway"),
                    lambda: experiments.stop_experiment(actor, world.agent_id, exp_id),
                    lambda: experiments.delete_experiment(actor, world.agent_id, exp_id),
                    lambda: experiments.duplicate_experiment(actor, world.agent_id, exp_id),
                    lambda: experiments.promote_variant(actor, world.agent_id, exp_id, "treatment")):
            with pytest.raises(NotFound):
                act()
            db.session.rollback()
    assert count(Experiment) == before and experiment_events() == 0
    assert {e.status for e in db.session.scalars(sa.select(Experiment))} == {"running"}


# --- lifecycle ----------------------------------------------------------------------------------


def test_draft_starts_stops_and_resumes_with_a_new_started_at(ctx, world):
    exp_id = factories.experiment(world.agent_id)
    exp = experiments.start_experiment(world.owner_id, world.agent_id, exp_id)
    first_start = exp.started_at
    assert exp.status == "running" and first_start is not None and exp.stopped_at is None
    assert experiments.active_experiment(world.agent_id).id == exp_id
    exp = experiments.stop_experiment(world.admin_id, world.agent_id, exp_id)
    assert exp.status == "stopped" and exp.stopped_at is not None
    assert experiments.active_experiment(world.agent_id) is None
    exp = experiments.start_experiment(world.owner_id, world.agent_id, exp_id)
    assert exp.status == "running" and exp.started_at > first_start and exp.stopped_at is None
    assert actions(exp_id) == ["experiment.started", "experiment.stopped", "experiment.resumed"]


@pytest.mark.parametrize("status,call", [
    ("running", "start"),
    ("draft", "stop"),
    ("stopped", "stop"),
    ("running", "delete"),
])
def test_refused_transitions_change_nothing(ctx, world, status, call):
    exp_id = factories.experiment(world.agent_id, status=status)
    before = db.session.get(Experiment, exp_id)
    snapshot = (before.status, before.started_at, before.stopped_at)
    fn = {"start": experiments.start_experiment, "stop": experiments.stop_experiment,
          "delete": experiments.delete_experiment}[call]
    with pytest.raises(Conflict):
        fn(world.owner_id, world.agent_id, exp_id)
    db.session.expire_all()
    after = db.session.get(Experiment, exp_id)
    assert (after.status, after.started_at, after.stopped_at) == snapshot
    assert experiment_events() == 0


def test_active_is_the_latest_started_running_one_ties_to_higher_id(ctx, world):
    now = utcnow()
    older = factories.experiment(world.agent_id, status="running", started_at=now - timedelta(hours=1))
    newer = factories.experiment(world.agent_id, status="running", started_at=now)
    assert experiments.active_experiment(world.agent_id).id == newer
    tie = factories.experiment(world.agent_id, status="running", started_at=now)
    assert experiments.active_experiment(world.agent_id).id == tie
    factories.experiment(world.agent_id, status="stopped", started_at=now + timedelta(hours=1))
    assert experiments.active_experiment(world.agent_id).id == tie
    rows = experiments.list_for_agent(world.editor_id, world.agent_id)
    assert [r.experiment.id for r in rows if r.is_active] == [tie]
    assert older in [r.experiment.id for r in rows]


def test_starting_while_another_runs_asks_first(ctx, world):
    running = factories.experiment(world.agent_id, status="running", name="Current")
    draft = factories.experiment(world.agent_id, name="Next")
    with pytest.raises(experiments.NeedsConfirmation) as error:
        experiments.start_experiment(world.owner_id, world.agent_id, draft)
    assert [e.id for e in error.value.running] == [running] and "Current" in error.value.message
    db.session.expire_all()
    assert db.session.get(Experiment, draft).status == "draft"
    with pytest.raises(ValidationError):
        experiments.start_experiment(world.owner_id, world.agent_id, draft, "sideways")


def test_stop_others_and_start_happens_in_one_step(ctx, world):
    running = factories.experiment(world.agent_id, status="running", name="Current")
    draft = factories.experiment(world.agent_id, name="Next")
    experiments.start_experiment(world.owner_id, world.agent_id, draft, "stop_others")
    db.session.expire_all()
    assert db.session.get(Experiment, running).status == "stopped"
    assert db.session.get(Experiment, draft).status == "running"
    assert experiments.active_experiment(world.agent_id).id == draft
    assert actions(running) == ["experiment.stopped"]
    stop_event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.target_type == "experiment",
                                                               AuditEvent.target_id == running))
    assert stop_event.details["replaced_by"] == draft


def test_stop_and_start_is_atomic_when_the_start_fails(ctx, world, monkeypatch):
    running = factories.experiment(world.agent_id, status="running")
    draft = factories.experiment(world.agent_id)
    original = experiments.audit.record

    def fail_on_start(workspace_id, actor_id, action, *args, **kwargs):
        if action == "experiment.started":
            raise RuntimeError("crash between the stop and the start")
        return original(workspace_id, actor_id, action, *args, **kwargs)

    monkeypatch.setattr(experiments.audit, "record", fail_on_start)
    with pytest.raises(RuntimeError):
        experiments.start_experiment(world.owner_id, world.agent_id, draft, "stop_others")
    db.session.rollback()
    assert db.session.get(Experiment, running).status == "running"
    assert db.session.get(Experiment, draft).status == "draft"


def test_start_anyway_runs_both_and_the_new_one_is_active(ctx, world):
    running = factories.experiment(world.agent_id, status="running", started_at=utcnow() - timedelta(minutes=5))
    draft = factories.experiment(world.agent_id)
    experiments.start_experiment(world.owner_id, world.agent_id, draft, "anyway")
    db.session.expire_all()
    assert db.session.get(Experiment, running).status == "running"
    assert experiments.active_experiment(world.agent_id).id == draft
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.target_type == "experiment",
                                                          AuditEvent.target_id == draft))
    assert event.details["mode"] == "anyway" and event.details["others"][0]["id"] == running


# --- edit and the freeze ------------------------------------------------------------------------


def test_draft_arms_are_editable_and_the_edit_is_audited(ctx, world):
    exp = experiments.create_experiment(world.owner_id, world.agent_id, data())
    experiments.update_experiment(world.owner_id, world.agent_id, exp.id, {
        "name": "Renamed", "variants": [arm("control", 1), arm("treatment", 2), arm("bold", 3)]})
    db.session.expire_all()
    exp = db.session.get(Experiment, exp.id)
    assert exp.name == "Renamed" and [v.weight for v in exp.variants] == [1, 2, 3]
    assert count(Variant) == 3
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "experiment.edited"))
    assert event.details["name"] == {"from": "Warmer greeting", "to": "Renamed"} and "arms" in event.details


@pytest.mark.parametrize("status", ["running", "stopped"])
def test_arms_freeze_once_started_but_name_and_hypothesis_stay_editable(ctx, world, status):
    exp_id = factories.experiment(world.agent_id, status=status)
    with pytest.raises(Conflict):
        experiments.update_experiment(world.owner_id, world.agent_id, exp_id,
                                      {"variants": [arm("control", 1), arm("treatment", 9)]})
    with pytest.raises(Conflict):
        experiments.update_experiment(world.owner_id, world.agent_id, exp_id, {"kind": "cta"})
    assert [v.weight for v in db.session.get(Experiment, exp_id).variants] == [1, 1]
    experiments.update_experiment(world.owner_id, world.agent_id, exp_id, {"name": "New name", "hypothesis": "H2"})
    db.session.expire_all()
    exp = db.session.get(Experiment, exp_id)
    assert (exp.name, exp.hypothesis, exp.status) == ("New name", "H2", status)
    assert actions(exp_id) == ["experiment.edited"]


def test_edit_with_a_bad_field_writes_nothing(ctx, world):
    exp = experiments.create_experiment(world.owner_id, world.agent_id, data())
    with pytest.raises(ValidationError) as error:
        experiments.update_experiment(world.owner_id, world.agent_id, exp.id,
                                      {"name": "Fine", "variants": [arm("control"), arm("treatment", 0)]})
    assert "variants-1-weight" in error.value.fields
    db.session.rollback()
    exp = db.session.get(Experiment, exp.id)
    assert exp.name == "Warmer greeting" and [v.weight for v in exp.variants] == [50, 50]


# --- duplicate, promote, delete -----------------------------------------------------------------


def test_duplicate_makes_a_draft_with_the_same_arms(ctx, world):
    source = factories.experiment(world.agent_id, status="running", weights=(1, 2, 7), name="Original")
    copy = experiments.duplicate_experiment(world.admin_id, world.agent_id, source)
    assert copy.id != source and copy.status == "draft" and copy.name == "Copy of Original"
    assert copy.started_at is None
    original = db.session.get(Experiment, source)
    assert [(v.key, v.weight, v.config) for v in copy.variants] == \
        [(v.key, v.weight, v.config) for v in original.variants]
    assert original.status == "running"
    assert actions(source) == ["experiment.duplicated"] and actions(copy.id) == ["experiment.created"]


@pytest.mark.parametrize("status", ["running", "stopped"])
def test_promote_copies_the_persona_into_the_agent_and_stops(ctx, world, status):
    exp_id = factories.experiment(world.agent_id, status=status, configs=[persona("Sam"), persona("Aria", "warm")])
    exp = experiments.promote_variant(world.owner_id, world.agent_id, exp_id, "treatment")
    agent = db.session.get(Agent, world.agent_id)
    assert (agent.persona_name, agent.persona_tone) == ("Aria", "warm")
    assert exp.status == "stopped" and exp.stopped_at is not None
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "experiment.promoted"))
    assert event.details["variant"] == "treatment" and event.details["stopped"] == (status == "running")
    assert event.details["from"] == {"persona_name": "Sam", "persona_tone": "friendly"}


def test_promote_without_a_tone_keeps_the_agents_tone(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running", configs=[persona("Sam"), persona("Aria")])
    experiments.promote_variant(world.owner_id, world.agent_id, exp_id, "treatment")
    agent = db.session.get(Agent, world.agent_id)
    assert (agent.persona_name, agent.persona_tone) == ("Aria", "friendly")


def test_promote_an_explicit_no_tone_clears_the_agents_tone(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running", configs=[persona("Sam"), persona("Aria", "")])
    experiments.promote_variant(world.owner_id, world.agent_id, exp_id, "treatment")
    agent = db.session.get(Agent, world.agent_id)
    assert (agent.persona_name, agent.persona_tone) == ("Aria", "")


@pytest.mark.parametrize("kind,status,key,error", [
    ("cta", "running", "treatment", Conflict),
    ("persona", "draft", "treatment", Conflict),
    ("persona", "running", "nope", ValidationError),
])
def test_promote_refusals_change_nothing(ctx, world, kind, status, key, error):
    exp_id = factories.experiment(world.agent_id, kind=kind, status=status)
    with pytest.raises(error):
        experiments.promote_variant(world.owner_id, world.agent_id, exp_id, key)
    db.session.rollback()
    agent = db.session.get(Agent, world.agent_id)
    assert (agent.persona_name, agent.persona_tone) == ("Sam", "friendly")
    assert db.session.get(Experiment, exp_id).status == status
    assert experiment_events() == 0


@pytest.mark.parametrize("status", ["draft", "stopped"])
def test_delete_removes_experiment_and_variants_but_keeps_every_stamp(ctx, world, status):
    exp_id = factories.experiment(world.agent_id, status=status, name="Doomed")
    keep_id = factories.experiment(world.agent_id, name="Kept")
    variant = db.session.get(Experiment, exp_id).variants[1]
    stamp = {"experiment_id": exp_id, "variant_id": variant.id, "variant_key": variant.key}
    conversation = Conversation(agent_id=world.agent_id, external_id="c-1", visitor_id="v-1", **stamp)
    db.session.add(conversation)
    db.session.flush()
    db.session.add_all([
        Message(conversation_id=conversation.id, role="visitor", text="hi", variant_id=variant.id),
        Lead(agent_id=world.agent_id, conversation_id=conversation.id, visitor_id="v-1", fields={"email": "a@b.c"},
             **stamp),
        ExperimentAssignment(agent_id=world.agent_id, visitor_id="v-1", **stamp),
    ])
    db.session.commit()

    def stamps():
        return (db.session.execute(sa.select(Conversation.experiment_id, Conversation.variant_id,
                                             Conversation.variant_key)).all(),
                db.session.execute(sa.select(Message.variant_id)).all(),
                db.session.execute(sa.select(Lead.experiment_id, Lead.variant_id, Lead.variant_key)).all(),
                db.session.execute(sa.select(ExperimentAssignment.experiment_id, ExperimentAssignment.variant_id,
                                             ExperimentAssignment.variant_key)).all())

    before = stamps()
    assert experiments.delete_experiment(world.owner_id, world.agent_id, exp_id) == "Doomed"
    db.session.expire_all()
    assert db.session.get(Experiment, exp_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).where(Variant.experiment_id == exp_id)) == 0
    assert db.session.get(Experiment, keep_id) is not None
    assert stamps() == before
    assert before[0] == [(exp_id, variant.id, "treatment")]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "experiment.deleted"))
    assert event.target_id == exp_id and event.details["name"] == "Doomed"
    assert [e.action for e in experiments.audit.events_for("experiment", exp_id)] == ["experiment.deleted"]


def test_detail_lists_audit_events_newest_first_and_the_shares(ctx, world):
    exp_id = factories.experiment(world.agent_id, weights=(1, 3))
    experiments.start_experiment(world.owner_id, world.agent_id, exp_id)
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id)
    info = experiments.detail(world.editor_id, world.agent_id, exp_id)
    assert [e.action for e in info.events] == ["experiment.stopped", "experiment.started"]
    assert info.events[0].actor_email == "owner@acme.test"
    assert info.shares == [25.0, 75.0] and not info.is_active


def test_new_variant_picks_a_free_key():
    assert experiments.new_variant(["control", "treatment"])["key"] == "treatment-2"
    assert experiments.new_variant(["control", "treatment-2"])["key"] == "treatment-3"


def test_a_start_racing_an_arms_edit_never_unfreezes_the_arms(app, world, monkeypatch):
    """The edit holds the experiment's row from its status check to its commit (found in review)."""
    import threading

    with app.app_context():
        exp_id = experiments.create_experiment(world.owner_id, world.agent_id, data()).id
        db.session.remove()
    started: dict[str, object] = {}
    real_clean = experiments._clean_variants

    def start_meanwhile():
        with app.app_context():
            try:
                experiments.start_experiment(world.admin_id, world.agent_id, exp_id)
                started["ok"] = True
            except Exception as error:  # noqa: BLE001 - reported below
                started["error"] = error
            finally:
                db.session.remove()

    def slow_clean(*args, **kwargs):
        racer = threading.Thread(target=start_meanwhile)
        racer.start()
        racer.join(timeout=1.0)  # blocked by the edit's hold: it may only finish after the edit commits
        started["thread"] = racer
        return real_clean(*args, **kwargs)

    monkeypatch.setattr(experiments, "_clean_variants", slow_clean)
    with app.app_context():
        experiments.update_experiment(world.owner_id, world.agent_id, exp_id,
                                      {"variants": [arm("control", 9), arm("new-arm", 1)]})
        db.session.remove()
    started["thread"].join(timeout=30)
    with app.app_context():
        events = actions(exp_id)
        assert "experiment.edited" in events and started.get("ok") is True
        # the edit committed before the start: the running arms are the edited ones, never replaced after start
        assert events.index("experiment.edited") < events.index("experiment.started")
        keys = [v.key for v in db.session.get(Experiment, exp_id).variants]
        assert keys == ["control", "new-arm"]
