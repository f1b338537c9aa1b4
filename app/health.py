"""Liveness: ``GET /livez`` answers without touching the database."""

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez():
    """The process is up and serving requests."""
    return {"status": "ok"}
