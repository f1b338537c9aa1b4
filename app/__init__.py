"""The application factory."""

from flask import Flask

from app import courses, health, students
from app.bodies import register_body_limits
from app.cli import seed_demo
from app.cors import register_cors
from app.database import register_database
from app.docs import register_docs
from app.errors import register_error_handlers
from app.extensions import api, db, migrate
from app.limits import register_rate_limits
from app.links import register_links
from app.logs import register_logging
from app.metrics import register_metrics
from app.proxy import register_proxy
from app.routing import register_routing
from app.security import register_security
from config import load_config


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask application; ``test_config`` overrides the environment."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(load_config())
    if test_config:
        app.config.update(test_config)
    register_logging(app)
    register_extensions(app)
    register_security(app)  # before the blueprints: its spec plugin documents them
    register_links(app)  # before the blueprints too: its spec plugin links their responses
    register_rate_limits(app)  # after security (the caller is known), before the blueprints
    register_blueprints(app)
    register_cors(app)
    register_docs(app)
    register_commands(app)
    register_metrics(app)
    register_proxy(app)
    register_body_limits(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations, API and error handling to the app."""
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    api.init_app(app)
    register_routing(app)
    register_database(app)
    register_error_handlers(app)


def register_blueprints(app: Flask) -> None:
    """Mount the resource blueprints on the API (and so in the OpenAPI spec)."""
    api.register_blueprint(students.blp)
    api.register_blueprint(courses.blp)
    app.register_blueprint(health.bp)


def register_commands(app: Flask) -> None:
    """Add the project's CLI commands."""
    app.cli.add_command(seed_demo)
