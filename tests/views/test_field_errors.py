"""A refused form's messages are tied to their fields: the input names its error (and help) in aria-describedby."""
from __future__ import annotations

import re

import pytest

from tests.views.test_experiments import HX, base, form, owner  # noqa: F401 (owner is a fixture)

DESCRIBED = re.compile(r'<(?:input|textarea|select)\b[^>]*\bname="([^"]+)"[^>]*>')


def described_by(html: str, name: str) -> list[str]:
    """The ids the field `name` names in aria-describedby."""
    for tag in DESCRIBED.finditer(html):
        if tag.group(1) == name:
            match = re.search(r'aria-describedby="([^"]*)"', tag.group(0))
            return match.group(1).split() if match else []
    raise AssertionError(f"no field {name}")


def error_text(html: str, error_id: str) -> str:
    match = re.search(rf'<p class="error" id="{re.escape(error_id)}"[^>]*>(.*?)</p>', html, re.S)
    assert match, f"no error element #{error_id}"
    return match.group(1)


@pytest.mark.parametrize("headers", [HX, {}])
@pytest.mark.parametrize("changes,field,message", [
    ({"name": ""}, "name", "required"),
    ({"variants-1-weight": "0"}, "variants-1-weight", "from 1 to 10,000"),
    ({"variants-1-key": "control"}, "variants-1-key", ""),
    ({"variants-1-config": "{broken", "variants-1-persona_name": ""}, "variants-1-config", ""),
    ({"variants-1-persona_name": ""}, "variants-1-persona_name", "required"),
])
def test_experiment_form_errors_are_the_fields_description(app, client, owner, world, headers, changes, field,  # noqa: F811
                                                           message):
    response = owner.post(base(world) + "/new", {**form(), **changes}, headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert described_by(html, field) == [f"{field}-error"]
    assert message in error_text(html, f"{field}-error")
    assert described_by(html, "hypothesis") == []  # a valid field names nothing


@pytest.mark.parametrize("url_field", [{}, {"variants-1-cta_url": ""}])
def test_a_missing_cta_url_is_the_url_fields_error(client, owner, world, url_field):  # noqa: F811
    """SPEC §3: the URL field, left out of the post or left blank, says it is required; the JSON field says nothing."""
    data = {**form(kind="cta"), "variants-1-cta_label": "Go", **url_field}
    response = owner.post(base(world) + "/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert described_by(html, "variants-1-cta_url") == ["variants-1-cta_url-error"]
    assert error_text(html, "variants-1-cta_url-error") == "CTA URL is required."
    assert described_by(html, "variants-1-config") == []


def test_wtforms_fields_name_their_help_and_their_error(client, auth, world):
    auth.login(world.emails["owner"])
    response = auth.post("/w/acme/agents", {"name": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert described_by(html, "name") == ["name-error"] and "required" in error_text(html, "name-error")
    assert described_by(html, "persona_name") == ["persona_name-help"]
    assert 'id="persona_name-help"' in html


def test_the_visitor_preview_input_names_its_error(app, client, auth, world):
    from tests import factories
    from webapp.extensions import db

    with app.app_context():
        exp = factories.experiment(world.agent_id)
        db.session.remove()
    auth.login(world.emails["editor"])
    page = client.get(f"/agents/{world.agent_id}/experiments/{exp}").get_data(as_text=True)
    assert described_by(page, "visitor_id") == ["visitor-preview-help"] and 'id="visitor-preview-help"' in page
    fragment = client.get(f"/agents/{world.agent_id}/experiments/{exp}/preview?visitor_id=" + "x" * 300,
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    # The fragment is the whole preview: its input names the error it comes back with.
    assert described_by(fragment, "visitor_id") == ["visitor-preview-help", "visitor_id-error"]
    assert "1–200 characters" in error_text(fragment, "visitor_id-error")
