"""The A/B experiments web app: create_app() wires extensions, blueprints, errors and the CLI."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from webapp import config as settings, database, routing, security, templating
from webapp.config import Config
from webapp.extensions import csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type[Config] | dict | None = None) -> Flask:
    """Application factory: `config` is a Config class or a dict of overrides.

    A setting it cannot start with (a bad environment variable) raises ConfigError, whose message names it."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    app.config["APP_ENV"] = settings.app_env(app.config.get("APP_ENV", "development"))
    session_secure = settings.flag("SESSION_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE"))
    # The remember-me cookie logs a browser in as the session cookie does: it follows it unless set on its own.
    remember_secure = app.config.get("REMEMBER_COOKIE_SECURE")
    app.config["SESSION_COOKIE_SECURE"] = session_secure
    app.config["REMEMBER_COOKIE_SECURE"] = (session_secure if remember_secure is None
                                            else settings.flag("REMEMBER_COOKIE_SECURE", remember_secure))
    app.config["SMTP"] = settings.smtp(app.config.get("SMTP_URL"), app.config.get("MAIL_FROM"))
    database.configure_secret_key(app)
    database.configure_database(app)
    app.session_interface = security.CookieSessionsOutsideApi()
    security.trust_proxies(app)

    db.init_app(app)
    database.end_sessions_quietly(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"

    with app.app_context():
        database.configure_sqlite(app)

    app.url_map.converters["int"] = routing.DatabaseIdConverter  # before any route is added
    app.url_map.converters["runtime_id"] = routing.RuntimeIdConverter
    from webapp import errors
    from webapp.api import bp as api_bp
    from webapp.views import account, agents, auth, experiments, invitations, preview, results, review, workspace

    for module in (auth, account, invitations, workspace, agents, experiments, preview, results, review):
        app.register_blueprint(module.bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # token-authenticated; every other route keeps CSRF
    errors.register(app)

    from webapp.cli import register as register_cli

    register_cli(app)
    templating.register_template_helpers(app)
    app.before_request(security.reject_nul_bytes)
    app.before_request(auth.identify_user)
    app.after_request(security.security_headers)
    return app
