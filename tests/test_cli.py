import random
import re

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (Agent, ApiKey, AuditEvent, Conversation, Experiment, ExperimentAssignment, Membership,
                           User, Workspace)
from webapp import cli
from webapp.services.experiments import results, review
from webapp.services import simulation
from webapp.services.runtime import service as runtime
from tests import factories


def test_users_create_and_bad_flags(runner, app):
    result = runner.invoke(args=["users", "create", "new@acme.test", "--password", "lemur-quartz-harbor",
                                 "--workspace", "acme", "--role", "owner"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["users", "create", "new@acme.test", "--password", "lemur-quartz-harbor",
                                 "--workspace", "acme", "--role", "king"])
    assert result.exit_code != 0 and "king" in result.output
    result = runner.invoke(args=["users", "create", "bad", "--password", "x", "--workspace", "acme", "--role", "owner"])
    assert result.exit_code != 0 and "email" in result.output and "password" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def _members(app, slug: str) -> dict[str, str]:
    """{email: role} of a workspace's members, read in a fresh session."""
    with app.app_context():
        rows = db.session.execute(sa.select(User.email, Membership.role).join(Membership.user).join(Membership.workspace)
                                  .where(Workspace.slug == slug)).all()
        db.session.remove()
        return dict(rows)


def _password_hashes(app) -> dict[str, str]:
    with app.app_context():
        hashes = dict(db.session.execute(sa.select(User.email, User.password_hash)).all())
        db.session.remove()
        return hashes


def _create(runner, email: str, workspace: str, role: str, password: str = "lemur-quartz-harbor"):
    return runner.invoke(args=["users", "create", email, "--password", password, "--workspace", workspace,
                               "--role", role])


@pytest.mark.parametrize("role", ["admin", "editor"])
def test_users_create_refuses_to_demote_the_last_owner(runner, app, role):
    assert _create(runner, "boss@acme.test", "acme", "owner").exit_code == 0
    assert _create(runner, "staff@acme.test", "acme", "editor").exit_code == 0
    hashes = _password_hashes(app)
    result = _create(runner, "boss@acme.test", "acme", role, password="plum-orbit-lantern")
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and "last owner cannot be demoted" in result.output
    # nothing written: still the owner, and the password was not reset either
    assert _members(app, "acme") == {"boss@acme.test": "owner", "staff@acme.test": "editor"}
    assert _password_hashes(app) == hashes


def test_users_create_demotes_an_owner_when_another_owner_remains(runner, app):
    assert _create(runner, "boss@acme.test", "acme", "owner").exit_code == 0
    assert _create(runner, "cofounder@acme.test", "acme", "owner").exit_code == 0
    result = _create(runner, "boss@acme.test", "acme", "admin")
    assert result.exit_code == 0, result.output
    assert _members(app, "acme") == {"boss@acme.test": "admin", "cofounder@acme.test": "owner"}
    # the remaining owner is now the last one
    assert _create(runner, "cofounder@acme.test", "acme", "editor").exit_code != 0
    assert _members(app, "acme") == {"boss@acme.test": "admin", "cofounder@acme.test": "owner"}


@pytest.mark.parametrize("role", ["admin", "editor"])
@pytest.mark.parametrize("known_user", [False, True])
def test_users_create_refuses_a_new_workspace_without_an_owner(runner, app, role, known_user):
    if known_user:
        assert _create(runner, "someone@acme.test", "acme", "owner").exit_code == 0
    hashes = _password_hashes(app)
    result = _create(runner, "someone@acme.test", "brand-new", role, password="plum-orbit-lantern")
    assert result.exit_code != 0
    assert result.output.startswith("Error: ")
    assert "a new workspace's first member must be its owner" in result.output and "brand-new" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(Workspace).where(Workspace.slug == "brand-new")) is None
        db.session.remove()
    assert _password_hashes(app) == hashes  # no user created, no password reset
    # as its owner it works, and then others can join with any role
    assert _create(runner, "someone@acme.test", "brand-new", "owner").exit_code == 0
    assert _create(runner, "helper@acme.test", "brand-new", role).exit_code == 0
    assert _members(app, "brand-new") == {"someone@acme.test": "owner", "helper@acme.test": role}


def test_api_key_create_prints_key_last(runner, app):
    runner.invoke(args=["users", "create", "o@acme.test", "--password", "lemur-quartz-harbor", "--workspace", "acme",
                        "--role", "owner"])
    result = runner.invoke(args=["api-keys", "create", "--workspace", "acme", "--name", "widget"])
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    with app.app_context():
        access = runtime.authenticate(key)
        assert db.session.get(ApiKey, access.key.id).name == "widget"
    result = runner.invoke(args=["api-keys", "create", "--workspace", "missing"])
    assert result.exit_code != 0 and "missing" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 1


