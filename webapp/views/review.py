"""The blinded review page of an experiment (SPEC §12): one masked conversation at a time, Good or Bad."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from webapp.services.experiments import review as review_service
from webapp.views import agent_view, is_htmx_fragment_request, render

bp = Blueprint("review", __name__, url_prefix="/agents")


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/review", methods=["GET", "POST"])
@agent_view()
def page(agent_id: int, experiment_id: int):
    """GET draws the next conversation; POST records a rating and answers the next one (the card alone for HTMX,
    a redirect to the page otherwise); bad input comes back as the same conversation with its errors (422)."""
    status = 200
    if request.method == "GET":
        shown = review_service.next_review(current_user.id, agent_id, experiment_id)
    else:
        try:
            shown = review_service.submit_review(current_user.id, agent_id, experiment_id, request.form.to_dict())
        except review_service.ReviewRejected as rejected:
            shown, status = rejected.page, 422
        else:
            if not is_htmx_fragment_request():
                flash("Rating saved. Here is the next conversation.", "success")
                return redirect(url_for("review.page", agent_id=agent_id, experiment_id=experiment_id), 303)
    return render("experiments/review.html", "experiments/_review_card.html", status=status, review=shown)
