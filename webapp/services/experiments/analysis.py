"""Analysis settings of an experiment (SPEC §10.1): allowed values, defaults, validation, the audited change.

The settings say how the results are read — engine, α, N*, prior, correction — and what the plan aims for — the
primary metric, the MDE, the power and, for the lead capture rate, a typed baseline rate. They never touch
assignment, so they stay editable in every status.

Input is form-shaped (strings, or numbers from code): `mde_percent` and `baseline_rate_percent` are in percent, as
typed (10 means 10 %); the settings store fractions (`mde` 0.1), as the exports give them. A key absent from the
input keeps its current value (a new experiment: the §10.1 default). Field errors are keyed by the input's names.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from webapp.services.errors import BadRequest, ValidationError
from webapp.services.experiments import stats
from webapp.services.experiments.metrics import primary_metric_choices

ENGINES = ("sequential", "fixed", "bayesian")
ENGINE_LABELS = {"sequential": "Sequential", "fixed": "Fixed horizon", "bayesian": "Bayesian"}
ALPHAS = (0.01, 0.05, 0.10)
PRIORS = ("flat", "proper")
CORRECTIONS = ("none", "holm", "bh")
CORRECTION_LABELS = {"none": "None", "holm": "Holm", "bh": "Benjamini–Hochberg"}
TUNING_MIN, TUNING_MAX = 100, 1_000_000
MDE_PERCENT_MIN, MDE_PERCENT_MAX = 0.5, 500.0
POWER_MIN, POWER_MAX = 0.50, 0.99
# The proper prior of SPEC §10.2: N(0, 0.3²) on the relative lift.
PROPER_PRIOR_MEAN, PROPER_PRIOR_VARIANCE = 0.0, 0.09

# The form's and the service input's names, in the order the form shows them.
FIELDS = ("primary_metric", "engine", "alpha", "sequential_tuning", "prior", "correction", "mde_percent", "power",
          "baseline_rate_percent")


@dataclass(frozen=True)
class Settings:
    """An experiment's analysis settings; `mde`, `power`, `alpha` and `baseline_rate` are fractions."""

    primary_metric: str = "lead_capture_rate"
    engine: str = "sequential"
    alpha: float = 0.05
    sequential_tuning: int = 5000
    prior: str = "flat"
    correction: str = "holm"
    mde: float = 0.10
    power: float = 0.80
    baseline_rate: float | None = None

    def analysis(self) -> stats.Analysis:
        """The statistics engine's view of these settings."""
        return stats.Analysis(engine=self.engine, alpha=self.alpha, sequential_tuning=self.sequential_tuning,
                              prior=self.prior, prior_mean=PROPER_PRIOR_MEAN, prior_variance=PROPER_PRIOR_VARIANCE)

    def with_engine(self, engine: str | None) -> "Settings":
        return self if engine is None else replace(self, engine=engine)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULTS = Settings()
# What experiments created before the settings existed get (the migration's server defaults): their results keep
# their meaning — fixed horizon, α 0.05, no correction, the lead capture rate.
LEGACY = Settings(engine="fixed", correction="none")
COLUMNS = tuple(f.name for f in Settings.__dataclass_fields__.values())


def settings_of(experiment: Any) -> Settings:
    """The settings stored on an experiment row."""
    return Settings(**{name: getattr(experiment, name) for name in COLUMNS})


def apply(experiment: Any, settings: Settings) -> dict[str, dict[str, Any]]:
    """Write `settings` onto the experiment row; the changed fields as {field: {"from": old, "to": new}}."""
    changed: dict[str, dict[str, Any]] = {}
    for name, value in settings.as_dict().items():
        old = getattr(experiment, name)
        if old != value:
            changed[name] = {"from": old, "to": value}
            setattr(experiment, name, value)
    return changed


def posted(data: dict[str, Any]) -> bool:
    """Whether an input dict sets any analysis setting."""
    return any(name in data for name in FIELDS)


def form_values(settings: Settings) -> dict[str, str]:
    """The settings as the form shows them (percent where the form takes percent)."""
    return {"primary_metric": settings.primary_metric, "engine": settings.engine, "alpha": f"{settings.alpha:.2f}",
            "sequential_tuning": str(settings.sequential_tuning), "prior": settings.prior,
            "correction": settings.correction, "mde_percent": _plain(settings.mde * 100),
            "power": f"{settings.power:.2f}",
            "baseline_rate_percent": "" if settings.baseline_rate is None else _plain(settings.baseline_rate * 100)}


def _plain(value: float) -> str:
    """A number without float noise (10.000000000000002 → "10"), to 6 significant digits."""
    return f"{value:.6g}"


