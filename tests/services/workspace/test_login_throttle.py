"""Login throttling (SPEC §14): the counts, the doubling, the cap, what clears them, and concurrent attempts."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import factories
from tests.databases import app_on_own_database
from webapp.extensions import db
from webapp.models import AuditEvent, LoginFailure, User
from webapp.services.workspace import accounts, login_throttle
from webapp.services.workspace.login_throttle import Throttled

ADDRESS = "198.51.100.7"
START = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(login_throttle, "utcnow", clock)
    return clock


@pytest.fixture
def owner(ctx, world):
    return "owner@acme.test"


def attempt(email: str, password: str = "wrong-password", address: str = ADDRESS):
    """The user, None, or the Throttled error."""
    try:
        return login_throttle.authenticate(email, password, address)
    except Throttled as throttled:
        return throttled


def fail(times: int, email: str, address: str = ADDRESS) -> None:
    for _ in range(times):
        assert attempt(email, address=address) is None


def test_the_sixth_attempt_within_15_minutes_is_refused_for_a_minute(owner, clock):
    for _ in range(5):
        assert attempt(owner) is None
        clock.advance(170)  # five failures over 11 min 20 s
    clock.now -= timedelta(seconds=170)
    refused = attempt(owner, factories.PASSWORD)  # even the right password: it is not checked
    assert isinstance(refused, Throttled)
    assert (refused.status, refused.scope, refused.retry_after) == (429, "email", 60)
    assert refused.message == "Too many failed logins for this email. Try again in 1 minute."
    clock.advance(59)
    assert attempt(owner, factories.PASSWORD).retry_after == 1
    clock.advance(1)
    assert attempt(owner, factories.PASSWORD).email == owner


def test_a_throttled_attempt_checks_no_password_and_writes_nothing(owner, clock, monkeypatch):
    fail(5, owner)
    rows = db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure))
    checked = []
    monkeypatch.setattr(accounts, "authenticate", lambda *args: checked.append(args))
    for _ in range(10):
        assert isinstance(attempt(owner), Throttled)
    assert checked == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == rows


def test_each_further_failure_doubles_the_lock_up_to_15_minutes(owner, clock):
    fail(5, owner)
    waits = []
    for _ in range(7):
        refused = attempt(owner)
        waits.append(refused.retry_after)
        clock.advance(refused.retry_after)
        assert attempt(owner) is None  # the lock is over: the password is checked (and wrong again)
    assert waits == [60, 120, 240, 480, 900, 900, 900]
    assert attempt(owner).message == "Too many failed logins for this email. Try again in 15 minutes."


def test_a_lockout_ends_15_minutes_after_its_lock_without_a_failure(owner, clock):
    fail(5, owner)
    clock.advance(60)
    fail(1, owner)  # locked for 2 minutes
    clock.advance(120 + 15 * 60)
    assert attempt(owner) is None  # still part of the lockout: its lock doubles
    assert attempt(owner).retry_after == 240
    clock.advance(240 + 15 * 60 + 1)
    fail(4, owner)  # a fresh count: four failures lock nothing
    assert attempt(owner) is None
    assert attempt(owner).retry_after == 60


def test_failures_count_over_a_sliding_15_minutes(owner, clock):
    fail(4, owner)
    clock.advance(15 * 60 + 1)
    fail(4, owner)  # the first four are more than 15 minutes old
    clock.advance(14 * 60)
    fail(1, owner)  # five within the last 15 minutes (the second four and this one)
    assert isinstance(attempt(owner), Throttled)


def test_a_success_clears_the_emails_count(owner, clock):
    fail(4, owner)
    assert attempt(owner, factories.PASSWORD).email == owner
    fail(4, owner)
    assert attempt(owner, factories.PASSWORD).email == owner
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)
                             .where(LoginFailure.scope == "email")) == 0


def check_current(email: str, password: str = "wrong-password", address: str = ADDRESS):
    """The account page's check of a logged-in user's password: True, False, or the Throttled error."""
    try:
        return login_throttle.check_password(accounts.find_user_by_email(email), password, address)
    except Throttled as throttled:
        return throttled


def test_a_wrong_current_password_counts_as_a_failed_login_of_the_email(owner, clock, monkeypatch):
    fail(3, owner)
    assert check_current(owner) is False
    assert check_current(owner) is False  # the 5th failure of the email: locked for 1 minute
    assert isinstance(attempt(owner, factories.PASSWORD), Throttled)
    hashed = []
    with monkeypatch.context() as patch:
        patch.setattr(User, "check_password", lambda user, password: hashed.append(password))
        refused = check_current(owner, factories.PASSWORD)
    assert (refused.status, refused.scope, refused.retry_after) == (429, "email", 60)
    assert refused.message == "Too many wrong passwords for this account (at login or here). Try again in 1 minute."
    assert hashed == []  # refused before any hash, as a login is
    clock.advance(60)
    assert check_current(owner) is False  # the 6th: locked for 2 minutes, the doubling goes on
    assert attempt(owner, factories.PASSWORD).retry_after == 120


def test_a_right_current_password_clears_the_emails_count_as_a_login_does(owner, clock):
    fail(4, owner)
    assert check_current(owner, factories.PASSWORD) is True
    fail(4, owner)
    assert attempt(owner, factories.PASSWORD).email == owner


def test_twenty_failures_from_one_address_lock_it_for_every_email(owner, clock):
    for n in range(20):
        assert attempt(f"guess{n}@acme.test") is None
    refused = attempt(owner, factories.PASSWORD)
    assert (refused.scope, refused.retry_after) == ("address", 60)
    assert refused.message == "Too many failed logins from your network address. Try again in 1 minute."
    assert attempt(owner, factories.PASSWORD, address="198.51.100.8").email == owner  # another address is not
    clock.advance(60)
    assert attempt("guess-again@acme.test") is None
    assert attempt(owner, factories.PASSWORD).retry_after == 120


def test_a_success_does_not_clear_the_address_count_but_is_not_counted(owner, clock):
    for n in range(19):
        assert attempt(f"guess{n}@acme.test") is None
    assert attempt(owner, factories.PASSWORD).email == owner
    assert attempt("one-more@acme.test") is None  # the 20th failure: the success in between did not count
    assert attempt(owner, factories.PASSWORD).scope == "address"


def test_an_unknown_email_is_throttled_exactly_like_a_known_one(owner, clock):
    def run(email: str) -> list:
        outcomes = []
        for _ in range(8):
            outcome = attempt(email)
            outcomes.append(outcome.retry_after if isinstance(outcome, Throttled) else outcome)
            clock.advance(outcome.retry_after if isinstance(outcome, Throttled) else 0)
        return outcomes

    known = run(owner)
    unknown = run("nobody@acme.test")
    assert known == unknown == [None] * 5 + [60, None, 120]
    rows = db.session.execute(sa.select(LoginFailure.key, LoginFailure.level)
                              .where(LoginFailure.scope == "email").order_by(LoginFailure.id)).all()
    assert [level for key, level in rows if key == owner] == [level for key, level in rows if key != owner]


def test_emails_are_counted_as_accounts_look_them_up(owner, clock):
    fail(2, "Owner@Acme.test")
    fail(3, "  owner@acme.TEST ")
    assert isinstance(attempt(owner), Throttled)


def test_failures_are_audited_without_a_workspace(owner, clock, world):
    fail(5, owner)
    fail(1, "nobody@acme.test")
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "login.failed")
                                .order_by(AuditEvent.id)).all()
    assert len(events) == 6
    assert {(e.workspace_id, e.actor_id, e.actor_email, e.target_type) for e in events} == {
        (None, None, "system", "user")}
    assert [e.target_id for e in events] == [world.owner_id] * 5 + [None]
    assert events[0].details == {"email": owner, "address": ADDRESS, "locked_seconds": {"email": 0, "address": 0}}
    assert events[4].details["locked_seconds"] == {"email": 60, "address": 0}
    assert events[5].details["email"] == "nobody@acme.test"
    attempt(owner)  # refused: not a failed login, not audited
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "login.failed")) == 6


def test_rows_older_than_the_throttle_needs_are_pruned(owner, clock):
    fail(3, owner)
    clock.advance(30 * 60 + 1)
    fail(1, "someone@acme.test", address="198.51.100.9")
    keys = db.session.scalars(sa.select(LoginFailure.key)).all()
    assert sorted(keys) == ["198.51.100.9", "someone@acme.test"]


@pytest.mark.parametrize("address, key", [
    ("203.0.113.9", "203.0.113.9"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
    ("", "unknown"), (None, "unknown"), ("not-an-address", "unknown"),
])
def test_client_address_keys(address, key):
    assert login_throttle.address_key(address) == key


@pytest.mark.parametrize("seconds, words", [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"),
                                            (61, "2 minutes"), (900, "15 minutes")])
def test_waits_in_plain_words(seconds, words):
    assert login_throttle.wait_in_words(seconds) == words


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def race_app(request, tmp_path_factory):
    with app_on_own_database(request.param, tmp_path_factory, "throttle") as app:
        with app.app_context():
            factories.user("owner@acme.test", "acme", "owner")
            db.session.remove()
        yield app


def test_concurrent_attempts_never_check_more_passwords_than_the_limit(race_app, monkeypatch):
    """Twelve wrong passwords for one email at the same instant, each in its own thread and connection: five are
    checked, seven refused, whatever the interleaving (the admission is serialised in the database)."""
    checked = []
    real = accounts.authenticate

    def slow_authenticate(email, password):
        checked.append(email)
        time.sleep(0.05)  # a password hash: the others arrive meanwhile
        return real(email, password)

    monkeypatch.setattr(accounts, "authenticate", slow_authenticate)
    barrier = threading.Barrier(12)
    outcomes = []

    def run(n: int) -> None:
        with race_app.app_context():
            barrier.wait(timeout=30)
            try:
                outcome = attempt("owner@acme.test", address=f"198.51.100.{n}")
                outcomes.append("refused" if isinstance(outcome, Throttled) else outcome)
            except Exception as error:  # noqa: BLE001 — named by the assertion below
                outcomes.append(f"unexpected {type(error).__name__}: {error}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes, key=str) == [None] * 5 + ["refused"] * 7
    assert len(checked) == 5
    with race_app.app_context():
        levels = db.session.scalars(sa.select(LoginFailure.level).where(LoginFailure.scope == "email")).all()
        db.session.remove()
    assert sorted(levels) == [1, 2, 3, 4, 5]
