"""The runtime API's contract (SPEC §6): auth, statuses, the error shape, idempotency, read-only lookups."""
from __future__ import annotations

import http.client
import io
import json
import re
from datetime import timedelta, timezone
from urllib.parse import quote, unquote_to_bytes

import pytest
import sqlalchemy as sa
from flask import url_for

from tests import factories
from tests.views.test_roles import snapshot
from webapp.extensions import db
from webapp.models import ApiKey, Conversation, ExperimentAssignment, Lead, Message, utcnow


@pytest.fixture
def api(client, world):
    """POST/GET with the world's key against its agent (used once, so last_used_at is already set)."""
    class Api:
        headers = {"Authorization": f"Bearer {world.api_key}"}

        def url(self, tail: str, agent_id: int | None = None) -> str:
            return f"/api/v1/agents/{agent_id or world.agent_id}/{tail}"

        def message(self, body=None, agent_id=None, **kwargs):
            body = {"visitor_id": "v1", "conversation_id": "c1", "role": "visitor"} if body is None else body
            return client.post(self.url("messages", agent_id), json=body, headers=kwargs.pop("headers", self.headers),
                               **kwargs)

        def lead(self, body, agent_id=None):
            return client.post(self.url("leads", agent_id), json=body, headers=self.headers)

        def get(self, tail: str, agent_id=None):
            return client.get(self.url(tail, agent_id), headers=self.headers)

        def raw(self, data, **kwargs):
            return client.post(self.url("messages"), data=data, headers=self.headers, **kwargs)

    api = Api()
    assert api.get("visitors/warm-up/assignment").status_code == 200
    return api


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]["fields"]


def rows(app, model) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(model))
        db.session.remove()
        return n


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
def test_missing_or_bad_key_is_401(api, headers):
    error(api.message(headers=headers), 401, "unauthorized")


def test_revoked_key_is_401_and_last_used_at_is_kept(app, api, world):
    assert api.message().status_code == 201
    with app.app_context():
        key = db.session.get(ApiKey, world.api_key_id)
        assert key.last_used_at is not None
        key.revoked_at = utcnow()
        db.session.commit()
    error(api.message(), 401, "unauthorized")


def test_another_workspaces_agent_is_404(app, api, world):
    before = snapshot(app)
    error(api.message(agent_id=world.other_agent_id), 404, "not_found")
    error(api.get("visitors/v1/assignment", agent_id=world.other_agent_id), 404, "not_found")
    error(api.message(agent_id=2**40), 404, "not_found")
    assert snapshot(app) == before


@pytest.mark.parametrize("data", ["{bad", "", "[1, 2]", '"text"', "null", '{"a": NaN}', '{"a": -Infinity}',
                                  '{"a": 1e999}', '{"a": -1e400}', "[" * 50_000,
                                  b"\xff\xfe", '{"visitor_id": "\\ud800"}',
                                  # a lone surrogate in an otherwise valid message: escaped, as UTF-8 bytes
                                  # (json decodes them with surrogatepass), escaped in UTF-16
                                  '{"visitor_id": "v", "conversation_id": "c", "role": "visitor", "text": "\\udfff"}',
                                  b'{"visitor_id": "v", "conversation_id": "c", "role": "visitor", "text": "\xed\xa0\x80"}',
                                  '{"visitor_id": "v", "conversation_id": "c", "role": "visitor", "text": "\\ud800"}'
                                  .encode("utf-16-le")])
def test_malformed_or_non_object_body_is_400(app, api, data):
    before = snapshot(app)
    error(api.raw(data, content_type="application/json"), 400, "bad_request")
    assert snapshot(app) == before


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_any_content_type_is_read_as_json(app, api, client, content_type):
    """Lenient on purpose (docs/api.md): the body is JSON whatever the header says; auth is a Bearer header, not a
    cookie, so a cross-site form post gains nothing from it."""
    body = '{"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "a=b&c=d"}'
    headers = {**api.headers, **({"Content-Type": content_type} if content_type else {})}
    assert client.post(api.url("messages"), data=body, headers=headers).status_code == 201
    lead = client.post(api.url("leads"), data='{"visitor_id": "v1", "conversation_id": "c1"}', headers=headers)
    assert lead.status_code == 201
    assert rows(app, Message) == rows(app, Lead) == 1


