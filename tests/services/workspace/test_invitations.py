"""The invitation service's own guarantees: one acceptance per link even when two race, and the roles."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import AuditEvent, Invitation, Membership, User
from webapp.services.errors import Conflict, Forbidden, Gone, NotFound
from webapp.services.workspace import invitations

STRONG = "quartz-lantern-meadow"


def new_link(world, email="racer@example.test") -> str:
    tokens = []
    invitations.invite(world.owner_id, world.workspace_id, email, "editor", lambda token: tokens.append(token) or token)
    return tokens[0]


def test_of_two_acceptances_racing_one_wins_and_the_other_writes_nothing(ctx, world, monkeypatch):
    token = new_link(world, "owner@other.test")
    seen = invitations.usable(token)  # what the slower request read before the other one committed
    invitations.accept(token, world.outsider_id)
    monkeypatch.setattr(invitations, "usable", lambda _token: seen)
    accepted = sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "member.invitation_accepted")
    with pytest.raises(Gone):
        invitations.accept(token, world.outsider_id)  # a stale read: the conditional UPDATE refuses it
    assert db.session.scalar(accepted) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership)
                             .where(Membership.user_id == world.outsider_id)) == 2


def test_a_new_account_for_an_email_that_has_one_is_refused(ctx, world):
    token = new_link(world, "Owner@Other.test")
    with pytest.raises(Conflict):
        invitations.accept_as_new_user(token, STRONG, STRONG)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 4
    assert invitations.usable(token).accepted_at is None


def test_only_owners_invite_and_revoke(ctx, world):
    token_holder = new_link(world)
    invitation = db.session.scalar(sa.select(Invitation))
    for actor in (world.admin_id, world.editor_id):
        with pytest.raises(Forbidden):
            invitations.invite(actor, world.workspace_id, "x@example.test", "editor", str)
        with pytest.raises(Forbidden):
            invitations.revoke(actor, world.workspace_id, invitation.id)
        with pytest.raises(Forbidden):
            invitations.pending(actor, world.workspace_id)
    with pytest.raises(NotFound):
        invitations.invite(world.outsider_id, world.workspace_id, "x@example.test", "editor", str)
    with pytest.raises(NotFound):
        invitations.revoke(world.outsider_id, world.workspace_id, invitation.id)
    with pytest.raises(NotFound):  # another workspace's owner names this invitation under their workspace
        invitations.revoke(world.outsider_id, world.other_workspace_id, invitation.id)
    assert invitations.usable(token_holder).id == invitation.id
