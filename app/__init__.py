"""The application factory."""

from inspect import iscoroutinefunction

from flask import Flask

from app import courses, students
from app.auth.openapi import AccessPlugin
from app.auth.setup import register_auth
from app.bodies import register_body_limits
from app.cli import seed_demo
from app.cors import register_cors
from app.database import register_database
from app.docs import register_docs
from app.encoding import register_json
from app.errors import register_error_handlers
from app.etags import ConditionalPlugin
from app.extensions import api
from app.health import register_health
from app.idempotency import IdempotencyPlugin, purge_idempotency_keys
from app.limits import RateLimitPlugin, register_rate_limits
from app.links import LinksPlugin
from app.logs import register_logging
from app.metrics import register_metrics
from app.operations import OperationsPlugin
from app.pipeline import register_pipeline
from app.problems import register_problem_pages
from app.proxy import register_proxy
from app.routing import IdConverter, id_parameter_schema
from app.security import register_no_sessions
from config import load_config


class App(Flask):
    """Flask, with the answer to "is this hook a coroutine?" kept per function.

    Flask asks it of every hook and view on every request (``ensure_sync``),
    through ``inspect``, for about a tenth of a bare request's time; the
    answer never changes for a given function. Bound methods are keyed by
    their function, since a method view is bound anew on every request.
    """

    KEPT_ANSWERS = 4096  # hooks and views are few; a bound keeps a surprise from growing it

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._coroutines: dict = {}

    def ensure_sync(self, func):
        """``func`` itself when it is synchronous, else Flask's wrapper around it."""
        key = getattr(func, "__func__", func)
        is_coroutine = self._coroutines.get(key)
        if is_coroutine is None:
            is_coroutine = iscoroutinefunction(func)
            if len(self._coroutines) < self.KEPT_ANSWERS:
                self._coroutines[key] = is_coroutine
        return self.async_to_sync(func) if is_coroutine else func


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask application; ``test_config`` overrides the environment."""
    app = App(__name__, instance_relative_config=True)
    app.config.from_mapping(load_config())
    if test_config:
        app.config.update(test_config)
    # Logging first, so the other steps log as JSON; they may run in any order.
    register_logging(app)
    register_json(app)
    register_database(app)
    register_auth(app)
    register_api(app)
    register_pipeline(app)
    register_no_sessions(app)
    register_rate_limits(app)  # its check runs after the pipeline's: the caller is known
    register_error_handlers(app)
    register_health(app)
    register_docs(app)
    register_problem_pages(app)
    register_cors(app)
    register_metrics(app)
    register_commands(app)
    register_proxy(app)
    register_body_limits(app)
    return app


def register_api(app: Flask) -> None:
    """Serve the resource blueprints and document them in the OpenAPI spec.

    The spec is created by ``api.init_app`` with every plugin that documents
    the operations (their ids and descriptions, then who may call them in the
    running ``AUTH_MODE``, their links, their 429, their conditional headers,
    ``Idempotency-Key``), and flask-smorest documents a blueprint when it is
    registered, so the blueprints follow the spec's creation here.
    """
    app.url_map.converters["id"] = IdConverter
    api.register_converter(IdConverter, id_parameter_schema)
    plugins = [
        OperationsPlugin(),
        AccessPlugin(app.config["AUTH_MODE"]),
        LinksPlugin(),
        RateLimitPlugin(),
        ConditionalPlugin(),
        IdempotencyPlugin(),
    ]
    api.init_app(app, spec_kwargs={"extra_plugins": plugins})
    api.register_blueprint(students.blp)
    api.register_blueprint(courses.blp)


def register_commands(app: Flask) -> None:
    """Add the project's CLI commands."""
    app.cli.add_command(seed_demo)
    app.cli.add_command(purge_idempotency_keys)
