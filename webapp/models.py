"""The data model of SPEC §1, in SQLAlchemy 2 typed style.

Stamps (`experiment_id`, `variant_id`, `variant_key`) on assignments,
conversations, messages and leads are plain indexed columns, not foreign keys:
deleting an experiment must leave them exactly as they were (SPEC §3).
"""
from __future__ import annotations

import enum
import json
import secrets
from datetime import datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db


MAX_DB_ID = 2**31 - 1  # INTEGER primary keys on both engines


def json_text(value: Any) -> str:
    """How JSON columns are written (the engines' json_serializer): compact. A runtime reply is serialised once
    with it, stored with its message, and sent — a replay sends the stored text, byte for byte."""
    return json.dumps(value, separators=(",", ":"))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Stored as naive UTC on every engine, returned as an aware UTC datetime."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


class seconds_between(sa.sql.functions.FunctionElement):
    """Seconds from one UTCDateTime column expression to another, as a float, on either engine."""

    type = sa.Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between_sqlite(element, compiler, **kw):
    start, end = list(element.clauses)
    # julianday() carries ~10 µs of float error: round to the millisecond.
    return (f"ROUND((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}))"
            " * 86400.0, 3)")


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element, compiler, **kw):
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))::float"


class Role(enum.IntEnum):
    """Workspace roles, ordered: editor < admin < owner."""

    editor = 1
    admin = 2
    owner = 3

    @classmethod
    def parse(cls, value: str) -> "Role":
        try:
            return cls[value]
        except KeyError:
            raise ValueError(f"role must be one of: {', '.join(r.name for r in cls)}") from None


ROLES = tuple(r.name for r in Role)
EXPERIMENT_KINDS = ("persona", "cta", "trigger")
EXPERIMENT_STATUSES = ("draft", "running", "stopped")
MESSAGE_ROLES = ("visitor", "agent")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Workspace(db.Model):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="workspace", cascade="all, delete-orphan")
    agents: Mapped[list["Agent"]] = relationship(back_populates="workspace", cascade="all, delete-orphan")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased: the unique constraint is then case-insensitive on every engine.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=_password_hash_method())

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @staticmethod
    def check_no_password(password: str) -> bool:
        """What check_password costs, for an email with no account (False): the time a login takes does not tell
        which emails have one."""
        method = _password_hash_method()
        if method not in _STAND_IN_HASHES:
            _STAND_IN_HASHES[method] = generate_password_hash(secrets.token_hex(16), method=method)
        check_password_hash(_STAND_IN_HASHES[method], password)
        return False

    # The login this object was loaded for (services.workspace.sessions): not columns.
    session_token = None  # str
    session_id = None  # int

    def get_id(self) -> str:
        """What flask-login puts in the session and remember-me cookies: the login's token, never the user id, so
        that a cookie is worth only as long as its session record (SPEC §14)."""
        if not self.session_token:
            raise RuntimeError("log in through views.auth.start_session, which records the session")
        return self.session_token

    def __eq__(self, other):
        """The same account (flask-login's UserMixin compares get_id(), a login's token here)."""
        if isinstance(other, User):
            return self is other or (self.id is not None and self.id == other.id)
        return NotImplemented

    __hash__ = None  # as UserMixin leaves it: equal by id, so not hashable by identity


_STAND_IN_HASHES: dict[str, str] = {}


