"""Property-based fuzzing of the runtime API against its own OpenAPI document, with every check schemathesis has
(the CLI's `--checks all`), bounded and deterministic."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests import factories
from webapp.api.openapi import openapi_document
from webapp.extensions import db

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
OPERATIONS = [operation["operationId"] for path in openapi_document()["paths"].values()
              for operation in path.values()]
MAX_EXAMPLES = 30  # per operation and mode: the whole run stays well under a minute


@pytest.fixture
def api_schema(app, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.remove()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # A real agent and key, as configured parameters (the CLI's --set-path, -H): the interesting paths are behind
    # them, and the checks know these values were not generated.
    schema.config.update(parameters={"agent_id": world.agent_id},
                         headers={"Authorization": f"Bearer {world.api_key}"})
    return schema


def test_every_operation_is_fuzzed():
    assert len(OPERATIONS) >= 5 and "postEvent" in OPERATIONS


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_api_matches_its_openapi_document(api_schema, world, operation_id, mode):
    operation = api_schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(checks=ALL_CHECKS)

    run()
