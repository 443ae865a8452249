"""Two owner changes at the same instant must not leave a workspace without an owner (SPEC §1), on SQLite and PostgreSQL.

Each repetition puts two threads, each with its own app context (so its own session and connection), behind a
threading.Barrier and lets them change the owners at once. Correctness comes from a lock on the workspace's row
(accounts.lock_workspace), not from Python locks. Like the views, each thread first loads its workspace and its own
membership, so a role read before the lock and changed while waiting for it would show up here.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests import factories
from tests.databases import own_database
from webapp import authz, create_app
from webapp.config import TestConfig
from webapp.extensions import db
from webapp.models import Membership, Role
from webapp.services.workspace import accounts
from webapp.services.errors import Conflict, Forbidden, NotFound

REPETITIONS = 40


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def race_app(request, tmp_path_factory):
    """An app with a database of its own (a file for SQLite: an in-memory one would not be shared by threads)."""
    url, drop = own_database(request.param, tmp_path_factory, "owners")
    app = create_app(type("OwnerRaceConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    with app.app_context():
        db.create_all()
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


@pytest.fixture
def acme(race_app):
    """A fresh workspace with two owners, A and B (and an editor), per test."""
    with race_app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        ids = {"a": factories.user("a@acme.test", "acme", "owner"), "b": factories.user("b@acme.test", "acme", "owner"),
               "c": factories.user("c@acme.test", "acme", "editor")}
        workspace_id = factories.workspace_id("acme")
        memberships = {k: authz.membership(user_id, workspace_id).id for k, user_id in ids.items()}
        db.session.remove()
    return {"workspace_id": workspace_id, "users": ids, "memberships": memberships}


def reset(app, acme) -> None:
    """Back to A and B owners, C editor (and everyone a member)."""
    with app.app_context():
        db.session.execute(sa.delete(Membership).where(Membership.workspace_id == acme["workspace_id"]))
        for key, role in (("a", "owner"), ("b", "owner"), ("c", "editor")):
            db.session.add(Membership(id=acme["memberships"][key], user_id=acme["users"][key],
                                      workspace_id=acme["workspace_id"], role=role))
        db.session.commit()
        db.session.remove()


def roles(app, acme) -> dict[str, str]:
    with app.app_context():
        by_id = dict(db.session.execute(sa.select(Membership.id, Membership.role)
                                        .where(Membership.workspace_id == acme["workspace_id"])).all())
        db.session.remove()
    return {key: by_id.get(membership_id) for key, membership_id in acme["memberships"].items()}


def race(app, actions: list[Callable[[], object]]) -> list[str]:
    """Run the actions at once, each in its own thread and app context; each outcome is "ok" or the error's name."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[str] = [""] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        with app.app_context():
            try:
                if action.actor_id is not None:  # as the views do before calling the service
                    accounts.workspace_for(action.actor_id, "acme")
                barrier.wait(timeout=30)
                action()
                outcomes[index] = "ok"
            except (Conflict, Forbidden, NotFound) as error:
                outcomes[index] = type(error).__name__
            except Exception as error:  # noqa: BLE001 — anything else is a failure the assertion should name
                outcomes[index] = f"unexpected {type(error).__name__}: {error}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def as_actor(actor_id: int | None, call: Callable[[], object]) -> Callable[[], object]:
    call.actor_id = actor_id
    return call


def change_role(acme, actor: str, target: str, role: str):
    return as_actor(acme["users"][actor], lambda: accounts.change_role(
        acme["users"][actor], acme["workspace_id"], acme["memberships"][target], role))


def remove_member(acme, actor: str, target: str):
    return as_actor(acme["users"][actor], lambda: accounts.remove_member(
        acme["users"][actor], acme["workspace_id"], acme["memberships"][target]))


def cli_create(acme, target: str, role: str):
    return as_actor(None, lambda: accounts.create_user(f"{target}@acme.test", "lemur-quartz-harbor", "acme", role))


def owners(found: dict[str, str]) -> list[str]:
    return [key for key, role in found.items() if role == Role.owner.name]


def test_two_owners_demoting_each_other_leave_one_owner(race_app, acme):
    """A demotes B while B demotes A: the first to take the lock wins; the other then is no longer an owner,
    so it is refused for its role (403) — either way exactly one change happens and one owner stays."""
    for _ in range(REPETITIONS):
        reset(race_app, acme)
        outcomes = race(race_app, [change_role(acme, "a", "b", "admin"), change_role(acme, "b", "a", "admin")])
        assert sorted(outcomes) == ["Forbidden", "ok"], outcomes
        found = roles(race_app, acme)
        assert len(owners(found)) == 1, found
        winner = "a" if outcomes[0] == "ok" else "b"
        assert owners(found) == [winner]


def test_two_owners_demoting_themselves_leave_one_owner(race_app, acme):
    """A and B each step down at once: the second finds itself the last owner and gets the Conflict."""
    for _ in range(REPETITIONS):
        reset(race_app, acme)
        outcomes = race(race_app, [change_role(acme, "a", "a", "editor"), change_role(acme, "b", "b", "editor")])
        assert sorted(outcomes) == ["Conflict", "ok"], outcomes
        assert len(owners(roles(race_app, acme))) == 1


def test_two_owners_leaving_at_once_leave_one_owner(race_app, acme):
    for _ in range(REPETITIONS):
        reset(race_app, acme)
        outcomes = race(race_app, [remove_member(acme, "a", "a"), remove_member(acme, "b", "b")])
        assert sorted(outcomes) == ["Conflict", "ok"], outcomes
        found = roles(race_app, acme)
        assert len(owners(found)) == 1 and list(found.values()).count(None) == 1, found


def test_two_owners_removing_each_other_leave_one_owner(race_app, acme):
    """The loser is no longer a member by its turn: a 404, as for anyone outside the workspace."""
    for _ in range(REPETITIONS):
        reset(race_app, acme)
        outcomes = race(race_app, [remove_member(acme, "a", "b"), remove_member(acme, "b", "a")])
        assert sorted(outcomes) == ["NotFound", "ok"], outcomes
        assert len(owners(roles(race_app, acme))) == 1


def test_cli_demotion_racing_a_demotion_on_the_members_page_leaves_one_owner(race_app, acme):
    """`flask users create` demotes A while A demotes B: whichever goes second is refused."""
    for _ in range(REPETITIONS):
        reset(race_app, acme)
        outcomes = race(race_app, [cli_create(acme, "a", "admin"), change_role(acme, "a", "b", "editor")])
        assert outcomes in (["ok", "Forbidden"], ["Conflict", "ok"]), outcomes
        assert len(owners(roles(race_app, acme))) == 1
