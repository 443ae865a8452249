"""The A/B experiments tab of an agent: list, create, edit, detail, lifecycle.

Lifecycle POSTs answer an HTMX request with the swapped status component (plus out-of-band flash
and active badge) and a full-page request with a redirect, so every page also works without HTMX.
"""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, flash, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from webapp import authz
from webapp.errors import error_page
from webapp.extensions import db
from webapp.models import EXPERIMENT_KINDS, Experiment
from webapp.services.experiments import analysis, configs, experiments, metrics, outcomes
from webapp.services.experiments import results as results_service
from webapp.services.errors import Conflict, ValidationError
from webapp.views import agent_view, hx_redirect, is_htmx_fragment_request, render

bp = Blueprint("experiments", __name__, url_prefix="/agents")

TYPED_FIELDS = ("persona_name", "persona_tone", *configs.ALL_FORM_FIELDS)
VARIANT_FIELD = re.compile(rf"^variants-(\d+)-(key|name|weight|config|{'|'.join(TYPED_FIELDS)})$")
CONFIRMATIONS = ("start", "delete", "stop", "promote", "outcome")  # in-page confirmations (?confirm=)


# --- the form's state: what the user typed, row by row ----------------------------------------


def _row(variant: dict[str, Any]) -> dict[str, Any]:
    """A form row from a service-shaped variant (config as a dict)."""
    config = variant.get("config") or {}
    persona = config.get("persona") if isinstance(config.get("persona"), dict) else {}
    row = {"key": variant["key"], "name": variant["name"], "weight": str(variant["weight"]),
           "config": json.dumps(config, ensure_ascii=False), "persona_name": persona.get("name", ""),
           "persona_tone": persona.get("tone", "")}
    for kind, keys in configs.BLOCK_KEYS.items():
        block = config.get(kind) if isinstance(config.get(kind), dict) else {}
        row.update({f"{kind}_{key}": _field_text(block.get(key)) for key in keys})
    return row


def _field_text(value: Any) -> str:
    """A typed config value as its form field shows it (a number as digits; absent: blank)."""
    return "" if value is None else str(value)


def _posted_rows(form: MultiDict) -> list[dict[str, Any]] | None:
    """The posted variant rows in index order (gaps from removed rows close up); None if none were posted."""
    rows: dict[int, dict[str, Any]] = {}
    for name in form:
        match = VARIANT_FIELD.match(name)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = form.get(name)
    if not rows:
        return None
    return [{"key": r.get("key", ""), "name": r.get("name", ""), "weight": r.get("weight", ""),
             "config": r.get("config", ""), **{field: r.get(field) for field in TYPED_FIELDS}}
            for _, r in sorted(rows.items())]


def _posted(form: MultiDict) -> dict[str, Any]:
    """The service input from a posted experiment form; `variants` only when rows were posted."""
    data: dict[str, Any] = {"name": form.get("name", ""), "hypothesis": form.get("hypothesis", "")}
    if "kind" in form:
        data["kind"] = form.get("kind")
    data.update({name: form.get(name) for name in analysis.FIELDS if name in form})
    rows = _posted_rows(form)
    if rows is not None:
        data["variants"] = rows
    return data


def _config_for_kind(row: dict[str, Any], kind: str) -> str:
    """A row's config JSON once the form's kind changed (bad JSON stays as typed).

    The typed blocks of the other kinds (persona, cta, trigger) are dropped; their fields stay in the form, hidden,
    so that switching back folds what was typed there into the JSON again."""
    config = experiments.config_object(row["config"])
    if config is None:
        return row["config"]
    before = dict(config)
    for other in ("persona", *configs.BLOCK_KEYS):
        if other != kind:
            config.pop(other, None)
    if kind == "persona":
        typed = {field: row[f"persona_{field}"] for field in ("name", "tone")
                 if (row.get(f"persona_{field}") or "").strip()}
        if typed:
            persona = config.get("persona") if isinstance(config.get("persona"), dict) else {}
            config["persona"] = {**persona, **typed}
    elif kind in configs.BLOCK_KEYS:
        block = configs.merged_block(kind, config, row)
        if block is not None:
            config[kind] = block
    if config == before:
        return row["config"]
    return json.dumps(config, ensure_ascii=False)


