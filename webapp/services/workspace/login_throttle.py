"""Login throttling (SPEC §14), kept in the database so every process and host shares it.

Each key — the email typed (lower-cased, whether or not it has an account) and the client's address — has
failure rows. A failure's *level* is its place in the key's count: the number of the key's failures in the last 15
minutes, itself included, or, while the key is in a lockout (its latest failure locked it, and that lock ended at
most 15 minutes ago), the latest failure's level + 1. A failure whose level reaches the limit (5 for an email, 20
for an address) locks the key for 1 minute, doubled per level above the limit, at most 15 minutes; a locked key's
attempts are refused before any password hash, and neither count nor write anything. A success deletes the
email's failures. The account page's current password is checked behind the same counts (check_password): a wrong
one is a failed login of the account's email. docs/operations.md has the rules in full.

Race-safety: an attempt is admitted and counted as a failure in one transaction that holds the keys' locks
(PostgreSQL: transaction-level advisory locks; SQLite: the database's write lock, taken by the first statement);
the password is checked after that commit, and a success takes its rows back. So concurrent attempts, in any
number of processes, can never check more passwords than the limits allow.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import LoginFailure, User, utcnow
from webapp.services.errors import DomainError
from webapp.services.workspace import accounts, audit

WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(minutes=15)
LIMITS = {"email": 5, "address": 20}
# A key's rows are needed for the count (the window) and to tell whether a lockout goes on (its lock + the window).
KEEP = WINDOW + LONGEST_LOCK
UNKNOWN_ADDRESS = "unknown"


# What a refusal says, by where the password was typed and the key that is locked.
TOO_MANY = {("login", "email"): "Too many failed logins for this email",
            ("login", "address"): "Too many failed logins from your network address",
            ("account", "email"): "Too many wrong passwords for this account (at login or here)",
            ("account", "address"): "Too many wrong passwords from your network address"}


class Throttled(DomainError):
    """Too many failed logins for the email or from the address: wait `retry_after` seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(self, scope: str, retry_after: int, where: str = "login"):
        self.scope = scope
        self.retry_after = retry_after
        super().__init__(f"{TOO_MANY[where, scope]}. Try again in {wait_in_words(retry_after)}.")


@dataclass(frozen=True)
class _Reservation:
    """The rows an admitted attempt wrote, as failures, before its password was checked."""

    email_key: str
    address_key: str
    address_row_id: int
    locks: dict[str, int]  # scope → seconds the key is locked for if this attempt fails (0: not locked)


def authenticate(email: str, password: str, address: str | None) -> User | None:
    """accounts.authenticate() behind the throttle: the user, None for a wrong email or password, or Throttled.

    `address` is the client's (request.remote_addr, which TRUSTED_PROXIES lets ProxyFix set from X-Forwarded-For).
    A failure is audited (login.failed, without a workspace); a success clears the email's failures."""
    reservation = _admit(email_key(email), address_key(address))
    user = accounts.authenticate(email, password)
    if user is not None:
        _clear(reservation)
    else:
        known = accounts.find_user_by_email(reservation.email_key)  # for every email alike: one query
        _record_failure(reservation, None, known.id if known else None, {})
    db.session.commit()
    return user


def check_password(user: User, password: str, address: str | None) -> bool:
    """A logged-in user's password (the account page's current one) behind the login throttle: Throttled while the
    account's email or the address is locked (the password unchecked, nothing written); a wrong password counts
    as a failed login of that email and is audited as one (actor: the user, `via: account_page`), a right one
    clears the email's failures as a login does."""
    reservation = _admit(email_key(user.email), address_key(address), where="account")
    matches = user.check_password(password)
    if matches:
        _clear(reservation)
    else:
        _record_failure(reservation, user.id, user.id, {"via": "account_page"})
    db.session.commit()
    return matches


def email_key(email: str | None) -> str:
    """The email as accounts look it up (stripped, lower-cased), whether or not an account has it."""
    return (email or "").strip().lower()[:254]


