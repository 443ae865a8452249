"""When the session has ended (logged out elsewhere, cookie gone), an HTMX control sends the browser to the login page
(HX-Redirect, back to the page it was on) instead of swapping the login page into a component."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests import factories
from tests.conftest import csrf_token
from webapp.extensions import db
from webapp.models import Experiment


@pytest.fixture
def running(app, world):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
        db.session.remove()
    return exp_id


def page_url(world, exp_id) -> str:
    return f"/agents/{world.agent_id}/experiments/{exp_id}"


def htmx(world, exp_id, **headers) -> dict:
    return {"HX-Request": "true", "HX-Current-URL": f"http://localhost{page_url(world, exp_id)}?tab=1", **headers}


def login_target(location: str) -> tuple[str, str | None]:
    parts = urlsplit(location)
    return parts.path, parse_qs(parts.query).get("next", [None])[0]


def assert_sent_to_login(response, status: int, next_url: str) -> None:
    assert response.status_code == status
    assert login_target(response.headers["HX-Redirect"]) == ("/login", next_url)
    assert "Location" not in response.headers and "<header" not in response.get_data(as_text=True)


def status_of(app, exp_id) -> str:
    with app.app_context():
        status = db.session.get(Experiment, exp_id).status
        db.session.remove()
    return status


def test_htmx_get_after_logout_is_sent_to_the_login_page_of_the_current_page(client, auth, world, running):
    auth.login(world.emails["owner"])
    auth.logout()
    response = client.get(page_url(world, running) + "/results", headers=htmx(world, running))
    assert_sent_to_login(response, 401, page_url(world, running) + "?tab=1")
    login_page = client.get(response.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Please log in to continue." in login_page


def test_htmx_post_after_logout_in_another_tab_changes_nothing(app, client, auth, world, running):
    auth.login(world.emails["owner"])
    token = csrf_token(client)
    auth.logout()  # the session lives on, logged out: the page's token still passes CSRF
    response = client.post(page_url(world, running) + "/stop", headers={**htmx(world, running), "X-CSRFToken": token})
    assert_sent_to_login(response, 401, page_url(world, running) + "?tab=1")
    assert status_of(app, running) == "running"


def test_htmx_post_without_the_session_cookie_is_sent_to_the_login_page(app, auth, client, world, running):
    auth.login(world.emails["owner"])
    token = csrf_token(client)
    fresh = app.test_client()  # the browser lost its cookies: the token matches no session
    response = fresh.post(page_url(world, running) + "/stop", headers={**htmx(world, running), "X-CSRFToken": token})
    assert_sent_to_login(response, 400, page_url(world, running) + "?tab=1")
    assert "Your session has expired" in fresh.get(response.headers["HX-Redirect"]).get_data(as_text=True)
    assert status_of(app, running) == "running"


def test_a_page_load_still_gets_a_plain_redirect(client, world, running):
    response = client.get(page_url(world, running) + "?tab=1")
    assert response.status_code == 302 and "HX-Redirect" not in response.headers
    assert login_target(response.headers["Location"]) == ("/login", page_url(world, running) + "?tab=1")


def test_a_form_post_without_javascript_returns_to_the_page_it_came_from(client, auth, world, running):
    auth.login(world.emails["owner"])
    token = csrf_token(client)
    auth.logout()
    response = client.post(page_url(world, running) + "/stop", data={"csrf_token": token},
                           headers={"Referer": f"http://localhost{page_url(world, running)}"})
    assert response.status_code == 302
    assert login_target(response.headers["Location"]) == ("/login", page_url(world, running))


def test_a_foreign_current_url_is_not_a_next(client, world, running):
    response = client.get(page_url(world, running) + "/results",
                          headers=htmx(world, running, **{"HX-Current-URL": "https://evil.example/x"}))
    assert login_target(response.headers["HX-Redirect"]) == ("/login", None)


def test_a_csrf_failure_while_logged_in_is_still_the_error_fragment(client, auth, world, running):
    auth.login(world.emails["owner"])
    response = client.post(page_url(world, running) + "/stop", headers={**htmx(world, running), "X-CSRFToken": "bad"})
    assert response.status_code == 400 and "HX-Redirect" not in response.headers
    assert "Session expired" in response.get_data(as_text=True)


def test_a_history_restore_gets_the_plain_redirect(client, world, running):
    """htmx swaps a history restore's answer into the body whatever its headers: the login page, whole, is right."""
    headers = htmx(world, running, **{"HX-History-Restore-Request": "true"})
    response = client.get(page_url(world, running), headers=headers)
    assert response.status_code == 302 and "HX-Redirect" not in response.headers
    assert login_target(response.headers["Location"]) == ("/login", page_url(world, running))
