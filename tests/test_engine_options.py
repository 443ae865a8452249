"""Engine options from the configuration: no pre-ping by default, synchronous_commit only when asked."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL")


def test_default_engine_options_recycle_instead_of_pre_ping(tmp_path):
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'o.db'}"}))
    with app.app_context():
        assert db.engine.pool._pre_ping is False


def test_unknown_synchronous_commit_is_refused():
    with pytest.raises(RuntimeError, match="DATABASE_SYNCHRONOUS_COMMIT"):
        create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": "postgresql://u@127.0.0.1/x",
                                             "DATABASE_SYNCHRONOUS_COMMIT": "sometimes"}))


@pytest.mark.skipif(not PG_ADMIN_URL, reason="PostgreSQL variant: set TEST_DATABASE_URL")
@pytest.mark.parametrize("setting", ["off", "local"])
def test_synchronous_commit_setting_reaches_every_connection(setting):
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": PG_ADMIN_URL,
                                               "DATABASE_SYNCHRONOUS_COMMIT": setting}))
    with app.app_context():
        assert db.session.scalar(sa.text("SHOW synchronous_commit")) == setting
        db.session.remove()
        db.engine.dispose()