def test_body_over_64_kb_is_413_by_content_length_and_by_actual_size(app, api, client, world):
    big = json.dumps({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "x" * 70_000})
    error(api.raw(big, content_type="application/json"), 413, "payload_too_large")
    # No Content-Length (chunked): the limit holds on the bytes actually read.
    response = client.post(api.url("messages"), headers=api.headers, input_stream=io.BytesIO(big.encode()),
                           environ_overrides={"wsgi.input_terminated": True}, content_type="application/json")
    error(response, 413, "payload_too_large")
    assert rows(app, Message) == 0


@pytest.mark.parametrize("body,field", [
    ({"conversation_id": "c1", "role": "visitor"}, "visitor_id"),
    ({"visitor_id": "x" * 300, "conversation_id": "c1", "role": "visitor"}, "visitor_id"),
    ({"visitor_id": "", "conversation_id": "c1", "role": "visitor"}, "visitor_id"),
    ({"visitor_id": "v\n1", "conversation_id": "c1", "role": "visitor"}, "visitor_id"),
    ({"visitor_id": 5, "conversation_id": "c1", "role": "visitor"}, "visitor_id"),
    ({"visitor_id": "v1", "conversation_id": "c\x001", "role": "visitor"}, "conversation_id"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "bot"}, "role"),
    ({"visitor_id": "v1", "conversation_id": "c1"}, "role"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": 3}, "text"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "a\x00b"}, "text"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "sent_at": "2026-01-01T10:00:00"}, "sent_at"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "sent_at": "yesterday"}, "sent_at"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "sent_at": "0001-01-01T00:00:00+01:00"},
     "sent_at"),
    ({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "message_id": "m" * 201}, "message_id"),
])
def test_validation_errors_name_the_field_and_write_nothing(app, api, body, field):
    before = snapshot(app)
    fields = error(api.message(body), 422, "validation_error")
    assert field in fields
    assert snapshot(app) == before


def test_a_conversation_id_of_another_visitor_is_409(app, api):
    assert api.message().status_code == 201
    fields = error(api.message({"visitor_id": "v2", "conversation_id": "c1", "role": "visitor"}), 409, "conflict")
    assert "conversation_id" in fields
    assert rows(app, Message) == 1


