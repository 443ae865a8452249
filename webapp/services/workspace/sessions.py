"""Server-side session records (SPEC §14): one row per login, so that a login can be ended for good.

The signed session cookie and the remember-me cookie carry the login's random token (flask-login stores what
User.get_id() returns); only its SHA-256 is stored. A request whose token has no row is anonymous: logging out,
"log out other sessions" and a password change (which gives the browser that made it a new login) delete rows,
and copies of their cookies stop working at once."""
from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import User, UserSession, utcnow
from webapp.services.workspace.api_keys import hash_key as hash_token  # a 256-bit random token: SHA-256 suffices

REMEMBER_FOR = timedelta(days=30)  # the remember-me cookie's lifetime, and any session's longest
IDLE_LIMIT = timedelta(days=7)  # a session without remember-me also ends after this long unused
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often: not a write per request
USER_AGENT_LENGTH = 300

SESSION_BY_TOKEN = (sa.select(UserSession, User).join(User, User.id == UserSession.user_id)
                    .where(UserSession.token_hash == sa.bindparam("token_hash")))


def start(user_id: int, user_agent: str, remember: bool) -> str:
    """Record a new login of the user and return its token (for the cookies; never stored). Commits.

    The user's ended-by-time records are deleted on the way: the table holds live logins and little else."""
    now = utcnow()
    db.session.execute(sa.delete(UserSession).where(UserSession.user_id == user_id, _expired(now)))
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(user_id=user_id, token_hash=hash_token(token), remember=bool(remember),
                               user_agent=(user_agent or "")[:USER_AGENT_LENGTH], created_at=now, last_seen_at=now))
    db.session.commit()
    return token


def user_for(token: str | None) -> User | None:
    """The user of a live login's token, with `session_token` and `session_id` set; None for a token without a
    record (ended, expired, or never issued). Keeps last_seen_at within a minute (and commits when it writes)."""
    if not token or not isinstance(token, str):
        return None
    row = db.session.execute(SESSION_BY_TOKEN, {"token_hash": hash_token(token)}).first()
    if row is None:
        return None
    record, user = row
    now = utcnow()
    if not _live(record, now):
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        db.session.execute(sa.update(UserSession).where(UserSession.id == record.id).values(last_seen_at=now)
                           .execution_options(synchronize_session=False))
        db.session.commit()
    user.session_token, user.session_id = token, record.id
    return user


def end(token: str | None, commit: bool = True) -> None:
    """End one login (logging out)."""
    if token:
        db.session.execute(sa.delete(UserSession).where(UserSession.token_hash == hash_token(token)))
        if commit:
            db.session.commit()


def remembered(token: str | None) -> bool:
    """Whether the login of `token` was kept logged in ("Keep me logged in")."""
    if not token:
        return False
    return bool(db.session.scalar(sa.select(UserSession.remember).where(UserSession.token_hash == hash_token(token))))


def end_others(user_id: int, keep_token: str | None, commit: bool = True) -> int:
    """End every login of the user but the one of `keep_token` (None: every login); how many ended."""
    where = [UserSession.user_id == user_id]
    if keep_token:
        where.append(UserSession.token_hash != hash_token(keep_token))
    ended = db.session.execute(sa.delete(UserSession).where(*where)).rowcount
    if commit:
        db.session.commit()
    return ended


def of_user(user_id: int) -> list[UserSession]:
    """The user's live logins, the most recently used first."""
    now = utcnow()
    rows = db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user_id)
                              .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))
    return [record for record in rows if _live(record, now)]


def _live(record: UserSession, now) -> bool:
    if now - record.created_at > REMEMBER_FOR:
        return False
    return record.remember or now - record.last_seen_at <= IDLE_LIMIT


def _expired(now) -> sa.ColumnElement[bool]:
    """_live's complement, as SQL."""
    return sa.or_(UserSession.created_at < now - REMEMBER_FOR,
                  sa.and_(UserSession.remember.is_(False), UserSession.last_seen_at < now - IDLE_LIMIT))
