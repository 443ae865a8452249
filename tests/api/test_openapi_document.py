"""The OpenAPI document says what the server does, field by field (what schemathesis' coverage phase probes, here
exhaustively and without chance): null in each field of each request body, NUL (U+0000) in each string; and the
Timestamp schema's pattern against validation.timestamp at the window's edges."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

import jsonschema
import pytest

from tests import factories
from webapp.api.openapi import openapi_document, timestamp_schema
from webapp.extensions import db
from webapp.services import validation
from webapp.services.runtime import service as runtime

VISITOR, CONVERSATION = "visitor-42", "conv-1"
# A body each endpoint takes (2xx) for the existing conversation; each probe changes one field of it.
BODIES = {
    "MessageRequest": ("messages", {"visitor_id": VISITOR, "conversation_id": CONVERSATION, "role": "visitor",
                                    "text": "Hi"}),
    "LeadRequest": ("leads", {"visitor_id": VISITOR, "conversation_id": CONVERSATION, "fields": {"email": "a@b.c"}}),
    "EventRequest": ("events", {"visitor_id": VISITOR, "conversation_id": CONVERSATION, "name": "booked_demo"}),
    "FeedbackRequest": (f"conversations/{CONVERSATION}/feedback", {"visitor_id": VISITOR, "rating": "up"}),
}
DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def document_takes(schema_name: str, body: dict) -> bool:
    """Whether the document's schema of the request body validates `body` ($refs resolved in the document)."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(root).is_valid(body)


def probes() -> list[tuple[str, str, str, object]]:
    """(schema, field, label, value): null in every field, NUL in every string field (and in lead fields' keys and
    strings)."""
    found = []
    for schema_name in BODIES:
        for field, schema in SCHEMAS[schema_name]["properties"].items():
            found.append((schema_name, field, "null", None))
            if field == "fields":
                found += [(schema_name, field, "NUL in a string", {"email": "a\x00b"}),
                          (schema_name, field, "NUL in a key", {"e\x00mail": "a"})]
            elif field != "rating" and field != "role":
                found.append((schema_name, field, "NUL", "a\x00b"))
            else:
                found.append((schema_name, field, "NUL", schema["enum"][0] + "\x00"))
    return found


@pytest.fixture
def conversation(app, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        runtime.record_message(world.workspace_id, world.agent_id,
                               {"visitor_id": VISITOR, "conversation_id": CONVERSATION, "role": "visitor"})
        db.session.remove()


@pytest.mark.parametrize("schema_name,field,label,value", probes(),
                         ids=[f"{s}.{f}={label}" for s, f, label, _ in probes()])
def test_the_document_takes_what_the_server_takes(client, world, conversation, schema_name, field, label, value):
    """Found by schemathesis' coverage phase: the server took null for an optional field (as absent, as it should:
    many clients serialise None) while the document said "string"; and refused NUL in `text`, which the document
    let through."""
    tail, base = BODIES[schema_name]
    body = {**base, field: value}
    response = client.post(f"/api/v1/agents/{world.agent_id}/{tail}", json=body,
                           headers={"Authorization": f"Bearer {world.api_key}"})
    assert response.status_code in (200, 201, 422), response.get_data(as_text=True)
    accepted = response.status_code != 422
    if not accepted:
        assert list(response.get_json()["error"]["fields"]) == [field]
    assert document_takes(schema_name, body) == accepted, (body, response.get_json())
    required = field in SCHEMAS[schema_name].get("required", [])
    if value is None:  # null is absent for optional fields and refused for required ones; the document says so
        assert accepted != required
        if not required:
            assert "null is the same as absent" in SCHEMAS[schema_name]["properties"][field]["description"]


def test_the_examples_are_taken_by_the_document():
    for schema_name, (_, base) in BODIES.items():
        assert document_takes(schema_name, base)
        if "example" in SCHEMAS[schema_name]:
            assert document_takes(schema_name, SCHEMAS[schema_name]["example"])


# --- the Timestamp pattern against validation.timestamp ------------------------------------------------------------

TODAY = date(2026, 12, 2)
OFFSETS = ["Z", "z", "+00:00", "-00:00", "+00:01", "-00:01", "+02:00", "-05:00", "+14:00", "-12:00", "+23:59",
           "-23:59"]
TIMES = ["00:00:00", "00:00:59", "01:59:59", "12:00:00", "23:59:59", "23:59:59.999999"]
DATES = [date(1999, 12, 31), date(2000, 1, 1), date(2000, 1, 2), date(2000, 2, 29), date(2019, 9, 30),
         TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=1), TODAY + timedelta(days=2)]
