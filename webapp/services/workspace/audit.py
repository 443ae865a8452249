"""Audit trail (SPEC §3): every lifecycle action and edit writes a row."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp import authz
from webapp.extensions import db
from webapp.models import AuditEvent, User


def record(workspace_id: int | None, actor_id: int | None, action: str, target_type: str, target_id: int | None,
           details: dict[str, Any] | None = None) -> AuditEvent:
    """Add an audit row to the current transaction (the caller commits); no workspace for an account's own events."""
    actor = db.session.get(User, actor_id) if actor_id else None
    event = AuditEvent(
        workspace_id=workspace_id,
        actor_id=actor_id,
        actor_email=actor.email if actor else "system",
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
    )
    db.session.add(event)
    return event


def events_for(target_type: str, target_id: int, limit: int = 200) -> list[AuditEvent]:
    """Newest first."""
    return list(db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.target_type == target_type, AuditEvent.target_id == target_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ))


def experiment_deletions(workspace_id: int, *where: Any) -> sa.Select:
    """The workspace's `experiment.deleted` rows (what is left of a deleted experiment), narrowed by `where`."""
    return sa.select(AuditEvent).where(AuditEvent.workspace_id == workspace_id,
                                       AuditEvent.action == "experiment.deleted",
                                       AuditEvent.target_type == "experiment", *where)


def deleted_name(event: AuditEvent) -> str | None:
    """The name a deletion row recorded (rows older than names recorded none)."""
    name = event.details.get("name") if isinstance(event.details, dict) else None
    return name if isinstance(name, str) and name else None


def workspace_events(actor_id: int, workspace_id: int, limit: int = 50) -> list[AuditEvent]:
    """The workspace's recent events, newest first; owners only.

    Members, API keys, agents, and experiment deletions: a live experiment's trail is on its own page, but a
    deleted one has no page left, so its deletion is shown here."""
    authz.require(actor_id, workspace_id, "manage_members")
    return list(db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.workspace_id == workspace_id,
               sa.or_(AuditEvent.target_type != "experiment", AuditEvent.action == "experiment.deleted"))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ))
