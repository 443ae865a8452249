"""Property-based fuzzing of the runtime API against its own OpenAPI document (bounded, deterministic)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories
from webapp.extensions import db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = ["postMessage", "postLead", "postFeedback", "getConversationPersona", "getVisitorAssignment"]


@pytest.fixture
def api_schema(app, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.remove()
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_api_matches_its_openapi_document(api_schema, world, operation_id, mode):
    operation = api_schema.find_operation_by_id(operation_id)
    headers = {"Authorization": f"Bearer {world.api_key}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.path_parameters["agent_id"] = world.agent_id  # a real agent: the interesting paths are behind it
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
