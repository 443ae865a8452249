"""Control characters and bidi controls in names are refused on their field (SPEC §3: bad input gets an error on
the field it concerns); multi-line fields keep tabs and line breaks."""
import pytest

from tests.views.test_roles import snapshot

HX = {"HX-Request": "true"}


def experiment_form(**changes) -> dict:
    data = {"name": "Warmer greeting", "kind": "persona", "hypothesis": "Warmth\r\nconverts",
            "variants-0-key": "control", "variants-0-name": "Control", "variants-0-weight": "50",
            "variants-0-config": "{}", "variants-0-persona_name": "Sam", "variants-0-persona_tone": "",
            "variants-1-key": "treatment", "variants-1-name": "Treatment", "variants-1-weight": "50",
            "variants-1-config": "{}", "variants-1-persona_name": "Aria", "variants-1-persona_tone": "warm"}
    return {**data, **changes}


@pytest.mark.parametrize("field,value", [
    ("name", "Warmer\x1b[2J greeting"),
    ("name", "Warmer\ngreeting"),
    ("hypothesis", "Warmth\u202econverts"),
    ("hypothesis", "Warmth\x0bconverts"),
    ("variants-1-name", "Treat\tment"),
    ("variants-1-persona_name", "Ar\u202eia"),
    ("variants-1-persona_tone", "warm\u2066 and kind"),
    ("name", "Warmer\u200f greeting"),
    ("variants-1-name", "Treat\u2028ment"),
    ("hypothesis", "Warmth\u2029converts"),
    ("variants-1-config", '{"persona": {"name": "Ar\\u0007ia"}}'),
])
def test_experiment_form_refuses_control_characters_on_the_field(app, client, auth, world, field, value):
    auth.login("owner@acme.test")
    before = snapshot(app)
    data = experiment_form(**{field: value})
    if field == "variants-1-config":
        del data["variants-1-persona_name"]  # the name comes from the JSON, so does the error
    response = auth.post(f"/agents/{world.agent_id}/experiments/new", data, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html
    assert f'data-field="{field}"' in html and "must not contain" in html
    assert snapshot(app) == before


def test_experiment_form_keeps_line_breaks_and_tabs_in_the_hypothesis(app, client, auth, world):
    auth.login("owner@acme.test")
    response = auth.post(f"/agents/{world.agent_id}/experiments/new",
                         experiment_form(hypothesis="Warmth converts:\r\n\t- more leads\r\n\t- longer chats"))
    assert response.status_code == 302


@pytest.mark.parametrize("field,value", [
    ("name", "Help\u202edesk"), ("persona_name", "S\x08am"), ("persona_tone", "friend\x85ly"),
    ("instructions", "Be brief.\x1b[8m hidden"), ("instructions", "Be \u2067brief"),
    ("persona_name", "Sa\u200fm"), ("instructions", "Be brief.\u2028Be kind."),
])
def test_agent_settings_refuse_control_characters_on_the_field(app, client, auth, world, field, value):
    auth.login("editor@acme.test")
    before = snapshot(app)
    data = {"name": "Helper", "persona_name": "Sam", "persona_tone": "friendly", "instructions": "Be helpful.",
            field: value}
    response = auth.post(f"/agents/{world.agent_id}/settings", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and f'data-field="{field}"' in html and "must not contain" in html
    assert snapshot(app) == before


def test_agent_settings_keep_line_breaks_and_tabs_in_the_instructions(app, client, auth, world):
    auth.login("editor@acme.test")
    response = auth.post(f"/agents/{world.agent_id}/settings", {
        "name": "Helper", "persona_name": "Sam", "persona_tone": "friendly",
        "instructions": "Be helpful.\r\n\tOffer a demo."})
    assert response.status_code == 302


@pytest.mark.parametrize("url,data,field", [
    ("/w/acme/agents", {"name": "Bot\u202e", "persona_name": "", "persona_tone": "", "instructions": ""}, "name"),
    ("/w/acme/agents", {"name": "Bot", "persona_name": "Sa\x1fm", "persona_tone": "", "instructions": ""},
     "persona_name"),
    ("/w/acme/api-keys", {"name": "widget\x07"}, "name"),
    ("/w/acme/api-keys", {"name": "widget\u200e key"}, "name"),
    ("/w/acme/agents", {"name": "Bot\u061c One", "persona_name": "", "persona_tone": "", "instructions": ""}, "name"),
    ("/w/acme/members", {"email": "admin\x01@acme.test", "role": "editor"}, "email"),
])
def test_workspace_forms_refuse_control_characters_on_the_field(app, client, auth, world, url, data, field):
    auth.login("owner@acme.test")
    before = snapshot(app)
    response = auth.post(url, data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and f'data-field="{field}"' in html and "must not contain" in html
    assert snapshot(app) == before


@pytest.mark.parametrize("name", ["Bot\u202e", "Bot\u200f One", "Bot\u2029One"])
def test_cli_refuses_control_characters_in_an_agent_name(app, runner, world, name):
    before = snapshot(app)
    result = runner.invoke(args=["agents", "create", "--workspace", "acme", "--name", name])
    assert result.exit_code != 0 and "Name must not contain" in result.output
    assert snapshot(app) == before
