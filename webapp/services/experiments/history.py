"""An experiment's audit trail as sentences a person reads ("Ana stopped the experiment."), SPEC §3 and §11.

The rows keep their machine-readable details (the exports of the audit table, the workspace activity); this turns
each into one sentence naming people by name (else email) and variants by name (else key).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import AuditEvent, Experiment, User


@dataclass(frozen=True)
class TrailEntry:
    event: AuditEvent
    who: str
    sentence: str


def _quoted(value: Any) -> str:
    return f"“{value}”" if value not in (None, "") else "(none)"


def _persona(value: Any) -> str:
    if not isinstance(value, dict):
        return "(none)"
    name, tone = value.get("persona_name") or "?", value.get("persona_tone")
    return f"{name} ({tone})" if tone else str(name)


def _arms(arms: Any) -> str:
    if not isinstance(arms, list):
        return ""
    return ", ".join(f"{a.get('name') or a.get('key')} ({a.get('weight')})" for a in arms if isinstance(a, dict))


def _outcome(value: Any, names: dict[str, str]) -> str:
    """An outcome recorded in a row's details, in words: "Shipped Aria", "Kept the control", "Inconclusive"."""
    if not isinstance(value, dict):
        return ""
    result = value.get("result")
    if result == "shipped":
        key = value.get("variant_key")
        words = f"Shipped {names.get(key, key)}"
    elif result == "kept_control":
        words = "Kept the control"
    else:
        words = "Inconclusive"
    note = value.get("note")
    return f"{words} — note: “{note}”" if note else words


def _others(value: Any) -> str:
    if not isinstance(value, list):
        return ""
    return ", ".join(_quoted(o.get("name")) for o in value if isinstance(o, dict))


def sentence(event: AuditEvent, who: str, names: dict[str, str]) -> str:
    """One audit row of an experiment as a sentence; `names` maps variant keys to names."""
    d = event.details if isinstance(event.details, dict) else {}
    action = event.action.split(".", 1)[-1]
    if action == "created":
        copied = f" as a copy of experiment #{d['duplicated_from']}" if d.get("duplicated_from") else ""
        arms = _arms(d.get("arms"))
        return f"{who} created the experiment{copied}" + (f" with variants {arms}." if arms else ".")
    if action == "edited":
        parts = []
        for field, label in (("name", "the name"), ("kind", "the kind")):
            if isinstance(d.get(field), dict):
                parts.append(f"{label} from {_quoted(d[field].get('from'))} to {_quoted(d[field].get('to'))}")
        if "hypothesis" in d:
            parts.append("the hypothesis")
        if isinstance(d.get("arms"), dict):
            parts.append(f"the variants to {_arms(d['arms'].get('to'))}")
        known = {"name", "kind", "hypothesis", "arms"}
        parts += [key.replace("_", " ") for key in d if key not in known]
        return f"{who} changed {', '.join(parts) or 'the experiment'}."
    if action in ("started", "resumed"):
        text = f"{who} {action} the experiment"
        if d.get("mode") == "stop_others":
            text += f", stopping {_others(d.get('others'))}"
        elif d.get("mode") == "anyway":
            text += f" while {_others(d.get('others'))} kept running (their populations mix)"
        text += "."
        if d.get("cleared_outcome"):
            text += f" The recorded outcome ({_outcome(d['cleared_outcome'], names)}) was cleared."
        return text
    if action == "stopped":
        text = f"{who} stopped the experiment"
        if d.get("replaced_by"):
            text += f" to start another one ({d.get('reason') or 'replaced'})"
        text += "."
        if d.get("outcome"):
            text += f" Outcome: {_outcome(d['outcome'], names)}."
        return text
    if action == "promoted":
        variant = names.get(d.get("variant"), d.get("variant"))
        text = (f"{who} promoted {variant}: the agent's persona changed from {_persona(d.get('from'))} "
                f"to {_persona(d.get('to'))}")
        text += " and the experiment stopped." if d.get("stopped") else "."
        if d.get("outcome"):
            text += f" Outcome: {_outcome(d['outcome'], names)}."
        return text
    if action == "outcome_recorded":
        if not d.get("outcome"):
            return f"{who} cleared the outcome ({_outcome(d.get('previous'), names)})."
        text = f"{who} recorded the outcome: {_outcome(d['outcome'], names)}."
        if d.get("previous"):
            text += f" It was: {_outcome(d['previous'], names)}."
        return text
    if action == "duplicated":
        return f"{who} duplicated the experiment as {_quoted(d.get('copy_name'))}."
    if action == "deleted":
        return f"{who} deleted the experiment {_quoted(d.get('name'))}."
    words = action.replace("_", " ")
    changes = "; ".join(f"{key.replace('_', ' ')}: {_change(value)}" for key, value in d.items())
    return f"{who}: {words}" + (f" ({changes})." if changes else ".")


def _change(value: Any) -> str:
    if isinstance(value, dict) and "from" in value and "to" in value:
        return f"{_plain(value['from'])} → {_plain(value['to'])}"
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def trail(experiment: Experiment, events: list[AuditEvent]) -> list[TrailEntry]:
    """The experiment's audit rows (newest first, as given) with who did it and what, in words."""
    ids = {e.actor_id for e in events if e.actor_id}
    people = dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    names = {v.key: v.name for v in experiment.variants}
    entries = []
    for event in events:
        who = people.get(event.actor_id) or event.actor_email or "Someone"
        entries.append(TrailEntry(event, who, sentence(event, who, names)))
    return entries
