"""Engine set-up: the database URL and pool options, SQLite's pragmas, and the secret key the sessions need."""
from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from webapp import config as settings
from webapp.config import ConfigError, normalise_database_url
from webapp.extensions import db
from webapp.models import json_text


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
    options.setdefault("pool_pre_ping", settings.flag("DATABASE_POOL_PRE_PING",
                                                      app.config.get("DATABASE_POOL_PRE_PING")))
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
