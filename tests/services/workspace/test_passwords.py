"""The password policy (SPEC §14): 10 characters, zxcvbn score ≥ 3, and a reason when refused."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from webapp.cli import DEMO_PASSWORD, DEMO_USERS
from webapp.extensions import db
from webapp.models import User
from webapp.services.workspace import passwords


@pytest.mark.parametrize("password,reason", [
    ("", "at least 10 characters"),
    ("12345678", "at least 10 characters"),
    ("password", "at least 10 characters"),
    ("1234567890", "Password is too easy to guess. This is a top-100 common password."),
    ("password123", "This is a very common password."),
    ("aaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess.'),
    ("poiuytrewqlk", "Reversed words aren't much harder to guess."),
    ("abcdefghijkl", 'Sequences like "abc" or "6543" are easy to guess.'),
    ("owner@acme.test", "It is made of words of your email address"),
    ("acme-owner-2026", "It is made of words of your email address"),
    ("agent-studio-2026", "It is made of words of your email address, your workspace or this site."),
    ("x" * 1001, "at most 1000 characters"),
    ("correct-horse\udcff", "valid Unicode"),
])
def test_weak_passwords_are_refused_with_the_reason(password, reason):
    problem = passwords.problem(password, ("owner@acme.test", "Acme"))
    assert problem is not None and reason in problem


@pytest.mark.parametrize("password", ["correct-horse-battery", "quartz-lantern-meadow", "Tr0ub4dor&3-x",
                                      "x7#Lq9!vR2@m", "a-long-passphrase " * 10])
def test_strong_passwords_pass(password):
    assert passwords.problem(password, ("owner@acme.test", "Acme")) is None


def test_the_demo_password_passes_for_every_demo_login():
    assert all(passwords.problem(DEMO_PASSWORD, (email, "demo")) is None for email, _ in DEMO_USERS)


@pytest.mark.parametrize("password,reason", [
    ("12345678", "Password needs at least 10 characters."),
    ("password12", "This is a very common password."),
    ("demo-password", "This is similar to a commonly used password."),
])
def test_the_cli_refuses_a_weak_password_with_the_reason_and_writes_nothing(runner, app, password, reason):
    result = runner.invoke(args=["users", "create", "new@acme.test", "--password", password, "--workspace", "acme",
                                 "--role", "owner"])
    assert result.exit_code != 0 and "password: Password" in result.output and reason in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
