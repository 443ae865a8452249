"""Fixtures in the Flask tutorial's style: app, client, runner, auth — on SQLite or PostgreSQL.

`TEST_DATABASE_URL=postgresql+psycopg://…/postgres` runs the whole suite on PostgreSQL: the
session creates its own database from that server and drops it at the end.
"""
from __future__ import annotations

import os
import time
import re
import threading

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

from . import factories
from .databases import scratch_postgres

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL")


def make_database(tmp_path_factory, label: str) -> tuple[str, callable]:
    """A fresh empty database URL and a function that drops it."""
    if PG_ADMIN_URL:
        return scratch_postgres(PG_ADMIN_URL, label)
    path = tmp_path_factory.mktemp(label) / "test.db"
    return f"sqlite:///{path}", lambda: None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url, drop = make_database(tmp_path_factory, "suite")
    yield url
    drop()


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(type("SuiteConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Each test starts from empty tables (only for tests that use the app)."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        if db.engine.dialect.name == "postgresql":
            _truncate(tables)
            return
        with db.engine.begin() as conn:
            for table in tables:
                conn.execute(sa.text(f"DELETE FROM {table}"))
            # AUTOINCREMENT tables keep counting otherwise: ids (and so bucketing) would depend on test order.
            if conn.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                conn.execute(sa.text("DELETE FROM sqlite_sequence"))


def _truncate(tables: list[str], attempts: int = 5) -> None:
    """TRUNCATE takes an exclusive lock on every table; a browser test's last request, still being served by the
    live server's thread, may hold a share lock that PostgreSQL then breaks as a deadlock: wait and try again."""
    for attempt in range(attempts):
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return
        except sa.exc.OperationalError as error:
            if "deadlock detected" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture(scope="session")
def live_server(app):
    """The suite's app on a free loopback port, in a thread, for the whole session (browser and HTTP clients)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def ctx(app):
    """An app context for service-level tests."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client) -> str:
    """The session's CSRF token, read from the <meta> of any page (a 404 page will do)."""
    html = client.get("/__csrf__").get_data(as_text=True)
    match = CSRF_META.search(html)
    assert match, "no csrf-token meta on the page"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = factories.PASSWORD):
        token = csrf_token(self._client)
        return self._client.post("/login", data={"email": email, "password": password, "csrf_token": token})

    def logout(self):
        return self._client.post("/logout", data={"csrf_token": csrf_token(self._client)})

    def post(self, url: str, data: dict | None = None, **kwargs):
        """A form POST with a valid CSRF token."""
        return self._client.post(url, data={**(data or {}), "csrf_token": csrf_token(self._client)}, **kwargs)


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def world(app):
    """Two workspaces: `acme` with owner/admin/editor and an agent, `other` with its owner and agent.

    Returns plain ids and emails, built in an app context that is closed again.
    """
    with app.app_context():
        built = factories.world()
        db.session.remove()
    return built
