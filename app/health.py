"""Health probes for orchestrators: liveness without the database, readiness with it.

They live outside the API blueprints, so they stay out of the OpenAPI spec.
"""

from flask import Blueprint, Flask
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez():
    """The process is up and serving requests (never touches the database)."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The database answers a trivial query; a database error becomes a 503 problem."""
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}


def register_health(app: Flask) -> None:
    """Serve the probes at /livez and /readyz."""
    app.register_blueprint(bp)
