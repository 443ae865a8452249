"""The runtime JSON API under /api/v1 (SPEC §6): the blueprint and its routes are in routes.py."""
from webapp.api.routes import bp

__all__ = ["bp"]
