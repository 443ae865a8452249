"""Agent pages: Overview, Conversations, Leads, Settings (the A/B experiments tab is in experiments.py)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from webapp.services.workspace import agents, conversations as conversation_service
from webapp.services.experiments import experiments
from webapp.services import validation
from webapp.services.errors import ValidationError
from webapp.models import MAX_DB_ID
from webapp.views import agent_view, page_arg, render
from webapp.views.workspace import apply_errors

bp = Blueprint("agents", __name__, url_prefix="/agents")


class SettingsForm(FlaskForm):
    name = StringField("Agent name")
    persona_name = StringField("Default persona name")
    persona_tone = StringField("Default tone")
    instructions = TextAreaField("Instructions")


@bp.route("/<int:agent_id>")
@agent_view()
def overview(agent_id: int):
    counts = agents.overview(current_user.id, agent_id)
    running = experiments.running_experiments(agent_id)
    return render("agents/overview.html", counts=counts, active=running[0] if running else None,
                  also_running=running[1:])


@bp.route("/<int:agent_id>/conversations")
@agent_view()
def conversations(agent_id: int):
    visitor_id, external_id = _id_filter("visitor"), _id_filter("conversation")
    return _stamped_tab(conversation_service.conversation_list, "agents/conversations.html", agent_id,
                        visitor_id=visitor_id, external_id=external_id)


@bp.route("/<int:agent_id>/conversations/<int:conversation_id>")
@agent_view()
def transcript(agent_id: int, conversation_id: int):
    found = conversation_service.transcript(current_user.id, agent_id, conversation_id, page_arg())
    return render("agents/transcript.html", t=found)


def _stamped_tab(listing_of, template: str, agent_id: int, **filters):
    """A tab listing stamped rows (Conversations, Leads) under the experiment and variant filter (and `filters`)."""
    experiment_id, variant_key = _stamp_filter()
    listing = listing_of(current_user.id, agent_id, page_arg(), experiment_id=experiment_id, variant_key=variant_key,
                         **filters)
    return render(template, listing=listing, page=listing.page, labels=listing.labels, options=listing.options, by_id=listing.by_id,
                  experiment_id=experiment_id, variant_key=variant_key, **filters)


def _id_filter(parameter: str) -> str | None:
    """An exact runtime id to filter by (`?visitor=` or `?conversation=`); a malformed one is a 400 naming it."""
    value = request.args.get(parameter, "")
    if not value:
        return None
    errors: dict[str, str] = {}
    validation.opaque_id(value, parameter, errors)
    if errors:
        abort(400, f"{parameter} must be a runtime id: 1–200 characters without control characters.")
    return value


def _stamp_filter() -> tuple[int | None, str | None]:
    """The experiment id and variant key of the Conversations and Leads filter; a malformed one is a 400 naming it."""
    experiment = request.args.get("experiment", "")
    if experiment and not (experiment.isascii() and experiment.isdigit() and len(experiment) <= 20
                           and 1 <= int(experiment) <= MAX_DB_ID):
        abort(400, f"experiment must be the id of an experiment, a positive whole number (got “{experiment[:40]}”).")
    variant = request.args.get("variant", "")
    if variant and not validation.SLUG_RE.fullmatch(variant):
        abort(400, f"variant must be a variant key: lower-case letters, digits and dashes (got “{variant[:40]}”).")
    return int(experiment) if experiment else None, variant or None


@bp.route("/<int:agent_id>/leads")
@agent_view()
def leads(agent_id: int):
    return _stamped_tab(agents.leads, "agents/leads.html", agent_id)


@bp.route("/<int:agent_id>/connect")
@agent_view()
def connect(agent_id: int):
    """How to wire a chat runtime to this agent (SPEC §13): the endpoints with examples, the API reference."""
    info = agents.integration(current_user.id, agent_id)
    base = request.url_root.rstrip("/") + url_for("api.openapi").rsplit("/", 1)[0]  # …/api/v1, as this host serves it
    return render("agents/connect.html", info=info, api_base=base, agent_api=f"{base}/agents/{agent_id}")


@bp.route("/<int:agent_id>/settings", methods=["GET", "POST"])
@agent_view()
def settings(agent_id: int):
    form = SettingsForm(obj=g.agent)
    status = 200
    if form.is_submitted():
        try:
            agents.update_settings(current_user.id, agent_id, {
                "name": form.name.data, "persona_name": form.persona_name.data,
                "persona_tone": form.persona_tone.data, "instructions": form.instructions.data,
            })
            flash("Settings saved.", "success")
            return redirect(url_for("agents.settings", agent_id=agent_id))
        except ValidationError as error:
            apply_errors(form, error)
            status = 422
    return render("agents/settings.html", status=status, form=form)