def _password_hash_method() -> str:
    # Tests set a cheap method; production keeps werkzeug's default (scrypt).
    return current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if has_app_context() else "scrypt"


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "workspace_id"),
        sa.CheckConstraint(_in("role", ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    workspace: Mapped[Workspace] = relationship(back_populates="memberships")

    @property
    def role_enum(self) -> Role:
        return Role[self.role]


class Agent(db.Model):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    persona_name: Mapped[str] = mapped_column(sa.String(60))
    persona_tone: Mapped[str] = mapped_column(sa.String(200), default="")
    instructions: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    workspace: Mapped[Workspace] = relationship(back_populates="agents")


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # SHA-256 hex of the whole key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    workspace: Mapped[Workspace] = relationship()


class Experiment(db.Model):
    __tablename__ = "experiments"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", EXPERIMENT_KINDS), name="kind"),
        sa.CheckConstraint(_in("status", EXPERIMENT_STATUSES), name="status"),
        # The active-experiment lookup: running experiments of an agent by started_at.
        sa.Index("ix_experiments_agent_status_started", "agent_id", "status", "started_at"),
        # Never reuse a deleted experiment's or variant's id on SQLite: stamps outlive the rows (SPEC §3).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(120))
    hypothesis: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    stopped_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Analysis settings (SPEC §10.1; services/experiments/analysis.py validates them). The Python defaults are a new
    # experiment's; the server defaults what rows older than the settings got: fixed, α 0.05, no correction.
    primary_metric: Mapped[str] = mapped_column(sa.String(80), default="lead_capture_rate",
                                                server_default="lead_capture_rate")
    engine: Mapped[str] = mapped_column(sa.String(16), default="sequential", server_default="fixed")
    alpha: Mapped[float] = mapped_column(sa.Float, default=0.05, server_default="0.05")
    sequential_tuning: Mapped[int] = mapped_column(sa.Integer, default=5000, server_default="5000")
    prior: Mapped[str] = mapped_column(sa.String(16), default="flat", server_default="flat")
    correction: Mapped[str] = mapped_column(sa.String(16), default="holm", server_default="none")
    mde: Mapped[float] = mapped_column(sa.Float, default=0.10, server_default="0.1")  # a fraction: 0.1 is 10 %
    power: Mapped[float] = mapped_column(sa.Float, default=0.80, server_default="0.8")
    baseline_rate: Mapped[Optional[float]] = mapped_column(sa.Float)  # typed lead capture rate for the plan
    # The recorded outcome of an ended experiment (SPEC §10.6): shipped (outcome_variant_key), kept_control or
    # inconclusive; all null while none is recorded (a resume clears it). services/experiments/outcomes.py.
    outcome_result: Mapped[Optional[str]] = mapped_column(sa.String(16))
    outcome_variant_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    outcome_note: Mapped[Optional[str]] = mapped_column(sa.Text)
    outcome_recorded_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    agent: Mapped[Agent] = relationship()
    variants: Mapped[list["Variant"]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", order_by="Variant.position"
    )


class Variant(db.Model):
    __tablename__ = "variants"
    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "key"),
        sa.UniqueConstraint("experiment_id", "position"),
        sa.CheckConstraint("weight >= 1 AND weight <= 10000", name="weight"),
        sa.CheckConstraint("position >= 0", name="position"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(120))
    weight: Mapped[int] = mapped_column(sa.Integer)
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    position: Mapped[int] = mapped_column(sa.Integer)

    experiment: Mapped[Experiment] = relationship(back_populates="variants")


class ExperimentAssignment(db.Model):
    __tablename__ = "experiment_assignments"
    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "visitor_id"),
        sa.Index("ix_experiment_assignments_experiment_variant", "experiment_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    experiment_id: Mapped[int] = mapped_column(sa.Integer)
    variant_id: Mapped[int] = mapped_column(sa.Integer)
    variant_key: Mapped[str] = mapped_column(sa.String(64))
    visitor_id: Mapped[str] = mapped_column(sa.String(200))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(db.Model):
    __tablename__ = "conversations"
    __table_args__ = (
        sa.UniqueConstraint("agent_id", "external_id"),
        sa.Index("ix_conversations_experiment_variant_visitor", "experiment_id", "variant_id", "visitor_id"),
        sa.Index("ix_conversations_agent_started", "agent_id", "started_at"),
        sa.Index("ix_conversations_agent_visitor", "agent_id", "visitor_id"),
        # The Conversations tab's experiment and experiment × variant filters, newest first, and the walk over the
        # agent's distinct stamped experiments and keys that builds the filter's choices (SPEC §12).
        sa.Index("ix_conversations_agent_experiment_started", "agent_id", "experiment_id", "started_at"),
        sa.Index("ix_conversations_agent_experiment_variant_started", "agent_id", "experiment_id", "variant_key",
                 "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(sa.String(200))
    visitor_id: Mapped[str] = mapped_column(sa.String(200))
    experiment_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Kept in step with the messages and leads rows as they are written, in the same transaction,
    # so that results read conversations only and never scan messages (SPEC §7, benchmarks/).
    # They count stamped rows only: activity before the visitor was assigned is not a variant's outcome.
    visitor_messages: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    lead_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    session_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")  # last − started

    agent: Mapped[Agent] = relationship()


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "client_message_id"),
        sa.CheckConstraint(_in("role", MESSAGE_ROLES), name="role"),
    )
    # No other index: messages are written on every runtime call and found by (conversation_id,
    # client_message_id) — the unique key's index, whose conversation_id prefix also serves the cascade and the
    # transcript and review pages (which sort one conversation's messages by sent_at: a (conversation_id, sent_at,
    # id) index was measured and left out, benchmarks/README.md "Transcripts of very long conversations").
    # Results read the conversations' counters, never messages.

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    variant_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    # The runtime's own id of the message, for idempotent retries (SPEC §6).
    client_message_id: Mapped[Optional[str]] = mapped_column(sa.String(200))
    # The API response of the first delivery, replayed verbatim on a retry.
    response: Mapped[Optional[dict[str, Any]]] = mapped_column(sa.JSON)


class Lead(db.Model):
    __tablename__ = "leads"
    __table_args__ = (
        sa.Index("ix_leads_agent_captured", "agent_id", "captured_at"),
        sa.UniqueConstraint("conversation_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    visitor_id: Mapped[str] = mapped_column(sa.String(200))
    fields: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    experiment_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_id: Mapped[Optional[int]] = mapped_column(sa.Integer, index=True)
    variant_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    # The runtime's own key of the lead, for idempotent retries (like a message's message_id).
    idempotency_key: Mapped[Optional[str]] = mapped_column(sa.String(200))

    conversation: Mapped[Conversation] = relationship()


class AuditEvent(db.Model):
    """Who did what, when. Targets are plain ids so the trail survives deletes."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for what happens to an account rather than in a workspace: a failed login (docs/operations.md).
    workspace_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                                                        index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor_email: Mapped[str] = mapped_column(sa.String(254), default="")
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str] = mapped_column(sa.String(32))
    target_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserSession(db.Model):
    """A login (SPEC §14): the signed session cookie and the remember-me cookie carry a random token whose SHA-256
    is `token_hash`; deleting the row ends that login wherever its cookies were copied."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    remember: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class Invitation(db.Model):
    """An owner's invitation of an email to a workspace with a role (SPEC §14): the link's token is stored as its
    SHA-256 only; pending until accepted, revoked or expired."""

    __tablename__ = "invitations"
    __table_args__ = (sa.CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    accepted_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    workspace: Mapped[Workspace] = relationship()
    invited_by: Mapped[Optional[User]] = relationship(foreign_keys=[invited_by_id])


GOAL_NAME_MAX = 60


class GoalEvent(db.Model):
    """A goal the visitor reached in a conversation ("booked_demo"), reported by the runtime (SPEC §13).

    It carries the conversation's stamp when it arrives; `goal:<name>` results count the distinct visitors of each
    variant with one (`ix_goal_events_experiment_name`: the experiment's names, variants and visitors, in index order).
    """

    __tablename__ = "goal_events"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "event_id"),
        sa.Index("ix_goal_events_experiment_name", "experiment_id", "name", "variant_id", "visitor_id"),
        sa.Index("ix_goal_events_agent_occurred", "agent_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(GOAL_NAME_MAX))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    experiment_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_key: Mapped[Optional[str]] = mapped_column(sa.String(64))
    # The runtime's own id of the event (or one generated), for idempotent retries, as a message's message_id.
    event_id: Mapped[str] = mapped_column(sa.String(200))


LOGIN_SCOPES = ("email", "address")


class LoginFailure(db.Model):
    """A failed login (or one still being checked) for an email and for a client address: the login throttle's
    memory, shared by every process (SPEC §14). Rows older than the throttle can need are pruned."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.CheckConstraint(_in("scope", LOGIN_SCOPES), name="scope"),
        sa.Index("ix_login_failures_scope_key_failed", "scope", "key", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.String(254))  # the lower-cased email, or the address (an IPv6 /64)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    level: Mapped[int] = mapped_column(sa.Integer)  # its place in the key's count, which sets the lock it starts


FEEDBACK_RATINGS = ("up", "down")
REVIEW_RATINGS = ("good", "bad")


class Feedback(db.Model):
    """A visitor's rating of one conversation (SPEC §12): one per conversation, a later one replaces it. It carries
    the conversation's stamp at the time it was given, as leads do."""

    __tablename__ = "feedback"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id"),
        sa.CheckConstraint(_in("rating", FEEDBACK_RATINGS), name="rating"),
        # positive_feedback_rate: per visitor of an experiment's variant, as the results group conversations.
        sa.Index("ix_feedback_experiment_variant_visitor", "experiment_id", "variant_id", "visitor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(sa.String(200))
    rating: Mapped[str] = mapped_column(sa.String(8))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    experiment_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_id: Mapped[Optional[int]] = mapped_column(sa.Integer)
    variant_key: Mapped[Optional[str]] = mapped_column(sa.String(64))


class Review(db.Model):
    """A member's blinded rating of one conversation of an experiment (SPEC §12): one per reviewer and
    conversation, answering again replaces it. The stamp is copied from the conversation (plain ints, as
    everywhere: the reviews outlive a deleted experiment)."""

    __tablename__ = "reviews"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "reviewer_id"),
        sa.CheckConstraint(_in("rating", REVIEW_RATINGS), name="rating"),
        # The draw (reviews per arm, this reviewer's rated ones) and review_good_rate per arm.
        sa.Index("ix_reviews_experiment_variant", "experiment_id", "variant_id"),
        sa.Index("ix_reviews_reviewer_experiment", "reviewer_id", "experiment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    experiment_id: Mapped[int] = mapped_column(sa.Integer)
    variant_id: Mapped[int] = mapped_column(sa.Integer)
    variant_key: Mapped[str] = mapped_column(sa.String(64))
    rating: Mapped[str] = mapped_column(sa.String(8))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
