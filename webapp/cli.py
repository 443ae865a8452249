"""CLI: flask --app wsgi users create | api-keys create | agents create | demo."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from .extensions import db
from .models import ROLES, Agent, Workspace
from .services import accounts, agents, api_keys
from .services.errors import DomainError

users_cli = AppGroup("users", help="Manage user accounts.")
keys_cli = AppGroup("api-keys", help="Manage runtime API keys.")
agents_cli = AppGroup("agents", help="Manage agents.")

DEMO_PASSWORD = "demo-password"
DEMO_USERS = (("owner@demo.local", "owner"), ("admin@demo.local", "admin"), ("editor@demo.local", "editor"))


def _fail(error: DomainError) -> None:
    details = "; ".join(f"{field}: {message}" for field, message in error.fields.items())
    raise click.ClickException(details or error.message)


def _workspace(slug: str) -> Workspace:
    workspace = db.session.scalar(sa.select(Workspace).where(Workspace.slug == slug.strip().lower()))
    if workspace is None:
        raise click.BadParameter(f"no workspace with the slug '{slug}'.", param_hint="--workspace")
    return workspace


@users_cli.command("create")
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--workspace", "workspace_slug", required=True, help="Workspace slug; created if missing.")
@click.option("--role", type=click.Choice(ROLES), required=True)
def create_user(email: str, password: str, workspace_slug: str, role: str) -> None:
    """Create a user (or reset their password) with a role in a workspace."""
    try:
        user = accounts.create_user(email, password, workspace_slug, role)
    except DomainError as error:
        _fail(error)
    click.echo(f"User {user.email} is {role} of workspace '{workspace_slug}'.")


@keys_cli.command("create")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--name", default="", help="A label for the key.")
def create_key(workspace_slug: str, name: str) -> None:
    """Create a runtime API key; the key alone is printed on the last line."""
    workspace = _workspace(workspace_slug)
    try:
        key, plaintext = api_keys.create_key(None, workspace.id, name)
    except DomainError as error:
        _fail(error)
    click.echo(f"API key '{key.name}' for workspace '{workspace.slug}' (shown once, store it now):")
    click.echo(plaintext)


@agents_cli.command("create")
@click.option("--workspace", "workspace_slug", required=True)
@click.option("--name", required=True)
@click.option("--persona-name", default=None)
@click.option("--tone", default="")
def create_agent(workspace_slug: str, name: str, persona_name: str | None, tone: str) -> None:
    """Create an agent; its id alone is printed on the last line."""
    workspace = _workspace(workspace_slug)
    try:
        agent = agents.create_agent(None, workspace.id, name, persona_name, tone)
    except DomainError as error:
        _fail(error)
    click.echo(f"Agent '{agent.name}' created in workspace '{workspace.slug}'.")
    click.echo(str(agent.id))


def ensure_demo() -> Agent:
    """The demo workspace, its three logins and its agent, created once."""
    for email, role in DEMO_USERS:
        if accounts.find_user_by_email(email) is None:
            accounts.create_user(email, DEMO_PASSWORD, "demo", role)
    workspace = _workspace("demo")
    agent = db.session.scalar(sa.select(Agent).where(Agent.workspace_id == workspace.id).order_by(Agent.id))
    if agent is None:
        agent = agents.create_agent(
            None, workspace.id, "Support assistant", "Sam", "friendly and professional",
            "Answer questions about our product. Offer to book a demo when the visitor seems interested.")
    return agent


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Create (idempotently) the demo workspace, agent and logins, and print them."""
    agent = ensure_demo()
    click.echo("Demo workspace 'demo' is ready.")
    click.echo(f"Agent: {agent.name} (id {agent.id})")
    click.echo("Logins (password: %s):" % DEMO_PASSWORD)
    for email, role in DEMO_USERS:
        click.echo(f"  {role:<6}  {email}")


def register(app: Flask) -> None:
    for command in (users_cli, keys_cli, agents_cli, demo):
        app.cli.add_command(command)
