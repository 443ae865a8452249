"""Runtime API keys: only a SHA-256 hash is stored; the key is shown once."""
from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa

from webapp import authz
from webapp.extensions import db
from webapp.models import ApiKey, Workspace, utcnow
from webapp.services.workspace import audit
from webapp.services import validation
from webapp.services.errors import NotFound, Unauthorized, ValidationError

KEY_PREFIX = "abx_"
# Written at most once a minute (runtime.rules.key_touch_due) by the runtime's store, which authenticates keys.
TOUCH = (sa.update(ApiKey.__table__).where(ApiKey.__table__.c.id == sa.bindparam("key_id"))
         .values(last_used_at=sa.bindparam("now", type_=ApiKey.__table__.c.last_used_at.type)))


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is as safe as a slow one and keeps auth cheap.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(actor_id: int | None, workspace_id: int, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key (never stored). actor_id None: the CLI."""
    if actor_id is not None:
        authz.require(actor_id, workspace_id, "manage_api_keys")
    elif db.session.get(Workspace, workspace_id) is None:
        raise NotFound("No such workspace.")
    errors: dict[str, str] = {}
    name = validation.text(name, "name", errors, max_len=120, label="Name") or "Runtime key"
    if errors:
        raise ValidationError(errors)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(workspace_id=workspace_id, name=name, prefix=plaintext[:10], key_hash=hash_key(plaintext),
                 created_by_id=actor_id)
    db.session.add(key)
    db.session.flush()
    audit.record(workspace_id, actor_id, "api_key.created", "api_key", key.id, {"name": name, "prefix": key.prefix})
    db.session.commit()
    return key, plaintext


def list_keys(actor_id: int, workspace_id: int) -> list[ApiKey]:
    authz.require(actor_id, workspace_id, "manage_api_keys")
    return list(db.session.scalars(
        sa.select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    ))


def revoke_key(actor_id: int, workspace_id: int, key_id: int) -> ApiKey:
    """Revoke one of the workspace's keys (idempotent). Another workspace's or an unknown key is a 404 for every
    member, checked before the role (403): ids do not leak (SPEC §2)."""
    role = authz.require(actor_id, workspace_id, "view")
    key = db.session.get(ApiKey, key_id)
    if key is None or key.workspace_id != workspace_id:
        raise NotFound("No such API key.")
    authz.require_role(role, "manage_api_keys")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(workspace_id, actor_id, "api_key.revoked", "api_key", key.id, {"prefix": key.prefix})
        db.session.commit()
    return key


AUTH_SCHEME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}")  # an HTTP auth-scheme token (RFC 9110), short


def bearer_token(header: str) -> str | None:
    """The key of an `Authorization: Bearer <key>` header; None without a header (or a key). Another scheme is a
    401 that names it, and a value without a scheme (a bare key, perhaps) one that does not echo it."""
    scheme, space, token = header.strip().partition(" ")
    if not scheme or scheme.lower() == "bearer":
        return token.strip() or None
    if not space:
        raise Unauthorized("The Authorization header has no scheme: send 'Authorization: Bearer <key>'.")
    if not AUTH_SCHEME_RE.fullmatch(scheme):
        raise Unauthorized("Unsupported authorization scheme: send 'Authorization: Bearer <key>'.")
    raise Unauthorized(f"Unsupported authorization scheme '{scheme}': send 'Authorization: Bearer <key>'.")
