import pytest

from tests import factories


def test_html_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.content_type and "Not found" in response.get_data(as_text=True)


def test_api_errors_are_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"]["code"] == "not_found" and "message" in body["error"] and body["error"]["fields"] == {}


def test_html_403_page(client, auth, world):
    auth.login("editor@acme.test")
    response = client.get("/w/acme/api-keys")
    assert response.status_code == 403
    assert "Not allowed" in response.get_data(as_text=True)


def test_html_422_page_for_bad_form(client, auth, world):
    auth.login("owner@acme.test")
    response = auth.post("/w/acme/agents", {"name": "", "persona_name": "x" * 61})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Name is required" in html and "at most 60 characters" in html


def test_500_is_html_for_pages_and_json_for_the_api(database_url):
    from webapp import create_app
    from webapp.config import TestConfig

    app = create_app(type("BoomConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))

    @app.route("/__boom__")
    @app.route("/api/v1/__boom__")
    def boom():
        raise RuntimeError("boom")

    client = app.test_client()
    response = client.get("/__boom__")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    response = client.get("/api/v1/__boom__")
    assert response.status_code == 500 and response.get_json()["error"]["code"] == "internal_error"


def test_editor_sees_no_controls(client, auth, world):
    auth.login("editor@acme.test")
    html = client.get("/w/acme/agents").get_data(as_text=True)
    assert "New agent" not in html and "API keys" not in html and "Members" not in html


WORKSPACE_NAV = '<a href="/w/acme/agents">Agents</a>'


@pytest.mark.parametrize("email,url,status", [
    ("editor@acme.test", "/w/acme/api-keys", 403),
    ("editor@acme.test", "/w/acme/members", 403),
    ("editor@acme.test", "/agents/{agent}/experiments/new", 403),
    ("admin@acme.test", "/w/acme/members", 403),
    ("editor@acme.test", "/w/acme/no-such-page", 404),
    ("editor@acme.test", "/agents/{agent}/no-such-tab", 404),
    ("editor@acme.test", "/agents/{agent}/experiments/1099511627776", 404),
    ("editor@acme.test", "/agents/{agent}/experiments/999", 404),
])
def test_error_pages_of_a_members_workspace_keep_its_navigation(client, auth, world, email, url, status):
    auth.login(email)
    response = client.get(url.format(agent=world.agent_id))
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert WORKSPACE_NAV in html and "Acme" in html and 'class="role-badge' in html


@pytest.mark.parametrize("url", ["/w/acme/agents", "/w/acme/api-keys", "/w/acme/no-such-page",
                                 "/agents/{agent}", "/agents/{agent}/no-such-tab", "/agents/{agent}/experiments/new"])
def test_error_pages_of_another_workspace_reveal_nothing(client, auth, world, url):
    auth.login(world.emails["outsider"])
    response = client.get(url.format(agent=world.agent_id))
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "/w/acme" not in html and "Acme" not in html and "Helper" not in html


def test_error_titles_are_one_per_status_whoever_raised_it(app, client, auth, world):
    """A status reads the same in the <title> and the heading, from the web layer (abort) or the service layer."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running")
    auth.login("editor@acme.test")
    conversations = f"/agents/{world.agent_id}/conversations"
    for url, status, title in [(conversations + "?experiment=x", 400, "Bad request"),  # the view's abort(400)
                               (conversations + f"?experiment={exp_id}&variant=nope", 400, "Bad request"),  # service
                               ("/no/such/page", 404, "Not found"),
                               (f"/agents/{world.agent_id}/experiments/999", 404, "Not found"),
                               ("/w/acme/api-keys", 403, "Not allowed")]:
        response = client.get(url)
        html = response.get_data(as_text=True)
        assert response.status_code == status
        assert f"<title>{status} · {title} · Agent Studio</title>" in html and f"<h1>{status} · {title}</h1>" in html


@pytest.mark.parametrize("headers,whole_page", [
    ({"HX-Request": "true"}, False),
    ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, True),  # htmx swaps it in as the whole page
    ({"HX-Request": "true", "HX-Boosted": "true"}, True),
])
def test_an_htmx_request_gets_the_error_fragment_only_when_it_swaps_a_fragment(client, auth, world, headers, whole_page):
    auth.login(world.emails["owner"])
    response = client.get(f"/w/acme/nope-{len(headers)}", headers=headers)
    assert response.status_code == 404 and ("<html" in response.get_data(as_text=True)) == whole_page
