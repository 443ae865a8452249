"""Users, workspaces and memberships (SPEC §1, §2)."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from webapp import authz
from webapp.extensions import db
from webapp.models import Membership, Role, User, Workspace
from webapp.services.workspace import audit, passwords, sessions
from webapp.services import validation
from webapp.services.errors import Conflict, NotFound, ValidationError


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == (email or "").strip().lower()))


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, else None."""
    user = find_user_by_email(email)
    if user is None:
        return User.check_no_password(password or "") or None  # as long as a wrong password takes
    if not user.check_password(password or ""):
        return None
    return user


def get_or_create_workspace(slug: str, name: str | None = None) -> tuple[Workspace, bool]:
    errors: dict[str, str] = {}
    slug = validation.slug(slug, "workspace", errors)
    if errors:
        raise ValidationError(errors)
    workspace = db.session.scalar(sa.select(Workspace).where(Workspace.slug == slug))
    if workspace:
        return workspace, False
    workspace = Workspace(slug=slug, name=name or slug.replace("-", " ").title())
    db.session.add(workspace)
    db.session.flush()
    return workspace, True


@dataclass(frozen=True)
class SavedUser:
    """What save_user did: the user, and what it changed (for an existing account, each change is audited)."""

    user: User
    workspace: Workspace
    created_user: bool  # a new account
    created_workspace: bool
    joined: bool  # a new membership of the workspace
    role_from: str | None  # the role before, when an existing membership's role changed
    password_reset: bool  # an existing account's password replaced by a different one


def create_user(email: str, password: str, workspace_slug: str, role: str, name: str = "") -> User:
    """save_user(), for callers that only need the user."""
    return save_user(email, password, workspace_slug, role, name).user


def save_user(email: str, password: str, workspace_slug: str, role: str, name: str = "") -> SavedUser:
    """Create (or update the password of) a user and give them `role` in the workspace, creating it if needed.

    The rules of the Members page hold here too (SPEC §1): the last owner cannot be demoted (the same Conflict as
    change_role), and a new workspace's first member must be its owner; the password policy holds (SPEC §14), and
    a password reset ends every login of the account. A refusal writes nothing. Changes are audited
    as the system (actor None), in the workspace: member.added for every new membership (a new account's or not, the
    first owner of a workspace created here included), and for an account that already existed member.role_changed
    (both as the Members page writes them) and member.password_reset.
    """
    errors: dict[str, str] = {}
    email = validation.email(email, "email", errors)
    if problem := passwords.problem(password, (email, str(workspace_slug))):
        errors["password"] = problem
    if role not in Role.__members__:
        errors["role"] = f"Role must be one of: {', '.join(Role.__members__)}."
    workspace_slug = validation.slug(workspace_slug, "workspace", errors)
    if errors:
        raise ValidationError(errors)
    workspace = db.session.scalar(sa.select(Workspace).where(Workspace.slug == workspace_slug))
    if workspace is None and role != Role.owner.name:
        raise ValidationError({"role": f"There is no workspace '{workspace_slug}', and a new workspace's first member "
                                       f"must be its owner: create it with the role owner."})
    user = find_user_by_email(email)
    existing = None
    created_workspace = workspace is None
    if workspace is not None:
        lock_workspace(workspace.id)
        existing = authz.membership(user.id, workspace.id) if user else None
        if existing and role != Role.owner.name:
            _keep_an_owner(workspace.id, existing)
    else:
        workspace, _ = get_or_create_workspace(workspace_slug)
    created_user = user is None
    if created_user:
        user = User(email=email, name=name or email.split("@")[0])
        db.session.add(user)
    password_reset = not created_user and not user.check_password(password)
    if created_user or password_reset:
        user.set_password(password)
    if password_reset:  # whoever knew the old password may be logged in: every login of the account ends
        sessions.end_others(user.id, None, commit=False)
    role_from = existing.role if existing and existing.role != role else None
    membership = existing
    if membership is None:
        membership = Membership(user=user, workspace=workspace, role=role)
        db.session.add(membership)
        db.session.flush()
    membership.role = role
    if existing is None:
        audit.record(workspace.id, None, "member.added", "membership", membership.id, {"email": email, "role": role})
    if not created_user:
        if role_from:
            audit.record(workspace.id, None, "member.role_changed", "membership", membership.id,
                         {"email": email, "from": role_from, "to": role})
        if password_reset:
            audit.record(workspace.id, None, "member.password_reset", "membership", membership.id, {"email": email})
    db.session.commit()
    return SavedUser(user, workspace, created_user, created_workspace, existing is None, role_from, password_reset)


