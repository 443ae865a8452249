"""Every route × role (SPEC §2): GETs answer the right status; refused forged POSTs change nothing."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests import factories
from webapp import authz
from webapp.extensions import db
from webapp.services.workspace import invitations

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
    ("/account", expect(200, 200, 200, 200)),
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
    ("/agents/{agent}/experiments/{other_exp}/edit", expect(404, 404, 404)),
    ("/agents/{agent}/experiments/{missing}/edit", expect(404, 404, 404)),
    ("/agents/{agent}/experiments/{running}/preview?visitor_id=v-1", VIEW),
    ("/agents/{agent}/experiments/{running}/preview", VIEW),
    ("/agents/{other_agent}/experiments/{other_exp}/preview?visitor_id=v-1", OTHER_WORKSPACE),
    ("/agents/{agent}/experiments/{other_exp}/preview?visitor_id=v-1", expect(404, 404, 404)),
    ("/agents/{agent}/experiments/{running}/results", VIEW),
    ("/agents/{agent}/experiments/{running}/review", VIEW),
    ("/agents/{agent}/experiments/{other_exp}/review", expect(404, 404, 404)),
    ("/agents/{other_agent}/experiments/{other_exp}/review", OTHER_WORKSPACE),
    ("/agents/{agent}/experiments/{running}/results.json", VIEW),
    ("/agents/{agent}/experiments/{stopped}/results.csv", VIEW),
    ("/agents/{agent}/experiments/{other_exp}/results.json", expect(404, 404, 404)),
    ("/agents/{other_agent}/experiments/{other_exp}/results.csv", OTHER_WORKSPACE),
]

POST_ROUTES = [
    ("/w/acme/agents", {"name": "New agent", "persona_name": "Neo"}, expect(302, 302, 403)),
    ("/w/acme/members", {"email": "owner@other.test", "role": "editor"}, expect(201, 403, 403)),
    ("/w/acme/members", {"email": "nobody@else.test", "role": "admin"}, expect(201, 403, 403)),
    ("/w/acme/invitations/{invitation}/revoke", {}, expect(302, 403, 403)),
    ("/w/other/invitations/{other_invitation}/revoke", {}, expect(404, 404, 404, 302)),
    ("/w/acme/members/{member}/role", {"role": "admin"}, expect(302, 403, 403)),
    ("/w/acme/members/{member}/remove", {}, expect(302, 403, 403)),
    ("/w/acme/api-keys", {"name": "k"}, expect(201, 201, 403)),
    ("/w/acme/api-keys/{key}/revoke", {}, expect(302, 302, 403)),
    ("/agents/{agent}/settings", {"name": "Renamed", "persona_name": "Zed", "persona_tone": "dry"}, expect(302, 302, 302)),
    ("/agents/{other_agent}/settings", {"name": "Hijack", "persona_name": "X"}, expect(404, 404, 404, 302)),
    ("/w/other/api-keys/{other_key}/revoke", {}, expect(404, 404, 404, 302)),
    ("/w/acme/api-keys/{other_key}/revoke", {}, expect(404, 404, 404)),
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
    ("/agents/{agent}/experiments/{other_exp}/stop", {}, expect(404, 404, 404)),
    ("/agents/{other_agent}/experiments/{other_exp}/stop", {}, expect(404, 404, 404, 302)),
]


@pytest.fixture
def world(world, app):
    """The shared world plus experiments: a draft, a running and a stopped one, one of the other workspace, and one
    of a second agent of acme; and the other workspace's owner's membership."""
    with app.app_context():
        world.draft_id = factories.experiment(world.agent_id, name="Draft")
        world.running_id = factories.experiment(world.agent_id, status="running", name="Running")
        world.stopped_id = factories.experiment(world.agent_id, status="stopped", name="Stopped")
        world.other_exp_id = factories.experiment(world.other_agent_id, status="running", name="Theirs")
        world.sibling_exp_id = factories.experiment(factories.agent(world.workspace_id, name="Second agent"),
                                                    status="running", name="Sibling")
        world.other_member_id = authz.membership(world.outsider_id, world.other_workspace_id).id
        world.owner_membership_id = authz.membership(world.owner_id, world.workspace_id).id
        world.invitation_id = invitations.invite(world.owner_id, world.workspace_id, "new@acme.test", "editor",
                                                 str).invitation.id
        world.other_invitation_id = invitations.invite(world.outsider_id, world.other_workspace_id,
                                                       "new@other.test", "editor", str).invitation.id
        db.session.remove()
    return world


MISSING_ID = 987_654


def fill(path: str, world) -> str:
    return path.format(agent=world.agent_id, other_agent=world.other_agent_id, member=world.editor_membership_id,
                       key=world.api_key_id, other_key=world.other_api_key_id, draft=world.draft_id,
                       running=world.running_id, stopped=world.stopped_id, other_exp=world.other_exp_id,
                       sibling_exp=world.sibling_exp_id, other_member=world.other_member_id,
                       owner_member=world.owner_membership_id, invitation=world.invitation_id,
                       other_invitation=world.other_invitation_id, missing=MISSING_ID)


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


# --- SPEC §2, "ids do not leak": for an id-bearing URL the id is looked up first, then the role is checked --------

# Each action on an id: its URL with a {target} slot, the form, the own target the matrix acts on, the ids that are
# not this workspace's (or agent's) for it, and the member roles that may do it.
EXPERIMENT_IDS = ("other_exp", "sibling_exp", "missing")  # another workspace's, another agent's, none
ID_ACTIONS = [
    ("/agents/{agent}/experiments/{target}/start", {"mode": "anyway"}, "draft", EXPERIMENT_IDS, ("owner", "admin")),
    ("/agents/{agent}/experiments/{target}/stop", {}, "running", EXPERIMENT_IDS, ("owner", "admin")),
    ("/agents/{agent}/experiments/{target}/delete", {}, "stopped", EXPERIMENT_IDS, ("owner", "admin")),
    ("/agents/{agent}/experiments/{target}/duplicate", {}, "running", EXPERIMENT_IDS, ("owner", "admin")),
    ("/agents/{agent}/experiments/{target}/promote", {"variant": "treatment"}, "running", EXPERIMENT_IDS,
     ("owner", "admin")),
    ("/agents/{agent}/experiments/{target}/edit", {"name": "Renamed"}, "draft", EXPERIMENT_IDS, ("owner", "admin")),
    ("/w/acme/api-keys/{target}/revoke", {}, "key", ("other_key", "missing"), ("owner", "admin")),
    ("/w/acme/members/{target}/role", {"role": "admin"}, "member", ("other_member", "missing"), ("owner",)),
    ("/w/acme/members/{target}/role", {"role": "not-a-role"}, "member", ("other_member", "missing"), ("owner",)),
    ("/w/acme/members/{target}/remove", {}, "member", ("other_member", "missing"), ("owner",)),
    ("/w/acme/invitations/{target}/revoke", {}, "invitation", ("other_invitation", "missing"), ("owner",)),
]
MEMBER_ROLES = ("owner", "admin", "editor")

FOREIGN_CASES = [(path.replace("{target}", "{%s}" % target), data)
                 for path, data, _, foreign, _ in ID_ACTIONS for target in foreign]
FORBIDDEN_CASES = [(role, path.replace("{target}", "{%s}" % own), data)
                   for path, data, own, _, allowed in ID_ACTIONS for role in MEMBER_ROLES if role not in allowed]
FOREIGN_NAMES = ("Theirs", "Sibling", "other key", "owner@other.test", "new@other.test")


@pytest.mark.parametrize("role", MEMBER_ROLES + ("outsider",))
@pytest.mark.parametrize("path,data", FOREIGN_CASES, ids=[f"{p} {d}" for p, d in FOREIGN_CASES])
def test_a_foreign_or_unknown_id_is_404_for_every_role(app, client, auth, world, role, path, data):
    """Another workspace's id, another agent's experiment or no such id: 404 whatever the role, naming nothing of
    it, and nothing written."""
    login_as(auth, world, role)
    before = snapshot(app)
    response = auth.post(fill(path, world), data)
    assert response.status_code == 404, response.get_data(as_text=True)[:500]
    body = response.get_data(as_text=True)
    assert not [name for name in FOREIGN_NAMES if name in body and name != world.emails[role]]  # (the user menu)
    assert snapshot(app) == before


@pytest.mark.parametrize("role", MEMBER_ROLES)
@pytest.mark.parametrize("path", ["/agents/{agent}/experiments/{other_exp}/edit",
                                  "/agents/{agent}/experiments/{sibling_exp}/edit",
                                  "/agents/{agent}/experiments/{missing}/edit"])
def test_the_edit_form_of_a_foreign_or_unknown_experiment_is_404_for_every_role(client, auth, world, role, path):
    login_as(auth, world, role)
    response = client.get(fill(path, world))
    assert response.status_code == 404
    assert "Theirs" not in response.get_data(as_text=True) and "Sibling" not in response.get_data(as_text=True)


@pytest.mark.parametrize("role,path,data", FORBIDDEN_CASES, ids=[f"{r} {p} {d}" for r, p, d in FORBIDDEN_CASES])
def test_an_own_id_the_role_may_not_act_on_is_403(app, client, auth, world, role, path, data):
    """The id is this workspace's (and agent's): the role check answers, with the workspace's navigation kept."""
    login_as(auth, world, role)
    before = snapshot(app)
    response = auth.post(fill(path, world), data)
    assert response.status_code == 403, response.get_data(as_text=True)[:500]
    assert "/w/acme/agents" in response.get_data(as_text=True)  # the 403 page keeps the workspace's navigation
    assert snapshot(app) == before


