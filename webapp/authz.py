"""Roles and permissions (SPEC §2): one table, checked by services, asked by templates."""
from __future__ import annotations

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Membership, Role
from webapp.services.errors import Forbidden, NotFound

# action -> the lowest role allowed to do it
PERMISSIONS: dict[str, Role] = {
    "view": Role.editor,
    "edit_agent": Role.editor,
    "create_agent": Role.admin,
    "manage_experiments": Role.admin,
    "change_analysis": Role.admin,  # an experiment's analysis settings (SPEC §10.1), in every status
    "manage_api_keys": Role.admin,
    "manage_members": Role.owner,
}


def membership(user_id: int | None, workspace_id: int) -> Membership | None:
    """The user's membership of a workspace, or None."""
    if user_id is None:
        return None
    return db.session.scalar(
        sa.select(Membership).where(Membership.user_id == user_id, Membership.workspace_id == workspace_id)
    )


def role_in(user_id: int | None, workspace_id: int) -> Role | None:
    m = membership(user_id, workspace_id)
    return m.role_enum if m else None


def allows(role: Role | None, action: str) -> bool:
    return role is not None and role >= PERMISSIONS[action]


def require(user_id: int | None, workspace_id: int, action: str, missing: str = "Not found.") -> Role:
    """Raise NotFound for non-members (ids never leak), Forbidden when the role is too low.

    `missing` is the message: the one the caller gives for an id that does not exist, so that another workspace's
    id answers word for word as no id at all."""
    role = role_in(user_id, workspace_id)
    if role is None:
        raise NotFound(missing)
    return require_role(role, action)


def require_role(role: Role, action: str) -> Role:
    """Raise Forbidden when a member's role is too low for `action`."""
    if not allows(role, action):
        raise Forbidden(f"Your role ({role.name}) may not do this.")
    return role


def can(user, workspace_id: int, action: str) -> bool:
    """For templates: may this user do `action` in this workspace?"""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return allows(role_in(user.id, workspace_id), action)