def workspaces_of(user_id: int) -> list[tuple[Workspace, Role]]:
    """The user's workspaces with their role, by name."""
    rows = db.session.execute(
        sa.select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    ).all()
    return [(w, Role[r]) for w, r in rows]


def workspace_for(actor_id: int, slug: str, action: str = "view") -> tuple[Workspace, Role]:
    """The workspace by slug if the actor may do `action` there (404 for non-members)."""
    workspace = db.session.scalar(sa.select(Workspace).where(Workspace.slug == slug))
    if workspace is None:
        raise NotFound("No such workspace.")
    role = authz.require(actor_id, workspace.id, action, missing="No such workspace.")
    return workspace, role


def members(actor_id: int, workspace_id: int) -> list[Membership]:
    authz.require(actor_id, workspace_id, "view")
    return list(db.session.scalars(
        sa.select(Membership).join(User).where(Membership.workspace_id == workspace_id).order_by(User.email)
    ))


def sole_owner_id(workspace_id: int) -> int | None:
    """The membership id of the workspace's only owner, who can be neither demoted nor removed; None if several.

    Before acting on the answer, take lock_workspace() first, or a concurrent change can make it stale.
    """
    owners = db.session.scalars(
        sa.select(Membership.id)
        .where(Membership.workspace_id == workspace_id, Membership.role == Role.owner.name).limit(2)
    ).all()
    return owners[0] if len(owners) == 1 else None


def lock_workspace(workspace_id: int) -> None:
    """Serialise the changes that can take an owner away, so two of them cannot each leave the other as the last.

    PostgreSQL: a row lock on the workspace (SELECT … FOR UPDATE), held to the end of the transaction. SQLite
    ignores FOR UPDATE, and pysqlite begins a transaction only at the first write, so two requests could both
    count two owners and then write one after the other: a no-op UPDATE of the row takes the database write lock
    instead (a concurrent request waits for it, up to the connection's busy timeout). Whatever was read before
    the lock may have changed while waiting (the actor's own role too), and objects the session still holds would
    keep their old values: they are expired, so everything after the lock reads what is committed now.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(sa.update(Workspace).where(Workspace.id == workspace_id).values(name=Workspace.name)
                           .execution_options(synchronize_session=False))
    else:
        db.session.execute(sa.select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
    db.session.expire_all()


def _keep_an_owner(workspace_id: int, membership: Membership, removing: bool = False) -> None:
    """Refuse to demote (or, `removing`, remove) the workspace's last owner (call under lock_workspace)."""
    if sole_owner_id(workspace_id) != membership.id:
        return
    if removing:
        raise Conflict("A workspace must keep at least one owner: the last owner cannot be removed.")
    raise Conflict("A workspace must keep at least one owner: promote another member first.",
                   {"role": "The last owner cannot be demoted."})


def _membership_in(workspace_id: int, membership_id: int) -> Membership:
    membership = db.session.get(Membership, membership_id)
    if membership is None or membership.workspace_id != workspace_id:
        raise NotFound("No such member.")
    return membership


def change_role(actor_id: int, workspace_id: int, membership_id: int, role: str) -> Membership:
    """Change a member's role; the last owner cannot be demoted.

    Another workspace's or an unknown membership is a 404 for every member, checked before the role (403) and the
    value (422): ids do not leak (SPEC §2).
    """
    lock_workspace(workspace_id)
    actor_role = authz.require(actor_id, workspace_id, "view")
    membership = _membership_in(workspace_id, membership_id)
    authz.require_role(actor_role, "manage_members")
    if role not in Role.__members__:
        raise ValidationError({"role": f"Role must be one of: {', '.join(Role.__members__)}."})
    if role != Role.owner.name:
        _keep_an_owner(workspace_id, membership)
    old = membership.role
    membership.role = role
    audit.record(workspace_id, actor_id, "member.role_changed", "membership", membership.id,
                 {"email": membership.user.email, "from": old, "to": role})
    db.session.commit()
    return membership


def remove_member(actor_id: int, workspace_id: int, membership_id: int) -> None:
    """Remove a member; the last owner cannot leave.

    Another workspace's or an unknown membership is a 404 for every member, checked before the role (403): ids do
    not leak (SPEC §2).
    """
    lock_workspace(workspace_id)
    actor_role = authz.require(actor_id, workspace_id, "view")
    membership = _membership_in(workspace_id, membership_id)
    authz.require_role(actor_role, "manage_members")
    _keep_an_owner(workspace_id, membership, removing=True)
    audit.record(workspace_id, actor_id, "member.removed", "membership", membership.id,
                 {"email": membership.user.email, "role": membership.role})
    db.session.delete(membership)
    db.session.commit()