@pytest.mark.parametrize("path", ["/w/acme/members/{owner_member}/role", "/w/acme/members/{owner_member}/remove"])
def test_an_admin_is_refused_on_the_owners_membership_too(app, client, auth, world, path):
    login_as(auth, world, "admin")
    before = snapshot(app)
    assert auth.post(fill(path, world), {"role": "editor"}).status_code == 403
    assert snapshot(app) == before


def without_csrf_token(html: str) -> str:
    return re.sub(r'(name="csrf-token" content=|name="csrf_token" value=)"[^"]*"', r'\1""', html)


@pytest.mark.parametrize("existing,unknown", [
    ("/agents/{other_agent}", "/agents/{missing}"),
    ("/agents/{other_agent}/experiments", "/agents/{missing}/experiments"),
    ("/w/other/agents", "/w/no-such-workspace/agents"),
    ("/w/other/api-keys", "/w/no-such-workspace/api-keys"),
])
def test_another_workspaces_page_answers_as_a_page_that_does_not_exist(client, auth, world, existing, unknown):
    """Not only the status: the same 404 page word for word, so a non-member cannot tell which agent ids and
    workspace slugs exist."""
    login_as(auth, world, "owner")
    theirs, none = client.get(fill(existing, world)), client.get(fill(unknown, world))
    assert theirs.status_code == none.status_code == 404
    # The CSRF token is signed with the second it was made: two requests may straddle one.
    assert without_csrf_token(theirs.get_data(as_text=True)) == without_csrf_token(none.get_data(as_text=True))
