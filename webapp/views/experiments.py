"""The A/B experiments tab of an agent."""
from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from ..services import experiments
from . import agent_view, render

bp = Blueprint("experiments", __name__, url_prefix="/agents")


@bp.route("/<int:agent_id>/experiments")
@agent_view()
def index(agent_id: int):
    rows = experiments.list_for_agent(current_user.id, agent_id)
    return render("experiments/index.html", rows=rows)
