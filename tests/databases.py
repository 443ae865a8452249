"""Scratch PostgreSQL databases for the suite, the race tests and the benchmark."""
from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa

from webapp.config import normalise_database_url


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