# The server's clock at both ends of TODAY (UTC): the pattern is computed from the date alone.
NOWS = [datetime.combine(TODAY, time(0, 0, 0), timezone.utc),
        datetime.combine(TODAY, time(23, 59, 59, 999999), timezone.utc)]


def server_takes(value: str, now: datetime) -> bool:
    errors: dict[str, str] = {}
    validation.timestamp(value, "sent_at", errors, now)
    return not errors


def candidates() -> list[str]:
    return [f"{day.isoformat()}T{moment}{offset}" for day in DATES for moment in TIMES for offset in OFFSETS]


def test_what_the_timestamp_pattern_takes_the_server_takes_whatever_its_clock():
    pattern = re.compile(timestamp_schema(TODAY)["pattern"])
    matched = [value for value in candidates() if pattern.search(value)]
    assert matched
    for value in matched:
        assert all(server_takes(value, now) for now in NOWS), value


def test_the_timestamp_pattern_takes_the_window_its_description_promises():
    """2000-01-02 to yesterday at any offset, 2000-01-01 at or behind UTC, today in UTC or ahead of it."""
    pattern = re.compile(timestamp_schema(TODAY)["pattern"])
    behind = {"Z", "z", "+00:00", "-00:00", "-00:01", "-05:00", "-12:00", "-23:59"}
    ahead = {"Z", "z", "+00:00", "-00:00", "+00:01", "+02:00", "+14:00", "+23:59"}
    for value in candidates():
        day = date.fromisoformat(value[:10])
        offset = re.search(r"([Zz]|[+-]\d\d:\d\d)$", value).group()
        promised = (date(2000, 1, 2) <= day < TODAY or (day == date(2000, 1, 1) and offset in behind)
                    or (day == TODAY and offset in ahead))
        assert bool(pattern.search(value)) == promised, value


@pytest.mark.parametrize("value,taken", [
    ("2000-01-01T00:00:00Z", True), ("2000-01-01T00:00:00-05:00", True), ("2000-01-01T02:00:00+02:00", True),
    ("1999-12-31T23:59:59Z", False), ("2000-01-01T01:59:59+02:00", False), ("2000-01-01T00:00:00+00:01", False),
])
def test_the_window_opens_at_2000_01_01_utc_for_server_and_document(value, taken):
    """The server's edge is exact; the pattern takes only the part of it that holds at any offset (never more)."""
    pattern = re.compile(timestamp_schema(TODAY)["pattern"])
    assert server_takes(value, NOWS[0]) is taken
    if not taken:
        assert not pattern.search(value)


def test_the_window_closes_24_hours_after_the_servers_clock_for_server_and_document():
    schema = timestamp_schema(TODAY)
    pattern = re.compile(schema["pattern"])
    for now in NOWS:
        edge = now + validation.CLOCK_SKEW
        for offset in (timezone.utc, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))):
            assert server_takes(edge.astimezone(offset).isoformat(), now)
            assert not server_takes((edge + timedelta(seconds=1)).astimezone(offset).isoformat(), now)
            assert not pattern.search((edge + timedelta(seconds=1)).astimezone(offset).isoformat())
    # The description states the server's exact window, and the constants it is made of.
    assert validation.EARLIEST_TIMESTAMP == datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert validation.CLOCK_SKEW == timedelta(hours=24)
    assert "from 2000-01-01T00:00:00Z to 24 hours after the server's clock" in schema["description"]
    assert TODAY.isoformat() in schema["description"]


def test_the_served_document_states_todays_window(client):
    before = datetime.now(timezone.utc).date()
    served = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Timestamp"]
    assert served in (timestamp_schema(before), timestamp_schema(datetime.now(timezone.utc).date()))  # midnight
