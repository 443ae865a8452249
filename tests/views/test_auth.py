from tests.conftest import csrf_token


def test_login_page_has_csrf_meta(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<meta name="csrf-token"' in html
    assert 'name="email"' in html and 'name="password"' in html


def test_login_success_and_logout(client, auth, world):
    response = auth.login("OWNER@acme.test")  # emails are case-insensitive
    assert response.status_code == 302
    assert client.get("/").headers["Location"].endswith("/w/acme/agents")
    page = client.get("/w/acme/agents")
    assert page.status_code == 200 and "Helper" in page.get_data(as_text=True)
    assert auth.logout().status_code == 302
    assert client.get("/w/acme/agents").status_code == 302


def test_wrong_password_is_refused(client, auth, world):
    response = auth.login("owner@acme.test", "wrong-password")
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert client.get("/w/acme/agents").status_code == 302


def test_login_without_csrf_token_is_refused(client, world):
    response = client.post("/login", data={"email": "owner@acme.test", "password": "correct-horse-battery"})
    assert response.status_code == 400
    assert client.get("/w/acme/agents").status_code == 302


def test_csrf_header_is_accepted(client, auth, world):
    auth.login("owner@acme.test")
    token = csrf_token(client)
    response = client.post("/w/acme/agents", data={"name": "Via header", "persona_name": "Vi"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 302


def test_session_cookie_flags(client, auth, world):
    response = auth.login("owner@acme.test")
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_open_redirect_is_ignored(client, world):
    token = csrf_token(client)
    response = client.post("/login?next=https://evil.example/", data={
        "email": "owner@acme.test", "password": "correct-horse-battery", "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_workspace_switcher_lists_every_workspace(client, auth, app, world):
    with app.app_context():
        from webapp.services.workspace import accounts
        accounts.create_user("owner@acme.test", "correct-horse-battery", "other", "editor")
    auth.login("owner@acme.test")
    html = client.get("/w/acme/agents").get_data(as_text=True)
    assert 'aria-label="Switch workspace"' in html
    assert "/w/other/agents" in html
    assert client.get("/w/other/agents").status_code == 200


def test_get_logout_offers_a_log_out_button(client, auth, world):
    auth.login("owner@acme.test")
    response = client.get("/logout")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<title>Log out · Agent Studio</title>" in html
    form = html.split('<main class="container" id="main" tabindex="-1">')[1].split("<form")[1].split("</form>")[0]
    assert 'method="post" action="/logout"' in form and 'name="csrf_token"' in form and ">Log out</button>" in form
    assert client.get("/w/acme/agents").status_code == 200  # a GET logs nobody out
    assert auth.logout().headers["Location"] == "/login"
    response = client.get("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_pages_and_the_api_send_the_security_headers(client, auth, world):
    for response in (client.get("/login"), client.get("/api/v1/openapi.json")):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    auth.login("owner@acme.test")
    page = client.get("/w/acme/members")
    html = page.get_data(as_text=True)
    # Pages are never stored: Back after a Stop showed the experiment as it was before (the browser's copy), and a
    # link shown once could come back from the cache.
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/w/acme/agents", headers={"HX-Request": "true"}).headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/app.css").headers.get("Cache-Control", "")
    for handler in ("onsubmit=", "onchange=", "onclick=", "<script>"):  # inline script the policy would refuse
        assert handler not in html


def test_logging_in_starts_a_new_session_whose_csrf_token_is_new(client, auth, world):
    """A session (and its CSRF token) from before the login does not carry over: whoever planted or read it before
    cannot forge a logged-in user's requests."""
    before = csrf_token(client)
    auth.login("owner@acme.test")
    after = csrf_token(client)
    assert after != before
    refused = client.post("/w/acme/agents", data={"name": "Forged", "persona_name": "F", "csrf_token": before})
    assert refused.status_code == 400
    assert client.post("/w/acme/agents", data={"name": "Real", "persona_name": "R", "csrf_token": after}).status_code == 302


def test_keep_me_logged_in_is_forgotten_at_logout(client, world):
    token = csrf_token(client)
    response = client.post("/login", data={"email": "owner@acme.test", "password": "correct-horse-battery",
                                           "remember": "y", "csrf_token": token})
    assert any(h.startswith("remember_token=") for h in response.headers.getlist("Set-Cookie"))
    response = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert any(h.startswith("remember_token=;") for h in response.headers.getlist("Set-Cookie"))  # deleted
    assert client.get("/w/acme/agents").status_code == 302