def test_agents_create_prints_id_last(runner, app):
    runner.invoke(args=["users", "create", "o@acme.test", "--password", "lemur-quartz-harbor", "--workspace", "acme",
                        "--role", "owner"])
    result = runner.invoke(args=["agents", "create", "--workspace", "acme", "--name", "Bot"])
    assert result.exit_code == 0
    agent_id = int(result.output.strip().splitlines()[-1])
    with app.app_context():
        assert db.session.get(Agent, agent_id).name == "Bot"
    assert runner.invoke(args=["agents", "create", "--workspace", "acme", "--name", ""]).exit_code != 0


def test_demo_is_idempotent(runner, app):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    for email in ("owner@demo.local", "admin@demo.local", "editor@demo.local"):
        assert email in first.output
    with app.app_context():
        visitors = db.session.scalar(sa.select(sa.func.count()).select_from(ExperimentAssignment))
    assert visitors == cli.DEMO_VISITORS
    assert runner.invoke(args=["demo"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Agent)) == 1
        experiment = db.session.scalar(sa.select(Experiment))
        assert experiment.status == "running" and experiment.kind == "persona"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ExperimentAssignment)) == visitors
        # the demo's effect is visible and significant
        exported = results.compute(experiment).as_dict()
        metrics = exported["variants"][1]["metrics"]
        assert metrics["lead_capture_rate"]["lift"] > 0.2 and metrics["lead_capture_rate"]["p_value"] < 0.01
        # only the simulated effect shows: engagement is not "significantly" different
        assert metrics["messages_per_conversation"]["p_value"] > 0.05
        assert metrics["session_length"]["p_value"] > 0.05
        # sequential, with a plan its traffic reaches, and a clear call: ship Aria
        assert exported["analysis"]["engine"] == "sequential" and exported["analysis"]["mde"] == 0.6
        assert exported["plan"]["baseline"]["source"] == "control" and exported["plan"]["days_remaining"] == 0
        assert exported["plan"]["visitors_now"] >= exported["plan"]["visitors_needed"]
        assert exported["variants"][1]["decision"]["call"] == "ship"
        assert "valid at every look: you can stop now" in exported["variants"][1]["decision"]["reason"]
        # visitor feedback is there (Aria rated up more often), so the metric and the blinded review are alive
        feedback = metrics["positive_feedback_rate"]
        assert feedback["value"] > exported["variants"][0]["metrics"]["positive_feedback_rate"]["value"]
        assert "positive_feedback_rate" in results.compute(experiment).ordered_metrics
        # the blinded review has something to show an editor: a conversation whose agent names itself, masked
        editor = db.session.scalar(sa.select(User).filter_by(email="editor@demo.local"))
        shown = review.next_review(editor.id, experiment.agent_id, experiment.id, random.Random(0))
        assert shown.conversation_id is not None
        agent_text = " ".join(m.text for m in shown.messages if m.role == "agent")
        assert re.search(rf"\b{review.MASK}\b", agent_text)
        personas = {v.config["persona"]["name"] for v in experiment.variants} | {experiment.agent.persona_name}
        assert personas == {"Sam", "Aria"}
        text = " ".join(m.text for m in shown.messages)
        assert not [name for name in personas if re.search(rf"\b{name}\b", text, re.IGNORECASE)]


def test_demo_audit_trail_tells_the_same_story_as_its_dates(runner, app):
    assert runner.invoke(args=["demo"]).exit_code == 0
    with app.app_context():
        agent, experiment = db.session.scalar(sa.select(Agent)), db.session.scalar(sa.select(Experiment))
        stamps = dict(db.session.execute(sa.select(AuditEvent.action, AuditEvent.created_at)
                                         .where(AuditEvent.action != "member.added")).all())
        assert stamps == {"agent.created": agent.created_at, "experiment.created": experiment.created_at,
                          "experiment.started": experiment.started_at}
        # The three logins joined before the agent was set up, as their accounts and memberships say.
        joined = db.session.execute(sa.select(AuditEvent.details["email"].as_string(), AuditEvent.created_at,
                                              Membership.created_at, User.created_at)
                                    .join(Membership, Membership.id == AuditEvent.target_id).join(Membership.user)
                                    .where(AuditEvent.action == "member.added").order_by(AuditEvent.id)).all()
        assert [email for email, *_ in joined] == [email for email, _ in cli.DEMO_USERS]
        assert all(audited == member_since == account_since <= agent.created_at
                   for _, audited, member_since, account_since in joined)
        first_conversation = db.session.scalar(sa.select(sa.func.min(Conversation.started_at)))
        first_assignment = db.session.scalar(sa.select(sa.func.min(ExperimentAssignment.assigned_at)))
        assert agent.created_at <= experiment.created_at < experiment.started_at <= first_assignment
        assert experiment.started_at <= first_conversation
        assert (first_conversation - experiment.started_at).total_seconds() < 6 * 3600  # traffic from day one


