"""The experiments tab over HTTP: full pages vs HTMX fragments, 422 fragments, lifecycle answers, CSRF."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import csrf_token
from webapp.extensions import db
from webapp.models import Agent, AuditEvent, Experiment, Variant

HX = {"HX-Request": "true"}


def form(name="Warmer greeting", kind="persona", rows=(("control", "50", "Sam"), ("treatment", "50", "Aria"))):
    data = {"name": name, "kind": kind, "hypothesis": "Warmth converts"}
    for i, (key, weight, persona_name) in enumerate(rows):
        data.update({f"variants-{i}-key": key, f"variants-{i}-name": key.title(), f"variants-{i}-weight": weight,
                     f"variants-{i}-config": "{}", f"variants-{i}-persona_name": persona_name,
                     f"variants-{i}-persona_tone": ""})
    return data


def rows_of(app) -> tuple[int, int]:
    with app.app_context():
        counts = (db.session.scalar(sa.select(sa.func.count()).select_from(Experiment)),
                  db.session.scalar(sa.select(sa.func.count()).select_from(Variant)))
        db.session.remove()
        return counts


def make(app, agent_id, **kwargs) -> int:
    with app.app_context():
        exp_id = factories.experiment(agent_id, **kwargs)
        db.session.remove()
        return exp_id


def status_of(app, exp_id) -> str | None:
    with app.app_context():
        exp = db.session.get(Experiment, exp_id)
        status = exp.status if exp else None
        db.session.remove()
        return status


@pytest.fixture
def owner(auth, world):
    assert auth.login(world.emails["owner"]).status_code == 302
    return auth


def base(world) -> str:
    return f"/agents/{world.agent_id}/experiments"


def test_new_form_starts_with_control_and_treatment_at_50_50(client, owner, world):
    html = client.get(base(world) + "/new").get_data(as_text=True)
    for name in ("name", "kind", "hypothesis", "variants-0-key", "variants-1-weight", "variants-1-config",
                 "variants-0-persona_name", "variants-1-persona_tone"):
        assert f'name="{name}"' in html
    assert 'value="control"' in html and 'value="treatment"' in html
    assert html.count('type="range"') == 2 and html.count("50.0%") == 2
    assert 'value="Sam"' in html  # control starts as the agent's persona


def test_create_full_page_redirects_and_htmx_gets_hx_redirect(app, client, owner, world):
    response = owner.post(base(world) + "/new", form())
    assert response.status_code == 302 and "/experiments/" in response.headers["Location"]
    response = owner.post(base(world) + "/new", form(name="Second"), headers=HX)
    assert response.status_code == 200 and "/experiments/" in response.headers["HX-Redirect"]
    assert rows_of(app) == (2, 4)
    with app.app_context():
        exp = db.session.scalar(sa.select(Experiment).order_by(Experiment.id))
        assert exp.variants[1].config == {"persona": {"name": "Aria"}}
        db.session.remove()


def test_bad_weight_comes_back_as_a_422_fragment_with_the_message_on_the_field(app, client, owner, world):
    response = owner.post(base(world) + "/new", form(rows=(("control", "50", "Sam"), ("treatment", "0", "Aria"))),
                          headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in html and 'id="experiment-form"' in html
    assert 'data-field="variants-1-weight"' in html and "from 1 to 10,000" in html
    assert "HX-Request" in response.headers["Vary"]
    assert 'value="Aria"' in html  # what the user typed is kept
    assert rows_of(app) == (0, 0)


@pytest.mark.parametrize("changes,field", [
    ({"variants-1-key": "control"}, "variants-1-key"),
    ({"variants-1-weight": "1.5"}, "variants-1-weight"),
    ({"variants-1-config": "{broken", "variants-1-persona_name": ""}, "variants-1-config"),
    ({"variants-1-persona_name": ""}, "variants-1-persona_name"),
    ({"name": "x" * 121}, "name"),
])
def test_every_bad_field_is_a_full_page_422_when_not_htmx(app, client, owner, world, changes, field):
    response = owner.post(base(world) + "/new", {**form(), **changes})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in html
    assert f'data-field="{field}"' in html
    assert rows_of(app) == (0, 0)


def test_one_variant_only_is_refused(app, client, owner, world):
    response = owner.post(base(world) + "/new", form(rows=(("control", "50", "Sam"),)), headers=HX)
    assert response.status_code == 422 and 'data-field="variants"' in response.get_data(as_text=True)


def test_csrf_is_required_for_forms_and_accepted_as_a_header(app, client, owner, world):
    response = client.post(base(world) + "/new", data=form())
    assert response.status_code == 400 and rows_of(app) == (0, 0)
    response = client.post(base(world) + "/new", data=form(), headers={**HX, "X-CSRFToken": csrf_token(client)})
    assert response.status_code == 200 and rows_of(app) == (1, 2)
    exp_id = make(app, world.agent_id)
    assert client.post(f"{base(world)}/{exp_id}/start", headers=HX).status_code == 400
    assert status_of(app, exp_id) == "draft"


@pytest.mark.parametrize("weight", ["²", "٣", "1" * 5000, "-5", "10001"])
def test_a_weight_that_is_no_ascii_number_is_a_422_and_counts_as_none_in_the_shares(app, client, owner, world, weight):
    """'²' and '٣' pass str.isdigit() but are no weight; 5,000 digits are more than int() reads: never a 500."""
    rows = (("control", weight, "Sam"), ("treatment", "50", "Aria"))
    response = owner.post(base(world) + "/new", form(rows=rows), headers=HX)
    assert response.status_code == 422 and "variants-0-weight" in response.get_data(as_text=True)
    response = owner.post(base(world) + "/form-rows", {**form(rows=rows), "op": "kind"}, headers=HX)
    assert response.status_code == 200 and "100.0%" in response.get_data(as_text=True)  # the valid weight's share
    assert rows_of(app) == (0, 0)


@pytest.mark.parametrize("op", ["remove-²", "remove-" + "9" * 5000, "remove-99"])
def test_a_row_operation_on_no_row_changes_nothing(client, owner, world, op):
    rows = (("control", "1", "Sam"), ("treatment", "1", "Aria"), ("bold", "1", "Zed"))
    response = owner.post(base(world) + "/form-rows", {**form(rows=rows), "op": op}, headers=HX)
    assert response.status_code == 200 and response.get_data(as_text=True).count('<fieldset class="variant-row"') == 3


def test_rows_are_added_and_removed_in_place_and_renumbered(client, owner, world):
    url = base(world) + "/form-rows"
    html = owner.post(url, {**form(), "op": "add"}, headers=HX).get_data(as_text=True)
    assert html.startswith('\n<div id="variant-rows"') or html.lstrip().startswith('<div id="variant-rows"')
    assert 'name="variants-2-key" value="treatment-2"' in html and html.count("33.3%") == 3
    three = form(rows=(("control", "50", "Sam"), ("treatment", "30", "Aria"), ("bold", "20", "Bo")))
    html = owner.post(url, {**three, "op": "remove-0"}, headers=HX).get_data(as_text=True)
    assert 'name="variants-0-key" value="treatment"' in html and 'name="variants-1-key" value="bold"' in html
    assert "variants-2-key" not in html and "60.0%" in html and "40.0%" in html
    html = owner.post(url, {**form(), "op": "remove-1"}, headers=HX).get_data(as_text=True)
    assert 'name="variants-1-key"' in html  # two is the minimum: nothing removed


def test_rows_re_rendered_after_a_refused_save_show_the_errors_of_their_current_values(client, owner, world):
    bad = form(rows=(("control", "50", "Sam"), ("treatment", "0", "Aria"), ("bold", "20", "Bo")))
    refused = owner.post(base(world) + "/new", bad, headers=HX).get_data(as_text=True)
    assert 'name="save_attempted"' in refused and "Nothing was saved" in refused
    url = base(world) + "/form-rows"
    composing = owner.post(url, {**bad, "op": "add"}, headers=HX).get_data(as_text=True)
    assert "data-field" not in composing  # before a save attempt nothing nags
    retried = {**bad, "save_attempted": "1"}
    added = owner.post(url, {**retried, "op": "add"}, headers=HX).get_data(as_text=True)
    assert re.findall(r'data-field="([^"]+)"', added) == ["variants-1-weight"]
    assert '<div id="form-banner" hx-swap-oob="true"></div>' in added  # the banner of the refused save goes
    shifted = owner.post(url, {**retried, "op": "remove-0"}, headers=HX).get_data(as_text=True)
    assert re.findall(r'data-field="([^"]+)"', shifted) == ["variants-0-weight"]  # the error follows its row
    removed = owner.post(url, {**retried, "op": "remove-1"}, headers=HX).get_data(as_text=True)
    assert "data-field" not in removed and 'aria-invalid' not in removed


def test_switching_kind_away_from_persona_and_back_keeps_the_typed_persona(app, client, owner, world):
    url = base(world) + "/form-rows"
    switched = {**form(), "kind": "cta", "variants-0-config": '{"persona": {"name": "Sam"}, "colour": "red"}',
                "variants-1-persona_tone": "warm"}
    html = owner.post(url, {**switched, "op": "kind"}, headers=HX).get_data(as_text=True)
    assert html.count('<div class="row-grid persona" hidden>') == 2  # kept, hidden, for a switch back
    assert 'name="variants-0-config"' in html and "colour" in html and "&#34;persona&#34;" not in html
    assert 'name="variants-1-persona_name" value="Aria"' in html
    back = {**switched, "kind": "persona", "variants-0-config": '{"colour": "red"}', "variants-1-config": "{}"}
    html = owner.post(url, {**back, "op": "kind"}, headers=HX).get_data(as_text=True)
    assert '<div class="row-grid persona" hidden>' not in html and 'name="variants-0-persona_name" value="Sam"' in html
    assert html.count('<div class="row-grid cta" hidden>') == 2 and html.count('<div class="row-grid trigger" hidden>') == 2
    assert 'name="variants-1-persona_name" value="Aria"' in html and 'value="warm"' in html
    assert "{&#34;colour&#34;: &#34;red&#34;, &#34;persona&#34;: {&#34;name&#34;: &#34;Sam&#34;}}" in html
    assert "{&#34;persona&#34;: {&#34;name&#34;: &#34;Aria&#34;, &#34;tone&#34;: &#34;warm&#34;}}" in html


def test_hidden_persona_fields_of_another_kind_are_ignored(app, client, owner, world):
    response = owner.post(base(world) + "/new", {**form(kind="cta"), "variants-1-config": '{"label": "Book"}'})
    assert response.status_code == 302
    with app.app_context():
        configs = [v.config for v in db.session.scalars(sa.select(Variant).order_by(Variant.position))]
        db.session.remove()
    assert configs == [{}, {"label": "Book"}]


def test_editors_may_not_use_the_form_helper(client, auth, world):
    auth.login(world.emails["editor"])
    assert auth.post(base(world) + "/form-rows", {**form(), "op": "add"}, headers=HX).status_code == 403


def test_detail_page_and_its_htmx_fragment(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running", weights=(1, 3))
    response = client.get(f"{base(world)}/{exp_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    for text in ("Visitor preview", "Results", "Audit trail", "25.0%", "75.0%", 'id="status-component"', "Stop"):
        assert text in html
    fragment = client.get(f"{base(world)}/{exp_id}?confirm=delete", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith('<section id="status-component"')
    assert "Delete experiment" not in fragment  # a running experiment has no delete confirmation


def test_variant_tones_read_as_their_own_the_agents_or_none(app, client, owner, world):
    exp_id = make(app, world.agent_id, configs=[{"persona": {"name": "Sam"}}, {"persona": {"name": "Aria", "tone": ""}},
                                                 {"persona": {"name": "Zed", "tone": "dry"}}], weights=(1, 1, 1))
    html = client.get(f"{base(world)}/{exp_id}").get_data(as_text=True)
    assert re.search(r"<strong>Sam</strong>\s*<span class=\"muted\">· agent's tone</span>", html)
    assert re.search(r"<strong>Aria</strong>\s*<span class=\"muted\">· no tone</span>", html)
    assert re.search(r"<strong>Zed</strong> · dry", html)
    edit = client.get(f"{base(world)}/{exp_id}/edit").get_data(as_text=True)  # the JSON keeps the explicit ""
    assert "&#34;tone&#34;: &#34;&#34;" in edit


@pytest.mark.parametrize("page,title", [("", "Persona test · Helper"), ("/results", "Results · Persona test · Helper"),
                                        ("/preview", "Preview · Persona test · Helper")],
                         ids=["experiment", "results", "preview"])
def test_experiment_pages_name_the_experiment_and_lead_back_alike(app, client, owner, world, page, title):
    exp_id = make(app, world.agent_id, status="running", name="Persona test")
    html = client.get(f"{base(world)}/{exp_id}{page}").get_data(as_text=True)
    assert f"<title>{title} · Agent Studio</title>" in html
    assert f'<a href="{base(world)}">← All experiments</a>' in html


def test_a_lopsided_split_never_shows_a_share_of_0_or_100_percent(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running", weights=(1, 10_000))
    lopsided = form(rows=(("control", "1", "Sam"), ("treatment", "10000", "Aria")))
    pages = {"experiment": client.get(f"{base(world)}/{exp_id}"),
             "preview": client.get(f"{base(world)}/{exp_id}/preview?visitor_id=v1"),
             "form rows": owner.post(base(world) + "/form-rows", {**lopsided, "op": "kind"}, headers=HX)}
    for page, response in pages.items():
        html = response.get_data(as_text=True)
        assert "&lt;0.1%" in html and "&gt;99.9%" in html, page
        assert not re.search(r"\b0\.0%|100\.0%", html), page


def test_start_with_another_running_asks_for_confirmation(app, client, owner, world):
    running = make(app, world.agent_id, status="running", name="Current one")
    draft = make(app, world.agent_id, name="Next one")
    response = owner.post(f"{base(world)}/{draft}/start", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Current one" in html and "Stop it and start this one" in html and "Start anyway" in html
    assert status_of(app, draft) == "draft"
    response = owner.post(f"{base(world)}/{draft}/start")
    assert response.status_code == 302 and response.headers["Location"].endswith("?confirm=start")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Current one" in page and "Stop it and start this one" in page

    response = owner.post(f"{base(world)}/{draft}/start", {"mode": "stop_others"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="status-component"' in html
    assert 'id="flashes" hx-swap-oob="true"' in html and "is running" in html
    assert 'id="experiment-badges" hx-swap-oob="true"' in html and "data-active" in html
    assert 'id="audit-trail" hx-swap-oob="true"' in html and "started" in html.split('id="audit-trail"')[1]
    assert (status_of(app, running), status_of(app, draft)) == ("stopped", "running")


def test_bad_mode_or_variant_is_a_422_in_the_status_component(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    response = owner.post(f"{base(world)}/{exp_id}/promote", {"variant": "nope"}, headers=HX)
    assert response.status_code == 422 and "Choose one of this experiment" in response.get_data(as_text=True)
    draft = make(app, world.agent_id)
    response = owner.post(f"{base(world)}/{draft}/start", {"mode": "sideways"}, headers=HX)
    assert response.status_code == 422 and 'id="status-component"' in response.get_data(as_text=True)
    assert (status_of(app, exp_id), status_of(app, draft)) == ("running", "draft")


def test_start_anyway_warns(app, client, owner, world):
    make(app, world.agent_id, status="running")
    draft = make(app, world.agent_id)
    html = owner.post(f"{base(world)}/{draft}/start", {"mode": "anyway"}, headers=HX).get_data(as_text=True)
    assert "flash-warning" in html and "populations mix" in html


def test_stop_delete_and_refusals(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    response = owner.post(f"{base(world)}/{exp_id}/delete", headers=HX)
    assert response.status_code == 409 and "stop it before deleting" in response.get_data(as_text=True)
    response = owner.post(f"{base(world)}/{exp_id}/stop")
    assert response.status_code == 302 and status_of(app, exp_id) == "stopped"
    response = owner.post(f"{base(world)}/{exp_id}/stop", headers=HX)
    assert response.status_code == 409 and "Only a running experiment" in response.get_data(as_text=True)
    response = owner.post(f"{base(world)}/{exp_id}/delete", headers=HX)
    assert response.headers["HX-Redirect"].endswith("/experiments") and status_of(app, exp_id) is None
    assert "deleted" in client.get(base(world)).get_data(as_text=True)  # the flash waits for the next page
    assert client.get(f"{base(world)}/{exp_id}").status_code == 404


def test_duplicate_and_promote(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    response = owner.post(f"{base(world)}/{exp_id}/duplicate")
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit")
    response = owner.post(f"{base(world)}/{exp_id}/promote", {"variant": "treatment"}, headers=HX)
    assert response.status_code == 200 and "Persona treatment" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Agent, world.agent_id).persona_name == "Persona treatment"
        db.session.remove()
    assert status_of(app, exp_id) == "stopped"


def test_edit_after_start_keeps_the_arms_frozen(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    html = client.get(f"{base(world)}/{exp_id}/edit").get_data(as_text=True)
    assert "variants-0-weight" not in html and "frozen" in html
    response = owner.post(f"{base(world)}/{exp_id}/edit", {"name": "Renamed", "hypothesis": "H"})
    assert response.status_code == 302
    # A form opened while it was a draft, saved after it started (another tab): the form comes back, not the
    # status component, with what was typed where it can still be saved and the arms as they now are.
    for headers in (HX, {}):
        response = owner.post(f"{base(world)}/{exp_id}/edit", {**form(), "name": "Typed meanwhile"}, headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 409 and 'id="experiment-form"' in html and 'id="status-component"' not in html
        assert "Nothing was saved: Variants, weights, configs and kind are frozen" in html
        assert 'value="Typed meanwhile"' in html and "variants-0-weight" not in html
        assert ("<html" in html) == (not headers)
    with app.app_context():
        exp = db.session.get(Experiment, exp_id)
        assert exp.name == "Renamed" and [v.weight for v in exp.variants] == [1, 1]
        db.session.remove()


def test_draft_edit_changes_arms(app, client, owner, world):
    exp_id = make(app, world.agent_id)
    response = owner.post(f"{base(world)}/{exp_id}/edit", form(rows=(("control", "1", "A"), ("treatment", "2", "B"),
                                                                      ("bold", "3", "C"))))
    assert response.status_code == 302
    with app.app_context():
        exp = db.session.get(Experiment, exp_id)
        assert [v.weight for v in exp.variants] == [1, 2, 3]
        db.session.remove()


def test_a_frozen_kind_reads_as_on_the_list_with_no_label_naming_no_field(app, client, owner, world):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, kind="cta", status="running")
        db.session.remove()
    html = client.get(f"{base(world)}/{exp_id}/edit").get_data(as_text=True)
    assert re.search(r'<p id="kind-frozen">.*<strong>CTA</strong></p>', html)
    assert 'for="kind"' not in html and 'id="kind"' not in html
    draft = client.get(f"{base(world)}/new").get_data(as_text=True)
    assert '<label for="kind">Kind</label>' in draft and 'id="kind"' in draft


def test_editor_sees_the_pages_without_controls(app, client, auth, world):
    exp_id = make(app, world.agent_id, status="stopped")
    auth.login(world.emails["editor"])
    index = client.get(base(world)).get_data(as_text=True)
    assert "New experiment" not in index
    html = client.get(f"{base(world)}/{exp_id}").get_data(as_text=True)
    assert "/start" not in html and "/delete" not in html and "/promote" not in html and "/edit" not in html
    assert "owners and admins" in html


def test_user_input_is_escaped(app, client, owner, world):
    owner.post(base(world) + "/new", form(name="<script>alert(1)</script>"))
    html = client.get(base(world)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_every_lifecycle_action_is_in_the_audit_trail(app, client, owner, world):
    owner.post(base(world) + "/new", form())
    with app.app_context():
        exp_id = db.session.scalar(sa.select(Experiment.id))
        db.session.remove()
    owner.post(f"{base(world)}/{exp_id}/start")
    owner.post(f"{base(world)}/{exp_id}/edit", {"name": "Renamed"})
    owner.post(f"{base(world)}/{exp_id}/stop")
    html = client.get(f"{base(world)}/{exp_id}").get_data(as_text=True)
    audit = html[html.index('id="audit-trail"'):]
    # Sentences, newest first, naming who did what (SPEC §11: words for people, not "stopped: false").
    sentences = [re.sub(r"\s+", " ", s) for s in re.findall(r'class="wrap audit-sentence"[^>]*>(.*?)</td>', audit, re.S)]
    assert sentences == [
        "owner stopped the experiment.",
        "owner changed the name from “Warmer greeting” to “Renamed”, the hypothesis.",
        "owner started the experiment.",
        "owner created the experiment with variants Control (50), Treatment (50).",
    ]
    with app.app_context():
        details = db.session.scalar(sa.select(AuditEvent.details).where(AuditEvent.action == "experiment.edited"))
        assert details["name"]["to"] == "Renamed"
        db.session.remove()


def test_a_refused_plain_form_post_redirects_back_with_the_reason(app, client, owner, world):
    """Without JavaScript a refusal is a redirect to the experiment page and a flash (HTMX gets the 409 / 422)."""
    exp_id = make(app, world.agent_id, status="running")
    page = f"{base(world)}/{exp_id}"
    for action, data, reason in (("delete", {}, "stop it before deleting"),
                                 ("start", {"mode": "sideways"}, "Start mode must be one of"),
                                 ("promote", {"variant": "nope"}, "Choose one of this experiment")):
        response = owner.post(f"{page}/{action}", data)
        assert response.status_code == 302 and response.headers["Location"] == page
        html = client.get(page).get_data(as_text=True)
        assert "flash-error" in html and reason in html
    assert status_of(app, exp_id) == "running"


@pytest.mark.parametrize("weights,scale", [((50, 50), "100"), ((1, 150), "1000"), ((150, 10_000), "10000")])
def test_weight_sliders_of_a_form_share_the_scale_of_the_largest_weight(app, client, owner, world, weights, scale):
    exp_id = make(app, world.agent_id, weights=weights)
    html = client.get(f"{base(world)}/{exp_id}/edit").get_data(as_text=True)
    assert re.findall(r'type="range" min="1" max="(\d+)"', html) == [scale, scale]


def test_deleted_experiments_stay_listed_on_their_agents_tab_for_every_role(app, client, auth, world):
    """A deleted experiment has no page left: its tab lists it (from the deletion's audit row) with the visitors
    its assignment rows still count, for editors too; another agent's deletions are not listed."""
    exp_id = make(app, world.agent_id, status="running", name="<b>Old persona</b>")
    response = client.post(f"/api/v1/agents/{world.agent_id}/messages",
                           json={"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "hi"},
                           headers={"Authorization": f"Bearer {world.api_key}"})
    assert response.status_code == 201 and response.get_json()["experiment"]["id"] == exp_id
    with app.app_context():
        other_agent_id = factories.agent(world.workspace_id, name="Second agent")
        db.session.remove()
    other_exp = make(app, other_agent_id, status="stopped", name="Elsewhere")
    auth.login(world.emails["admin"])
    assert auth.post(f"{base(world)}/{exp_id}/stop").status_code == 302
    assert auth.post(f"{base(world)}/{exp_id}/delete").status_code == 302
    assert auth.post(f"/agents/{other_agent_id}/experiments/{other_exp}/delete").status_code == 302
    auth.logout()
    auth.login(world.emails["editor"])
    html = client.get(base(world)).get_data(as_text=True)
    row = re.search(rf'<tr id="deleted-experiment-{exp_id}">(.*?)</tr>', html, re.S).group(1)
    assert "&lt;b&gt;Old persona&lt;/b&gt;" in row and "<b>" not in row
    assert "Persona" in row and "stopped" in row and world.emails["admin"] in row
    assert re.search(rf'href="/agents/{world.agent_id}/conversations\?experiment={exp_id}"[^>]*>1</a>', row)
    assert "Elsewhere" not in html and f"deleted-experiment-{other_exp}" not in html
    assert "Elsewhere" in client.get(f"/agents/{other_agent_id}/experiments").get_data(as_text=True)
    assert client.get(f"/agents/{world.agent_id}/conversations?experiment={exp_id}").status_code == 200


def test_no_deleted_section_without_deletions(app, client, owner, world):
    make(app, world.agent_id, status="stopped")
    assert "Deleted experiments" not in client.get(base(world)).get_data(as_text=True)


def test_promote_says_which_running_persona_experiment_still_decides(app, client, owner, world):
    alone = make(app, world.agent_id, status="running", name="Alone")
    html = owner.post(f"{base(world)}/{alone}/promote", {"variant": "treatment"}, headers=HX).get_data(as_text=True)
    assert "the agent now answers as Persona treatment (tone treatment). The experiment is stopped." in html
    assert "still get" not in html
    make(app, world.agent_id, status="running", name="CTA test", kind="cta")  # decides no persona
    older = make(app, world.agent_id, status="running", name="Older <persona>")
    html = owner.post(f"{base(world)}/{alone}/promote", {"variant": "control"}, headers=HX).get_data(as_text=True)
    assert ("the agent now answers as Persona control (tone control) — visitors in “Older &lt;persona&gt;” still get "
            "its variants.") in html
    newer = make(app, world.agent_id, status="running", name="Newer")
    html = owner.post(f"{base(world)}/{older}/promote", {"variant": "control"}, headers=HX).get_data(as_text=True)
    assert "visitors in “Newer” still get its variants" in html
    html = owner.post(f"{base(world)}/{newer}/promote", {"variant": "control"}, headers=HX).get_data(as_text=True)
    assert "still get" not in html  # Older is stopped now, and the CTA test, active again, sets no persona


def test_the_list_says_when_each_experiment_stopped(app, client, owner, world):
    """A stopped experiment's row shows when it stopped; a running or draft one shows —."""
    stopped = make(app, world.agent_id, name="Old test", status="stopped")
    running = make(app, world.agent_id, name="Live test", status="running")
    with app.app_context():
        when = db.session.get(Experiment, stopped).stopped_at.strftime("%Y-%m-%d %H:%M")
        db.session.remove()
    html = client.get(base(world)).get_data(as_text=True)
    assert "<th>Stopped</th>" in html

    def cells(exp_id):
        row = html[html.index(f'id="experiment-{exp_id}"'):]
        return [re.sub(r"<[^>]+>", "", cell)
                for cell in re.findall(r'<td class="nowrap">(.*?)</td>', row[:row.index("</tr>")])]

    assert cells(stopped)[-1] == when + " UTC"  # app.js shows it in the viewer's time zone
    assert cells(running)[-1] == "—"


def test_cta_and_trigger_fields_post_into_the_config_and_errors_land_on_them(app, client, owner, world):
    """SPEC §13: the typed fields of a CTA (or trigger) row are folded into its JSON; a bad one is marked itself."""
    cta = {**form(kind="cta"), "variants-1-cta_label": "Book a demo", "variants-1-cta_url": "https://acme.test/demo",
           "variants-1-cta_prompt": "book a demo"}
    bad = owner.post(base(world) + "/new", {**cta, "variants-1-cta_url": "mailto:x@acme.test"}, headers=HX)
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.findall(r'data-field="([^"]+)"', html) == ["variants-1-cta_url"]
    assert 'id="variants-1-cta_url" name="variants-1-cta_url"' in html and 'aria-invalid="true"' in html
    assert owner.post(base(world) + "/new", cta).status_code == 302
    trigger = {**form(name="Delay", kind="trigger"), "variants-1-trigger_on": "delay", "variants-1-trigger_seconds": "12"}
    assert owner.post(base(world) + "/new", trigger).status_code == 302
    with app.app_context():
        stored = [v.config for v in db.session.scalars(sa.select(Variant).order_by(Variant.id))]
        db.session.remove()
    assert stored == [{}, {"cta": {"label": "Book a demo", "url": "https://acme.test/demo", "prompt": "book a demo"}},
                      {}, {"trigger": {"on": "delay", "seconds": 12}}]


def test_a_stored_cta_fills_its_fields_and_switching_kind_moves_the_block(app, client, owner, world):
    url = base(world) + "/form-rows"
    rows = {**form(kind="trigger"), "variants-1-config": '{"cta": {"label": "Go", "url": "https://a.test"}}',
            "variants-1-trigger_on": "load", "variants-1-cta_label": "Go", "variants-1-cta_url": "https://a.test"}
    html = owner.post(url, {**rows, "op": "kind"}, headers=HX).get_data(as_text=True)
    assert "{&#34;trigger&#34;: {&#34;on&#34;: &#34;load&#34;}}" in html  # the cta block went, the trigger came
    back = owner.post(url, {**rows, "kind": "cta", "op": "kind"}, headers=HX).get_data(as_text=True)
    assert "{&#34;cta&#34;: {&#34;label&#34;: &#34;Go&#34;, &#34;url&#34;: &#34;https://a.test&#34;}}" in back
    assert re.search(r'name="variants-1-cta_label"\s+value="Go"', back)