def test_first_message_201_replay_200_with_the_same_body(app, api, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    body = {"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "message_id": "m1", "text": "hi",
            "sent_at": "2026-01-31T12:00:00Z"}
    first = api.message(body)
    assert first.status_code == 201
    assert set(first.get_json()) == {"conversation_id", "message_id", "experiment", "variant", "persona",
                                     "system_prompt"}
    replay = api.message(body)
    assert replay.status_code == 200 and replay.get_json() == first.get_json()
    assert rows(app, Message) == 1 and rows(app, ExperimentAssignment) == 1


@pytest.mark.parametrize("change", [{"text": "something else"}, {"role": "agent"}, {"text": None}])
def test_a_message_id_reused_for_another_message_is_a_409_and_writes_nothing(app, api, world, change):
    body = {"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "message_id": "m1", "text": "hi"}
    assert api.message(body).status_code == 201
    response = api.message({**body, **change})
    assert set(error(response, 409, "conflict")) == {"message_id"} and "'m1'" in response.get_json()["error"]["message"]
    assert rows(app, Message) == 1
    assert api.message({**body, "conversation_id": "c2"}).status_code == 201  # ids are per conversation


def test_leads(app, api, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    error(api.lead({"visitor_id": "v1", "conversation_id": "c1"}), 404, "not_found")
    variant = api.message().get_json()["variant"]
    created = api.lead({"visitor_id": "v1", "conversation_id": "c1", "fields": {"email": "a@b.c"},
                        "captured_at": "2026-01-31T12:00:00+02:00"})
    assert created.status_code == 201
    assert created.get_json() == {"lead_id": created.get_json()["lead_id"], "variant": variant}
    error(api.lead({"visitor_id": "v2", "conversation_id": "c1"}), 409, "conflict")
    assert "fields" in error(api.lead({"visitor_id": "v1", "conversation_id": "c1", "fields": [1]}), 422,
                             "validation_error")
    with app.app_context():
        lead = db.session.scalar(sa.select(Lead))
        assert lead.fields == {"email": "a@b.c"} and lead.captured_at.hour == 10
        assert (lead.variant_id, lead.variant_key) == (variant["id"], variant["key"])
        db.session.remove()


def test_persona_and_assignment_lookups_never_assign(app, api, world):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    assert api.get("visitors/v1/assignment").get_json() == {"visitor_id": "v1", "assignment": None}
    error(api.get("conversations/c1/persona"), 404, "not_found")
    assert rows(app, ExperimentAssignment) == 0 and rows(app, Conversation) == 0

    sent = api.message({"visitor_id": "v/1", "conversation_id": "c/1 ü", "role": "visitor"}).get_json()
    persona = api.get("conversations/c/1 ü/persona").get_json()
    assert persona == {"conversation_id": "c/1 ü", "visitor_id": "v/1", "experiment": sent["experiment"],
                       "variant": sent["variant"], "persona": sent["persona"], "system_prompt": sent["system_prompt"]}
    assignment = api.get("visitors/v/1/assignment").get_json()["assignment"]
    assert assignment["variant"] == sent["variant"] and assignment["experiment"] == sent["experiment"]
    assert "visitor_id" in error(api.get("visitors/" + "x" * 300 + "/assignment"), 422, "validation_error")
    assert "conversation_id" in error(api.get("conversations/a%0Ab/persona"), 422, "validation_error")


@pytest.mark.parametrize("conversation_id,neighbour", [("/lead", "lead"), ("a//b", "a/b"), ("lead", "lead/")])
def test_lookups_take_ids_with_leading_or_double_slashes_never_merged(app, api, world, conversation_id, neighbour):
    """A client sends "/lead" as %2Flead and WSGI decodes it: the lookups get the id as sent, never its neighbour."""
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.remove()
    sent = {}
    for conversation in (neighbour, conversation_id):
        body = {"visitor_id": conversation + "-visitor", "conversation_id": conversation, "role": "visitor"}
        response = api.message(body)
        assert response.status_code == 201
        sent[conversation] = response.get_json()
    for conversation in (conversation_id, neighbour):
        visitor = conversation + "-visitor"
        persona = api.get(f"conversations/{quote(conversation, safe='')}/persona")
        assert persona.status_code == 200 and "Location" not in persona.headers
        assert (persona.get_json()["conversation_id"], persona.get_json()["visitor_id"]) == (conversation, visitor)
        assignment = api.get(f"visitors/{quote(visitor, safe='')}/assignment")
        assert assignment.status_code == 200 and assignment.get_json()["visitor_id"] == visitor
        assert assignment.get_json()["assignment"]["variant"] == sent[conversation]["variant"]
    error(api.get(f"conversations/{quote('/' + conversation_id, safe='')}/persona"), 404, "not_found")
    with app.test_request_context():  # url_for encodes the id the same way, so the link leads back to it
        url = url_for("api.conversation_persona", agent_id=world.agent_id, conversation_id=conversation_id)
    assert url == f"/api/v1/agents/{world.agent_id}/conversations/{quote(conversation_id, safe='')}/persona"
    assert app.test_client().get(url, headers=api.headers).get_json()["conversation_id"] == conversation_id


NOT_UTF8_IDS = [  # (the path's tail, the id it names, the first byte that is not UTF-8)
    ("visitors/%FF/assignment", "visitor_id", "%FF"),
    ("conversations/%C3%28/persona", "conversation_id", "%C3"),  # a lead byte followed by ASCII
    ("visitors/caf%C3/assignment", "visitor_id", "%C3"),  # a character cut short at the end
    ("conversations/a%E2%82b/persona", "conversation_id", "%E2"),
    ("conversations/%ED%A0%80/persona", "conversation_id", "%ED"),  # a surrogate's UTF-8 bytes
    ("visitors/%2F%FF%2F/assignment", "visitor_id", "%FF"),
]


def _not_utf8(response, field: str, byte: str) -> None:
    fields = error(response, 400, "bad_request")
    assert fields == {field: f"{field} must be UTF-8 text ({byte} is not part of a UTF-8 character)."}
    assert response.get_json()["error"]["message"].startswith(f"The {field} in the URL is not UTF-8: the byte {byte} ")


@pytest.mark.parametrize("tail,field,byte", NOT_UTF8_IDS)
def test_a_path_id_that_is_not_utf_8_is_a_400_naming_it(app, api, world, tail, field, byte):
    """Werkzeug decodes such bytes to U+FFFD, which must not pass for a real id (another client's "\ufffd")."""
    api.message({"visitor_id": "\ufffd", "conversation_id": "\ufffd(", "role": "visitor"})
    before = snapshot(app)
    _not_utf8(api.get(tail), field, byte)
    assert snapshot(app) == before


@pytest.mark.parametrize("tail,field,byte", NOT_UTF8_IDS[:2])
def test_a_path_id_that_is_not_utf_8_is_a_400_from_a_server_that_keeps_the_bytes_in_path_info(client, api, world,
                                                                                            tail, field, byte):
    """A server without RAW_URI or REQUEST_URI (PEP 3333: PATH_INFO holds the bytes one character each)."""
    url = api.url(tail)
    path_info = "/" + unquote_to_bytes(url.lstrip("/")).decode("latin-1")
    response = client.get(url, headers=api.headers,
                          environ_overrides={"PATH_INFO": path_info, "RAW_URI": None, "REQUEST_URI": None})
    _not_utf8(response, field, byte)


def test_a_path_id_that_is_not_utf_8_is_a_400_over_http(api, world, live_server):
    for tail, field, byte in NOT_UTF8_IDS[:2]:
        connection = http.client.HTTPConnection(live_server.removeprefix("http://"), timeout=10)
        connection.request("GET", api.url(tail), headers=api.headers)
        answer = connection.getresponse()
        body = json.loads(answer.read())
        connection.close()
        assert (answer.status, body["error"]["code"], list(body["error"]["fields"])) == (400, "bad_request", [field])


def test_the_openapi_document_lists_the_400_of_a_path_id_that_is_not_utf_8(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, field in (("/agents/{agent_id}/visitors/{visitor_id}/assignment", "visitor_id"),
                        ("/agents/{agent_id}/conversations/{conversation_id}/persona", "conversation_id")):
        responses = paths[path]["get"]["responses"]
        assert set(responses) == {"200", "400", "401", "404", "422"}
        assert responses["400"]["description"].startswith(f"The {field} in the path is not UTF-8")


def test_a_path_id_that_is_not_utf_8_is_checked_after_the_key_and_before_the_agent(client, api, world):
    """As the 422 of an id with a control character: 401 first, then the id, then the agent (404)."""
    for tail, field, byte in NOT_UTF8_IDS:
        assert error(client.get(api.url(tail)), 401, "unauthorized") == {}
        _not_utf8(api.get(tail, agent_id=world.other_agent_id), field, byte)


def test_u_fffd_sent_as_utf_8_is_an_id_like_any_other(app, api, world):
    """Only bytes that are not UTF-8 are refused: a replacement character the client really sent is its id."""
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.remove()
    sent = api.message({"visitor_id": "v\ufffd", "conversation_id": "c\ufffd", "role": "visitor"}).get_json()
    persona = api.get("conversations/c%EF%BF%BD/persona")
    assert persona.status_code == 200 and persona.get_json()["visitor_id"] == "v\ufffd"
    assignment = api.get("visitors/v%EF%BF%BD/assignment").get_json()
    assert assignment["visitor_id"] == "v\ufffd" and assignment["assignment"]["variant"] == sent["variant"]


def test_openapi_document_lists_exactly_the_api_routes(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    documented = {("/api/v1" + path.replace("{", "<").replace("}", ">"), method.upper())
                  for path, ops in document["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = re.sub(r"<\w+:", "<", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


def iso(moment) -> str:
    return moment.isoformat()


@pytest.mark.parametrize("field", ["sent_at", "captured_at"])
def test_timestamps_from_2000_to_24_hours_ahead_and_nothing_outside(app, api, field):
    """Found by QA: year 9999 was taken and ruined an arm's session length (62 billion seconds); 0001 too."""
    assert api.message().status_code == 201

    def report(value):
        if field == "sent_at":
            return api.message({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", field: value})
        return api.lead({"visitor_id": "v1", "conversation_id": "c1", field: value})

    now = utcnow()
    for value in ("2000-01-01T00:00:00Z", "2000-01-01T02:00:00+02:00", iso(now + timedelta(hours=23, minutes=59)),
                  iso((now + timedelta(hours=23, minutes=59)).astimezone(timezone(timedelta(hours=-8))))):
        assert report(value).status_code == 201, value
    before = snapshot(app)
    for value in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "1999-12-31T23:59:59Z",
                  "2000-01-01T01:59:59+02:00", iso(now + timedelta(hours=24, minutes=5)),
                  iso((now + timedelta(hours=24, minutes=5)).astimezone(timezone(timedelta(hours=5, minutes=30))))):
        fields = error(report(value), 422, "validation_error")
        assert set(fields) == {field}, value
        assert fields[field].startswith(f"{field} must be from 2000-01-01T00:00:00Z to 24 hours after the server's")
    assert snapshot(app) == before


def deep_lead(levels: int) -> str:
    """A lead body whose `fields` nests `levels` objects and arrays (`fields` itself is the first), as raw JSON:
    the test client's json.dumps would recurse."""
    return ('{"visitor_id": "v1", "conversation_id": "c1", "fields": {"a": '
            + "[" * (levels - 1) + "]" * (levels - 1) + "}}")


@pytest.mark.parametrize("levels,status", [(20, 201), (21, 422), (301, 422), (400, 422), (900, 422)])
def test_lead_fields_nest_at_most_20_levels_and_deeper_is_422_not_500(app, api, client, levels, status):
    """Found by QA: ~330–990 levels crashed the NUL check with a RecursionError (500)."""
    assert api.message().status_code == 201
    before = snapshot(app)
    response = client.post(api.url("leads"), data=deep_lead(levels), headers=api.headers,
                           content_type="application/json")
    if status == 201:
        assert response.status_code == 201, response.get_data(as_text=True)
        return
    fields = error(response, 422, "validation_error")
    assert fields == {"fields": "fields is nested too deeply: at most 20 levels of objects and arrays."}
    assert snapshot(app) == before


def test_csrf_stays_on_for_pages(client, auth, world):
    auth.login(world.emails["owner"])
    response = client.post(f"/agents/{world.agent_id}/settings", data={"name": "x", "persona_name": "y"})
    assert response.status_code == 400


def test_lead_idempotency_key_replays_and_writes_nothing(app, api, world):
    from tests import factories
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    assert api.message({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor"}).status_code == 201
    body = {"visitor_id": "v1", "conversation_id": "c1", "fields": {"email": "a@b.c"}, "idempotency_key": "lead-1"}
    first = api.lead(body)
    again = api.lead(body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert api.lead({**body, "idempotency_key": "lead-2"}).status_code == 201
    assert api.lead({**body, "idempotency_key": ""}).status_code == 422
    assert api.lead({**body, "captured_at": "2026-01-31T12:00:00Z"}).status_code == 200  # a retry's time may differ
    for other in ({"email": "x@y.z"}, {}, {"email": "a@b.c", "name": "A"}):  # lead-1 reused for another lead
        response = api.lead({**body, "fields": other})
        assert set(error(response, 409, "conflict")) == {"idempotency_key"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 2
        assert db.session.scalar(sa.select(Conversation.lead_count)) == 2


@pytest.mark.parametrize("data,message", [
    ("{bad",
     "The request body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2."),
    ("", "The request body is not valid JSON: Expecting value at line 1 column 1."),
    ('{"a": 1,\n "b": }', "The request body is not valid JSON: Expecting value at line 2 column 7."),
    ('{"a": NaN}', "The request body is not valid JSON: NaN is not a JSON number."),
    ('{"a": 1e999}', "The request body is not valid JSON: number 1e999 is out of range (JSON numbers must be finite)."),
    ('{"visitor_id": "\\ud800"}',
     "The request body is not valid JSON: it contains an invalid Unicode escape (a lone surrogate, \\ud800)."),
    (b'{"text": "caf\xe9"}', "The request body is not valid JSON: it is not UTF-8 text (byte 0xe9 at position 13)."),
    ('{"n": ' + "7" * 5000 + "}", "The request body is not valid JSON: number 77777777777777777777… has more than "
                                  "4,300 digits."),
    ("[" * 50_000, "The request body is nested too deeply to read."),
    ("[1, 2]", "The request body must be a JSON object."),
])
def test_a_malformed_body_is_explained_in_plain_words(api, data, message):
    """No Python class names ("(JSONDecodeError)"): what is wrong, and where."""
    response = api.raw(data, content_type="application/json")
    error(response, 400, "bad_request")
    assert response.get_json()["error"]["message"] == message


@pytest.mark.parametrize("header,message", [
    ("Basic dXNlcjpwYXNz", "Unsupported authorization scheme 'Basic': send 'Authorization: Bearer <key>'."),
    ("Token abx_123", "Unsupported authorization scheme 'Token': send 'Authorization: Bearer <key>'."),
    # a bare key is not echoed back
    ("abx_secret-key", "The Authorization header has no scheme: send 'Authorization: Bearer <key>'."),
    ("Bearer", "Missing API key: send 'Authorization: Bearer <key>'."),
    ("bearer   ", "Missing API key: send 'Authorization: Bearer <key>'."),
    ("Bearer nope", "Invalid API key."),
])
def test_an_authorization_header_that_is_not_a_bearer_key_says_what_to_send(app, api, client, header, message):
    before = snapshot(app)
    for response in (api.message(headers={"Authorization": header}),
                     client.post(api.url("leads"), json={}, headers={"Authorization": header}),
                     client.get(api.url("visitors/v1/assignment"), headers={"Authorization": header})):
        error(response, 401, "unauthorized")
        assert response.get_json()["error"]["message"] == message
    assert snapshot(app) == before
