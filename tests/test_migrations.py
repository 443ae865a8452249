"""The Alembic history and the models agree, on the suite's engine (SQLite or PostgreSQL)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db
from tests.conftest import make_database


@pytest.fixture
def migrated_app(tmp_path_factory):
    url, drop = make_database(tmp_path_factory, "migrations")
    app = create_app(type("MigrationConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


def diff(app) -> list:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(context, db.metadata)


def test_upgrade_matches_models(migrated_app):
    with migrated_app.app_context():
        upgrade()
    assert diff(migrated_app) == []


def test_upgrade_downgrade_upgrade(migrated_app):
    with migrated_app.app_context():
        upgrade()
        downgrade(revision="base")
        tables = sa.inspect(db.engine).get_table_names()
        assert set(tables) <= {"alembic_version"}
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
    assert {"experiments", "experiment_assignments", "conversations", "messages", "leads", "audit_events"} <= tables
    assert diff(migrated_app) == []


def insert_experiment(conn, status: str) -> None:
    """A workspace, an agent and an experiment of `status` (ids 1), in plain SQL: no column beyond the first schema's."""
    conn.execute(sa.text("INSERT INTO workspaces (slug, name, created_at) VALUES ('w', 'W', CURRENT_TIMESTAMP)"))
    conn.execute(sa.text(
        "INSERT INTO agents (workspace_id, name, persona_name, persona_tone, instructions, created_at) "
        "VALUES (1, 'a', 'A', '', '', CURRENT_TIMESTAMP)"))
    conn.execute(sa.text(
        "INSERT INTO experiments (agent_id, name, hypothesis, kind, status, created_at) "
        f"VALUES (1, 'e', '', 'persona', '{status}', CURRENT_TIMESTAMP)"))


def test_schema_enforces_constraints(migrated_app):
    """The check constraints live in the database, not only in Python."""
    with migrated_app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            insert_experiment(conn, "draft")
        bad = [
            "INSERT INTO variants (experiment_id, key, name, weight, config, position) VALUES (1, 'a', 'A', 0, '{}', 0)",
            "INSERT INTO experiments (agent_id, name, hypothesis, kind, status, created_at) "
            "VALUES (1, 'e', '', 'banner', 'draft', CURRENT_TIMESTAMP)",
            "INSERT INTO experiments (agent_id, name, hypothesis, kind, status, created_at) "
            "VALUES (1, 'e', '', 'cta', 'paused', CURRENT_TIMESTAMP)",
        ]
        for statement in bad:
            with pytest.raises(sa.exc.IntegrityError):
                with db.engine.begin() as conn:
                    conn.execute(sa.text(statement))


def test_experiments_older_than_the_analysis_settings_keep_their_meaning(migrated_app):
    """SPEC §10.1: existing experiments get fixed, α 0.05, no correction, the lead capture rate."""
    with migrated_app.app_context():
        upgrade(revision="b4e1f0c2d9a7")
        with db.engine.begin() as conn:
            insert_experiment(conn, "running")
            conn.execute(sa.text("INSERT INTO variants (experiment_id, key, name, weight, config, position) "
                                 "VALUES (1, 'control', 'C', 1, '{}', 0)"))
        upgrade()
        with db.engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT engine, alpha, correction, primary_metric, sequential_tuning, prior, mde, power, "
                "baseline_rate FROM experiments")).one()
            variants = conn.execute(sa.text("SELECT count(*) FROM variants")).scalar()
    assert tuple(row) == ("fixed", 0.05, "none", "lead_capture_rate", 5000, "flat", 0.1, 0.8, None)
    assert variants == 1  # no table rebuild cascaded to the arms
