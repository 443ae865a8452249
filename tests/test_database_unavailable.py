"""Which errors mean the database cannot be reached (503, SPEC §14), on SQLite and for PostgreSQL's driver, and the
pool's pre-ping default. The outage of a real PostgreSQL server is in test_database_outage.py."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors as pg_errors

from tests import factories
from tests.conftest import csrf_token
from tests.databases import own_database
from tests.servers import ROOT, free_port
from webapp import create_app, database
from webapp.config import TestConfig
from webapp.extensions import db


def wrapped(orig: Exception, invalidated: bool = False) -> sa.exc.DBAPIError:
    base = psycopg.Error if isinstance(orig, psycopg.Error) else sqlite3.Error
    return sa.exc.DBAPIError.instance("SELECT 1", {}, orig, base, connection_invalidated=invalidated)


def sqlite_error(code: int, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(name)
    error.sqlite_errorcode, error.sqlite_errorname = code, name
    return error


@pytest.mark.parametrize("error", [
    psycopg.OperationalError("connection failed: Connection refused"),  # no SQLSTATE: the client could not reach it
    pg_errors.AdminShutdown("terminating connection due to administrator command"),  # 57P01
    pg_errors.CannotConnectNow("the database system is starting up"),  # 57P03
    pg_errors.TooManyConnections("sorry, too many clients already"),  # 53300
    wrapped(psycopg.OperationalError("server closed the connection unexpectedly")),
    wrapped(psycopg.DatabaseError("anything"), invalidated=True),
    sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
    sqlite_error(5, "SQLITE_BUSY"), sqlite_error(14, "SQLITE_CANTOPEN"), wrapped(sqlite_error(10, "SQLITE_IOERR")),
], ids=lambda e: type(e).__name__)
def test_errors_that_mean_the_database_cannot_be_reached(error):
    assert database.unreachable(error)


@pytest.mark.parametrize("error", [
    pg_errors.QueryCanceled("canceling statement due to statement timeout"),  # 57014: a slow query, not an outage
    pg_errors.DeadlockDetected("deadlock detected"),
    pg_errors.UndefinedTable("relation does not exist"),
    wrapped(pg_errors.UniqueViolation("duplicate key")),
    sqlite_error(1, "SQLITE_ERROR"),  # no such table, a syntax error: a bug
    ValueError("not a database error"), None,
], ids=lambda e: type(e).__name__)
def test_errors_that_are_not_an_outage(error):
    assert not database.unreachable(error)


@pytest.fixture
def unreachable_app(tmp_path):
    """The suite's secret key on a SQLite file that cannot be opened (its folder does not exist)."""
    return create_app(type("Unreachable", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'app.db'}"}))


def test_pages_api_and_login_answer_503_when_sqlite_cannot_be_opened(client, auth, world, unreachable_app):
    auth.login("owner@acme.test")
    down = unreachable_app.test_client()
    down.set_cookie("session", client.get_cookie("session").value)  # a logged-in browser: the user loader fails
    for headers, whole_page in (({}, True), ({"HX-Request": "true"}, False)):
        response = down.get("/w/acme/agents", headers=headers)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
        html = response.get_data(as_text=True)
        assert "database cannot be reached" in html and ("<html" in html) is whole_page
    api = {"Authorization": f"Bearer {world.api_key}"}
    for response in (down.post(f"/api/v1/agents/{world.agent_id}/messages", headers=api,  # the raw DBAPI hot path
                               json={"visitor_id": "v", "conversation_id": "c", "role": "visitor"}),
                     down.get(f"/api/v1/agents/{world.agent_id}/visitors/v/assignment", headers=api)):
        assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
        assert response.get_json() == {"error": {
            "code": "unavailable", "message": "The database cannot be reached right now. Try again in a moment.",
            "fields": {}}}
    browser = unreachable_app.test_client()
    response = browser.post("/login", data={"email": "owner@acme.test", "password": factories.PASSWORD,
                                            "csrf_token": csrf_token(browser)})
    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")


def test_a_database_error_that_is_no_outage_stays_a_500(database_url):
    app = create_app(type("BrokenQueryConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))

    @app.get("/__broken_query__")
    def broken_query():
        db.session.execute(sa.text("SELECT * FROM no_such_table"))

    response = app.test_client().get("/__broken_query__")
    assert response.status_code == 500 and "Retry-After" not in response.headers


def test_the_cli_says_so_in_one_line(unreachable_app, tmp_path):
    done = unreachable_app.test_cli_runner().invoke(args=[
        "users", "create", "new@acme.test", "--password", "long-enough-1", "--workspace", "acme", "--role", "owner"])
    assert done.exit_code == 1
    assert done.output == ("Error: the database cannot be reached (unable to open database file). Check "
                           f"DATABASE_URL (sqlite:///{tmp_path / 'missing' / 'app.db'}), and that the database is up "
                           "and reachable.\n")


# Every command that opens the database, Flask-Migrate's `db upgrade` included.
COMMANDS = [["db", "upgrade"], ["db", "current"], ["demo"],
            ["users", "create", "new@acme.test", "--password", "quartz-lantern-meadow", "--workspace", "acme",
             "--role", "owner"]]


@pytest.fixture
def refused_url():
    """A PostgreSQL URL, with a password, on a port of this machine where nothing listens."""
    return f"postgresql+psycopg://root:s3cret-pw@127.0.0.1:{free_port()}/nope?password=s3cret-pw"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_every_command_names_a_refused_database_in_one_line_with_the_password_masked(refused_url, args):
    app = create_app(type("Refused", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": refused_url}))
    done = app.test_cli_runner().invoke(args=args)
    port = refused_url.split(":")[3].split("/")[0]
    assert (done.exit_code, done.exception.__class__) == (1, SystemExit)
    assert done.output.startswith('Error: the database cannot be reached (connection failed: connection to server '
                                  f'at "127.0.0.1", port {port} failed: Connection refused). Check DATABASE_URL '
                                  f'(postgresql+psycopg://root:***@127.0.0.1:{port}/nope), and that the database is '
                                  'up and reachable.\n'), done.output
    assert len(done.output.splitlines()) == 1 and "s3cret-pw" not in done.output


def test_flask_db_upgrade_prints_no_traceback(refused_url):
    done = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": refused_url, "SECRET_KEY": "x"})
    assert done.returncode == 1
    assert done.stdout == "" and done.stderr.startswith("Error: the database cannot be reached (")
    assert len(done.stderr.splitlines()) == 1 and "s3cret-pw" not in done.stderr


def pool_options(url: str, **config) -> tuple[bool, dict]:
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, **config}))
    with app.app_context():
        return db.engine.pool._pre_ping, app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})


