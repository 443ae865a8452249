"""The metrics an experiment measures (SPEC §7, §10.1): one list that the results, the exports and the analysis
settings all read, so that a new metric (feedback, blinded review, goals) is added in one place.

Each metric has a `label`, a `kind` ("proportion" or "ratio": how its sufficient statistics are built) and the
`unit` the page shows.
"""
from __future__ import annotations

from typing import Any

METRICS: dict[str, dict[str, Any]] = {
    "messages_per_conversation": {"label": "Visitor messages per conversation", "kind": "ratio", "unit": ""},
    "session_length": {"label": "Session length per conversation", "kind": "ratio", "unit": "s"},
    "lead_capture_rate": {"label": "Lead capture rate", "kind": "proportion", "unit": "%"},
}


def experiment_metrics(experiment: Any | None = None) -> dict[str, dict[str, Any]]:
    """The metrics of `experiment` (None: a new one), in the order the results show them.

    Today the built-in ones for every experiment; metrics that exist only for some experiments (a goal seen in its
    conversations) are added here."""
    return dict(METRICS)


def primary_metric_choices(experiment: Any | None = None) -> dict[str, str]:
    """The metrics `experiment` may take as its primary metric: key → label."""
    return {key: meta["label"] for key, meta in experiment_metrics(experiment).items()}