SLIDER_SCALES = (100, 1_000, experiments.MAX_WEIGHT)  # app.js: SLIDER_SCALES


def _slider_max(weights: list[int]) -> int:
    """The one range of all the form's weight sliders: the first scale that fits the largest weight."""
    return next(scale for scale in SLIDER_SCALES if max(weights, default=0) <= scale)


def _arms(variants: list[Any]) -> list[dict[str, Any]]:
    """A stored experiment's variants as the form's service-shaped rows."""
    return [{"key": v.key, "name": v.name, "weight": v.weight, "config": v.config} for v in variants]


def _form_context(data: dict[str, Any], experiment: Experiment | None = None,
                  errors: dict[str, str] | None = None) -> dict[str, Any]:
    rows = [r if isinstance(r.get("config"), str) else _row(r) for r in data.get("variants") or []]
    weights = [experiments.typed_weight(str(r["weight"])) for r in rows]  # an invalid one counts as none
    shares = [share if w else None for w, share in zip(weights, experiments.shares(weights))]  # none: no share
    saved = analysis.settings_of(experiment) if experiment is not None else analysis.DEFAULTS
    data = {**analysis.form_values(saved), **data}  # the settings as typed, else as saved (new: the defaults)
    return {"data": data, "rows": rows, "shares": shares, "slider_max": _slider_max(weights),
            "errors": errors or {}, "experiment": experiment,
            "kinds": EXPERIMENT_KINDS, "max_variants": experiments.MAX_VARIANTS,
            "min_variants": experiments.MIN_VARIANTS,
            "arms_editable": experiment is None or experiment.status == "draft",
            **_analysis_context(experiment, saved),
            "plan": None, "plan_errors": {}, "plan_url": _plan_url(experiment)}


def _analysis_context(experiment: Experiment | None, settings: analysis.Settings) -> dict[str, Any]:
    """What the Analysis section and the plan fragment show: the choices, labels and whether they are editable."""
    return {"settings": settings, "metric_choices": metrics.primary_metric_choices(experiment, g.agent.id),
            "plan_metrics": metrics.experiment_metrics(experiment), "engine_choices": analysis.ENGINE_LABELS,
            "correction_choices": analysis.CORRECTION_LABELS,
            "analysis_editable": authz.allows(g.get("role"), "change_analysis")}


def _plan_url(experiment: Experiment | None) -> str:
    if experiment is None:
        return url_for("experiments.plan_preview_new", agent_id=g.agent.id)
    return url_for("experiments.plan_preview", agent_id=g.agent.id, experiment_id=experiment.id)


# --- pages ------------------------------------------------------------------------------------


@bp.route("/<int:agent_id>/experiments")
@agent_view()
def index(agent_id: int):
    rows = experiments.list_for_agent(current_user.id, agent_id, results_service.outcome_lift)
    deleted = experiments.deleted_for_agent(current_user.id, agent_id)
    return render("experiments/index.html", rows=rows, deleted=deleted)


@bp.route("/<int:agent_id>/experiments/new", methods=["GET", "POST"])
@agent_view("manage_experiments")
def new(agent_id: int):
    if request.method == "GET":
        kind = request.args.get("kind") if request.args.get("kind") in EXPERIMENT_KINDS else "persona"
        data = {"name": "", "kind": kind, "hypothesis": "",
                "variants": experiments.default_variants(agent_id, kind)}
        return render("experiments/new.html", "experiments/_form.html", **_form_context(data))
    data = _posted(request.form)
    try:
        experiment = experiments.create_experiment(current_user.id, agent_id, data)
    except ValidationError as error:
        return render("experiments/new.html", "experiments/_form.html", status=422,
                      **_form_context(data, errors=error.fields))
    flash(f"Experiment “{experiment.name}” created as a draft.", "success")
    return hx_redirect(url_for("experiments.detail", agent_id=agent_id, experiment_id=experiment.id))


