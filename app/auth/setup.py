"""Binding identity and access to an app: the caller check and the spec plugin."""

import logging

from flask import Flask

from app.auth.identity import Identity
from app.auth.openapi import AccessPlugin
from app.auth.policy import authorize_request
from app.extensions import api

logger = logging.getLogger("app.auth")


def register_auth(app: Flask) -> None:
    """Check every request's caller first, and document access in the spec.

    Call after ``api.init_app`` and before the blueprints are registered, so the
    spec plugin sees every operation.
    """
    app.extensions["identity"] = Identity(app.config)
    plugin = AccessPlugin(app.config["AUTH_MODE"])
    plugin.init_spec(api.spec)
    api.spec.plugins.append(plugin)
    # First in line: a refused request learns nothing from the body checks.
    app.before_request_funcs.setdefault(None, []).insert(0, authorize_request)
    if app.config["AUTH_MODE"] == "none" and app.config["APP_ENV"] == "production":
        logger.warning(
            "AUTH_MODE=none: every caller acts as admin; only run this way behind a gateway "
            "that checks every call"
        )
