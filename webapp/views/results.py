"""Experiment results: the HTMX section, and the CSV / JSON exports (same session auth as the page)."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user

from webapp.services.experiments import analysis
from webapp.services.experiments import results as results_service
from webapp.views import agent_view, render

bp = Blueprint("results", __name__, url_prefix="/agents")

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/results")
@agent_view()
def section(agent_id: int, experiment_id: int):
    results = results_service.results_for(current_user.id, agent_id, experiment_id, with_daily=True,
                                          engine=request.args.get("engine"))
    return render("experiments/results_page.html", "experiments/_results_body.html", results=results,
                  metrics=results.ordered_metrics, experiment=results.experiment,
                  p_text=results_service.p_value_text, srm_p_text=results_service.srm_p_value_text,
                  pct=results_service.table_percent, chance_text=results_service.chance_text,
                  plan=results.plan, plan_metrics=results.metrics, plan_errors={},
                  engines=analysis.ENGINES, saved_engine=results.experiment.engine,
                  call_labels=results_service.CALL_LABELS)


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/results.json")
@agent_view()
def export_json(agent_id: int, experiment_id: int):
    results = results_service.results_for(current_user.id, agent_id, experiment_id, engine=request.args.get("engine"))
    return jsonify(results.as_dict())


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/results.csv")
@agent_view()
def export_csv(agent_id: int, experiment_id: int):
    results = results_service.results_for(current_user.id, agent_id, experiment_id, engine=request.args.get("engine"))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in results.csv_rows():
        writer.writerow([_csv_cell(value) for value in row])
    filename = f"experiment-{experiment_id}-results.csv"
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv_cell(value):
    """Empty for None; text that would start a formula gets a leading single quote. Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
