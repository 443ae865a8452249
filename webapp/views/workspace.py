"""Workspace pages: Agents, Members, API keys, and the workspace switcher's landing."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField

from webapp import authz
from webapp.models import ROLES
from webapp.services.workspace import accounts, agents, api_keys, audit, invitations
from webapp.services.errors import Conflict, ValidationError
from webapp.views import hx_redirect, render, workspace_view

bp = Blueprint("workspace", __name__)


def apply_errors(form: FlaskForm, error: ValidationError) -> None:
    """Put the service's field messages on the form's fields (others go to form.form_errors)."""
    for field, message in error.fields.items():
        if field in form._fields:
            form[field].errors = list(form[field].errors or []) + [message]
        else:
            form.form_errors.append(message)


class AgentForm(FlaskForm):
    name = StringField("Name")
    persona_name = StringField("Persona name")
    persona_tone = StringField("Tone")
    instructions = TextAreaField("Instructions")


class InviteForm(FlaskForm):
    email = EmailField("Email")
    role = SelectField("Role", choices=[(r, r.capitalize()) for r in ROLES], default="editor", validate_choice=False)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r.capitalize()) for r in ROLES], validate_choice=False)


class ApiKeyForm(FlaskForm):
    name = StringField("Name")


@bp.route("/")
@login_required
def home():
    memberships = accounts.workspaces_of(current_user.id)
    if not memberships:
        return render_template("workspace/none.html")
    return redirect(url_for("workspace.agents_page", slug=memberships[0][0].slug))


@bp.route("/w/<slug>/agents", methods=["GET", "POST"])
@workspace_view()
def agents_page(slug: str):
    form = AgentForm()
    status = 200
    if form.is_submitted():
        if not form.validate():  # CSRF is checked globally; this keeps WTForms' own checks
            status = 422
        else:
            try:
                agent = agents.create_agent(current_user.id, g.workspace.id, form.name.data,
                                            form.persona_name.data or None, form.persona_tone.data or "",
                                            form.instructions.data or "")
                flash(f"Agent “{agent.name}” created.", "success")
                return redirect(url_for("agents.overview", agent_id=agent.id))
            except ValidationError as error:
                apply_errors(form, error)
                status = 422
    items = agents.list_agents(current_user.id, g.workspace.id)
    return render("workspace/agents.html", status=status, agents=items, form=form)


@bp.route("/w/<slug>/members", methods=["GET", "POST"])
@workspace_view("manage_members")
def members(slug: str):
    """The members, the pending invitations, and the form that invites (SPEC §14): a new invitation's link is shown
    in this answer only (201), whether or not its email has an account."""
    form = InviteForm()
    status = 200
    new_invitation = None
    if form.is_submitted():
        try:
            new_invitation = invitations.invite(
                current_user.id, g.workspace.id, form.email.data, form.role.data,
                lambda token: url_for("invitations.show", token=token, _external=True))
            form = InviteForm(formdata=None)
            status = 201
        except ValidationError as error:
            apply_errors(form, error)
            status = 422
    items = accounts.members(current_user.id, g.workspace.id)
    events = audit.workspace_events(current_user.id, g.workspace.id)
    return render("workspace/members.html", status=status, members=items, form=form, role_form=RoleForm(),
                  events=events, sole_owner_id=accounts.sole_owner_id(g.workspace.id),
                  pending=invitations.pending(current_user.id, g.workspace.id), new_invitation=new_invitation)


@bp.route("/w/<slug>/invitations/<int:invitation_id>/revoke", methods=["POST"])
@workspace_view()  # invitations.revoke: the invitation (404), then the role (403)
def revoke_invitation(slug: str, invitation_id: int):
    try:
        invitation = invitations.revoke(current_user.id, g.workspace.id, invitation_id)
        flash(f"The invitation of {invitation.email} is withdrawn: its link no longer works.", "success")
    except Conflict as error:
        flash(error.message, "error")
    return redirect(url_for("workspace.members", slug=slug))


@bp.route("/w/<slug>/members/<int:membership_id>/role", methods=["POST"])
@workspace_view()  # accounts.change_role: the membership (404), then the role (403)
def change_role(slug: str, membership_id: int):
    form = RoleForm()
    try:
        membership = accounts.change_role(current_user.id, g.workspace.id, membership_id, form.role.data)
        flash(f"{membership.user.email} is now {membership.role}.", "success")
        if membership.user_id == current_user.id and not authz.allows(membership.role_enum, "manage_members"):
            # An owner who stepped down may no longer see the Members page: on to one they may see.
            return hx_redirect(url_for("workspace.agents_page", slug=slug))
    except (ValidationError, Conflict) as error:
        flash(error.fields.get("role") or error.message, "error")
    return hx_redirect(url_for("workspace.members", slug=slug))


@bp.route("/w/<slug>/members/<int:membership_id>/remove", methods=["POST"])
@workspace_view()  # accounts.remove_member: the membership (404), then the role (403)
def remove_member(slug: str, membership_id: int):
    leaving = authz.membership(current_user.id, g.workspace.id).id == membership_id
    try:
        accounts.remove_member(current_user.id, g.workspace.id, membership_id)
        if leaving:  # no page of this workspace is theirs any more
            flash(f"You left {g.workspace.name}.", "success")
            return hx_redirect(url_for("workspace.home"))
        flash("Member removed.", "success")
    except Conflict as error:
        flash(error.message, "error")
    return hx_redirect(url_for("workspace.members", slug=slug))


@bp.route("/w/<slug>/api-keys", methods=["GET", "POST"])
@workspace_view("manage_api_keys")
def api_keys_page(slug: str):
    form = ApiKeyForm()
    status = 200
    new_key = None
    if form.is_submitted():
        try:
            _, new_key = api_keys.create_key(current_user.id, g.workspace.id, form.name.data or "")
            form = ApiKeyForm(formdata=None)
            status = 201
        except ValidationError as error:
            apply_errors(form, error)
            status = 422
    items = api_keys.list_keys(current_user.id, g.workspace.id)
    return render("workspace/api_keys.html", "workspace/_api_keys.html", status=status, keys=items, form=form, new_key=new_key)


@bp.route("/w/<slug>/api-keys/<int:key_id>/revoke", methods=["POST"])
@workspace_view()  # api_keys.revoke_key: the key (404), then the role (403)
def revoke_key(slug: str, key_id: int):
    key = api_keys.revoke_key(current_user.id, g.workspace.id, key_id)
    flash(f"Key {key.prefix}… revoked.", "success")
    return redirect(url_for("workspace.api_keys_page", slug=slug))
