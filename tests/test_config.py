"""A configuration mistake stops the app with one line naming the setting and what it expects, never a traceback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import factories
from webapp import create_app
from webapp.config import ConfigError, TestConfig
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def make(tmp_path, **settings):
    return create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'c.db'}",
                                                **settings}))


@pytest.mark.parametrize("settings,message", [
    ({"DATABASE_POOL_RECYCLE": "30m"},
     "DATABASE_POOL_RECYCLE must be a whole number of seconds, e.g. 1800 (or -1 for never); got '30m'."),
    ({"DATABASE_POOL_RECYCLE": "-5"}, "DATABASE_POOL_RECYCLE must be a whole number of seconds"),
    ({"DATABASE_POOL_PRE_PING": "sometimes"}, "DATABASE_POOL_PRE_PING must be 1 or 0 (or true/false, yes/no, on/off)"),
    ({"SESSION_COOKIE_SECURE": "ture", "REMEMBER_COOKIE_SECURE": "ture"},
     "SESSION_COOKIE_SECURE must be 1 or 0 (or true/false, yes/no, on/off); got 'ture'."),
    ({"REMEMBER_COOKIE_SECURE": "ture"}, "REMEMBER_COOKIE_SECURE must be 1 or 0 (or true/false, yes/no, on/off); "
                                         "got 'ture'."),
    ({"APP_ENV": "prod"}, "APP_ENV must be development or production; got 'prod'."),
    ({"APP_ENV": "production", "SECRET_KEY": None}, "SECRET_KEY must be set when APP_ENV=production"),
    ({"APP_ENV": "development", "SECRET_KEY": None, "SQLALCHEMY_DATABASE_URI": "postgresql://app@db.internal/app"},
     "SECRET_KEY must be set when DATABASE_URL is PostgreSQL: every process and host must sign sessions"),
    ({"DATABASE_SYNCHRONOUS_COMMIT": "sometimes"},
     "DATABASE_SYNCHRONOUS_COMMIT must be one of on, off, local, remote_write, remote_apply; got 'sometimes'."),
    ({"SQLALCHEMY_DATABASE_URI": "not a url"}, "DATABASE_URL is not a database URL: expected e.g."),
    ({"SQLALCHEMY_DATABASE_URI": "mysql://app:s3cret@db/app"},
     "DATABASE_URL must name SQLite or PostgreSQL with the psycopg driver"),
])
def test_a_bad_setting_is_a_config_error_naming_it(tmp_path, settings, message):
    with pytest.raises(ConfigError) as error:
        make(tmp_path, **settings)
    assert str(error.value).startswith(message)
    assert "s3cret" not in str(error.value)  # a database URL is never repeated: it may hold a password


@pytest.mark.parametrize("value,expected", [("1", True), ("on", True), ("TRUE", True), ("0", False), ("", False),
                                            ("no", False), (None, False), (True, True)])
def test_flags_take_the_usual_words(tmp_path, value, expected):
    app = make(tmp_path, SESSION_COOKIE_SECURE=value, REMEMBER_COOKIE_SECURE=value, DATABASE_POOL_PRE_PING=value)
    assert app.config["SESSION_COOKIE_SECURE"] is app.config["REMEMBER_COOKIE_SECURE"] is expected
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is expected


@pytest.mark.parametrize("how", ["class", "dict"])
@pytest.mark.parametrize("session,remember,expected", [
    ("1", None, True), ("0", None, False), (None, None, False),  # unset: as the session cookie
    ("1", "0", False), ("0", "on", True), (True, False, False),  # set on its own: as set
])
def test_the_remember_me_cookie_is_secure_as_the_session_cookie_unless_set_on_its_own(tmp_path, how, session,
                                                                                     remember, expected):
    settings = {"SESSION_COOKIE_SECURE": session}
    if remember is not None:
        settings["REMEMBER_COOKIE_SECURE"] = remember
    if how == "class":
        app = make(tmp_path, **settings)
    else:  # overrides on top of Config, which reads the environment (where neither is set here)
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.db'}", "SECRET_KEY": "k", **settings})
    assert app.config["REMEMBER_COOKIE_SECURE"] is expected


def test_behind_https_a_remembered_login_sets_both_cookies_secure(tmp_path):
    """SESSION_COOKIE_SECURE=1 alone: the remember-me cookie, which logs the browser in again, is not sent over
    plain HTTP either."""
    app = make(tmp_path, SESSION_COOKIE_SECURE="1", WTF_CSRF_ENABLED=False)
    with app.app_context():
        db.create_all()
        factories.user("owner@acme.test", "acme", "owner")
        db.session.remove()
    response = app.test_client().post("/login", base_url="https://localhost", data={
        "email": "owner@acme.test", "password": factories.PASSWORD, "remember": "y"})
    assert response.status_code == 302
    cookies = {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}
    assert {"session", "remember_token"} <= set(cookies)
    assert all("; Secure" in cookies[name] for name in ("session", "remember_token")), cookies
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("value,expected", [("3600", 3600), (" 60 ", 60), ("-1", -1), (900, 900)])
def test_pool_recycle_is_whole_seconds(value, expected):
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": "postgresql://u@127.0.0.1/x",
                                               "DATABASE_POOL_RECYCLE": value}))
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_recycle"] == expected


def run(args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", **env}
    return subprocess.run(args, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)


def test_a_bad_environment_variable_does_not_break_the_import_of_the_config(tmp_path):
    done = run([sys.executable, "-c", "import webapp.config"], tmp_path, DATABASE_POOL_RECYCLE="30m")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", [["-c", "import wsgi"], ["-m", "flask", "--app", "wsgi", "routes"]])
@pytest.mark.parametrize("env,message", [
    ({"DATABASE_POOL_RECYCLE": "30m"}, "DATABASE_POOL_RECYCLE must be a whole number of seconds"),
    ({"APP_ENV": "production", "SECRET_KEY": ""}, "SECRET_KEY must be set when APP_ENV=production"),
])
def test_the_entry_point_prints_one_line_and_exits(tmp_path, command, env, message):
    done = run([sys.executable, *command], tmp_path, **env)
    assert done.returncode == 4
    assert done.stderr.startswith(f"Configuration error: {message}") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None, reason="no gunicorn")
@pytest.mark.parametrize("preload", [True, False], ids=["preload", "in-workers"])
def test_gunicorn_stops_with_the_message_instead_of_rebooting_workers(tmp_path, preload):
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    # HOME: recent gunicorns open a control socket under ~/.gunicorn (older ones lack the flag that turns it off).
    done = run([gunicorn, "--bind", "127.0.0.1:0", "--workers", "2", *(["--preload"] if preload else []), "wsgi:app"],
               tmp_path, DATABASE_POOL_RECYCLE="30m", HOME=str(tmp_path))
    assert "Configuration error: DATABASE_POOL_RECYCLE must be a whole number of seconds" in done.stderr
    if preload:  # the master loads the app: our one line and gunicorn's exit status for "App failed to load"
        assert done.returncode == 4 and "Traceback" not in done.stderr, done.stderr
    else:
        # Each worker exits with status 4 and the master halts ("App failed to load.") instead of rebooting them.
        # When a worker dies while the master is still starting the others, gunicorn itself reports that halt
        # with a traceback of its own and status 1 (its race, seen 1 run in 3): either way it stops.
        assert done.returncode in (1, 4) and "App failed to load." in done.stderr, done.stderr


@pytest.mark.parametrize("url,mail_from,expected", [
    ("smtp://user:p%40ss@mail.example.test:2525", "studio@example.test",
     ("mail.example.test", 2525, False, "user", "p@ss", "studio@example.test")),
    ("smtp://mail.example.test", "Studio <studio@example.test>",
     ("mail.example.test", 587, False, None, None, "Studio <studio@example.test>")),
    ("smtps://u:x@mail.example.test", "a@b.test", ("mail.example.test", 465, True, "u", "x", "a@b.test")),
])
def test_smtp_url_is_read_into_settings(tmp_path, url, mail_from, expected):
    smtp = make(tmp_path, SMTP_URL=url, MAIL_FROM=mail_from).config["SMTP"]
    assert (smtp.host, smtp.port, smtp.implicit_tls, smtp.username, smtp.password, smtp.sender) == expected


def test_no_smtp_url_means_no_email(tmp_path):
    assert make(tmp_path, SMTP_URL="", MAIL_FROM="a@b.test").config["SMTP"] is None


@pytest.mark.parametrize("url,mail_from,message", [
    ("http://user:hunter2@mail.example.test", "a@b.test", "SMTP_URL must be smtp://"),
    ("smtp://user:hunter2@mail.example.test:99999", "a@b.test", "SMTP_URL is not a URL with a valid port"),
    ("smtp://user:hunter2@:25", "a@b.test", "SMTP_URL names no host"),
    ("smtp://user:hunter2@mail.example.test/x?y=1", "a@b.test", "SMTP_URL must have no path"),
    ("smtp://user:hunter2@mail.example.test", None, "MAIL_FROM must be set when SMTP_URL is"),
    ("smtp://user:hunter2@mail.example.test", "not an address", "MAIL_FROM must be set when SMTP_URL is"),
])
def test_a_bad_smtp_setting_is_a_config_error_that_names_it_and_never_the_password(tmp_path, url, mail_from,
                                                                                   message):
    with pytest.raises(ConfigError) as error:
        make(tmp_path, SMTP_URL=url, MAIL_FROM=mail_from)
    assert str(error.value).startswith(message) and "hunter2" not in str(error.value)


def test_a_bad_smtp_url_stops_the_entry_point_with_one_line(tmp_path):
    done = run([sys.executable, "-c", "import wsgi"], tmp_path, SMTP_URL="ftp://u:hunter2@host", MAIL_FROM="a@b.test")
    assert done.returncode == 4
    assert done.stderr.startswith("Configuration error: SMTP_URL must be") and len(done.stderr.splitlines()) == 1
    assert "hunter2" not in done.stderr