@bp.route("/<int:agent_id>/experiments/form-rows", methods=["POST"])
@agent_view("manage_experiments")
def form_rows(agent_id: int):
    """Re-render the variant rows of a form being edited: `op` is add, remove-<index> or kind (the kind changed).

    After a refused save (the form then posts `save_attempted`) the rows come back with the errors of their values
    as they now stand, except a row just added (blank by design: the next save checks it), and the form's "Nothing
    was saved" banner goes; the fields outside the rows keep theirs."""
    data = _posted(request.form)
    rows = data.get("variants") or []
    op = request.form.get("op", "")
    added = None
    if op == "add" and len(rows) < experiments.MAX_VARIANTS:
        rows.append(_row(experiments.new_variant([r["key"] for r in rows])))
        added = len(rows) - 1
    elif (op.startswith("remove-") and op[7:].isascii() and op[7:].isdigit() and len(op) <= 12
          and len(rows) > experiments.MIN_VARIANTS):
        index = int(op[7:])
        if index < len(rows):
            rows.pop(index)
    elif op == "kind":
        for row in rows:
            row["config"] = _config_for_kind(row, data.get("kind"))
    data["variants"] = rows
    errors = _row_errors(data, added) if request.form.get("save_attempted") else None
    return render("experiments/new.html", "experiments/_variant_rows.html", clear_banner=is_htmx_fragment_request(),
                  added=added, **_form_context(data, errors=errors))


def _row_errors(data: dict[str, Any], blank_row: int | None) -> dict[str, str]:
    """The errors of the variant rows (`variants`, `variants-N-…`) as the service finds them, but a blank row's."""
    try:
        experiments.validate(data)
    except ValidationError as error:
        blank = () if blank_row is None else (f"variants-{blank_row}-",)
        return {field: message for field, message in error.fields.items()
                if field.startswith("variants") and not field.startswith(blank)}
    return {}


@bp.route("/<int:agent_id>/experiments/plan", methods=["POST"], endpoint="plan_preview_new")
@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/plan", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def plan_preview(agent_id: int, experiment_id: int | None = None):
    """The live calculator of the new/edit form: the plan fragment for the settings and weights as typed (422 with
    the settings' errors); nothing is saved."""
    experiment, plan, errors = results_service.plan_preview(current_user.id, agent_id, experiment_id,
                                                            _posted(request.form))
    return render("experiments/_plan.html", "experiments/_plan.html", status=422 if errors else 200,
                  plan=plan, plan_errors=errors, experiment=experiment,
                  plan_metrics=metrics.experiment_metrics(experiment))


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>")
@agent_view()
def detail(agent_id: int, experiment_id: int):
    info = experiments.detail(current_user.id, agent_id, experiment_id, results_service.outcome_lift)
    confirm = request.args.get("confirm") if request.args.get("confirm") in CONFIRMATIONS else None
    return render("experiments/detail.html", "experiments/_status.html",
                  **_detail_context(info, confirm, posted=request.args))


