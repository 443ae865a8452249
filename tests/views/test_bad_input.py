"""Bad input anywhere in the web app is a clear 4xx, never a 500 (found in review)."""
import pytest

from tests.views.test_roles import snapshot


@pytest.mark.parametrize("url", [
    "/agents/99999999999999999999/experiments",
    "/agents/2147483648",
    "/agents/{agent}/experiments/1099511627776",
    "/agents/{agent}/conversations?experiment=99999999999999999999",
])
def test_huge_ids_are_not_found_or_bad_request(client, auth, world, url):
    auth.login("owner@acme.test")
    response = client.get(url.format(agent=world.agent_id))
    assert response.status_code in (400, 404)


@pytest.mark.parametrize("url", ["/w/ac%00me/agents", "/agents/{agent}/conversations?variant=a%00b"])
def test_nul_in_url_is_400(client, auth, world, url):
    auth.login("owner@acme.test")
    response = client.get(url.format(agent=world.agent_id))
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/w/%FF/agents", "/w/ac%C3%28me/members", "/w/%ED%A0%80/api-keys",
                                 "/agents/{agent}/experiments/%FF", "/agents/%C3%28/settings"])
def test_a_path_that_is_not_utf_8_is_a_page_not_a_500(client, auth, world, url):
    """The only string ids of the pages are workspace slugs: bytes that are not UTF-8 name no workspace."""
    auth.login("owner@acme.test")
    response = client.get(url.format(agent=world.agent_id))
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_nul_in_login_form_is_400_even_logged_out(client, world):
    from tests.conftest import csrf_token
    response = client.post("/login", data={"email": "a\x00@b.c", "password": "x", "csrf_token": csrf_token(client)})
    assert response.status_code == 400 and "email&#39; contains a NUL character" in response.get_data(as_text=True)


@pytest.mark.parametrize("config,message", [
    ('{"a": NaN}', "not a JSON number"),
    ('{"a": Infinity}', "not a JSON number"),
    ('{"a": -Infinity}', "not a JSON number"),
    # Beyond a double: Python reads them as ±inf, stored as `Infinity` (invalid JSON) on SQLite, a 500 on PostgreSQL.
    ('{"a": 1e999}', "number 1e999 is out of range (JSON numbers must be finite)"),
    ('{"a": -1e400}', "number -1e400 is out of range"),
    ('{"a": [1.5, {"b": 2e308}]}', "number 2e308 is out of range"),
    # A lone surrogate parses but cannot be encoded as UTF-8 for the database: a 500 on both engines before.
    ('{"a": "\\ud800"}', "invalid Unicode escape (a lone surrogate, \\ud800)"),
    ('{"\\udfff": 1}', "invalid Unicode escape (a lone surrogate, \\udfff)"),
    # NUL: PostgreSQL refuses it in text (a 500 at Promote), SQLite stored it in the agent's persona.
    ('{"persona": {"name": "Q\\u0000R"}}', "Config must not contain NUL characters."),
    ('{"a\\u0000": 1}', "Config must not contain NUL characters."),
    ('{"a": [{"b": ["ok", "\\u0000"]}]}', "Config must not contain NUL characters."),
    ("[" * 3000 + "]" * 3000, "nested too deeply"),
    ('{"a": }', "Config is not valid JSON: Expecting value at line 1 column 7."),
    ('{"n": ' + "1" * 4400 + "}", "Config is not valid JSON: number 11111111111111111111… has more than 4,300 digits."),
    ('{"a": ' + "[" * 20 + "]" * 20 + "}", "nested too deeply: at most 20 levels"),
])
def test_bad_variant_config_is_a_field_error(app, client, auth, world, config, message):
    auth.login("owner@acme.test")
    before = snapshot(app)
    response = auth.post(f"/agents/{world.agent_id}/experiments/new", {
        "name": "X", "kind": "cta", "hypothesis": "",
        "variants-0-key": "control", "variants-0-name": "C", "variants-0-weight": "1", "variants-0-config": config,
        "variants-1-key": "treatment", "variants-1-name": "T", "variants-1-weight": "1", "variants-1-config": "{}"})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize("kind,config,kept", [
    ("persona", "[" * 5000 + "]" * 5000, "[" * 5000),
    ("persona", '{"a": ' + "[" * 900 + "]" * 900 + "}", "[" * 900),
    ("cta", '{"persona": {"name": "Aria"}, "a": 1e999}', "1e999"),  # not rewritten as `Infinity`
])
def test_switching_kind_keeps_a_config_it_cannot_read_as_typed(client, auth, world, kind, config, kept):
    """The form helper re-reads each row's JSON on a kind switch: too deep for the parser was a 500."""
    auth.login("owner@acme.test")
    response = auth.post(f"/agents/{world.agent_id}/experiments/form-rows", {
        "name": "X", "kind": kind, "hypothesis": "", "op": "kind",
        "variants-0-key": "control", "variants-0-name": "C", "variants-0-weight": "1", "variants-0-config": config,
        "variants-1-key": "treatment", "variants-1-name": "T", "variants-1-weight": "1", "variants-1-config": "{}"},
        headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and kept in html and "Infinity" not in html


LONE_SURROGATE = '{"persona": {"name": "Aria", "tone": "\\ud800"}}'


def _form(config: str, kind: str = "persona", **extra) -> dict:
    return {"name": "X", "kind": kind, "hypothesis": "", **extra,
            "variants-0-key": "control", "variants-0-name": "C", "variants-0-weight": "1", "variants-0-config": "{}",
            "variants-0-persona_name": "Sam",
            "variants-1-key": "treatment", "variants-1-name": "T", "variants-1-weight": "1",
            "variants-1-config": config}


def test_a_lone_surrogate_in_a_config_is_a_422_on_its_field_when_created(app, client, auth, world):
    auth.login("owner@acme.test")
    before = snapshot(app)
    response = auth.post(f"/agents/{world.agent_id}/experiments/new", _form(LONE_SURROGATE))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-field="variants-1-config"' in html
    assert "a lone surrogate" in html
    assert snapshot(app) == before


def test_a_lone_surrogate_in_a_config_is_a_field_error_when_rows_are_re_rendered(client, auth, world):
    auth.login("owner@acme.test")
    for op in ("add", "kind", "remove-9"):
        response = auth.post(f"/agents/{world.agent_id}/experiments/form-rows",
                             _form(LONE_SURROGATE, op=op, save_attempted="1"), headers={"HX-Request": "true"})
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and 'data-field="variants-1-config"' in html and "a lone surrogate" in html


def test_a_lone_surrogate_in_a_config_is_a_422_when_a_draft_is_edited(app, client, auth, world):
    from tests import factories
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id)
    auth.login("owner@acme.test")
    before = snapshot(app)
    response = auth.post(f"/agents/{world.agent_id}/experiments/{experiment_id}/edit", _form(LONE_SURROGATE))
    assert response.status_code == 422 and "a lone surrogate" in response.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize("config", ['{"persona": {"name": "Q\\u0000R"}}',
                                    '{"persona": {"name": "Aria", "tone": "\\u0000"}}',
                                    '{"persona": {"name": "Aria"}, "x\\u0000": {}}'])
def test_nul_in_a_persona_config_is_a_422_on_the_config_field(app, client, auth, world, config):
    auth.login("owner@acme.test")
    before = snapshot(app)
    response = auth.post(f"/agents/{world.agent_id}/experiments/new", _form(config, **{"variants-1-persona_name": ""}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-field="variants-1-config"' in html
    assert "Config must not contain NUL characters." in html
    assert snapshot(app) == before
