"""Small factory helpers built on the service layer (so tests exercise the real rules)."""
from __future__ import annotations

from types import SimpleNamespace

from webapp import authz
from webapp.extensions import db
from webapp.models import Experiment, Variant, Workspace, utcnow
from webapp.services.experiments import analysis
from webapp.services.workspace import accounts, agents, api_keys

PASSWORD = "correct-horse-battery"


def user(email: str, workspace: str, role: str) -> int:
    return accounts.create_user(email, PASSWORD, workspace, role).id


def agent(workspace_id: int, name: str = "Helper", persona_name: str = "Sam", tone: str = "friendly") -> int:
    return agents.create_agent(None, workspace_id, name, persona_name, tone, "Be helpful.").id


def workspace_id(slug: str) -> int:
    return db.session.query(Workspace).filter_by(slug=slug).one().id


def world() -> SimpleNamespace:
    """acme (owner, admin, editor, one agent, one API key) and other (owner, one agent)."""
    w = SimpleNamespace()
    w.owner_id = user("owner@acme.test", "acme", "owner")
    w.admin_id = user("admin@acme.test", "acme", "admin")
    w.editor_id = user("editor@acme.test", "acme", "editor")
    w.outsider_id = user("owner@other.test", "other", "owner")
    w.workspace_id = workspace_id("acme")
    w.other_workspace_id = workspace_id("other")
    w.agent_id = agent(w.workspace_id)
    w.other_agent_id = agent(w.other_workspace_id, name="Other agent")
    key, w.api_key = api_keys.create_key(None, w.workspace_id, "test key")
    w.api_key_id = key.id
    other_key, w.other_api_key = api_keys.create_key(None, w.other_workspace_id, "other key")
    w.other_api_key_id = other_key.id
    w.editor_membership_id = authz.membership(w.editor_id, w.workspace_id).id
    w.emails = {"owner": "owner@acme.test", "admin": "admin@acme.test", "editor": "editor@acme.test",
                "outsider": "owner@other.test"}
    return w


def experiment(agent_id: int, kind: str = "persona", weights=(1, 1), status: str = "draft", name: str = "Exp",
               configs=None, keys=None, started_at=None, **settings) -> int:
    """An experiment with variants written straight to the tables (tests of other features use it).

    Its analysis settings are those of an experiment older than them (fixed horizon, no correction: the §7
    results), unless `settings` (Settings' field names) say otherwise."""
    keys = list(keys or (["control", "treatment"] + [f"variant-{i}" for i in range(2, len(weights))])[: len(weights)])
    if configs is None:
        configs = [{"persona": {"name": f"Persona {k}", "tone": f"tone {k}"}} if kind == "persona" else {}
                   for k in keys]
    exp = Experiment(agent_id=agent_id, name=name, kind=kind, status=status, hypothesis="",
                     **{**analysis.LEGACY.as_dict(), **settings})
    if status in ("running", "stopped"):
        exp.started_at = started_at or utcnow()
    if status == "stopped":
        exp.stopped_at = utcnow()
    exp.variants = [Variant(key=k, name=k.title(), weight=w, config=c, position=i)
                    for i, (k, w, c) in enumerate(zip(keys, weights, configs))]
    db.session.add(exp)
    db.session.commit()
    return exp.id
