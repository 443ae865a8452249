import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import AuditEvent, Membership, User
from webapp.services.workspace import accounts, agents, api_keys
from webapp.services.runtime import service as runtime
from webapp.services.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError


def test_emails_are_case_insensitive_and_passwords_hashed(ctx):
    accounts.create_user("Mixed@Case.Test", "lemur-quartz-harbor", "acme", "owner")
    user = db.session.scalar(sa.select(User))
    assert user.email == "mixed@case.test"
    assert "lemur-quartz-harbor" not in user.password_hash
    assert accounts.authenticate("MIXED@case.test", "lemur-quartz-harbor") == user
    assert accounts.authenticate("mixed@case.test", "wrong") is None


@pytest.mark.parametrize("email,password,slug,role,field", [
    ("not-an-email", "lemur-quartz-harbor", "acme", "owner", "email"),
    ("a@b.test", "short", "acme", "owner", "password"),
    ("a@b.test", "lemur-quartz-harbor", "Bad Slug!", "owner", "workspace"),
    ("a@b.test", "lemur-quartz-harbor", "acme", "superuser", "role"),
])
def test_create_user_rejects_bad_input(ctx, email, password, slug, role, field):
    with pytest.raises(ValidationError) as error:
        accounts.create_user(email, password, slug, role)
    assert field in error.value.fields
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_last_owner_cannot_be_demoted_or_removed(ctx, world):
    owner = accounts.workspace_for(world.owner_id, "acme")[0]
    mine = db.session.scalar(sa.select(Membership).where(Membership.user_id == world.owner_id))
    with pytest.raises(Conflict):
        accounts.change_role(world.owner_id, owner.id, mine.id, "admin")
    with pytest.raises(Conflict):
        accounts.remove_member(world.owner_id, owner.id, mine.id)
    assert mine.role == "owner"
    admin = db.session.scalar(sa.select(Membership).where(Membership.user_id == world.admin_id))
    accounts.change_role(world.owner_id, owner.id, admin.id, "owner")
    accounts.change_role(world.owner_id, owner.id, mine.id, "editor")  # now allowed: another owner exists
    assert mine.role == "editor"
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert "member.role_changed" in actions


def test_memberships_of_other_workspace_are_not_found(ctx, world):
    other = db.session.scalar(sa.select(Membership).where(Membership.user_id == world.outsider_id))
    with pytest.raises(NotFound):
        accounts.change_role(world.owner_id, world.workspace_id, other.id, "editor")


@pytest.mark.parametrize("role", ["owner", "admin", "editor"])
def test_foreign_or_unknown_ids_are_not_found_before_the_role_is_checked(ctx, world, role):
    """SPEC §2: another workspace's (or no) membership or API key is a 404 for every role; only the workspace's own
    ids can be a 403, for a role that may not act on them (and a bad role value comes after both)."""
    actor = {"owner": world.owner_id, "admin": world.admin_id, "editor": world.editor_id}[role]
    other_member = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == world.outsider_id))
    for membership_id in (other_member, 999_999):
        for act in (lambda: accounts.change_role(actor, world.workspace_id, membership_id, "editor"),
                    lambda: accounts.change_role(actor, world.workspace_id, membership_id, "king"),
                    lambda: accounts.remove_member(actor, world.workspace_id, membership_id)):
            with pytest.raises(NotFound):
                act()
            db.session.rollback()
    for key_id in (world.other_api_key_id, 999_999):
        with pytest.raises(NotFound):
            api_keys.revoke_key(actor, world.workspace_id, key_id)
        db.session.rollback()
    own = (lambda: accounts.change_role(actor, world.workspace_id, world.editor_membership_id, "king"),
           lambda: accounts.remove_member(actor, world.workspace_id, world.editor_membership_id))
    for act in own if role != "owner" else ():
        with pytest.raises(Forbidden):
            act()
        db.session.rollback()
    if role == "editor":
        with pytest.raises(Forbidden):
            api_keys.revoke_key(actor, world.workspace_id, world.api_key_id)
        db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action.in_(("member.role_changed", "member.removed", "api_key.revoked")))) == 0
    assert {m.role for m in db.session.scalars(sa.select(Membership))} == {"owner", "admin", "editor"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership)) == 4


def test_agent_settings_validation_and_roles(ctx, world):
    with pytest.raises(ValidationError) as error:
        agents.update_settings(world.editor_id, world.agent_id, {"name": "x", "persona_name": "", "persona_tone": "t" * 201})
    assert set(error.value.fields) == {"persona_name", "persona_tone"}
    agent = agents.update_settings(world.editor_id, world.agent_id,
                                   {"name": "Renamed", "persona_name": "Aria", "persona_tone": "warm"})
    assert (agent.persona_name, agent.persona_tone) == ("Aria", "warm")
    with pytest.raises(NotFound):
        agents.update_settings(world.outsider_id, world.agent_id, {"persona_name": "X"})
    with pytest.raises(Forbidden):
        agents.create_agent(world.editor_id, world.workspace_id, "Not mine")


