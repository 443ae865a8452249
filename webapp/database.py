"""Engine set-up: the database URL and pool options, SQLite's pragmas, the secret key the sessions need, and which
errors mean the database cannot be reached (answered 503, not 500)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg
import sqlalchemy as sa
from flask import Flask

from webapp import config as settings
from webapp.config import ConfigError, normalise_database_url
from webapp.extensions import db
from webapp.models import json_text


CONNECT_TIMEOUT = 10  # seconds, PostgreSQL; a `connect_timeout` in DATABASE_URL's query wins
# PostgreSQL SQLSTATEs that mean the server cannot serve now: 08 connection exception, 53 insufficient resources
# (too many connections, disk full), 57P operator intervention (shutdown, crash, starting up). No SQLSTATE at all:
# the client could not reach the server, or lost it (connection refused, server closed the connection).
UNREACHABLE_SQLSTATES = ("08", "53", "57P")
# SQLite: the file is locked past the busy timeout, cannot be opened, read or written.
UNREACHABLE_SQLITE_ERRORS = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL",
                             "SQLITE_NOMEM", "SQLITE_READONLY", "SQLITE_PROTOCOL"}


def unreachable(error: BaseException | None) -> bool:
    """True when `error` says the database cannot be reached now (the ORM's, a raw DBAPI connection's or the
    pool's), as opposed to a bug or bad data: a stopped or restarting server, a refused or dropped connection."""
    if isinstance(error, sa.exc.TimeoutError):  # no pooled connection came free within pool_timeout
        return True
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig
    if isinstance(error, psycopg.OperationalError):
        return error.sqlstate is None or error.sqlstate.startswith(UNREACHABLE_SQLSTATES)
    if isinstance(error, sqlite3.OperationalError):
        return getattr(error, "sqlite_errorname", None) in UNREACHABLE_SQLITE_ERRORS
    return False


def unmigrated(error: BaseException | None) -> bool:
    """True when `error` says a table is missing: the database is reachable but `flask db upgrade` has not run."""
    if isinstance(error, sa.exc.DBAPIError):
        error = error.orig
    if isinstance(error, psycopg.errors.UndefinedTable):
        return True
    return isinstance(error, sqlite3.OperationalError) and str(error).startswith("no such table")


def describe(error: BaseException) -> str:
    """The driver's first line about a database error (it names host and port, never a password)."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def shown_url(url: str) -> str:
    """The database URL to show an operator: its password masked and its query left out (either may hold a
    secret: psycopg takes `?password=`)."""
    return sa.engine.make_url(url).set(query={}).render_as_string(hide_password=True)


def configure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if str(app.config.get("SQLALCHEMY_DATABASE_URI") or "").startswith(("postgres", "postgresql")):
        # The production engine, shared by processes on several hosts: a key generated per host would sign each
        # host's sessions and CSRF tokens differently, and logins would fail behind a load balancer.
        raise ConfigError("SECRET_KEY must be set when DATABASE_URL is PostgreSQL: every process and host must "
                          "sign sessions with the same key (e.g. the output of "
                          "python3 -c 'import secrets; print(secrets.token_hex(32))').")
    if app.debug or os.environ.get("FLASK_DEBUG") == "1" or app.config["APP_ENV"] == "development":
        # Development only: a key kept in the instance folder so sessions survive restarts.
        os.makedirs(app.instance_path, exist_ok=True)
        key_file = Path(app.instance_path) / "dev-secret-key"
        if not key_file.exists():
            key_file.write_text(os.urandom(32).hex())
        app.config["SECRET_KEY"] = key_file.read_text().strip()
        return
    raise ConfigError("SECRET_KEY must be set when APP_ENV=production: a long random string, e.g. the output of "
                      "python3 -c 'import secrets; print(secrets.token_hex(32))'.")


def configure_database(app: Flask) -> None:
    url = app.config.get("SQLALCHEMY_DATABASE_URI")
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'app.db'}"
    url = normalise_database_url(url)
    settings.check_database_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("json_serializer", json_text)
    options.setdefault("pool_recycle", settings.seconds("DATABASE_POOL_RECYCLE",
                                                        app.config.get("DATABASE_POOL_RECYCLE", 1800)))
    pre_ping = app.config.get("DATABASE_POOL_PRE_PING")
    # Unset: on for PostgreSQL, so a connection the server dropped (a restart) is replaced before a request uses
    # it; off for SQLite, a file with no server to lose.
    options.setdefault("pool_pre_ping", url.startswith("postgresql") if pre_ping is None or str(pre_ping).strip() == ""
                       else settings.flag("DATABASE_POOL_PRE_PING", pre_ping))
    if url.startswith("postgresql") and "connect_timeout" not in sa.engine.make_url(url).query:
        # libpq waits for the operating system's TCP timeout (minutes) on a host that does not answer: give up
        # sooner, so the request answers 503 before a worker timeout kills it.
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT, **(options.get("connect_args") or {})}
    if url.startswith("sqlite"):
        options.pop("pool_recycle", None)  # a file, not a server: nothing to recycle
        options.setdefault("connect_args", {"timeout": 30})
    synchronous_commit = app.config.get("DATABASE_SYNCHRONOUS_COMMIT")
    if synchronous_commit:
        settings.synchronous_commit(synchronous_commit)  # checked on SQLite too, where it is ignored
    if synchronous_commit and url.startswith("postgresql"):
        connect_args = dict(options.get("connect_args") or {})
        connect_args["options"] = f"{connect_args.get('options', '')} -c synchronous_commit={synchronous_commit}".strip()
        options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def end_sessions_quietly(app: Flask) -> None:
    """Close the request's session before Flask-SQLAlchemy's own teardown does (teardowns run last-registered
    first), so that a connection lost after the response was made (the server restarting meanwhile) does not turn
    the finished request into an error: the close's rollback fails, and the connection is discarded."""

    @app.teardown_appcontext
    def _end_session(_error: BaseException | None) -> None:
        try:
            db.session.remove()
        except Exception as error:
            if not unreachable(error):
                raise
            db.session.remove()  # the connection is invalidated now: this close has nothing left to send


def configure_sqlite(app: Flask) -> None:
    """WAL mode and foreign keys on every SQLite connection (SPEC §9), and a bound on the log file's size."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    wal_size_limit = int(app.config["SQLITE_WAL_SIZE_LIMIT"])

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA journal_size_limit={wal_size_limit}")
        cursor.close()
