"""Configuration from the environment (SPEC §9).

The environment is read here as text, at import, and checked by create_app(): a bad value is a ConfigError naming the
variable and what it expects, never a traceback out of a module import."""
import os
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa


class ConfigError(RuntimeError):
    """A setting the app cannot start with; the message names the variable and what it expects."""


APP_ENVS = ("development", "production")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")
SYNCHRONOUS_COMMIT_VALUES = ("on", "off", "local", "remote_write", "remote_apply")


def flag(name: str, value) -> bool:
    """A boolean setting: a bool, None (off), or 1/0, true/false, yes/no, on/off in any case."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    raise ConfigError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off); got {str(value)[:40]!r}.")


def seconds(name: str, value) -> int:
    """A whole number of seconds (an int, or its digits), or -1 for never."""
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.removeprefix("-").isdigit()) or int(text) < -1:
        raise ConfigError(f"{name} must be a whole number of seconds, e.g. 1800 (or -1 for never); "
                          f"got {str(value)[:40]!r}.")
    return int(text)


def proxy_count(name: str, value) -> int:
    """How many proxies in front of the app set X-Forwarded-For, -Proto and -Host: a whole number from 0 (none: the
    default) to 10."""
    text = str(0 if value is None else value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) > 10:
        raise ConfigError(f"{name} must be the number of proxies in front of the app, from 0 (none) to 10; "
                          f"got {str(value)[:40]!r}.")
    return int(text)


def app_env(value) -> str:
    if value not in APP_ENVS:
        raise ConfigError(f"APP_ENV must be {' or '.join(APP_ENVS)}; got {str(value)[:40]!r}.")
    return value


def synchronous_commit(value) -> str:
    if value not in SYNCHRONOUS_COMMIT_VALUES:
        raise ConfigError(f"DATABASE_SYNCHRONOUS_COMMIT must be one of {', '.join(SYNCHRONOUS_COMMIT_VALUES)}; "
                          f"got {str(value)[:40]!r}.")
    return value


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def check_database_url(url: str) -> None:
    """SQLite or PostgreSQL through psycopg 3 (SPEC §9). The message never repeats the URL: it may hold a password."""
    expected = "e.g. postgresql://user:password@host/dbname or sqlite:////path/to/app.db"
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"DATABASE_URL is not a database URL: expected {expected}.") from None
    if parsed.get_backend_name() == "sqlite" and parsed.get_driver_name() == "pysqlite":
        return
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        return
    raise ConfigError(f"DATABASE_URL must name SQLite or PostgreSQL with the psycopg driver ({expected}); "
                      f"got a {parsed.drivername!r} URL.")


SMTP_URL_FORMS = ("smtp://[user:password@]host[:port] (STARTTLS, port 587 by default) or "
                  "smtps://[user:password@]host[:port] (TLS from the start, port 465 by default)")


@dataclass(frozen=True)
class SmtpSettings:
    """Where invitations are emailed from (SPEC §14): SMTP_URL and MAIL_FROM, checked."""

    host: str
    port: int
    implicit_tls: bool  # smtps://; smtp:// upgrades with STARTTLS, and refuses a server that does not offer it
    username: str | None
    password: str | None
    sender: str


def smtp(url, mail_from) -> SmtpSettings | None:
    """SMTP_URL and MAIL_FROM checked (None: no SMTP_URL, invitations are not emailed). The message never repeats
    the URL: it may hold a password."""
    if url is None or not str(url).strip():
        return None
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError:
        raise ConfigError(f"SMTP_URL is not a URL with a valid port: expected {SMTP_URL_FORMS}.") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(f"SMTP_URL must be {SMTP_URL_FORMS}; got a {parts.scheme or 'scheme-less'!r} URL.")
    if not parts.hostname:
        raise ConfigError(f"SMTP_URL names no host: expected {SMTP_URL_FORMS}.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"SMTP_URL must have no path, query or fragment: expected {SMTP_URL_FORMS}.")
    name, address = parseaddr(str(mail_from or ""))
    if "@" not in address or any(c in str(mail_from) for c in "\r\n"):
        raise ConfigError("MAIL_FROM must be set when SMTP_URL is: the address invitations are sent from, e.g. "
                          "'Agent Studio <studio@example.com>' or studio@example.com.")
    implicit_tls = parts.scheme == "smtps"
    return SmtpSettings(
        host=parts.hostname, port=port or (465 if implicit_tls else 587), implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        sender=str(mail_from).strip())


class Config:
    """Production-safe defaults; everything overridable by environment variables (checked by create_app)."""

    SECRET_KEY = os.environ.get("SECRET_KEY")
    APP_ENV = os.environ.get("APP_ENV", "development")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")  # None: SQLite in instance/
    # PostgreSQL connections are checked before reuse (pool pre-ping, a round trip per checkout), so once the
    # database is back after a restart no request fails; DATABASE_POOL_PRE_PING=0 saves that round trip, and a
    # restart then costs one failed request (a 503) per worker. Unset: on for PostgreSQL, off for SQLite.
    # Connections are also recycled after DATABASE_POOL_RECYCLE seconds. Both become SQLALCHEMY_ENGINE_OPTIONS'
    # pool_recycle and pool_pre_ping unless those are given.
    DATABASE_POOL_RECYCLE = os.environ.get("DATABASE_POOL_RECYCLE", "1800")
    DATABASE_POOL_PRE_PING = os.environ.get("DATABASE_POOL_PRE_PING")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # PostgreSQL only, opt-in: "off" acknowledges a commit before its WAL reaches disk, so a server crash can
    # lose the last few hundred ms of acknowledged messages (never corrupts). None: the server's setting.
    DATABASE_SYNCHRONOUS_COMMIT = os.environ.get("DATABASE_SYNCHRONOUS_COMMIT")
    # SQLite only: after a checkpoint lets the write-ahead log start over, SQLite truncates the -wal file to this
    # size, so one large transaction (a bulk simulation, an import) does not leave a file that size behind.
    SQLITE_WAL_SIZE_LIMIT = 64 * 1024 * 1024
    # The number of proxies in front of the app that append to X-Forwarded-For and set X-Forwarded-Proto and
    # X-Forwarded-Host (0: none, the client's address, scheme and host are the connection's). Only then are the
    # headers trusted: for the login throttle's client address, and the scheme and host of the invitation links.
    TRUSTED_PROXIES = os.environ.get("TRUSTED_PROXIES", "0")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE")  # a flag: create_app makes it a bool
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = None  # None: as SESSION_COOKIE_SECURE, however that is set (create_app)
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session
    MAX_CONTENT_LENGTH = 1024 * 1024  # pages; the runtime API enforces its own 64 KB
    API_MAX_BODY_BYTES = 64 * 1024
    PAGE_SIZE = 50
    # Invitations are emailed through this server when set (SPEC §14); create_app checks both into app.config["SMTP"].
    SMTP_URL = os.environ.get("SMTP_URL")
    MAIL_FROM = os.environ.get("MAIL_FROM")


class TestConfig(Config):
    """Used by the test suite: `TEST_DATABASE_URL` or a SQLite file chosen by the fixture."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    WTF_CSRF_ENABLED = True
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast for tests only
    SMTP_URL = None  # a test that sends email starts its own server and sets it