def written(app) -> tuple[int, int]:
    with app.app_context():
        counts = tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                       for model in (ExperimentAssignment, Conversation))
        db.session.remove()
        return counts


@pytest.mark.parametrize("args,message", [
    (["--agent", "999"], "there is no agent with id 999"),
    (["--agent", "99999999999"], "there is no agent with id 99999999999"),
    (["--agent", "{agent}", "--effect", "zzz=2"], "'zzz' is not a variant"),
    (["--agent", "{agent}", "--seed", "5"], "seed 5 are already in this experiment"),
    (["--agent", "{idle_agent}"], "has no running experiment"),
])
def test_simulate_errors_name_the_problem_and_write_nothing(runner, app, world, args, message):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        simulation.simulate_bulk(world.agent_id, 3, seed=5)
        db.session.remove()
    before = written(app)
    ids = {"agent": world.agent_id, "idle_agent": world.other_agent_id}
    result = runner.invoke(args=["simulate", "--visitors", "5", *[a.format(**ids) for a in args]])
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and len(result.output.splitlines()) == 1  # no progress bar first
    assert message in result.output
    assert written(app) == before


def test_simulate_an_unknown_agent_says_so(runner, app):
    result = runner.invoke(args=["simulate", "--agent", "999", "--visitors", "5"])
    assert result.exit_code != 0 and "running experiment" not in result.output


def test_simulate_over_http_checks_the_agent_before_sending(runner, app, world, live_server):
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
    for agent_id, key, message in ((999, world.api_key, "there is no agent with id 999"),
                                   (world.other_agent_id, world.api_key, "no agent with id"),
                                   (world.agent_id, "abx_wrong", "401")):
        result = runner.invoke(args=["simulate", "--agent", str(agent_id), "--visitors", "3", "--via-http",
                                     live_server, "--api-key", key])
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Visitors over HTTP" not in result.output
    assert written(app) == (0, 0)


def test_demo_is_refused_in_production_unless_forced(runner, app, monkeypatch):
    """Its three logins share the published password: not on a production install by accident."""
    from tests.views.test_roles import snapshot
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    before = snapshot(app)
    result = runner.invoke(args=["demo"])
    assert result.exit_code != 0 and result.output.startswith("Error: ")
    assert "APP_ENV=production" in result.output and "--force" in result.output
    assert snapshot(app) == before
    monkeypatch.setattr(cli, "DEMO_VISITORS", 20)
    result = runner.invoke(args=["demo", "--force"])
    assert result.exit_code == 0, result.output
    assert "owner@demo.local" in result.output


