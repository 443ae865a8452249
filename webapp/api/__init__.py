"""The runtime JSON API under /api/v1 (SPEC §6)."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from webapp.api import routes  # noqa: E402,F401  (registers the routes on bp)
