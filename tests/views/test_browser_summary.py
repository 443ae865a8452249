"""The account page names each login's browser as a person reads it, keeping the User-Agent in a title."""
from __future__ import annotations

import pytest

from tests.conftest import AuthActions
from webapp.templating import browser_summary

CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                "Safari/537.36")


@pytest.mark.parametrize("user_agent, summary", [
    (CHROME_LINUX, "Chrome on Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Safari/605.1.15", "Safari on macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0", "Firefox on Android"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 "
     "Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
     "OPR/106.0.0.0", "Opera on Linux"),
    ("curl/8.5.0", "curl"),
    ("Werkzeug/3.1", "Werkzeug/3.1"),
    ("", "Unknown browser"),
    (None, "Unknown browser"),
])
def test_the_summary_names_browser_and_system(user_agent, summary):
    assert browser_summary(user_agent) == summary


def test_the_account_page_shows_the_summary_with_the_whole_string_in_a_title(app, world):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = CHROME_LINUX
    assert AuthActions(client).login("owner@acme.test").status_code == 302
    html = client.get("/account").get_data(as_text=True)
    assert f'<span class="user-agent" title="{CHROME_LINUX}">Chrome on Linux</span>' in html
