"""Invitations (SPEC §14): how a workspace grows from the web app.

An owner invites an email with a role. The link's token is stored as its SHA-256 only, works once, for 7 days,
and can be revoked. Inviting answers the same whether or not the email has an account: nothing here tells an owner
who else uses the product. The invitee accepts as a new account (choosing a password) or, with an account, logged in
as that email: nobody is put into a workspace without saying yes."""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import sqlalchemy as sa
from flask import current_app

from webapp import authz
from webapp.extensions import db
from webapp.models import Invitation, Membership, Role, User, Workspace, utcnow
from webapp.services import mail, validation
from webapp.services.errors import Conflict, Forbidden, Gone, NotFound, ValidationError
from webapp.services.workspace import audit, passwords
from webapp.services.workspace.api_keys import hash_key as hash_token  # a 256-bit random token: SHA-256 suffices

VALID_FOR = timedelta(days=7)
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,100}")  # what secrets.token_urlsafe(32) makes, with room to spare
NOT_VALID = ("This invitation link is not valid. Check that you copied all of it, or ask the workspace's owner for "
             "a new invitation.")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewInvitation:
    """What invite() made: the row, the link (shown once), and whether it was emailed."""

    invitation: Invitation
    link: str
    emailed: bool  # handed to the SMTP server of SMTP_URL
    email_error: str | None  # why it was not, when SMTP_URL is set
    replaced: bool = False  # a pending invitation of the same email was revoked for it: its link no longer works


@dataclass(frozen=True)
class InvitationPage:
    """What the link's page shows its visitor."""

    invitation: Invitation
    workspace: Workspace
    has_account: bool  # an account with the invited email exists (the visitor holds the link: see docs)
    viewer_email: str | None  # the logged-in visitor's email
    already_member: bool  # the logged-in visitor, invited, is a member already

    @property
    def for_viewer(self) -> bool:
        return self.viewer_email == self.invitation.email


def invite(actor_id: int, workspace_id: int, email: str, role: str, link_for: Callable[[str], str]) -> NewInvitation:
    """Invite `email` with `role` (owners only); `link_for(token)` is the link's URL.

    A pending invitation of the same email is replaced (revoked: its link stops working). The email is sent after
    the commit when SMTP_URL is set; a failure to send is reported, not raised: the link is shown to copy anyway."""
    authz.require(actor_id, workspace_id, "manage_members")
    errors: dict[str, str] = {}
    email = validation.email(email, "email", errors)
    if role not in Role.__members__:
        errors["role"] = f"Role must be one of: {', '.join(Role.__members__)}."
    if errors:
        raise ValidationError(errors)
    # Says only what the member list shows the owner already.
    if db.session.scalar(sa.select(Membership.id).join(User).where(Membership.workspace_id == workspace_id,
                                                                   User.email == email)):
        raise ValidationError({"email": f"{email} is already a member of this workspace."})
    now = utcnow()
    replaced = False
    for earlier in db.session.scalars(_pending(workspace_id, now).where(Invitation.email == email)):
        earlier.revoked_at = now
        replaced = True
        audit.record(workspace_id, actor_id, "member.invitation_revoked", "invitation", earlier.id,
                     {"email": email, "role": earlier.role, "replaced": True})
    token = secrets.token_urlsafe(32)
    invitation = Invitation(workspace_id=workspace_id, email=email, role=role, token_hash=hash_token(token),
                            invited_by_id=actor_id, created_at=now, expires_at=now + VALID_FOR)
    db.session.add(invitation)
    db.session.flush()
    audit.record(workspace_id, actor_id, "member.invited", "invitation", invitation.id, {"email": email, "role": role})
    db.session.commit()
    link = link_for(token)
    emailed, email_error = _email(invitation, link)
    return NewInvitation(invitation, link, emailed, email_error, replaced)


def _email(invitation: Invitation, link: str) -> tuple[bool, str | None]:
    settings = current_app.config.get("SMTP")
    if settings is None:
        return False, None
    inviter = invitation.invited_by.email if invitation.invited_by else "An owner"
    workspace = invitation.workspace.name
    body = (f"{inviter} invited you to the workspace “{workspace}” on Agent Studio, as {invitation.role}.\n\n"
            f"Accept the invitation:\n{link}\n\n"
            f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC. If you did not expect this "
            f"invitation, ignore this email: nothing happens unless you accept.\n")
    try:
        mail.send(settings, invitation.email, f"You are invited to {workspace} on Agent Studio", body)
    except mail.MailError as error:
        log.warning("Invitation %s not emailed: %s", invitation.id, error)
        return False, str(error)
    return True, None


def pending(actor_id: int, workspace_id: int) -> list[Invitation]:
    """The workspace's invitations still usable, newest first (owners only)."""
    authz.require(actor_id, workspace_id, "manage_members")
    return list(db.session.scalars(_pending(workspace_id, utcnow())
                                   .order_by(Invitation.created_at.desc(), Invitation.id.desc())))


def _pending(workspace_id: int, now) -> sa.Select:
    return sa.select(Invitation).where(Invitation.workspace_id == workspace_id, Invitation.accepted_at.is_(None),
                                       Invitation.revoked_at.is_(None), Invitation.expires_at > now)


