"""The Analysis section of the new and edit forms (SPEC §10.1) over HTTP: defaults, every status, roles, errors."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import csrf_token
from tests.views.test_experiments import HX, base, form, make
from webapp.extensions import db
from webapp.models import AuditEvent, Conversation, Experiment, utcnow


def settings_of(app, experiment_id):
    with app.app_context():
        e = db.session.get(Experiment, experiment_id)
        out = (e.engine, e.alpha, e.mde, e.power, e.correction, e.primary_metric)
        db.session.remove()
        return out


def test_the_new_form_has_the_analysis_section_with_the_defaults(client, auth, world):
    auth.login(world.emails["owner"])
    html = client.get(base(world) + "/new").get_data(as_text=True)
    assert '<fieldset id="analysis-settings"' in html
    assert '<option value="sequential" selected>' in html
    assert '<option value="holm" selected>' in html
    assert 'name="mde_percent" value="10"' in html and 'name="power" value="0.80"' in html
    assert 'id="plan"' in html and 'hx-trigger="load, input delay:400ms' in html  # the calculator loads itself


def test_creating_with_settings_stores_them(app, client, auth, world):
    auth.login(world.emails["owner"])
    response = auth.post(base(world) + "/new", {**form(), "engine": "fixed", "alpha": "0.01", "mde_percent": "20",
                                                 "power": "0.9", "correction": "none",
                                                 "primary_metric": "session_length", "sequential_tuning": "5000",
                                                 "prior": "flat", "baseline_rate_percent": ""})
    assert response.status_code == 302
    with app.app_context():
        e = db.session.query(Experiment).one()
        assert (e.engine, e.alpha, e.mde, e.power, e.correction, e.primary_metric) == \
            ("fixed", 0.01, 0.2, 0.9, "none", "session_length")
        db.session.remove()


@pytest.mark.parametrize("status", ["draft", "running", "stopped"])
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_settings_are_editable_in_every_status(app, client, auth, world, status, role):
    experiment_id = make(app, world.agent_id, status=status)
    auth.login(world.emails[role])
    url = f"{base(world)}/{experiment_id}/edit"
    html = client.get(url).get_data(as_text=True)
    assert '<select id="engine" name="engine"' in html
    response = auth.post(url, {"name": "Exp", "hypothesis": "", "engine": "bayesian", "mde_percent": "15",
                               "power": "0.85", "alpha": "0.05", "correction": "bh", "prior": "proper",
                               "sequential_tuning": "5000", "primary_metric": "lead_capture_rate"})
    assert response.status_code == 302
    assert settings_of(app, experiment_id) == ("bayesian", 0.05, 0.15, 0.85, "bh", "lead_capture_rate")
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="experiment.analysis_changed").count() == 1
        db.session.remove()


def test_a_bad_setting_comes_back_as_a_422_fragment_on_its_field(app, client, auth, world):
    experiment_id = make(app, world.agent_id, status="running")
    auth.login(world.emails["owner"])
    response = auth.post(f"{base(world)}/{experiment_id}/edit", {"name": "Exp", "mde_percent": "900"}, headers=HX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="mde_percent-error"' in html and "from 0.5% to 500%" in html
    assert 'value="900"' in html  # as typed
    assert settings_of(app, experiment_id)[2] == 0.1


def test_an_editor_sees_the_settings_read_only_and_a_forged_post_is_403(app, client, auth, world):
    experiment_id = make(app, world.agent_id, status="running")
    auth.login(world.emails["editor"])
    html = client.get(f"{base(world)}/{experiment_id}").get_data(as_text=True)
    assert 'id="analysis"' in html and "<dd>Fixed horizon</dd>" in html
    assert "#analysis-settings" not in html  # no Change link
    response = auth.post(f"{base(world)}/{experiment_id}/edit", {"name": "Exp", "engine": "bayesian"})
    assert response.status_code == 403
    assert settings_of(app, experiment_id)[0] == "fixed"
    assert auth.post(f"{base(world)}/{experiment_id}/plan", {"mde_percent": "5"}).status_code == 403


def test_the_experiment_page_names_the_settings_in_force(app, client, auth, world):
    experiment_id = make(app, world.agent_id, status="running", engine="sequential", sequential_tuning=20000)
    auth.login(world.emails["admin"])
    html = client.get(f"{base(world)}/{experiment_id}").get_data(as_text=True)
    assert "<dd>Sequential</dd>" in html and "20,000" in html and "#analysis-settings" in html


def needed(html: str) -> int:
    match = re.search(r'data-plan="visitors_needed">([\d,]+)<', html)
    assert match, html
    return int(match.group(1).replace(",", ""))


def test_the_calculator_follows_the_mde_power_engine_and_weights_as_typed(client, auth, world):
    auth.login(world.emails["owner"])
    url = base(world) + "/plan"
    typed = {**form(), "baseline_rate_percent": "10", "mde_percent": "10", "power": "0.80", "engine": "fixed",
             "alpha": "0.05"}
    first = client.post(url, data=typed, headers={**HX, "X-CSRFToken": csrf_token(client)})
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert needed(html) == 2 * 15612 and "the baseline rate typed in the settings" in html
    assert "hx-trigger" not in html  # the swapped-in fragment triggers nothing itself

    def post(**changes):
        return client.post(url, data={**typed, **changes}, headers={**HX, "X-CSRFToken": csrf_token(client)})

    assert needed(post(mde_percent="20").get_data(as_text=True)) < needed(html)
    assert needed(post(power="0.9").get_data(as_text=True)) > needed(html)
    assert needed(post(engine="sequential").get_data(as_text=True)) == 2 * 44840
    assert needed(post(**{"variants-0-weight": "75", "variants-1-weight": "25"}).get_data(as_text=True)) == 4 * 15612


def test_the_calculator_names_the_days_a_young_agents_traffic_is_measured_over(app, client, auth, world):
    with app.app_context():
        at = utcnow() - timedelta(days=14)
        for i in range(140):  # the agent's first visitors, 14 days ago: 10 a day, not 140 / 28
            db.session.add(Conversation(agent_id=world.agent_id, external_id=f"c-{i}", visitor_id=f"v-{i}",
                                        started_at=at, last_message_at=at))
        db.session.commit()
        db.session.remove()
    auth.login(world.emails["owner"])
    html = client.post(base(world) + "/plan", data={**form(), "baseline_rate_percent": "10", "mde_percent": "10"},
                       headers={**HX, "X-CSRFToken": csrf_token(client)}).get_data(as_text=True)
    assert "at 10.0 visitors a day" in html
    assert "(the agent&#39;s new visitors a day over the last 14 days)" in html


def test_the_calculator_shows_a_bad_setting_as_a_422(client, auth, world):
    auth.login(world.emails["owner"])
    response = client.post(base(world) + "/plan", data={"mde_percent": "0.1"},
                           headers={**HX, "X-CSRFToken": csrf_token(client)})
    assert response.status_code == 422
    assert "from 0.5% to 500%" in response.get_data(as_text=True)


def test_the_calculator_writes_nothing_and_needs_a_token(app, client, auth, world):
    experiment_id = make(app, world.agent_id, status="running")
    auth.login(world.emails["owner"])
    url = f"{base(world)}/{experiment_id}/plan"
    assert client.post(url, data={"engine": "bayesian"}, headers=HX).status_code == 400  # no CSRF token
    assert auth.post(url, {"engine": "bayesian", "baseline_rate_percent": "5"}).status_code == 200
    assert settings_of(app, experiment_id)[0] == "fixed"


def test_the_calculator_of_another_agents_experiment_is_404(app, client, auth, world):
    other = make(app, world.other_agent_id, status="running")
    auth.login(world.emails["owner"])
    assert auth.post(f"{base(world)}/{other}/plan", {"mde_percent": "5"}).status_code == 404


def report_goal(client, world, name: str) -> None:
    """The agent's runtime reports a visitor message, then the goal `name` in that conversation."""
    api, headers = f"/api/v1/agents/{world.agent_id}", {"Authorization": f"Bearer {world.api_key}"}
    assert client.post(f"{api}/messages", headers=headers, json={
        "visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "Can I book a demo?"}).status_code == 201
    assert client.post(f"{api}/events", headers=headers, json={
        "visitor_id": "v1", "conversation_id": "c1", "name": name}).status_code == 201


GOAL_OPTION = re.compile(r'<select id="primary_metric"[^>]*>.*?<option value="goal:booked_demo" ?>'
                         r'“booked_demo” goal rate</option>.*?</select>', re.S)


def test_the_primary_metric_offers_a_goal_once_the_agent_has_one_and_saves_it(app, client, auth, world):
    """SPEC §13: goal:<name> is selectable as the primary metric once the agent's runtime has reported the event,
    on the edit form and the new one (before the experiment's own first event), the calculator names it, and
    posting it saves it."""
    experiment_id = make(app, world.agent_id, status="running")
    auth.login(world.emails["owner"])
    edit = f"{base(world)}/{experiment_id}/edit"
    assert "goal:" not in client.get(edit).get_data(as_text=True)
    report_goal(client, world, "booked_demo")
    assert GOAL_OPTION.search(client.get(edit).get_data(as_text=True))
    assert GOAL_OPTION.search(client.get(base(world) + "/new").get_data(as_text=True))
    for calculator in (f"{base(world)}/{experiment_id}/plan", base(world) + "/plan"):  # the plan names it as chosen
        plan = auth.post(calculator, {**form(), "primary_metric": "goal:booked_demo"}, headers=HX)
        assert plan.status_code == 200 and "“booked_demo” goal rate" in plan.get_data(as_text=True)
    response = auth.post(edit, {"name": "Exp", "hypothesis": "", "engine": "sequential", "mde_percent": "10",
                                "power": "0.80", "alpha": "0.05", "correction": "none", "prior": "flat",
                                "sequential_tuning": "5000", "primary_metric": "goal:booked_demo"})
    assert response.status_code == 302
    assert settings_of(app, experiment_id)[5] == "goal:booked_demo"
    assert '<option value="goal:booked_demo" selected>' in client.get(edit).get_data(as_text=True)
    response = auth.post(base(world) + "/new", {**form(), "primary_metric": "goal:booked_demo"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.query(Experiment).order_by(Experiment.id.desc()).first().primary_metric == "goal:booked_demo"
        db.session.remove()
