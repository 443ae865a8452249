"""A database outage answers 503 with Retry-After: 1, never a 500, and nothing fails once it is back (SPEC §14).

Against a PostgreSQL server the test starts itself (initdb and pg_ctl, a temporary folder, a free port), stops
while requests run — pages, HTMX fragments, the login form, the runtime API's raw-DBAPI hot path and its ORM
lookups, the CLI — and starts again.
"""
from __future__ import annotations

import itertools
import threading
import time

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import csrf_token
from tests.servers import PostgresServer, postgres_binaries
from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

BINARIES = postgres_binaries()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    BINARIES is None, reason="no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin")]
MESSAGE_IDS = itertools.count()


@pytest.fixture(scope="module")
def server():
    server = PostgresServer(BINARIES)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def make_app(url: str, **config):
    return create_app(type("OutageConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, **config}))


@pytest.fixture(scope="module")
def world(server):
    app = make_app(server.url)
    with app.app_context():
        db.create_all()
        built = factories.world()
        db.session.remove()
        db.engine.dispose()
    return built


class Visitor:
    """A logged-in browser and a runtime client of one app: each call answers a response."""

    def __init__(self, app, world):
        self.app, self.world = app, world
        self.client = app.test_client()
        self.api_headers = {"Authorization": f"Bearer {world.api_key}"}
        response = self.client.post("/login", data={"email": "owner@acme.test", "password": factories.PASSWORD,
                                                     "csrf_token": csrf_token(self.client)})
        assert response.status_code == 302, response.status_code

    def page(self):
        return self.client.get("/w/acme/agents")

    def fragment(self):
        return self.client.get(f"/agents/{self.world.agent_id}/experiments", headers={"HX-Request": "true"})

    def message(self):  # the hot path: raw DBAPI
        body = {"visitor_id": "v1", "conversation_id": f"c{next(MESSAGE_IDS)}", "role": "visitor", "text": "hi"}
        return self.client.post(f"/api/v1/agents/{self.world.agent_id}/messages", json=body,
                                headers=self.api_headers)

    def assignment(self):  # an ORM lookup of the API
        return self.client.get(f"/api/v1/agents/{self.world.agent_id}/visitors/v1/assignment",
                               headers=self.api_headers)

    def login(self):  # the login throttle's tables (a new browser: the login page needs no database)
        browser = self.app.test_client()
        return browser.post("/login", data={"email": "owner@acme.test", "password": "wrong",
                                            "csrf_token": csrf_token(browser)})

    def every_kind(self) -> dict:
        return {"page": self.page(), "fragment": self.fragment(), "message": self.message(),
                "assignment": self.assignment()}


def assert_unavailable(kind: str, response) -> None:
    assert response.status_code == 503, (kind, response.status_code, response.get_data(as_text=True)[:300])
    assert response.headers["Retry-After"] == "1", kind
    if kind in ("message", "assignment"):
        error = response.get_json()["error"]
        assert error["code"] == "unavailable" and "database cannot be reached" in error["message"], kind
    else:
        html = response.get_data(as_text=True)
        assert "503 · Temporarily unavailable" in html and "database cannot be reached" in html, kind
        assert ("<html" in html) is (kind != "fragment"), kind  # an HTMX request gets the fragment alone
        assert "owner@acme.test" not in html  # rendered as for a visitor: the user would need the database


def assert_working(kind: str, response) -> None:
    assert response.status_code in (200, 201), (kind, response.status_code, response.get_data(as_text=True)[:300])


def test_503_while_the_server_is_down_and_success_once_it_is_back(server, world):
    app = make_app(server.url)
    visitor = Visitor(app, world)
    for kind, response in visitor.every_kind().items():
        assert_working(kind, response)

    statuses: list[tuple[str, int]] = []
    stop = threading.Event()

    def keep_requesting() -> None:  # requests in flight while the server stops
        other = Visitor(app, world)
        while not stop.is_set():
            for kind, response in other.every_kind().items():
                statuses.append((kind, response.status_code))
                if response.status_code == 503:
                    assert_unavailable(kind, response)

    thread = threading.Thread(target=keep_requesting)
    thread.start()
    try:
        time.sleep(0.5)
        server.stop("fast")
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    try:
        assert statuses and {status for _, status in statuses} <= {200, 201, 503}, sorted(set(statuses))
        assert 503 in {status for _, status in statuses}
        for _ in range(2):
            for kind, response in visitor.every_kind().items():
                assert_unavailable(kind, response)
        assert_unavailable("login", visitor.login())
        done = app.test_cli_runner().invoke(args=["users", "create", "new@acme.test", "--password", "long-enough-1",
                                                  "--workspace", "acme", "--role", "editor"])
        assert done.exit_code == 1 and "Traceback" not in done.output
        assert done.output.startswith("Error: the database cannot be reached (") and len(done.output.splitlines()) == 1
    finally:
        server.start()
    # Back: the very first request of every kind succeeds (the pool's dead connections are not reused).
    for kind, response in visitor.every_kind().items():
        assert_working(kind, response)
    assert visitor.login().status_code == 401
    with app.app_context():
        db.engine.dispose()


def test_after_a_restart_no_request_fails_thanks_to_pre_ping(server, world):
    """Connections pooled before a restart are dead after it: checked before reuse (the default), none fails; with
    DATABASE_POOL_PRE_PING=0, the first request on one answers 503 (and never a 500)."""
    checked, unchecked = make_app(server.url), make_app(server.url, DATABASE_POOL_PRE_PING="0")
    visitors = Visitor(checked, world), Visitor(unchecked, world)
    for visitor in visitors:
        for kind, response in visitor.every_kind().items():
            assert_working(kind, response)
    server.stop("fast")
    server.start()
    for kind, response in visitors[0].every_kind().items():
        assert_working(kind, response)
    first = visitors[1].page()
    assert_unavailable("page", first)
    for kind, response in visitors[1].every_kind().items():  # the pool was invalidated: fresh connections now
        assert_working(kind, response)
    for app in (checked, unchecked):
        with app.app_context():
            db.engine.dispose()


def test_a_connection_lost_after_the_response_is_made_does_not_fail_the_request(server, world):
    """The server drops the request's connection after its last query: the session's closing rollback fails, the
    answer stands, and the next request gets a fresh connection."""
    app = make_app(server.url)
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")

    @app.get("/__lose_connection__")
    def lose_connection():
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))  # the session is in a transaction now
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(0.2)
        return "done"

    client = app.test_client()
    response = client.get("/__lose_connection__")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "done")
    assert client.get("/login").status_code == 200
    assert_working("message", Visitor(app, world).message())
    admin.dispose()
    with app.app_context():
        db.engine.dispose()
