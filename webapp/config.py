"""Configuration from the environment (SPEC §9)."""
import os


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Config:
    """Production-safe defaults; everything overridable by environment variables."""

    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")  # None: SQLite in instance/
    # No pre-ping (a round trip on every checkout of the hot path): connections are recycled after
    # DATABASE_POOL_RECYCLE seconds, and on a disconnect SQLAlchemy invalidates the whole pool, so a database
    # restart costs one failed request per worker. DATABASE_POOL_PRE_PING=1 trades that for a round trip.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_recycle": int(os.environ.get("DATABASE_POOL_RECYCLE", "1800")),
                                       "pool_pre_ping": _bool(os.environ.get("DATABASE_POOL_PRE_PING"))}
    # PostgreSQL only, opt-in: "off" acknowledges a commit before its WAL reaches disk, so a server crash can
    # lose the last few hundred ms of acknowledged messages (never corrupts). None: the server's setting.
    DATABASE_SYNCHRONOUS_COMMIT = os.environ.get("DATABASE_SYNCHRONOUS_COMMIT")
    # SQLite only: after a checkpoint lets the write-ahead log start over, SQLite truncates the -wal file to this
    # size, so one large transaction (a bulk simulation, an import) does not leave a file that size behind.
    SQLITE_WAL_SIZE_LIMIT = 64 * 1024 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool(os.environ.get("SESSION_COOKIE_SECURE"))
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session
    MAX_CONTENT_LENGTH = 1024 * 1024  # pages; the runtime API enforces its own 64 KB
    API_MAX_BODY_BYTES = 64 * 1024
    PAGE_SIZE = 50


class TestConfig(Config):
    """Used by the test suite: `TEST_DATABASE_URL` or a SQLite file chosen by the fixture."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    WTF_CSRF_ENABLED = True
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast for tests only
