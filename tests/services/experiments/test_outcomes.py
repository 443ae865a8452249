"""Outcomes of ended experiments (SPEC §10.6): recorded by Stop, Record outcome and Promote, cleared by a resume,
audited, exported, refused on bad input with nothing written."""
from __future__ import annotations

import pytest

from tests import factories
from tests.services.experiments.test_results import build
from webapp.extensions import db
from webapp.models import Agent, AuditEvent, Experiment
from webapp.services.errors import Conflict, Forbidden, ValidationError
from webapp.services.experiments import experiments, outcomes, results


def events(experiment_id: int) -> list[AuditEvent]:
    return [e for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))
            if e.target_type == "experiment" and e.target_id == experiment_id]


def test_stop_records_the_outcome_and_its_note(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, "shipped:treatment", "  Clear win.  ")
    e = db.session.get(Experiment, exp_id)
    assert (e.status, e.outcome_result, e.outcome_variant_key, e.outcome_note) == \
        ("stopped", "shipped", "treatment", "Clear win.")
    assert e.outcome_recorded_at == e.stopped_at
    assert outcomes.label(e) == "Shipped Treatment"
    assert events(exp_id)[-1].details == {"outcome": {"result": "shipped", "variant_key": "treatment",
                                                      "note": "Clear win."}}
    assert outcomes.as_json(e) == {"result": "shipped", "variant_key": "treatment", "note": "Clear win.",
                                   "recorded_at": e.outcome_recorded_at.isoformat()}


@pytest.mark.parametrize("outcome, result", [("kept_control", "kept_control"), ("inconclusive", "inconclusive")])
def test_stop_records_kept_control_and_inconclusive_without_a_key(ctx, world, outcome, result):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, outcome)
    e = db.session.get(Experiment, exp_id)
    assert (e.outcome_result, e.outcome_variant_key, e.outcome_note) == (result, None, None)
    assert outcomes.label(e) == ("Kept the control (Control)" if result == "kept_control" else "Inconclusive")


@pytest.mark.parametrize("outcome", [None, "", "  "])
def test_a_stop_without_an_outcome_records_none(ctx, world, outcome):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, outcome)
    e = db.session.get(Experiment, exp_id)
    assert e.status == "stopped" and e.outcome_result is None and outcomes.as_json(e) is None
    assert events(exp_id)[-1].details == {}


@pytest.mark.parametrize("outcome, note, field, says", [
    ("shipped", "", "outcome", "shipped:<variant key>"),
    ("won", "", "outcome", "shipped:<variant key>"),
    ("shipped:nope", "", "outcome", "“nope” is not a variant"),
    ("shipped:control", "", "outcome", "is the control"),
    ("kept_control", "x" * 2001, "note", "at most 2000 characters"),
    ("", "a note alone", "outcome", "Choose an outcome for the note"),
    ("inconclusive", "bell\x07", "note", "Note"),
    (["inconclusive"], "", "outcome", "must be text"),
])
def test_bad_outcomes_and_notes_are_refused_on_their_field_and_nothing_is_written(ctx, world, outcome, note, field,
                                                                                   says):
    exp_id = factories.experiment(world.agent_id, status="running")
    before = len(events(exp_id))
    with pytest.raises(ValidationError) as refused:
        experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, outcome, note)
    assert field in refused.value.fields and says in refused.value.fields[field]
    db.session.rollback()
    e = db.session.get(Experiment, exp_id)
    assert e.status == "running" and e.outcome_result is None and len(events(exp_id)) == before


def test_a_note_of_exactly_2000_characters_is_kept(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, "inconclusive", "n" * 2000)
    assert len(db.session.get(Experiment, exp_id).outcome_note) == 2000


