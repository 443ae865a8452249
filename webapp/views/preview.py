"""The visitor preview of an experiment (SPEC §8): which variant a visitor would get — a dry run."""
from __future__ import annotations

from flask import Blueprint, request
from flask_login import current_user

from webapp.services.experiments import preview as previews
from webapp.services.errors import ValidationError
from webapp.views import agent_view, render

bp = Blueprint("preview", __name__, url_prefix="/agents")


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/preview")
@agent_view()
def preview(agent_id: int, experiment_id: int):
    visitor_id = request.args.get("visitor_id")
    try:
        result = previews.preview(current_user.id, agent_id, experiment_id, visitor_id)
        errors, status = {}, 200
    except ValidationError as error:
        result = previews.preview(current_user.id, agent_id, experiment_id, None)
        errors, status = error.fields, 422
    return render("experiments/preview.html", "experiments/_preview.html", status=status,
                  experiment=result.experiment, preview=result, visitor_id=visitor_id, errors=errors)
