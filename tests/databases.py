"""Scratch PostgreSQL databases for the suite, the race tests and the benchmark."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from webapp import create_app
from webapp.config import TestConfig, normalise_database_url
from webapp.extensions import db


def scratch_postgres(admin_url: str, label: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database on the server of `admin_url`; returns its URL and a function that drops it."""
    admin = sa.create_engine(sa.engine.make_url(normalise_database_url(admin_url)), isolation_level="AUTOCOMMIT")
    name = f"abx_{label}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin.url.set(database=name).render_as_string(hide_password=False), drop


def own_database(engine: str, tmp_path_factory, label: str) -> tuple[str, Callable[[], None]]:
    """A database of a test module's own: a scratch PostgreSQL database (skipped without TEST_DATABASE_URL), or
    a SQLite file (not in memory: threads must share it). Returns its URL and a function that drops it."""
    if engine == "postgresql":
        admin_url = os.environ.get("TEST_DATABASE_URL")
        if not admin_url:
            pytest.skip("PostgreSQL variant: set TEST_DATABASE_URL")
        return scratch_postgres(admin_url, label)
    return f"sqlite:///{tmp_path_factory.mktemp(label) / f'{label}.db'}", lambda: None


@contextlib.contextmanager
def app_on_own_database(engine: str, tmp_path_factory, label: str, **config) -> Iterator:
    """An app (TestConfig + `config`) on a database of its own with the models' schema; dropped afterwards."""
    url, drop = own_database(engine, tmp_path_factory, label)
    app = create_app(type(f"{label.title()}Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, **config}))
    with app.app_context():
        db.create_all()
        db.session.remove()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()
