"""Engine and process options: no pre-ping on SQLite by default (PostgreSQL's default: test_database_unavailable.py),
synchronous_commit only when asked, the WSGI entry point's frozen heap."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL")
ROOT = Path(__file__).resolve().parent.parent


def test_sqlite_engine_options_have_no_pre_ping_by_default(tmp_path):
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


def test_the_wsgi_entry_point_freezes_the_startup_heap(tmp_path):
    """`wsgi:app` (what gunicorn serves) moves the startup objects out of the collector's generations, so a full
    collection no longer walks them (an 80–110 ms pause in a worker before)."""
    script = ("import gc, wsgi; frozen = gc.get_freeze_count(); "
              "print(frozen, len(gc.get_objects(generation=2)))")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "SECRET_KEY": "test", "APP_ENV": "production"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    frozen, left_in_oldest = int(out[0]), int(out[1])
    assert frozen > 50_000 and left_in_oldest < frozen / 100


def test_sqlite_log_file_shrinks_back_after_a_large_transaction(tmp_path):
    """journal_size_limit: once a checkpoint has copied a large transaction into the database, the next write
    starts the log over and truncates the -wal file to SQLITE_WAL_SIZE_LIMIT instead of keeping its size."""
    database = tmp_path / "w.db"
    limit = 64 * 1024
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                                               "SQLITE_WAL_SIZE_LIMIT": limit}))
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE blob_test (b BLOB)"))
        db.session.execute(sa.text(
            "INSERT INTO blob_test SELECT randomblob(4000) FROM (WITH RECURSIVE n(i) AS "
            "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n)"))
        db.session.commit()
        assert os.path.getsize(f"{database}-wal") > 1_000_000
        busy, _, _ = db.session.execute(sa.text("PRAGMA wal_checkpoint(PASSIVE)")).one()
        db.session.commit()
        assert busy == 0
        db.session.execute(sa.text("INSERT INTO blob_test VALUES (x'00')"))
        db.session.commit()
        assert os.path.getsize(f"{database}-wal") <= limit
        db.session.remove()
        db.engine.dispose()