def revoke(actor_id: int, workspace_id: int, invitation_id: int) -> Invitation:
    """Revoke a pending invitation (idempotent); an accepted one is a Conflict. Another workspace's or an unknown
    invitation is a 404 for every member, checked before the role (403): ids do not leak (SPEC §2)."""
    role = authz.require(actor_id, workspace_id, "view")
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.workspace_id != workspace_id:
        raise NotFound("No such invitation.")
    authz.require_role(role, "manage_members")
    if invitation.accepted_at is not None:
        raise Conflict(f"The invitation of {invitation.email} was accepted already: remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record(workspace_id, actor_id, "member.invitation_revoked", "invitation", invitation.id,
                     {"email": invitation.email, "role": invitation.role})
        db.session.commit()
    return invitation


def _replaced(invitation: Invitation) -> bool:
    """Whether a revoked invitation was replaced by inviting its email again (invite() revokes it in the same
    instant it creates the new one) rather than withdrawn."""
    return db.session.scalar(sa.select(sa.exists().where(
        Invitation.workspace_id == invitation.workspace_id, Invitation.email == invitation.email,
        Invitation.id > invitation.id, Invitation.created_at == invitation.revoked_at))) or False


def usable(token: str) -> Invitation:
    """The invitation of a link's token: NotFound for no such link, Gone for one expired, used or revoked."""
    invitation = None
    if isinstance(token, str) and TOKEN_RE.fullmatch(token):
        invitation = db.session.scalar(sa.select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None:
        raise NotFound(NOT_VALID)
    workspace = invitation.workspace.name
    if invitation.accepted_at is not None:
        raise Gone(f"This invitation to {workspace} has been used already: an invitation link works once. If it was "
                   "yours, log in; otherwise ask the workspace's owner for a new invitation.")
    if invitation.revoked_at is not None:
        if _replaced(invitation):
            raise Gone(f"This invitation to {workspace} was replaced by a newer one to the same email: use the link "
                       "of the latest invitation, or ask the workspace's owner for it.")
        raise Gone(f"This invitation to {workspace} was withdrawn by the workspace's owner. Ask them for a new one "
                   "if you still need access.")
    if invitation.expires_at <= utcnow():
        raise Gone(f"This invitation to {workspace} expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC: "
                   "invitations last 7 days. Ask the workspace's owner for a new one.")
    return invitation


def page(token: str, viewer_id: int | None) -> InvitationPage:
    """What the link's page shows (reads only)."""
    invitation = usable(token)
    viewer = db.session.get(User, viewer_id) if viewer_id else None
    account = viewer if viewer and viewer.email == invitation.email else _account(invitation.email)
    already = account is not None and viewer is account and authz.membership(viewer.id, invitation.workspace_id)
    return InvitationPage(invitation, invitation.workspace, account is not None, viewer.email if viewer else None,
                          bool(already))


def accept(token: str, user_id: int) -> Membership:
    """Accept as the logged-in user, who must be the invited email (Forbidden otherwise, nothing written). A user who
    is a member already keeps their role; the invitation is used up all the same."""
    invitation = usable(token)
    user = db.session.get(User, user_id)
    if user is None or user.email != invitation.email:
        raise Forbidden(f"This invitation is for {invitation.email}, and you are logged in as "
                        f"{user.email if user else 'someone else'}. Log out, then open the link again to accept it "
                        f"as {invitation.email}.")
    _use(invitation, user.id)
    membership = authz.membership(user.id, invitation.workspace_id)
    if membership is None:
        membership = Membership(user_id=user.id, workspace_id=invitation.workspace_id, role=invitation.role)
        db.session.add(membership)
    return _accepted(invitation, membership, user)


def accept_as_new_user(token: str, password: str, confirm: str, name: str = "") -> User:
    """Accept by creating the invited email's account with `password` (the policy holds). For an email that has an
    account, a Conflict: that account's owner logs in to accept (a link must never set an account's password)."""
    invitation = usable(token)
    errors: dict[str, str] = {}
    name = validation.text(name, "name", errors, max_len=120, label="Name")
    if problem := passwords.problem(password, (invitation.email, invitation.workspace.name)):
        errors["password"] = problem
    elif confirm != password:
        errors["confirm"] = "The two passwords differ: type the same password twice."
    if errors:
        raise ValidationError(errors)
    if _account(invitation.email) is not None:
        raise Conflict(f"{invitation.email} has an account already: log in as {invitation.email} to accept.")
    _use(invitation, None)
    user = User(email=invitation.email, name=name or invitation.email.split("@")[0])
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    invitation.accepted_by_id = user.id
    membership = Membership(user_id=user.id, workspace_id=invitation.workspace_id, role=invitation.role)
    db.session.add(membership)
    _accepted(invitation, membership, user)
    return user


def _account(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email))


def _use(invitation: Invitation, user_id: int | None) -> None:
    """Mark the invitation used, once: of two concurrent acceptances, one wins and the other is Gone."""
    now = utcnow()
    used = db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
               Invitation.expires_at > now)
        .values(accepted_at=now, accepted_by_id=user_id).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        db.session.rollback()
        raise Gone("This invitation has just been used or withdrawn: an invitation link works once.")
    invitation.accepted_at = now


def _accepted(invitation: Invitation, membership: Membership, user: User) -> Membership:
    try:
        db.session.flush()
    except sa.exc.IntegrityError:  # a concurrent request made the account or the membership first
        db.session.rollback()
        raise Conflict(f"{invitation.email} has just joined or been created elsewhere: log in as "
                       f"{invitation.email} to continue.") from None
    audit.record(invitation.workspace_id, user.id, "member.invitation_accepted", "invitation", invitation.id,
                 {"email": invitation.email, "role": membership.role})
    db.session.commit()
    return membership