def _detail_context(info: experiments.ExperimentDetail, confirm: str | None = None, error: str | None = None,
                    errors: dict[str, str] | None = None, posted: Any = None) -> dict[str, Any]:
    """The experiment page's context; `posted` (form or query) fills a confirmation's fields (variant, outcome,
    note) and `errors` marks them."""
    posted = posted or {}
    chosen = next((v for v in info.variants if v.key == posted.get("variant")), None)
    return {"info": info, "experiment": info.experiment, "variants": info.variants, "confirm": confirm,
            "error": error, "errors": errors or {}, "chosen": chosen,
            "outcome_choices": outcomes.choices(info.experiment),
            "posted_outcome": posted.get("outcome", outcomes.SHIPPED_PREFIX + chosen.key if chosen else ""),
            "posted_note": posted.get("note", ""),
            **_analysis_context(info.experiment, analysis.settings_of(info.experiment))}


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/edit", methods=["GET", "POST"])
@agent_view()
def edit(agent_id: int, experiment_id: int):
    experiment = experiments.experiment_for(current_user.id, agent_id, experiment_id, "manage_experiments")
    if request.method == "GET":
        data = {"name": experiment.name, "kind": experiment.kind, "hypothesis": experiment.hypothesis,
                "variants": _arms(experiment.variants)}
        return render("experiments/edit.html", "experiments/_form.html", **_form_context(data, experiment))
    data = _posted(request.form)
    try:
        experiments.update_experiment(current_user.id, agent_id, experiment_id, data)
    except ValidationError as error:
        data.setdefault("kind", experiment.kind)
        return render("experiments/edit.html", "experiments/_form.html", status=422,
                      **_form_context(data, experiment, error.fields))
    except Conflict as error:
        # Started meanwhile (in another tab): its arms froze under the form. The form comes back as it now is —
        # the name and hypothesis as typed, the arms frozen — saying why nothing was saved.
        db.session.rollback()  # expires `experiment`: it reads as it now is
        data = {**data, "kind": experiment.kind, "variants": _arms(experiment.variants)}
        return render("experiments/edit.html", "experiments/_form.html", status=error.status,
                      **_form_context(data, experiment, {"form": error.message}))
    flash("Experiment saved.", "success")
    return hx_redirect(url_for("experiments.detail", agent_id=agent_id, experiment_id=experiment_id))


# --- lifecycle --------------------------------------------------------------------------------


def _status_response(agent_id: int, experiment_id: int, status: int = 200, confirm: str | None = None,
                     error: str | None = None, errors: dict[str, str] | None = None) -> Response:
    """HTMX: the status component plus out-of-band flash and active badge. Full page: back to the page — or, for a
    confirmation refused on its fields (`errors`), the page with the confirmation open, as typed, and the errors."""
    detail_url = url_for("experiments.detail", agent_id=agent_id, experiment_id=experiment_id)
    if not is_htmx_fragment_request() and errors:
        info = experiments.detail(current_user.id, agent_id, experiment_id, results_service.outcome_lift)
        return render("experiments/detail.html", status=status,
                      **_detail_context(info, confirm, errors=errors, posted=request.form))
    if not is_htmx_fragment_request():
        if error:
            flash(error, "error")
        return redirect(detail_url + (f"?confirm={confirm}" if confirm else ""))
    info = experiments.detail(current_user.id, agent_id, experiment_id, results_service.outcome_lift)
    html = render_template("experiments/_status.html",
                           **_detail_context(info, confirm, error, errors, posted=request.form if errors else None)) + \
        render_template("experiments/_oob.html", **_detail_context(info))
    response = make_response(html, status)
    response.vary.add("HX-Request")
    if status == 200:  # started, stopped or promoted: the results section reloads (its empty state names the status)
        response.headers["HX-Trigger"] = "experiment-status-changed"
    return response


@bp.errorhandler(experiments.NeedsConfirmation)
def needs_confirmation(error: experiments.NeedsConfirmation):
    """Start while others run: the status component asks which way to start (SPEC §3)."""
    db.session.rollback()
    return _status_response(request.view_args["agent_id"], request.view_args["experiment_id"], 409, confirm="start")


@bp.errorhandler(Conflict)
@bp.errorhandler(ValidationError)
def refused(error: Conflict | ValidationError):
    """A refused lifecycle action (wrong status, bad mode or variant): the status component says why."""
    db.session.rollback()
    message = next(iter(error.fields.values()), error.message)
    args = request.view_args or {}
    if "experiment_id" not in args:
        return error_page(error.status, message)
    return _status_response(args["agent_id"], args["experiment_id"], error.status, error=message)


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/start", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def start(agent_id: int, experiment_id: int):
    mode = request.form.get("mode") or None
    experiment = experiments.start_experiment(current_user.id, agent_id, experiment_id, mode)
    if mode == "anyway":
        flash(f"“{experiment.name}” is running alongside another experiment: their populations mix.", "warning")
    else:
        flash(f"“{experiment.name}” is running.", "success")
    return _status_response(agent_id, experiment_id)


