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


def test_schema_enforces_constraints(migrated_app):
    """The check constraints live in the database, not only in Python."""
    with migrated_app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO workspaces (slug, name, created_at) VALUES ('w', 'W', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO agents (workspace_id, name, persona_name, persona_tone, instructions, created_at) "
                "VALUES (1, 'a', 'A', '', '', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO experiments (agent_id, name, hypothesis, kind, status, created_at) "
                "VALUES (1, 'e', '', 'persona', 'draft', CURRENT_TIMESTAMP)"))
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