def _audit(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        rows = db.session.execute(sa.select(AuditEvent.actor_email, AuditEvent.action, AuditEvent.details)
                                  .order_by(AuditEvent.id)).all()
        db.session.remove()
        return [tuple(r) for r in rows]


def _added(email: str, role: str) -> tuple[str, str, dict]:
    return ("system", "member.added", {"email": email, "role": role})


def test_users_create_on_an_existing_user_says_what_changed_and_audits_it(runner, app):
    assert _create(runner, "boss@acme.test", "acme", "owner").exit_code == 0
    assert _create(runner, "cofounder@acme.test", "acme", "owner").exit_code == 0
    joined = [_added("boss@acme.test", "owner"), _added("cofounder@acme.test", "owner")]
    assert _audit(app) == joined
    result = _create(runner, "boss@acme.test", "acme", "admin", password="plum-orbit-lantern")
    assert result.exit_code == 0, result.output
    assert "role changed from owner to admin" in result.output and "password reset" in result.output
    assert _members(app, "acme")["boss@acme.test"] == "admin"
    assert _audit(app) == joined + [
        ("system", "member.role_changed", {"email": "boss@acme.test", "from": "owner", "to": "admin"}),
        ("system", "member.password_reset", {"email": "boss@acme.test"})]


def test_users_create_that_changes_nothing_says_so_and_writes_nothing(runner, app):
    assert _create(runner, "boss@acme.test", "acme", "owner").exit_code == 0
    hashes, audit = _password_hashes(app), _audit(app)
    result = _create(runner, "boss@acme.test", "acme", "owner")
    assert result.exit_code == 0 and "nothing changed" in result.output
    assert "password reset" not in result.output and "role changed" not in result.output
    assert _password_hashes(app) == hashes and _audit(app) == audit


def test_users_create_adds_an_existing_user_to_another_workspace_and_audits_it(runner, app):
    assert _create(runner, "boss@acme.test", "acme", "owner").exit_code == 0
    assert _create(runner, "helper@other.test", "other", "owner").exit_code == 0
    audit = _audit(app)
    result = _create(runner, "helper@other.test", "acme", "editor")  # same password
    assert result.exit_code == 0, result.output
    assert "added to workspace 'acme' as editor" in result.output and "password" not in result.output
    assert _audit(app) == audit + [_added("helper@other.test", "editor")]


def test_users_create_adds_a_new_user_to_an_existing_workspace_and_audits_it(runner, app):
    """A member.added row as the system, aimed at the new membership."""
    assert _create(runner, "boss@acme.test", "acme", "owner").exit_code == 0
    assert _create(runner, "staff@acme.test", "acme", "editor").exit_code == 0
    with app.app_context():
        workspace_id = factories.workspace_id("acme")
        rows = db.session.execute(
            sa.select(AuditEvent.workspace_id, AuditEvent.actor_email, AuditEvent.action, AuditEvent.target_type,
                      AuditEvent.target_id, AuditEvent.details, Membership.id)
            .join(Membership, Membership.id == AuditEvent.target_id).join(Membership.user)
            .where(AuditEvent.workspace_id == workspace_id, AuditEvent.action == "member.added",
                   User.email != "boss@acme.test")
            .order_by(AuditEvent.id)).all()
        db.session.remove()
    staff_membership = rows[0][-1]
    assert [tuple(row) for row in rows] == [
        (workspace_id, "system", "member.added", "membership", staff_membership,
         {"email": "staff@acme.test", "role": "editor"}, staff_membership)]


@pytest.mark.parametrize("url,message", [
    ("http://[bad", "--via-http"), ("http://", "--via-http"), ("ftp://example.test", "--via-http"),
])
def test_simulate_over_http_refuses_a_malformed_url(runner, app, world, url, message):
    result = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "2", "--via-http", url,
                                 "--api-key", world.api_key])
    assert result.exit_code != 0 and "Traceback" not in result.output and message in result.output, result.output
    assert "Error" in result.output and written(app) == (0, 0)


def test_simulate_over_http_says_when_the_server_does_not_answer_json(runner, app, world):
    """An address that is not this app (a web page answering 200 on every path) was a JSONDecodeError traceback."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>not the app</html>")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = runner.invoke(args=["simulate", "--agent", str(world.agent_id), "--visitors", "2", "--via-http",
                                     f"http://127.0.0.1:{server.server_port}", "--api-key", world.api_key])
    finally:
        server.shutdown()
    assert result.exit_code != 0 and result.output.startswith("Error: "), result.output
    assert "did not answer JSON" in result.output and written(app) == (0, 0)


@pytest.mark.parametrize("args,message", [
    (["agents", "create", "--workspace", "acme", "--name", "Bot\udcff"], "Name must be valid Unicode text"),
    (["api-keys", "create", "--workspace", "acme", "--name", "k\udcff"], "Name must be valid Unicode text"),
    (["api-keys", "create", "--workspace", "ac\udcffme"], "Slug must be valid Unicode text"),
    (["agents", "create", "--workspace", "ac\udcffme", "--name", "Bot"], "Slug must be valid Unicode text"),
    (["users", "create", "o\udcff@acme.test", "--password", "lemur-quartz-harbor", "--workspace", "acme", "--role", "owner"],
     "Email must be valid Unicode text"),
    (["users", "create", "o@acme.test", "--password", "lemur-quartz-harbor\udcff", "--workspace", "acme", "--role", "owner"],
     "Password must be valid Unicode text"),
])
def test_cli_refuses_an_argument_that_is_not_utf_8(runner, app, world, args, message):
    """A byte that is not UTF-8 in an argument reaches Python as a lone surrogate (surrogateescape): no database
    stores it (UnicodeEncodeError, a traceback, before)."""
    from tests.views.test_roles import snapshot
    before = snapshot(app)
    result = runner.invoke(args=args)
    assert result.exit_code != 0 and "Error: " in result.output and message in result.output, result.output
    assert "Traceback" not in result.output and snapshot(app) == before