def test_api_keys_are_hashed_revocable_and_track_use(ctx, world):
    key, plaintext = api_keys.create_key(world.admin_id, world.workspace_id, "widget")
    assert plaintext not in key.key_hash and key.prefix == plaintext[:10]
    assert runtime.authenticate(plaintext).key.id == key.id
    db.session.refresh(key)
    assert key.last_used_at is not None
    api_keys.revoke_key(world.owner_id, world.workspace_id, key.id)
    with pytest.raises(Unauthorized, match="revoked"):
        runtime.authenticate(plaintext)
    with pytest.raises(Unauthorized, match="Invalid"):
        runtime.authenticate("abx_not-a-key")
    with pytest.raises(Forbidden):
        api_keys.create_key(world.editor_id, world.workspace_id, "nope")
    with pytest.raises(NotFound):
        api_keys.revoke_key(world.owner_id, world.workspace_id, world.other_api_key_id)


def test_workspace_activity_is_owner_only_and_shows_experiments_only_once_deleted(ctx, world):
    from webapp.services.workspace import audit
    from webapp.services.experiments import experiments
    from tests import factories

    api_keys.create_key(world.admin_id, world.workspace_id, "widget")
    live = factories.experiment(world.agent_id, name="Still here")
    gone = factories.experiment(world.agent_id, name="Gone", kind="cta")
    audit.record(world.workspace_id, world.owner_id, "experiment.created", "experiment", live)
    db.session.commit()
    experiments.delete_experiment(world.admin_id, world.agent_id, gone)
    other_gone = factories.experiment(world.other_agent_id, name="Elsewhere")
    experiments.delete_experiment(world.outsider_id, world.other_agent_id, other_gone)
    events = audit.workspace_events(world.owner_id, world.workspace_id)
    assert "api_key.created" in [e.action for e in events]
    assert [e.action for e in events if e.target_type == "experiment"] == ["experiment.deleted"]
    deleted = events[0]
    assert (deleted.target_id, deleted.actor_email) == (gone, "admin@acme.test")
    assert deleted.details["name"] == "Gone" and deleted.details["kind"] == "cta"
    assert (deleted.details["agent"], deleted.details["agent_id"]) == ("Helper", world.agent_id)
    assert [e.details["name"] for e in audit.workspace_events(world.outsider_id, world.other_workspace_id)
            if e.action == "experiment.deleted"] == ["Elsewhere"]
    with pytest.raises(Forbidden):
        audit.workspace_events(world.admin_id, world.workspace_id)
    with pytest.raises(NotFound):
        audit.workspace_events(world.outsider_id, world.workspace_id)


def test_editing_instructions_is_audited(ctx, world):
    from webapp.models import AuditEvent
    agents.update_settings(world.editor_id, world.agent_id, {"name": "Helper", "persona_name": "Sam",
                                                            "persona_tone": "friendly", "instructions": "New rules."})
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "agent.settings_updated")).one()
    assert event.details == {"instructions": "edited"}


LONG_NAME_NEEDS_PERSONA = "Persona name is required when the agent's name is longer than 60 characters."


@pytest.mark.parametrize("name,persona_name,errors", [
    ("A" * 60, None, {}),
    ("A" * 80, "Sam", {}),
    ("A" * 80, "", {"persona_name": LONG_NAME_NEEDS_PERSONA}),
    ("A" * 80, "   ", {"persona_name": LONG_NAME_NEEDS_PERSONA}),
    ("", None, {"name": "Name is required."}),
    ("A" * 121, None, {"name": "Name must be at most 120 characters (got 121)."}),
    ("A" * 80, "P" * 61, {"persona_name": "Persona name must be at most 60 characters (got 61)."}),
], ids=["name-fits", "persona-given", "persona-blank", "persona-spaces", "no-name", "name-too-long", "persona-too-long"])
def test_a_blank_persona_name_defaults_to_the_agent_name_when_it_fits(ctx, world, name, persona_name, errors):
    if errors:
        with pytest.raises(ValidationError) as error:
            agents.create_agent(world.admin_id, world.workspace_id, name, persona_name)
        assert error.value.fields == errors
    else:
        agent = agents.create_agent(world.admin_id, world.workspace_id, name, persona_name)
        assert agent.persona_name == (persona_name or name)


def test_saving_unchanged_settings_writes_no_audit_row(ctx, world):
    unchanged = {"name": "Helper", "persona_name": " Sam ", "persona_tone": "friendly", "instructions": "Be helpful."}
    agents.update_settings(world.editor_id, world.agent_id, unchanged)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "agent.settings_updated")) == 0
    agents.update_settings(world.editor_id, world.agent_id, {**unchanged, "persona_tone": "warm"})
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "agent.settings_updated")).one()
    assert event.details == {"persona_tone": {"from": "friendly", "to": "warm"}}


def test_an_unknown_email_costs_a_password_check_as_a_known_one_does(app, world, monkeypatch):
    """No timing difference tells which emails have an account: an unknown one is checked against a stand-in hash."""
    import werkzeug.security

    from webapp import models

    checked = []
    real = werkzeug.security.check_password_hash

    def counting(pwhash, password):
        checked.append(pwhash.split("$")[0])
        return real(pwhash, password)

    monkeypatch.setattr(models, "check_password_hash", counting)
    with app.app_context():
        assert accounts.authenticate("nobody@acme.test", "correct-horse-battery") is None
        assert accounts.authenticate("owner@acme.test", "wrong-password") is None
    assert len(checked) == 2 and checked[0] == checked[1]  # the same method: the same cost