def _refused_confirmation(agent_id: int, experiment_id: int, confirm: str, error: ValidationError) -> Response:
    """A confirmation posted with a bad outcome or note: it comes back open, as typed, with the field errors."""
    db.session.rollback()
    return _status_response(agent_id, experiment_id, error.status, confirm=confirm, errors=error.fields)


def _with_outcome(agent_id: int, experiment_id: int, confirm: str, act) -> Experiment | Response:
    """Run `act` (stop_experiment, record_outcome) with the posted `outcome` and `note`: the experiment, or the
    refused confirmation's response."""
    try:
        return act(current_user.id, agent_id, experiment_id, request.form.get("outcome"), request.form.get("note"))
    except ValidationError as error:
        return _refused_confirmation(agent_id, experiment_id, confirm, error)


def _outcome_said(experiment: Experiment) -> str:
    said = outcomes.label(experiment)
    return f" Outcome recorded: {said}." if said else ""


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/stop", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def stop(agent_id: int, experiment_id: int):
    experiment = _with_outcome(agent_id, experiment_id, "stop", experiments.stop_experiment)
    if isinstance(experiment, Response):
        return experiment
    flash(f"“{experiment.name}” stopped: no new visitors are assigned.{_outcome_said(experiment)}", "success")
    return _status_response(agent_id, experiment_id)


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/outcome", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def outcome(agent_id: int, experiment_id: int):
    experiment = _with_outcome(agent_id, experiment_id, "outcome", experiments.record_outcome)
    if isinstance(experiment, Response):
        return experiment
    said = outcomes.label(experiment)
    flash(f"Outcome of “{experiment.name}”: {said}." if said else f"“{experiment.name}” has no outcome recorded.",
          "success")
    return _status_response(agent_id, experiment_id)


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/delete", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def delete(agent_id: int, experiment_id: int):
    name = experiments.delete_experiment(current_user.id, agent_id, experiment_id)
    flash(f"Experiment “{name}” deleted. Conversations and leads keep their variant stamps.", "success")
    # The experiment is gone: there is no component left to swap, so both kinds of request go to the tab.
    return hx_redirect(url_for("experiments.index", agent_id=agent_id))


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/duplicate", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def duplicate(agent_id: int, experiment_id: int):
    copy = experiments.duplicate_experiment(current_user.id, agent_id, experiment_id)
    flash(f"Draft “{copy.name}” created with the same variants; edit it, then start it.", "success")
    return hx_redirect(url_for("experiments.edit", agent_id=agent_id, experiment_id=copy.id))


@bp.route("/<int:agent_id>/experiments/<int:experiment_id>/promote", methods=["POST"])
@agent_view()  # the service: the experiment (404), then the role (403)
def promote(agent_id: int, experiment_id: int):
    variant_key = request.form.get("variant", "")
    try:
        experiment = experiments.promote_variant(current_user.id, agent_id, experiment_id, variant_key,
                                                 request.form.get("note"))
    except ValidationError as error:
        if "variant" in error.fields:
            raise
        return _refused_confirmation(agent_id, experiment_id, "promote", error)
    promoted = next(v for v in experiment.variants if v.key == variant_key)
    agent = g.agent
    # The active experiment, if a persona one, still decides the persona of the visitors it assigns.
    deciding = experiments.active_experiment(agent_id)
    exception = (f" — visitors in “{deciding.name}” still get its variants"
                 if deciding is not None and deciding.kind == "persona" else "")
    flash(f"{promoted.name} promoted: the agent now answers as {agent.persona_name}"
          f"{' (' + agent.persona_tone + ')' if agent.persona_tone else ''}{exception}. The experiment is stopped."
          f"{_outcome_said(experiment)}",
          "success")
    return _status_response(agent_id, experiment_id)