def parse_engine(value: Any) -> str | None:
    """A one-off engine of a query string (`?engine=`): None when absent or blank; BadRequest naming a bad one."""
    if value is None or value == "":
        return None
    if value not in ENGINES:
        shown = str(value)[:40]
        raise BadRequest(f"engine must be one of {', '.join(ENGINES)} (got “{shown}”).",
                         {"engine": f"Engine must be one of: {', '.join(ENGINES)}."})
    return value


def clean(data: dict[str, Any], current: Settings = DEFAULTS, experiment: Any | None = None) -> Settings:
    """The settings `data` asks for over `current`; ValidationError with the field errors."""
    errors: dict[str, str] = {}
    settings = validate(data, current, experiment, errors)
    if errors:
        raise ValidationError(errors)
    return settings


def validate(data: dict[str, Any], current: Settings, experiment: Any | None, errors: dict[str, str],
             agent_id: int | None = None) -> Settings:
    """As `clean`, recording field errors in `errors` (so a caller can report them with its own); `agent_id` is a
    new experiment's agent (its goals are primary-metric choices)."""
    values = current.as_dict()
    if "primary_metric" in data:
        allowed = dict(primary_metric_choices(experiment, agent_id))
        value = data["primary_metric"]
        if value not in allowed and value != current.primary_metric:
            errors["primary_metric"] = f"Primary metric must be one of: {', '.join(allowed)}."
        else:
            values["primary_metric"] = value
    values["engine"] = _choice(data, "engine", ENGINES, "Engine", values["engine"], errors)
    values["prior"] = _choice(data, "prior", PRIORS, "Prior", values["prior"], errors)
    values["correction"] = _choice(data, "correction", CORRECTIONS, "Correction", values["correction"], errors)
    if "alpha" in data:
        alpha = _number(data["alpha"], "alpha", "Significance level (α)", errors)
        match = next((a for a in ALPHAS if alpha is not None and math.isclose(alpha, a, abs_tol=1e-12)), None)
        if alpha is not None and match is None:
            errors["alpha"] = "Significance level (α) must be 0.01, 0.05 or 0.10."
        values["alpha"] = match if match is not None else values["alpha"]
    if "sequential_tuning" in data:
        value = data["sequential_tuning"]
        text = str(value).strip().replace(",", "") if not isinstance(value, bool) else ""
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        if not (text.isascii() and text.isdigit() and len(text) <= 9) or not TUNING_MIN <= int(text) <= TUNING_MAX:
            errors["sequential_tuning"] = ("Sequential tuning (N*) must be a whole number from 100 to 1,000,000 "
                                           f"(got “{str(value)[:20]}”).")
        else:
            values["sequential_tuning"] = int(text)
    if "mde_percent" in data:
        mde = _number(data["mde_percent"], "mde_percent", "Minimum detectable effect", errors)
        if mde is not None and not MDE_PERCENT_MIN <= mde <= MDE_PERCENT_MAX:
            errors["mde_percent"] = f"Minimum detectable effect must be from 0.5% to 500% (got {_plain(mde)}%)."
        elif mde is not None:
            values["mde"] = mde / 100
    if "power" in data:
        power = _number(data["power"], "power", "Power", errors)
        if power is not None and not POWER_MIN <= power <= POWER_MAX:
            errors["power"] = f"Power must be from 0.50 to 0.99, e.g. 0.80 for 80% (got {_plain(power)})."
        elif power is not None:
            values["power"] = power
    if "baseline_rate_percent" in data:
        raw = data["baseline_rate_percent"]
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values["baseline_rate"] = None
        else:
            rate = _number(raw, "baseline_rate_percent", "Baseline rate", errors)
            if rate is not None and not 0 < rate < 100:
                errors["baseline_rate_percent"] = (f"Baseline rate must be a percentage above 0 and below 100 "
                                                   f"(got {_plain(rate)}%), or empty.")
            elif rate is not None:
                values["baseline_rate"] = rate / 100
    return Settings(**values)


def _choice(data: dict[str, Any], field: str, allowed: tuple[str, ...], label: str, current: str,
            errors: dict[str, str]) -> str:
    if field not in data:
        return current
    if data[field] not in allowed:
        errors[field] = f"{label} must be one of: {', '.join(allowed)}."
        return current
    return data[field]


def _number(value: Any, field: str, label: str, errors: dict[str, str]) -> float | None:
    """A finite number from a form's text (a trailing % allowed) or from code; None with an error otherwise."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = value.strip().removesuffix("%").strip() if isinstance(value, str) else ""
        try:
            number = float(text) if text and len(text) <= 30 and text.isascii() else None
        except ValueError:
            number = None
        if number is None:
            errors[field] = f"{label} is required: a number." if not text else f"{label} must be a number."
            return None
    if not math.isfinite(number):
        errors[field] = f"{label} must be a finite number."
        return None
    return number
