"""Analysis settings (SPEC §10.1) in the service layer: defaults, validation, roles, audit, assignment untouched."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import AuditEvent, Experiment, ExperimentAssignment, Variant
from webapp.services.experiments import analysis, experiments, metrics
from webapp.services.errors import BadRequest, Forbidden, ValidationError


def new_experiment(world, **settings) -> Experiment:
    return experiments.create_experiment(world.owner_id, world.agent_id, {
        "name": "Exp", "kind": "cta", "hypothesis": "",
        "variants": [{"key": "control", "name": "Control", "weight": 1, "config": {}},
                     {"key": "treatment", "name": "Treatment", "weight": 1, "config": {}}], **settings})


def test_a_new_experiment_gets_the_spec_defaults(ctx, world):
    e = new_experiment(world)
    assert analysis.settings_of(e) == analysis.Settings(
        primary_metric="lead_capture_rate", engine="sequential", alpha=0.05, sequential_tuning=5000, prior="flat",
        correction="holm", mde=0.10, power=0.80, baseline_rate=None)
    created = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "experiment.created"))
    assert created.details["analysis"]["engine"] == "sequential"


def test_a_new_experiment_takes_settings_as_the_form_types_them(ctx, world):
    e = new_experiment(world, engine="bayesian", alpha="0.10", sequential_tuning="20,000", prior="proper",
                       correction="bh", mde_percent="2.5", power="0.9", baseline_rate_percent="4%",
                       primary_metric="session_length")
    s = analysis.settings_of(e)
    assert (s.engine, s.alpha, s.sequential_tuning, s.prior, s.correction) == ("bayesian", 0.10, 20000, "proper", "bh")
    assert s.mde == pytest.approx(0.025) and s.power == 0.9 and s.baseline_rate == pytest.approx(0.04)
    assert s.primary_metric == "session_length"


@pytest.mark.parametrize("field, value", [
    ("engine", "frequentist"), ("engine", ""), ("alpha", "0.02"), ("alpha", "abc"), ("alpha", "nan"),
    ("prior", "uniform"), ("correction", "bonferroni"), ("primary_metric", "revenue"),
    ("primary_metric", "goal:signup"), ("sequential_tuning", "99"), ("sequential_tuning", "1000001"),
    ("sequential_tuning", "5000.5"), ("sequential_tuning", "-5000"), ("sequential_tuning", "٥٠٠٠"),
    ("mde_percent", "0.4"), ("mde_percent", "501"), ("mde_percent", ""), ("mde_percent", "inf"),
    ("mde_percent", "1e999"), ("power", "0.49"), ("power", "1"), ("power", "80"), ("power", "x"),
    ("baseline_rate_percent", "0"), ("baseline_rate_percent", "100"), ("baseline_rate_percent", "-3"),
])
def test_a_bad_setting_is_a_field_error_and_writes_nothing(ctx, world, field, value):
    with pytest.raises(ValidationError) as refused:
        new_experiment(world, **{field: value})
    assert set(refused.value.fields) == {field}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Experiment)) == 0


@pytest.mark.parametrize("field, value, stored, expected", [
    ("mde_percent", "0.5", "mde", 0.005), ("mde_percent", "500", "mde", 5.0), ("power", "0.50", "power", 0.5),
    ("power", "0.99", "power", 0.99), ("sequential_tuning", "100", "sequential_tuning", 100),
    ("sequential_tuning", "1000000", "sequential_tuning", 1_000_000), ("alpha", "0.01", "alpha", 0.01),
    ("baseline_rate_percent", "", "baseline_rate", None),
])
def test_the_bounds_are_accepted(ctx, world, field, value, stored, expected):
    value = getattr(new_experiment(world, **{field: value}), stored)
    assert value is None if expected is None else value == pytest.approx(expected)


@pytest.mark.parametrize("status", ["draft", "running", "stopped"])
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_change_the_settings_in_every_status_audited_old_to_new(ctx, world, status, role):
    experiment_id = factories.experiment(world.agent_id, status=status)
    actor = getattr(world, f"{role}_id")
    experiments.update_experiment(actor, world.agent_id, experiment_id,
                                  {"engine": "sequential", "mde_percent": "25", "correction": "bh"})
    e = db.session.get(Experiment, experiment_id)
    assert (e.engine, e.mde, e.correction) == ("sequential", 0.25, "bh")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "experiment.analysis_changed"))
    assert event.details == {"engine": {"from": "fixed", "to": "sequential"}, "mde": {"from": 0.1, "to": 0.25},
                             "correction": {"from": "none", "to": "bh"}}
    assert event.actor_id == actor


def test_saving_the_same_settings_audits_nothing(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    experiments.update_experiment(world.owner_id, world.agent_id, experiment_id,
                                  analysis.form_values(analysis.LEGACY))
    assert not db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "experiment.analysis_changed"))


def test_changing_the_settings_never_touches_assignment(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running", weights=(3, 1))
    e = db.session.get(Experiment, experiment_id)
    db.session.add(ExperimentAssignment(agent_id=world.agent_id, experiment_id=e.id, variant_id=e.variants[1].id,
                                        variant_key="treatment", visitor_id="v-1"))
    db.session.commit()
    arms = [(v.id, v.key, v.weight, v.position) for v in e.variants]
    experiments.update_experiment(world.admin_id, world.agent_id, experiment_id,
                                  {"engine": "bayesian", "primary_metric": "messages_per_conversation"})
    assert [(v.id, v.key, v.weight, v.position) for v in db.session.scalars(
        sa.select(Variant).where(Variant.experiment_id == experiment_id).order_by(Variant.position))] == arms
    assert [(a.visitor_id, a.variant_key) for a in db.session.scalars(sa.select(ExperimentAssignment))] == \
        [("v-1", "treatment")]
    assert db.session.get(Experiment, experiment_id).status == "running"


def test_editors_may_not_change_the_settings(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    with pytest.raises(Forbidden):
        experiments.update_experiment(world.editor_id, world.agent_id, experiment_id, {"engine": "bayesian"})
    db.session.rollback()
    assert db.session.get(Experiment, experiment_id).engine == "fixed"


def test_a_bad_setting_on_edit_writes_nothing(ctx, world):
    experiment_id = factories.experiment(world.agent_id, status="running")
    with pytest.raises(ValidationError) as refused:
        experiments.update_experiment(world.owner_id, world.agent_id, experiment_id,
                                      {"name": "Renamed", "engine": "sequential", "power": "2"})
    assert set(refused.value.fields) == {"power"}
    db.session.rollback()
    e = db.session.get(Experiment, experiment_id)
    assert (e.name, e.engine) == ("Exp", "fixed")


def test_the_primary_metrics_come_from_the_metric_list(ctx, world, monkeypatch):
    """Another metric (a goal) is added in one place: metrics.experiment_metrics."""
    assert set(metrics.primary_metric_choices()) == {"lead_capture_rate", "messages_per_conversation",
                                                     "session_length"}
    extended = {**metrics.METRICS, "goal:signup": {"label": "Goal: signup", "kind": "proportion", "unit": "%"}}
    monkeypatch.setattr(metrics, "experiment_metrics", lambda experiment=None: extended)
    assert new_experiment(world, primary_metric="goal:signup").primary_metric == "goal:signup"


def test_a_duplicate_keeps_the_settings(ctx, world):
    source = new_experiment(world, engine="bayesian", mde_percent="30")
    copy = experiments.duplicate_experiment(world.owner_id, world.agent_id, source.id)
    assert analysis.settings_of(copy) == analysis.settings_of(source)


@pytest.mark.parametrize("value, engine", [(None, None), ("", None), ("fixed", "fixed"), ("bayesian", "bayesian")])
def test_a_one_off_engine_parses(value, engine):
    assert analysis.parse_engine(value) == engine


def test_a_bad_one_off_engine_is_a_400_naming_it():
    with pytest.raises(BadRequest) as refused:
        analysis.parse_engine("magic")
    assert refused.value.status == 400 and "magic" in refused.value.message and "engine" in refused.value.fields
