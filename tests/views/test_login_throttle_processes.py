"""The login throttle is shared by processes (SPEC §14): two gunicorn servers on one database, failures spread
over both, and the 429 on either — on one SQLite file and on a scratch PostgreSQL database."""
from __future__ import annotations

import re

import pytest
import requests

from tests import factories
from tests.databases import app_on_own_database
from tests.servers import GUNICORN, gunicorn
from webapp.extensions import db

pytestmark = [pytest.mark.slow, pytest.mark.skipif(GUNICORN is None, reason="gunicorn is not installed")]
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    with app_on_own_database(request.param, tmp_path_factory, "throttle_processes") as app:
        with app.app_context():
            factories.user("owner@acme.test", "acme", "owner")
            db.session.remove()
            db.engine.dispose()  # the servers are other processes: nothing of this one stays connected
        yield app.config["SQLALCHEMY_DATABASE_URI"]


def log_in(browser: requests.Session, base: str, email: str, password: str) -> requests.Response:
    token = CSRF_META.search(browser.get(f"{base}/login", timeout=10).text).group(1)
    return browser.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": token},
                        allow_redirects=False, timeout=10)


def test_failures_in_two_processes_add_up_and_either_refuses_the_sixth(database, tmp_path):
    with gunicorn(database, tmp_path) as first, gunicorn(database, tmp_path) as second:
        browser = requests.Session()  # one cookie jar: the servers share the secret key, so the session is valid on both
        servers = [first, second, first, second, first]
        assert [log_in(browser, base, "owner@acme.test", "wrong").status_code for base in servers] == [401] * 5
        for base in (second, first):
            refused = log_in(browser, base, "owner@acme.test", factories.PASSWORD)
            assert refused.status_code == 429
            assert 55 <= int(refused.headers["Retry-After"]) <= 60
            assert "Too many failed logins for this email. Try again in 1 minute." in refused.text
        # An unknown email: the same count, in both processes.
        answers = [log_in(browser, base, "nobody@acme.test", "wrong").status_code for base in servers + [second]]
        assert answers == [401] * 5 + [429]