def address_key(address: str | None) -> str:
    """An IPv4 address as it is; an IPv6 address by its /64 (one subscriber's whole prefix); else 'unknown'."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def lock_for(level: int, limit: int) -> timedelta:
    """How long a failure of `level` locks its key: none below the limit, then 1 minute doubling, at most 15."""
    if level < limit:
        return timedelta(0)
    return min(FIRST_LOCK * 2 ** min(level - limit, 16), LONGEST_LOCK)


def wait_in_words(seconds: int) -> str:
    """'45 seconds', '1 minute', '15 minutes': under a minute in seconds, else in minutes rounded up."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _admit(email: str, address: str, where: str = "login") -> _Reservation:
    """Refuse a locked key's attempt (Throttled), or count the attempt as a failure of both keys, and commit."""
    keys = {"email": email, "address": address}
    _lock_keys(keys)
    now = utcnow()  # once the lock is held: no row written meanwhile is newer than the attempt
    latest = {scope: _latest(scope, key) for scope, key in keys.items()}
    waits = {scope: _locked_until(row) - now for scope, row in latest.items()
             if row and row.level >= LIMITS[scope] and _locked_until(row) > now}
    if waits:
        db.session.rollback()
        scope = max(waits, key=waits.get)
        raise Throttled(scope, math.ceil(waits[scope].total_seconds()), where)
    rows, locks = {}, {}
    for scope, key in keys.items():
        level = _level(scope, key, latest[scope], now)
        rows[scope] = LoginFailure(scope=scope, key=key, failed_at=now, level=level)
        locks[scope] = int(lock_for(level, LIMITS[scope]).total_seconds())
    db.session.add_all(rows.values())
    db.session.commit()
    return _Reservation(email, address, rows["address"].id, locks)


def _clear(reservation: _Reservation) -> None:
    """A success: the email's failures go, and this attempt's row of the address (it was no failure)."""
    db.session.execute(sa.delete(LoginFailure).where(
        sa.or_(sa.and_(LoginFailure.scope == "email", LoginFailure.key == reservation.email_key),
               LoginFailure.id == reservation.address_row_id)))


def _record_failure(reservation: _Reservation, actor_id: int | None, user_id: int | None, details: dict) -> None:
    """A failure stays counted (its rows were written on admission) and is audited, without a workspace."""
    audit.record(None, actor_id, "login.failed", "user", user_id,
                 {"email": reservation.email_key, "address": reservation.address_key,
                  "locked_seconds": reservation.locks, **details})


def _lock_keys(keys: dict[str, str]) -> None:
    """Serialise the attempts on these keys until the transaction ends, and prune the rows no one needs.

    PostgreSQL: an advisory lock per key (always in the same order: no deadlock). SQLite: the prune's DELETE, the
    transaction's first statement (pysqlite begins it there), takes the database's write lock."""
    if db.session.get_bind().dialect.name != "sqlite":
        for scope, key in keys.items():
            digest = hashlib.sha256(f"login:{scope}:{key}".encode()).digest()
            lock_id = int.from_bytes(digest[:8], "big", signed=True)
            db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id)))
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.failed_at < utcnow() - KEEP))


def _latest(scope: str, key: str) -> LoginFailure | None:
    return db.session.scalar(sa.select(LoginFailure).where(LoginFailure.scope == scope, LoginFailure.key == key)
                             .order_by(LoginFailure.failed_at.desc(), LoginFailure.id.desc()).limit(1))


def _locked_until(row: LoginFailure) -> datetime:
    return row.failed_at + lock_for(row.level, LIMITS[row.scope])


def _level(scope: str, key: str, latest: LoginFailure | None, now: datetime) -> int:
    recent = db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure).where(
        LoginFailure.scope == scope, LoginFailure.key == key, LoginFailure.failed_at > now - WINDOW))
    level = recent + 1
    if latest is not None and latest.level >= LIMITS[scope] and now <= _locked_until(latest) + WINDOW:
        level = max(level, latest.level + 1)  # a lockout goes on: each further failure doubles the lock
    return level
