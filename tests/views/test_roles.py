"""Every route × role (SPEC §2): GETs answer the right status; refused forged POSTs change nothing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db

ROLES = ("owner", "admin", "editor", "outsider", "anonymous")


def expect(owner, admin, editor, outsider=404, anonymous=302):
    return dict(zip(ROLES, (owner, admin, editor, outsider, anonymous)))


VIEW = expect(200, 200, 200)
ADMIN_PAGE = expect(200, 200, 403)
OWNER_PAGE = expect(200, 403, 403)
OTHER_WORKSPACE = expect(404, 404, 404, 200)

GET_ROUTES = [
    ("/w/acme/agents", VIEW),
    ("/w/acme/members", OWNER_PAGE),
    ("/w/acme/api-keys", ADMIN_PAGE),
    ("/agents/{agent}", VIEW),
    ("/agents/{agent}/conversations", VIEW),
    ("/agents/{agent}/leads", VIEW),
    ("/agents/{agent}/experiments", VIEW),
    ("/agents/{agent}/settings", VIEW),
    ("/agents/{other_agent}", OTHER_WORKSPACE),
    ("/agents/{other_agent}/settings", OTHER_WORKSPACE),
    ("/agents/{other_agent}/experiments", OTHER_WORKSPACE),
    ("/w/other/agents", OTHER_WORKSPACE),
    ("/w/other/api-keys", OTHER_WORKSPACE),
    ("/agents/{agent}/experiments/new", ADMIN_PAGE),
    ("/agents/{agent}/experiments/{draft}", VIEW),
    ("/agents/{agent}/experiments/{running}?confirm=start", VIEW),
    ("/agents/{agent}/experiments/{draft}/edit", ADMIN_PAGE),
    ("/agents/{agent}/experiments/{other_exp}", expect(404, 404, 404)),
    ("/agents/{other_agent}/experiments/{other_exp}", OTHER_WORKSPACE),
    ("/agents/{other_agent}/experiments/{other_exp}/edit", OTHER_WORKSPACE),
    ("/agents/{agent}/experiments/{running}/preview?visitor_id=v-1", VIEW),
    ("/agents/{agent}/experiments/{running}/preview", VIEW),
    ("/agents/{other_agent}/experiments/{other_exp}/preview?visitor_id=v-1", OTHER_WORKSPACE),
    ("/agents/{agent}/experiments/{other_exp}/preview?visitor_id=v-1", expect(404, 404, 404)),
    ("/agents/{agent}/experiments/{running}/results", VIEW),
    ("/agents/{agent}/experiments/{running}/results.json", VIEW),
    ("/agents/{agent}/experiments/{stopped}/results.csv", VIEW),
    ("/agents/{agent}/experiments/{other_exp}/results.json", expect(404, 404, 404)),
    ("/agents/{other_agent}/experiments/{other_exp}/results.csv", OTHER_WORKSPACE),
]

POST_ROUTES = [
    ("/w/acme/agents", {"name": "New agent", "persona_name": "Neo"}, expect(302, 302, 403)),
    ("/w/acme/members", {"email": "owner@other.test", "role": "editor"}, expect(302, 403, 403)),
    ("/w/acme/members/{member}/role", {"role": "admin"}, expect(302, 403, 403)),
    ("/w/acme/members/{member}/remove", {}, expect(302, 403, 403)),
    ("/w/acme/api-keys", {"name": "k"}, expect(201, 201, 403)),
    ("/w/acme/api-keys/{key}/revoke", {}, expect(302, 302, 403)),
    ("/agents/{agent}/settings", {"name": "Renamed", "persona_name": "Zed", "persona_tone": "dry"}, expect(302, 302, 302)),
    ("/agents/{other_agent}/settings", {"name": "Hijack", "persona_name": "X"}, expect(404, 404, 404, 302)),
    ("/w/other/api-keys/{other_key}/revoke", {}, expect(404, 404, 404, 302)),
    ("/w/acme/api-keys/{other_key}/revoke", {}, expect(404, 404, 403)),
    ("/agents/{agent}/experiments/new", {
        "name": "Forged", "kind": "cta", "variants-0-key": "a", "variants-0-name": "A", "variants-0-weight": "1",
        "variants-1-key": "b", "variants-1-name": "B", "variants-1-weight": "1"}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{draft}/edit", {"name": "Renamed"}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{draft}/start", {"mode": "stop_others"}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{running}/stop", {}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{stopped}/start", {"mode": "anyway"}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{stopped}/delete", {}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{running}/duplicate", {}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{running}/promote", {"variant": "treatment"}, expect(302, 302, 403)),
    ("/agents/{agent}/experiments/{other_exp}/stop", {}, expect(404, 404, 403)),
    ("/agents/{other_agent}/experiments/{other_exp}/stop", {}, expect(404, 404, 404, 302)),
]


@pytest.fixture
def world(world, app):
    """The shared world plus experiments: a draft, a running and a stopped one, and one of the other workspace."""
    with app.app_context():
        world.draft_id = factories.experiment(world.agent_id, name="Draft")
        world.running_id = factories.experiment(world.agent_id, status="running", name="Running")
        world.stopped_id = factories.experiment(world.agent_id, status="stopped", name="Stopped")
        world.other_exp_id = factories.experiment(world.other_agent_id, status="running", name="Theirs")
        db.session.remove()
    return world


def fill(path: str, world) -> str:
    return path.format(agent=world.agent_id, other_agent=world.other_agent_id, member=world.editor_membership_id,
                       key=world.api_key_id, other_key=world.other_api_key_id, draft=world.draft_id,
                       running=world.running_id, stopped=world.stopped_id, other_exp=world.other_exp_id)


def snapshot(app) -> dict[str, list]:
    """Every row of every table: a refused request must leave this unchanged."""
    with app.app_context():
        out = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(sa.select(table)).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
        db.session.remove()
        return out


def login_as(auth, world, role: str) -> None:
    if role != "anonymous":
        assert auth.login(world.emails[role]).status_code == 302


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path,expected", GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_get_route_by_role(client, auth, world, role, path, expected):
    login_as(auth, world, role)
    response = client.get(fill(path, world))
    assert response.status_code == expected[role]
    if expected[role] == 302:
        assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path,data,expected", POST_ROUTES, ids=[r[0] for r in POST_ROUTES])
def test_forged_post_by_role(app, client, auth, world, role, path, data, expected):
    login_as(auth, world, role)
    before = snapshot(app)
    response = auth.post(fill(path, world), data)
    assert response.status_code == expected[role], response.get_data(as_text=True)[:500]
    refused = expected[role] in (403, 404) or (role == "anonymous")
    if refused:
        assert snapshot(app) == before
    else:
        assert snapshot(app) != before