def test_an_editor_may_not_stop_with_an_outcome(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    with pytest.raises(Forbidden):
        experiments.stop_experiment(world.editor_id, world.agent_id, exp_id, "inconclusive")


def test_resume_clears_the_outcome_and_audits_what_it_cleared(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, "kept_control", "Not worth it")
    experiments.start_experiment(world.owner_id, world.agent_id, exp_id)
    e = db.session.get(Experiment, exp_id)
    assert e.status == "running" and outcomes.of(e) is None and e.outcome_note is None
    resumed = events(exp_id)[-1]
    assert resumed.action == "experiment.resumed"
    assert resumed.details["cleared_outcome"] == {"result": "kept_control", "variant_key": None,
                                                  "note": "Not worth it"}


def test_record_outcome_on_a_stopped_experiment_replaces_and_clears_it(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id)
    experiments.record_outcome(world.admin_id, world.agent_id, exp_id, "inconclusive", "Too noisy")
    experiments.record_outcome(world.admin_id, world.agent_id, exp_id, "inconclusive", "Too noisy")  # no change
    experiments.record_outcome(world.admin_id, world.agent_id, exp_id, "shipped:treatment")
    trail = [e for e in events(exp_id) if e.action == "experiment.outcome_recorded"]
    assert len(trail) == 2
    assert trail[-1].details["previous"] == {"result": "inconclusive", "variant_key": None, "note": "Too noisy"}
    assert db.session.get(Experiment, exp_id).outcome_variant_key == "treatment"
    experiments.record_outcome(world.admin_id, world.agent_id, exp_id, "")
    assert outcomes.of(db.session.get(Experiment, exp_id)) is None


def test_record_outcome_is_for_stopped_experiments_only(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    with pytest.raises(Conflict):
        experiments.record_outcome(world.owner_id, world.agent_id, exp_id, "inconclusive")


def test_promote_records_shipped_and_promoting_the_control_records_kept_control(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.promote_variant(world.owner_id, world.agent_id, exp_id, "treatment", "Aria it is")
    e = db.session.get(Experiment, exp_id)
    assert (e.status, e.outcome_result, e.outcome_variant_key, e.outcome_note) == \
        ("stopped", "shipped", "treatment", "Aria it is")
    assert events(exp_id)[-1].details["outcome"]["variant_key"] == "treatment"
    other = factories.experiment(world.agent_id, status="stopped", name="Other")
    experiments.promote_variant(world.owner_id, world.agent_id, other, "control")
    assert db.session.get(Experiment, other).outcome_result == "kept_control"


def test_promote_refuses_a_long_note_and_changes_nothing(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    with pytest.raises(ValidationError) as refused:
        experiments.promote_variant(world.owner_id, world.agent_id, exp_id, "treatment", "x" * 2001)
    assert "note" in refused.value.fields
    db.session.rollback()
    e = db.session.get(Experiment, exp_id)
    assert e.status == "running" and e.outcome_result is None
    assert db.session.get(Agent, world.agent_id).persona_name == "Sam"


def test_the_list_and_the_page_show_the_shipped_arms_lift_on_the_primary_metric(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    build(world.agent_id, exp_id, 60, lead_rates=(0.1, 0.6))
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, "shipped:treatment")
    e = db.session.get(Experiment, exp_id)
    expected = results.compute(e).metric(e.variants[1], "lead_capture_rate")
    row = next(r for r in experiments.list_for_agent(world.owner_id, world.agent_id, results.outcome_lift)
               if r.experiment.id == exp_id)
    assert row.outcome == "Shipped Treatment"
    assert row.outcome_lift["lift"] == pytest.approx(expected["lift"]) and row.outcome_lift["lift"] > 0
    assert row.outcome_lift["text"] == f"{results.table_percent(expected['lift'])} lead capture rate"
    assert experiments.detail(world.owner_id, world.agent_id, exp_id, results.outcome_lift).outcome_lift == row.outcome_lift


def test_the_exports_carry_the_outcome(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running")
    experiments.stop_experiment(world.owner_id, world.agent_id, exp_id, "inconclusive", "Flat")
    r = results.compute(db.session.get(Experiment, exp_id))
    assert r.as_dict()["outcome"]["result"] == "inconclusive"
    header, *rows = r.csv_rows()
    assert header[-4:] == ["outcome_result", "outcome_variant_key", "outcome_note", "outcome_recorded_at"]
    assert all(row[-4:-1] == ["inconclusive", None, "Flat"] and row[-1] for row in rows)


def test_the_default_label_follows_the_agents_current_persona(ctx, world):
    exp_id = factories.experiment(world.agent_id, status="running",
                                  configs=[{"persona": {"name": "Sam", "tone": "friendly"}},
                                           {"persona": {"name": "Aria", "tone": "warm"}}])
    agent = db.session.get(Agent, world.agent_id)
    control, treatment = db.session.get(Experiment, exp_id).variants
    assert outcomes.is_agent_persona(control, agent) and not outcomes.is_agent_persona(treatment, agent)
    experiments.promote_variant(world.owner_id, world.agent_id, exp_id, "treatment")
    assert not outcomes.is_agent_persona(control, agent) and outcomes.is_agent_persona(treatment, agent)