@pytest.mark.parametrize("setting, expected", [(None, True), ("", True), ("1", True), ("0", False), ("off", False)])
def test_postgresql_connections_are_checked_before_reuse_unless_turned_off(setting, expected):
    pre_ping, connect_args = pool_options("postgresql://u@127.0.0.1/x", DATABASE_POOL_PRE_PING=setting)
    assert pre_ping is expected
    assert connect_args["connect_timeout"] == database.CONNECT_TIMEOUT


def test_a_connect_timeout_in_the_url_wins():
    assert "connect_timeout" not in pool_options("postgresql://u@127.0.0.1/x?connect_timeout=3")[1]


@pytest.mark.parametrize("setting, expected", [(None, False), ("1", True)])
def test_sqlite_has_no_pre_ping_unless_asked(tmp_path, setting, expected):
    assert pool_options(f"sqlite:///{tmp_path / 'p.db'}", DATABASE_POOL_PRE_PING=setting)[0] is expected


def test_the_openapi_document_lists_the_503_of_every_endpoint(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    operations = [operation for path in paths.values() for operation in path.values()]
    assert operations and all("503" in operation["responses"] for operation in operations
                              if "401" in operation["responses"])  # every endpoint that reads the database


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
@pytest.mark.parametrize("args", COMMANDS[2:], ids=lambda args: args[0])
def test_a_database_without_tables_asks_for_the_upgrade_in_one_line(engine, args, tmp_path_factory):
    """Reachable but never migrated: `flask demo` printed a `no such table` traceback."""
    url, drop = own_database(engine, tmp_path_factory, "unmigrated")
    try:
        app = create_app(type("Unmigrated", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
        done = app.test_cli_runner().invoke(args=args)
        with app.app_context():
            db.engine.dispose()
    finally:
        drop()
    assert (done.exit_code, done.exception.__class__) == (1, SystemExit), done.output
    assert done.output.startswith(f"Error: the database {database.shown_url(url)} has no tables yet ("), done.output
    assert done.output.endswith("Run `flask db upgrade` first.\n") and len(done.output.splitlines()) == 1
